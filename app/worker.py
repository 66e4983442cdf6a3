"""The job worker's entry point: `huey_consumer app.worker.huey`."""

from app import create_app
from app.jobs import huey

app = create_app()

__all__ = ["app", "huey"]
