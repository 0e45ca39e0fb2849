"""Save screenshots of the main screens of the demo to docs/screenshots/.

    .venv/bin/python scripts/screenshots.py [--out docs/screenshots] [--lang fr]

Seeds the demo territory and a day of simulated readings in a throw-away SQLite
database, serves the app on a free local port, and drives Debian's Chromium (headless)
through the sign-in, home, asset list, asset detail, map, map with an asset's panel,
alarm console, alarm, work-order board, work order, indicators, rules and requests
office pages as the operator, then the field view on a phone as the field agent. No tile
server is configured, as on an offline install.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, sync_playwright  # noqa: E402
from tests.browser.live import CHROMIUM, CHROMIUM_ARGS, chromium_problem, serve  # noqa: E402

from territoire.app import create_app  # noqa: E402
from territoire.config import Settings  # noqa: E402
from territoire.db import Database, migrate  # noqa: E402
from territoire.demo.live import DemoLife, start_demo_life  # noqa: E402
from territoire.demo.seed import DEMO_USERS, demo_password, seed_demo  # noqa: E402
from territoire.tenancy.models import Role  # noqa: E402

VIEWPORT = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}
HISTORY_TIMEOUT_SECONDS = 600


def operator_credentials() -> tuple[str, str]:
    return credentials(Role.OPERATOR)


def credentials(role: Role) -> tuple[str, str]:
    email = next(email for each, email, _name in DEMO_USERS if each is role)
    return email, demo_password(role)


def take(page: Page, out: Path, name: str, *, full_page: bool = False) -> None:
    path = out / f"{name}.png"
    page.screenshot(path=str(path), full_page=full_page)
    print(f"saved {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")


def capture(base_url: str, out: Path, language: str) -> None:
    email, password = operator_credentials()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        page = browser.new_page(viewport=VIEWPORT, locale=language)
        page.goto(f"{base_url}/login?lang={language}")
        page.fill("#email", email)
        take(page, out, "login")
        page.fill("#password", password)
        page.click("form.stacked-form button[type=submit]")
        page.wait_for_url(f"{base_url}/")
        take(page, out, "home")
        page.goto(f"{base_url}/entities?type=Streetlight&commune=39901")
        take(page, out, "entities")
        page.click(".entity-table tbody a >> nth=0")
        page.wait_for_selector("#entity-map[data-state=ready]")
        take(page, out, "entity")
        asset_name = page.locator("main h1").first.inner_text().strip()
        page.goto(f"{base_url}/map")
        page.wait_for_selector("#territory-map[data-state=ready]")
        take(page, out, "map")
        map_panel(page, out, asset_name)
        operations(page, base_url, out)
        field_view(browser, base_url, out, language)
        browser.close()


def map_panel(page: Page, out: Path, asset_name: str) -> None:
    """The map zoomed on one asset found by the search, with its side panel and charts."""
    page.fill("#map-search-text", asset_name)
    page.click("#map-search button[type=submit]")
    page.locator("#map-search-results button", has_text=asset_name).first.click()
    page.wait_for_selector("#entity-panel .entity-charts[data-state]")
    page.wait_for_selector("#territory-map[data-state=ready]")
    take(page, out, "map-panel")


def operations(page: Page, base_url: str, out: Path) -> None:
    """The operator's screens: alarms, work orders, indicators, rules, requests office."""
    page.goto(f"{base_url}/alarms")
    take(page, out, "alarms")
    page.click("tr[data-alarm] th a >> nth=0")
    page.wait_for_url(f"{base_url}/alarms/**")
    take(page, out, "alarm")
    page.goto(f"{base_url}/work-orders")
    take(page, out, "work-orders")
    page.click(".ops-card h3 a >> nth=0")
    page.wait_for_url(f"{base_url}/work-orders/**")
    take(page, out, "work-order")
    page.goto(f"{base_url}/kpis")
    page.wait_for_selector(".kpi-chart[data-state=ready]")
    take(page, out, "kpis")
    page.evaluate("document.querySelector('.kpi-trends').scrollIntoView()")
    take(page, out, "kpi-trends")
    page.goto(f"{base_url}/rules")
    take(page, out, "rules")
    page.goto(f"{base_url}/office/requests")
    take(page, out, "office")


def field_view(browser: Any, base_url: str, out: Path, language: str) -> None:
    """The field agent's list of work orders on a phone-sized screen."""
    email, password = credentials(Role.FIELD_AGENT)
    phone = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale=language)
    page = phone.new_page()
    page.goto(f"{base_url}/login?lang={language}&next=/field")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("form.stacked-form button[type=submit]")
    page.wait_for_url(f"{base_url}/field")
    take(page, out, "field-phone")
    phone.close()


def with_history(settings: Settings) -> DemoLife:
    """The demo's living territory with a day of readings, so that charts have data."""
    life = start_demo_life(settings, history_days=1)
    deadline = time.monotonic() + HISTORY_TIMEOUT_SECONDS
    while not life.truth_path.exists():  # written once the day of history is stored
        if time.monotonic() > deadline or not life.thread.is_alive():
            raise RuntimeError("the demo's day of history was not stored in time")
        time.sleep(1)
    return life


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    parser.add_argument("--lang", choices=["fr", "en"], default="fr")
    arguments = parser.parse_args()
    problem = chromium_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    arguments.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="territoire-screens-") as folder:
        settings = Settings(data_dir=Path(folder), secret_key="screenshots-only-" + "x" * 32)
        settings.ensure_data_dir()
        migrate.upgrade(settings.effective_database_url)
        database = Database(settings.effective_database_url)
        with database.session() as session:
            seed_demo(session)
        life = with_history(settings)
        try:
            with serve(create_app(settings, database)) as base_url:
                capture(base_url, arguments.out, arguments.lang)
        finally:
            life.stop.set()
            database.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
