"""Notify tests: a local Web Push service (the stand-in) over real HTTP on a loopback port."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from werkzeug.serving import BaseWSGIServer

from notify.standins.push_service import PushService, Subscription, create_push_standin
from tests.standins import serve


@dataclass
class ServedPushService:
    url: str
    service: PushService
    server: BaseWSGIServer

    def subscribe(self, *, server_key: str | None = None) -> Subscription:
        """A device's subscription with its endpoint on this push service."""
        return self.service.subscribe(self.url, server_key=server_key)


@pytest.fixture
def push_service() -> Iterator[ServedPushService]:
    """The push-service stand-in, verifying VAPID and decrypting every push."""
    service = PushService()
    url, server = serve(create_push_standin(service=service))
    yield ServedPushService(url=url, service=service, server=server)
    server.shutdown()
