"""gunicorn settings. One worker per process: Socket.IO keeps per-process state; scale by
running more processes behind a proxy with sticky sessions and REDIS_URL (see the README)."""

import os
import sys
from typing import Any

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = 1
# gthread (the default) or gevent, for benchmarks/worker_class.py; gevent also needs
# SOCKETIO_ASYNC_MODE=gevent and the gevent package, which requirements.txt does not pin.
worker_class = os.environ.get("GUNICORN_WORKER_CLASS", "gthread")
# Each open socket holds a thread in threading mode, so allow plenty.
threads = int(os.environ.get("GUNICORN_THREADS", "100"))
# gthread caps open connections at worker_connections (1,000 by default): keep room for every
# socket a thread can hold, plus plain requests.
worker_connections = threads + 1000
timeout = 60
# On SIGTERM the worker stops accepting and lets requests in flight finish for this long (one
# waiting for a database connection gives up within DB_POOL_TIMEOUT + DB_CONNECT_TIMEOUT, 15 s),
# then the in-process job worker finishes its jobs (worker_exit below); then the process exits.
graceful_timeout = 20
keepalive = 5
accesslog = os.environ.get("ACCESS_LOG", "-") or None
# No query strings, and reset tokens and invite codes masked (app/logs.py).
access_log_format = '%(h)s "%(m)s %(U)s" %(s)s %(b)s %(M)sms'
logger_class = "app.logs.AccessLogger"
# gunicorn's control socket has one path per user ($HOME/.gunicorn/gunicorn.ctl): several app
# processes on one machine would take it from each other, and nothing here uses it.
control_socket_disable = True


def worker_exit(server: Any, worker: Any) -> None:
    """Let the in-process job worker (JOBS_IN_PROCESS=1) finish the jobs it is running."""
    # A worker that built the app has imported it; this file does not import it itself.
    jobs = sys.modules.get("app.jobs")
    if jobs is not None:  # the arbiter kills the worker after graceful_timeout
        jobs.stop_in_process_worker(timeout=graceful_timeout)
