"""The job worker's entry point: `huey_consumer app.worker.huey`.

With WORKER_METRICS_PORT, its job, sync and push counters are served on 127.0.0.1 at that port.
"""

import logging

from huey.consumer_options import ConsumerConfig

from app import create_app, metrics
from app.jobs import huey

app = create_app()

if app.config["WORKER_METRICS_PORT"]:
    metrics.serve_worker_metrics(app.config["WORKER_METRICS_PORT"])


_setup_logger = ConsumerConfig.setup_logger


def _through_the_app(self: ConsumerConfig, logger: logging.Logger | None = None) -> None:
    """Keep huey_consumer's level (-v, -q) but not its handler, unless it writes to a file (-l)."""
    if self.logfile:
        _setup_logger(self, logger)
    else:
        (logger or logging.getLogger()).setLevel(self.loglevel)


# huey_consumer gives the "huey" logger a text handler of its own once this module is imported;
# the app's root handler already writes those records (as JSON in production), so that handler
# would only write each of them a second time, in another format.
ConsumerConfig.setup_logger = _through_the_app

__all__ = ["app", "huey"]
