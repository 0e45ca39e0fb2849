"""Map benchmark: the large territory's map in headless Chromium, time and bytes.

    .venv/bin/python bench/map.py                       # build, serve, measure (≈ 4 min)
    .venv/bin/python bench/map.py --data-dir /tmp/map   # keep the database and reuse it
    .venv/bin/python bench/map.py --runs 5

Builds the large demo territory (`seed_demo(size=large)`: ≥ 50,000 entities) in a
throw-away SQLite database, gives it a current state (one fresh reading per series of
the simulated streams, 3 % of the entities silent for a day, 300 active alarms of mixed
severities), serves the app with uvicorn in a thread and loads /map as the operator in
Debian's Chromium. Prints, for the first view of the whole territory (median of
--runs fresh browser contexts, nothing cached), then for each zoom step on the biggest
cluster until single points show, and for a pan: the time until markers are drawn
(map.js sets `data-first-drawn-ms`, then `data-loads` per view) and the bytes received
(sum of response bodies). Goals: ≤ 2 s and ≤ 5 MB.
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from playwright.sync_api import Page, sync_playwright  # noqa: E402
from tests.browser.live import CHROMIUM, CHROMIUM_ARGS, chromium_problem, serve  # noqa: E402

from territoire.alarms import service as alarms  # noqa: E402
from territoire.alarms.models import Severity  # noqa: E402
from territoire.app import create_app  # noqa: E402
from territoire.config import Settings  # noqa: E402
from territoire.db import Database, migrate  # noqa: E402
from territoire.db.base import utcnow  # noqa: E402
from territoire.demo.seed import DEMO_SEED, DEMO_USERS, demo_password, seed_demo  # noqa: E402
from territoire.registry import service as registry  # noqa: E402
from territoire.simulator.sizes import Size  # noqa: E402
from territoire.simulator.territory import build_territory  # noqa: E402
from territoire.telemetry import service as telemetry  # noqa: E402
from territoire.telemetry.records import Reading  # noqa: E402
from territoire.tenancy import service as tenancy  # noqa: E402
from territoire.tenancy.models import Role  # noqa: E402

VIEWPORT = {"width": 1280, "height": 800}
GOAL_SECONDS = 2.0
GOAL_BYTES = 5 * 1024 * 1024
SILENT_SHARE = 0.03
ALARMS = 300


def line(label: str, value: str) -> None:
    print(f"  {label:<50} {value}")


# --- the territory ------------------------------------------------------------------------


def build(database: Database) -> int:
    started = time.perf_counter()
    with database.session() as session:
        report = seed_demo(session, size=Size.LARGE)
        tenant_id = report.tenant.id
    line(
        "seed the large demo (entities, devices, operations)",
        f"{time.perf_counter() - started:.1f} s",
    )
    started = time.perf_counter()
    readings = current_readings()
    result = telemetry.ingest(database, tenant_id, readings, source="bench")
    line(
        "current state: one reading per series",
        f"{result.stored:,} readings in {time.perf_counter() - started:.1f} s",
    )
    raise_some_alarms(database, tenant_id)
    return tenant_id


def current_readings() -> list[Reading]:
    """A fresh reading per series of every stream; a few entities silent for a day."""
    rng = random.Random(DEMO_SEED)
    now = utcnow()
    readings: list[Reading] = []
    for stream in build_territory(DEMO_SEED, Size.LARGE).streams.values():
        for urn in stream.entities:
            age = timedelta(days=1) if rng.random() < SILENT_SHARE else timedelta(minutes=5)
            for attribute in stream.attributes:
                readings.append(
                    Reading(urn, attribute.name, now - age, round(rng.random() * 100, 1))
                )
    return readings


def raise_some_alarms(database: Database, tenant_id: int) -> None:
    rng = random.Random(DEMO_SEED + 1)
    with database.session() as session:
        lamps = registry.map_rows(
            session, tenant_id, registry.EntityFilter(types=["Streetlight", "WasteContainer"])
        ).urn
        signals = [
            alarms.AlarmSignal(
                rule_key="bench.map",
                entity_urn=urn,
                severity=rng.choice(list(Severity)),
                message="bench alarm",
                observed_at=utcnow(),
            )
            for urn in rng.sample(lamps, min(ALARMS, len(lamps)))
        ]
        alarms.raise_alarms(session, tenant_id, signals)
    line("active alarms raised", f"{len(signals)}")


def has_demo(database: Database) -> bool:
    with database.session() as session:
        tenant = tenancy.find_tenant_by_slug(session, "demo")
        if tenant is None:
            return False
        return sum(registry.count_by_type(session, tenant.id).values()) >= 50_000


# --- the browser ----------------------------------------------------------------------------


class Traffic:
    """Bytes of the response bodies a page receives."""

    def __init__(self, page: Page) -> None:
        self.bytes = 0
        self.responses = 0
        page.on("requestfinished", self._finished)

    def _finished(self, request: Any) -> None:
        sizes = request.sizes()
        self.bytes += int(sizes.get("responseBodySize", 0))
        self.responses += 1


def sign_in(page: Page, base_url: str) -> None:
    email = next(email for role, email, _name in DEMO_USERS if role is Role.OPERATOR)
    page.goto(f"{base_url}/login")
    page.fill("#email", email)
    page.fill("#password", demo_password(Role.OPERATOR))
    page.click("form.stacked-form button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def wait_for_view(page: Page, loads: int) -> None:
    page.wait_for_function(
        """(loads) => {
            const el = document.querySelector("#territory-map");
            return el && el.dataset.state === "ready" && Number(el.dataset.loads) >= loads;
        }""",
        arg=loads,
        timeout=60_000,
    )


def map_facts(page: Page) -> dict[str, str]:
    facts: dict[str, str] = page.eval_on_selector(
        "#territory-map",
        "el => ({mode: el.dataset.mode, shown: el.dataset.renderedFeatures,"
        " first: el.dataset.firstDrawnMs || '', loads: el.dataset.loads})",
    )
    return facts


def first_view(browser: Any, base_url: str) -> tuple[float, int, dict[str, str]]:
    """A fresh context (empty cache): sign in, then open /map and wait for markers."""
    context = browser.new_context(viewport=VIEWPORT, locale="fr-FR")
    page = context.new_page()
    sign_in(page, base_url)
    traffic = Traffic(page)
    page.goto(f"{base_url}/map")
    page.wait_for_selector("#territory-map[data-first-drawn-ms]", timeout=60_000)
    wait_for_view(page, 1)
    facts = map_facts(page)
    seconds = float(facts["first"]) / 1000  # from the navigation start of /map
    context.close()
    return seconds, traffic.bytes, facts


def interactions(browser: Any, base_url: str) -> list[tuple[str, float, int, dict[str, str]]]:
    """Zoom in on the biggest cluster until points are drawn (at most six times), then
    pan: the time until each view is drawn and the bytes it took."""
    context = browser.new_context(viewport=VIEWPORT, locale="fr-FR")
    page = context.new_page()
    sign_in(page, base_url)
    page.goto(f"{base_url}/map")
    wait_for_view(page, 1)
    traffic = Traffic(page)
    box = page.locator("#territory-map").bounding_box()
    assert box is not None
    centre_x, centre_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    steps: list[tuple[str, float, int, dict[str, str]]] = []
    loads = int(map_facts(page)["loads"])
    for step in range(1, 7):
        target = largest_cluster(page) or (centre_x, centre_y)
        before, started = traffic.bytes, time.perf_counter()
        page.mouse.dblclick(*target)
        wait_for_view(page, loads + 1)
        elapsed = time.perf_counter() - started
        page.wait_for_timeout(400)  # the zoom animation may end with a second moveend
        wait_for_view(page, loads + 1)
        facts = map_facts(page)
        loads = int(facts["loads"])
        steps.append((f"zoom in ×{step}", elapsed, traffic.bytes - before, facts))
        if facts["mode"] == "points":
            break
    before, started = traffic.bytes, time.perf_counter()
    page.mouse.move(centre_x, centre_y)
    page.mouse.down()
    page.mouse.move(centre_x - 400, centre_y - 200, steps=8)
    page.mouse.up()
    wait_for_view(page, loads + 1)
    steps.append(("pan", time.perf_counter() - started, traffic.bytes - before, map_facts(page)))
    context.close()
    return steps


def largest_cluster(page: Page) -> tuple[float, float] | None:
    """Screen position of the biggest cluster, so that zooming goes where assets are."""
    found = page.evaluate(
        """() => {
            let best = null, most = -1;
            document.querySelectorAll("#territory-map .cluster-count").forEach((el) => {
                const n = Number(el.textContent.replace(/\\D/g, ""));
                if (n > most) { most = n; best = el.getBoundingClientRect(); }
            });
            return best && [best.x + best.width / 2, best.y + best.height / 2];
        }"""
    )
    return (found[0], found[1]) if found else None


def measure(base_url: str, runs: int) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        views = [first_view(browser, base_url) for _ in range(runs)]
        seconds = statistics.median(v[0] for v in views)
        received = int(statistics.median(v[1] for v in views))
        facts = views[-1][2]
        print(f"\nFirst view of the whole territory (median of {runs}, empty cache):")
        line(
            "time to first markers (from navigation start)",
            f"{seconds:.2f} s  (goal ≤ {GOAL_SECONDS:.0f} s: {seconds / GOAL_SECONDS:.2f} of it)",
        )
        line(
            "bytes received (HTML, JS, CSS, JSON)",
            f"{received / 1024:,.0f} KiB  (goal ≤ 5 MiB: {received / GOAL_BYTES:.3f} of it)",
        )
        line("what was drawn", f"{facts['mode']}: {int(facts['shown']):,} assets represented")
        line("all runs (s)", ", ".join(f"{v[0]:.2f}" for v in views))
        print("\nAfter the first view (same page, cached static files):")
        for label, elapsed, size, state in interactions(browser, base_url):
            line(
                label,
                f"{elapsed:.2f} s, {size / 1024:,.0f} KiB — {state['mode']}: "
                f"{int(state['shown']):,} assets",
            )
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, help="keep the database here (reused)")
    parser.add_argument("--runs", type=int, default=3)
    arguments = parser.parse_args()
    problem = chromium_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="territoire-bench-map-") as scratch:
        folder = arguments.data_dir or Path(scratch)
        folder.mkdir(parents=True, exist_ok=True)
        settings = Settings(data_dir=folder, secret_key="bench-only-" + "x" * 32)
        settings.ensure_data_dir()
        migrate.upgrade(settings.effective_database_url)
        database = Database(settings.effective_database_url)
        print(f"Map benchmark — SQLite database in {folder}")
        if has_demo(database):
            line("large territory", "reused")
        else:
            build(database)
        with database.session() as session:
            tenant = tenancy.find_tenant_by_slug(session, "demo")
            assert tenant is not None
            total = sum(registry.count_by_type(session, tenant.id).values())
        line("entities in the territory", f"{total:,}")
        with serve(create_app(settings, database)) as base_url:
            measure(base_url, arguments.runs)
        database.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
