"""Browser-test fixtures, shared by every test folder (loaded by tests/conftest.py):
the real app served by uvicorn, driven by Debian's Chromium (Playwright)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from territoire.app import create_app
from territoire.config import Settings
from territoire.db import Database
from territoire.demo.seed import seed_demo
from territoire.simulator.sizes import Size
from tests.browser.live import CHROMIUM, CHROMIUM_ARGS, chromium_problem, free_port, serve
from tests.conftest import ON_CI


def _require_chromium() -> None:
    problem = chromium_problem()
    if problem:
        if ON_CI:
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    _require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield browser
        browser.close()


@dataclass
class LiveDemo:
    base_url: str
    tenant_id: int
    settings: Settings


@pytest.fixture
def live_demo(settings: Settings, database: Database) -> Iterator[LiveDemo]:
    """The demo territory in the test database, served with an unreachable tile server."""
    with database.session() as session:
        # The small territory keeps the test quick; expectations are read from the data.
        report = seed_demo(session, size=Size.SMALL)
        tenant_id = report.tenant.id
    # Nothing listens on this port: every tile fails, as on a site without internet.
    offline = settings.model_copy(
        update={"tile_url": f"http://127.0.0.1:{free_port()}/{{z}}/{{x}}/{{y}}.png"}
    )
    with serve(create_app(offline, database)) as base_url:
        yield LiveDemo(base_url, tenant_id, offline)


@pytest.fixture
def page(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    browser_page = context.new_page()
    browser_page.set_default_timeout(15_000)
    yield browser_page
    context.close()
