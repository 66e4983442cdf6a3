#!/usr/bin/env bash
# Serve Hearten: migrations, demo data (never in production), the job worker, then gunicorn.
set -euo pipefail
cd "$(dirname "$0")/.."
export FLASK_APP=wsgi.py
BIN=.venv/bin
PORT="${PORT:-8000}"

"$BIN/flask" db upgrade
if [ "${APP_ENV:-development}" != "production" ]; then
  "$BIN/flask" demo seed
fi

if [ -n "${REDIS_URL:-}" ]; then
  # Scale-out set-up: a separate worker; its emits reach sockets through Redis.
  "$BIN/huey_consumer" app.worker.huey --worker-type thread --workers 2 \
    --logfile "${INSTANCE_PATH:-instance}/worker.log" >/dev/null 2>&1 &
  WORKER=$!
  trap 'kill "$WORKER" 2>/dev/null || true' EXIT INT TERM
else
  # Embedded set-up: the job worker runs inside the app process, beside the sockets.
  export JOBS_IN_PROCESS=1
fi

echo
echo "Hearten is running at http://127.0.0.1:${PORT}  (Ctrl-C to stop)"
echo
"$BIN/gunicorn" -c gunicorn.conf.py wsgi:app
