"""Prometheus metrics for the operator's scraper: request durations by route, open sockets, the
job queue, and the outcomes of jobs, wearable syncs and pushes.

Each process counts its own: every gunicorn process serves /metrics, and the job worker serves
them on WORKER_METRICS_PORT (127.0.0.1). Features count their outcomes through the objects here.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time
from collections.abc import Iterable
from typing import Any

from flask import Flask, Response, abort, current_app, g, request
from huey import signals
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    start_http_server,
)
from prometheus_client.core import GaugeMetricFamily, Metric

from app.jobs import huey

log = logging.getLogger(__name__)

REGISTRY = CollectorRegistry()
for _collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
    REGISTRY.register(_collector)

REQUEST_DURATION = Histogram(
    "hearten_http_request_duration_seconds",
    "Time to answer a request, by route (its URL rule; `unmatched` when none), method and "
    "status class.", ["route", "method", "status"], registry=REGISTRY)
OPEN_SOCKETS = Gauge("hearten_open_sockets", "Socket.IO connections open in this process.",
                     registry=REGISTRY)
JOBS = Counter("hearten_jobs", "Jobs run in this process, by task and outcome (ok, failed, "
               "retried).", ["task", "outcome"], registry=REGISTRY)
SYNCS = Counter("hearten_syncs", "Wearable syncs finished in this process, by platform and "
                "outcome.", ["provider", "outcome"], registry=REGISTRY)
PUSHES = Counter("hearten_push", "Push deliveries' outcomes: sent, gone (404/410), "
                 "rate_limited (429), retry (later), failed (given up).", ["outcome"],
                 registry=REGISTRY)
PUSH_OUTCOMES = ("sent", "gone", "rate_limited", "retry", "failed")
for _outcome in PUSH_OUTCOMES:
    PUSHES.labels(outcome=_outcome)  # present at 0, so that rates start from the first scrape

# Any other method (anyone can send one) is counted as "other", so labels stay few.
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class _QueueDepth:
    """hearten_job_queue_depth, read from the queue at scrape time."""

    name = "hearten_job_queue_depth"
    documentation = "Jobs waiting in the queue (read when scraped; absent when unreachable)."

    def describe(self) -> Iterable[Metric]:
        yield GaugeMetricFamily(self.name, self.documentation)

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation)
        try:
            family.add_metric([], float(huey.pending_count()))
        except Exception as exc:  # Redis down: the rest of the scrape still answers
            log.debug("job queue depth unavailable: %s", type(exc).__name__)
        yield family


REGISTRY.register(_QueueDepth())


def _job_ok(_signal: str, task: Any, *_args: Any, **_kwargs: Any) -> None:
    JOBS.labels(task=task.name, outcome="ok").inc()


def _job_error(_signal: str, task: Any, *_args: Any, **_kwargs: Any) -> None:
    if not task.retries:  # with retries left, SIGNAL_RETRYING follows and counts it
        JOBS.labels(task=task.name, outcome="failed").inc()


def _job_retried(_signal: str, task: Any, *_args: Any, **_kwargs: Any) -> None:
    JOBS.labels(task=task.name, outcome="retried").inc()


huey.signal(signals.SIGNAL_COMPLETE)(_job_ok)
huey.signal(signals.SIGNAL_ERROR)(_job_error)
huey.signal(signals.SIGNAL_RETRYING)(_job_retried)


def _peer_is_loopback() -> bool:
    """The direct peer (before ProxyFix's rewriting) is this machine, not through a proxy."""
    if "X-Forwarded-For" in request.headers or "Forwarded" in request.headers:
        return False
    original = request.environ.get("werkzeug.proxy_fix.orig") or {}
    peer = original.get("REMOTE_ADDR") or request.environ.get("REMOTE_ADDR") or ""
    try:
        return ipaddress.ip_address(peer).is_loopback
    except ValueError:
        return False


def may_scrape() -> bool:
    """With METRICS_TOKEN, only `Authorization: Bearer <token>`; without, only a loopback peer."""
    token = str(current_app.config.get("METRICS_TOKEN") or "")
    if token:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    return _peer_is_loopback()


def scrape() -> Response:
    """This process's metrics in Prometheus' text format; 404 to anyone but the scraper."""
    if not may_scrape():
        abort(404)
    response = Response(generate_latest(REGISTRY), content_type=CONTENT_TYPE_LATEST)
    response.headers["Cache-Control"] = "no-store"
    return response


def serve_worker_metrics(port: int) -> None:
    """The job worker has no web server: serve its metrics on 127.0.0.1:`port`."""
    start_http_server(port, addr="127.0.0.1", registry=REGISTRY)
    log.info("job worker metrics at http://127.0.0.1:%d/metrics", port)


def init_app(app: Flask) -> None:
    """Time every request by its route, and serve /metrics."""

    @app.before_request
    def _start_timer() -> None:
        g.metrics_started = time.perf_counter()

    @app.after_request
    def _observe(response: Response) -> Response:
        started = g.get("metrics_started")
        if started is not None:
            rule = request.url_rule
            REQUEST_DURATION.labels(
                route=rule.rule if rule is not None else "unmatched",
                method=request.method if request.method in _METHODS else "other",
                status=f"{response.status_code // 100}xx",
            ).observe(time.perf_counter() - started)
        return response

    app.add_url_rule("/metrics", "metrics", scrape)
