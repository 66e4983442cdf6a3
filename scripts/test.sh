#!/usr/bin/env bash
# Every check: lint, types, translations, then the whole suite on SQLite and on PostgreSQL.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=.venv/bin

# The scale-out tests need Redis; start the machine's own when it is installed but not running.
if ! redis-cli -h 127.0.0.1 -p 6379 ping >/dev/null 2>&1 && command -v redis-server >/dev/null; then
  mkdir -p /tmp/hearten-redis
  redis-server --daemonize yes --bind 127.0.0.1 --port 6379 --save "" --appendonly no \
    --dir /tmp/hearten-redis >/dev/null
fi

echo "== ruff"; "$BIN/ruff" check .
echo "== mypy"; "$BIN/mypy"
echo "== translations"; "$BIN/python" scripts/i18n.py check && echo "every message has a Spanish translation"

echo "== pytest on SQLite"
env -u TEST_DATABASE_URL "$BIN/pytest" -q "$@"

PG_URL="${TEST_DATABASE_URL:-postgresql://postgres@127.0.0.1:5432/test}"
if "$BIN/python" scripts/pg_ready.py "$PG_URL"; then
  echo "== pytest on PostgreSQL ($PG_URL)"
  echo "   (the Chromium page tests ran above on SQLite; they test pages, not the database, so"
  echo "    this run leaves them out: -m 'not browser')"
  TEST_DATABASE_URL="$PG_URL" "$BIN/pytest" -q -m "not browser" "$@"
elif [ -n "${CI:-}" ]; then
  echo "PostgreSQL is not reachable at $PG_URL, and CI needs it." >&2
  exit 1
else
  echo "== PostgreSQL not reachable at $PG_URL: the PostgreSQL run was not done (SQLite run passed)."
fi
