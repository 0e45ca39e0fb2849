"""Fixtures of the requests tests: a small photo limit (so that 413 is cheap to reach),
no digest delay and a real SMTP server (the browser fixtures come from tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller

from territoire.config import Settings

from .helpers import Sink, free_port

PHOTO_LIMIT = 150_000


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.requests_max_photo_bytes = PHOTO_LIMIT
    settings.notification_digest_seconds = 0
    settings.notification_poll_seconds = 1
    return settings


@pytest.fixture
def sink(settings: Settings) -> Iterator[Sink]:
    """A real SMTP server (aiosmtpd) on a free local port; the settings point at it."""
    handler = Sink()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    settings.smtp_host, settings.smtp_port = "127.0.0.1", controller.port
    settings.smtp_from = "signalements@ville-a.test"
    try:
        yield handler
    finally:
        controller.stop()
