"""Settings for the requests tests: a small photo limit, so that 413 is cheap to reach."""

from __future__ import annotations

import pytest

from territoire.config import Settings

PHOTO_LIMIT = 150_000


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.requests_max_photo_bytes = PHOTO_LIMIT
    settings.notification_digest_seconds = 0
    return settings
