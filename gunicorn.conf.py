"""gunicorn settings. One worker per process: Socket.IO keeps per-process state; scale by
running more processes behind a proxy with sticky sessions and REDIS_URL (see the README)."""

import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = 1
worker_class = "gthread"
# Each open socket holds a thread in threading mode, so allow plenty.
threads = int(os.environ.get("GUNICORN_THREADS", "100"))
# gthread caps open connections at worker_connections (1,000 by default): keep room for every
# socket a thread can hold, plus plain requests.
worker_connections = threads + 1000
timeout = 60
graceful_timeout = 20
keepalive = 5
accesslog = os.environ.get("ACCESS_LOG", "-") or None
# No query strings, and reset tokens and invite codes masked (app/logs.py).
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
logger_class = "app.logs.AccessLogger"
