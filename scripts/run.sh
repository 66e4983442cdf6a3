#!/usr/bin/env bash
# Serve Hearten: migrations, demo data (never in production), the job worker, then gunicorn.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLASK_APP=wsgi.py
BIN=.venv/bin
PORT="${PORT:-8000}"

mkdir -p "${INSTANCE_PATH:-instance}"
CHILDREN=()
cleanup() { for pid in "${CHILDREN[@]}"; do kill "$pid" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

# Outside production, with no real Google credentials, a local stand-in plays Google, so that
# "Connect a tracker" works end to end with no internet.
if [ "${APP_ENV:-development}" != "production" ] && [ -z "${GOOGLE_CLIENT_ID:-}" ]; then
  STANDIN_PORT="${STANDIN_PORT:-8601}"
  "$BIN/python" -m wearables.standins.google_health --port "$STANDIN_PORT" --quiet \
    >"${INSTANCE_PATH:-instance}/google-standin.log" 2>&1 &
  CHILDREN+=($!)
  STANDIN="http://127.0.0.1:${STANDIN_PORT}"
  export GOOGLE_CLIENT_ID=hearten-demo GOOGLE_CLIENT_SECRET=hearten-demo-secret \
    GOOGLE_OAUTH_AUTHORIZE_URL="$STANDIN/o/oauth2/v2/auth" GOOGLE_OAUTH_TOKEN_URL="$STANDIN/token" \
    GOOGLE_OAUTH_REVOKE_URL="$STANDIN/revoke" GOOGLE_HEALTH_API_BASE="$STANDIN" \
    OAUTHLIB_INSECURE_TRANSPORT=1
  echo "A stand-in for the Google Health API runs at $STANDIN (demo only)."
fi

"$BIN/flask" db upgrade
if [ "${APP_ENV:-development}" != "production" ]; then
  "$BIN/flask" demo seed
fi

if [ -n "${REDIS_URL:-}" ]; then
  # Scale-out set-up: a separate worker; its emits reach sockets through Redis.
  "$BIN/huey_consumer" app.worker.huey --worker-type thread --workers 2 \
    --logfile "${INSTANCE_PATH:-instance}/worker.log" >/dev/null 2>&1 &
  CHILDREN+=($!)
else
  # Embedded set-up: the job worker runs inside the app process, beside the sockets.
  export JOBS_IN_PROCESS=1
fi

echo
echo "Hearten is running at http://127.0.0.1:${PORT}  (Ctrl-C to stop)"
echo
"$BIN/gunicorn" -c gunicorn.conf.py wsgi:app
