"""The command post's day in a real browser: an alarm raised by incoming data appears on
the console without a reload (server-sent events), the operator acknowledges it and
creates a work order, dispatches it, a field agent closes it from a phone with a report
and a photo, and the KPI page shows one more work order resolved.

Every expected figure is read from the services, never written here.
"""

from __future__ import annotations

import re
import struct
import zlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from territoire.alarms import service as alarms
from territoire.db import Database
from territoire.demo.seed import DEMO_USERS, demo_password
from territoire.interventions import kpis
from territoire.interventions import service as interventions
from territoire.registry import service as registry
from territoire.rules import service as rules
from territoire.telemetry import service as telemetry
from territoire.telemetry.records import Reading
from territoire.tenancy.models import Role
from territoire.web.i18n import translator
from tests.browser.fixtures import LiveDemo

pytestmark = pytest.mark.browser

fr = translator("fr").gettext
PHONE = {"width": 390, "height": 844}
RESOLVED = "work_orders.resolved"
RULE = "journey-container-full"


def account(role: Role) -> tuple[str, str]:
    email = next(email for each, email, _ in DEMO_USERS if each is role)
    return email, demo_password(role)


def sign_in(page: Any, base_url: str, role: Role, target: str) -> None:
    email, password = account(role)
    page.goto(f"{base_url}{target}")
    page.get_by_label("Adresse électronique").fill(email)
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{base_url}{target}")


def tiny_png() -> bytes:
    """A valid 1×1 PNG, made here so that the test carries no binary file."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    pixels = zlib.compress(b"\x00\x20\x80\x40")
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


def a_quiet_container(database: Database, tenant_id: int) -> str:
    """A located waste container without any alarm yet (the demo raises some)."""
    with database.session() as session:
        found = registry.list_entities(
            session, tenant_id, registry.EntityFilter(types=["WasteContainer"]), limit=200
        )
        alarmed = {
            a.entity_urn
            for a in alarms.list_alarms(session, tenant_id, alarms.AlarmFilter(), limit=500).items
        }
    quiet = [e.urn for e in found.items if e.location and e.urn not in alarmed]
    assert quiet, "the demo territory has waste containers without alarms"
    return quiet[0]


def raise_by_data(database: Database, tenant_id: int, urn: str) -> None:
    """A rule on this container, then a reading over it, through the real services."""
    with database.session() as session:
        rules.install_rules(
            session,
            tenant_id,
            [
                rules.RuleDraft(
                    "Conteneur plein (parcours)",
                    {"kind": "threshold", "attribute": "fillingLevel", "value": 90},
                    "critical",
                    scope={"entities": [urn]},
                    key=RULE,
                )
            ],
        )
    reading = Reading(urn, "fillingLevel", datetime.now(UTC), 97.0)
    result = telemetry.ingest(database, tenant_id, [reading], source="browser-test")
    assert (result.stored, result.rejected) == (1, 0), result.reasons


def alarm_on(database: Database, tenant_id: int, urn: str) -> str:
    with database.session() as session:
        where = alarms.AlarmFilter(entity_urn=urn, rule_key=RULE)
        found = alarms.list_alarms(session, tenant_id, where)
    assert found.total == 1, "one reading over the threshold raises one alarm"
    return found.items[0].public_id


def resolved_now(database: Database, tenant_id: int) -> float:
    """What the KPI page shows by default (the last 30 days, every commune)."""
    first, last = kpis.period(None, None)
    with database.session() as session:
        rows = kpis.compute(session, kpis.KpiQuery(tenant_id, first, last, None))
    row = next(r for r in rows if r.definition.key == RESOLVED and not r.value.subject)
    return row.value.value or 0.0


def watch_problems(page: Any, problems: list[str]) -> None:
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )


def test_alarm_to_closed_work_order_to_kpi(
    page: Any, chromium: Any, live_demo: LiveDemo, database: Database, tmp_path: Path
) -> None:
    problems: list[str] = []
    watch_problems(page, problems)
    base, tenant_id = live_demo.base_url, live_demo.tenant_id
    resolved_before = resolved_now(database, tenant_id)

    # The operator opens the map: the territory's markers are drawn.
    sign_in(page, base, Role.OPERATOR, "/map")
    # Locator waits, not `wait_for_function`: its polling compiles the predicate in the
    # page, which the page's CSP (no 'unsafe-eval') refuses when the first try fails.
    territory_map = page.locator("#territory-map")
    expect(territory_map).to_have_attribute("data-state", "ready")
    expect(territory_map).to_have_attribute("data-rendered-features", re.compile(r"^[1-9]\d*$"))

    # The alarm console is open when data raises an alarm: it appears without a reload.
    page.goto(f"{base}/alarms")
    expect(page.locator("body")).to_have_attribute("data-live-state", "open")
    page.evaluate("window.__sameDocument = true")
    page.evaluate(
        "() => { window.__alarms = [];"
        " document.addEventListener('territoire:alarm', e => window.__alarms.push(e.detail)); }"
    )
    urn = a_quiet_container(database, tenant_id)
    raise_by_data(database, tenant_id, urn)
    alarm_id = alarm_on(database, tenant_id, urn)
    row = page.locator(f'tr[data-alarm="{alarm_id}"]')
    row.wait_for()
    assert page.evaluate("window.__sameDocument") is True, "swapped in, not reloaded"
    received = page.evaluate("window.__alarms")
    assert {"event": "raised", "id": alarm_id, "entity_urn": urn}.items() <= received[0].items()
    # The polite live region (visually hidden) announces it.
    expect(page.locator("#live-announcer")).to_have_text(
        re.compile("^" + re.escape(fr("New alarm:")))
    )

    # Acknowledge it with the keyboard.
    page.locator(f"#acknowledge-{alarm_id}").focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")
    assert page.url == f"{base}/alarms"
    with database.session() as session:
        assert alarms.get_alarm(session, tenant_id, alarm_id).acknowledged_at is not None

    # Create a work order from the alarm, then dispatch it to the field agent.
    row = page.locator(f'tr[data-alarm="{alarm_id}"]')
    row.locator(f'a[href="/alarms/{alarm_id}"]').click()
    page.get_by_role("button", name=fr("Create the work order")).click()
    page.wait_for_url(f"{base}/work-orders/**")
    order_id = page.url.rsplit("/", 1)[1]
    agent_name = next(name for role, _, name in DEMO_USERS if role is Role.FIELD_AGENT)
    page.get_by_label(fr("Agent")).select_option(label=agent_name)
    page.get_by_role("button", name=fr("Dispatch")).click()
    page.wait_for_url(f"{base}/work-orders/{order_id}")

    # The field agent, on a phone, starts the job and closes it with a report and a photo.
    phone = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="fr-FR")
    try:
        field = phone.new_page()
        watch_problems(field, problems)
        sign_in(field, base, Role.FIELD_AGENT, "/field")
        card = field.locator(f'[aria-labelledby="wo-{order_id}"].ops-field-order')
        card.get_by_role("button", name=fr("Start")).click()
        field.wait_for_url(f"{base}/field")
        card.locator("summary").click()
        card.get_by_label(fr("What was done")).fill("Conteneur vidé, capteur vérifié.")
        card.get_by_label(fr("Time spent (minutes)")).fill("25")
        photo = tmp_path / "constat.png"
        photo.write_bytes(tiny_png())
        card.locator('input[type="file"]').set_input_files(str(photo))
        card.get_by_role("button", name=fr("Save and mark done")).click()
        field.wait_for_url(f"{base}/field")
        assert field.locator(f'[aria-labelledby="wo-{order_id}"].ops-field-order').count() == 0
    finally:
        phone.close()
    with database.session() as session:
        order = interventions.get_work_order(session, tenant_id, order_id)
        assert order.status.value == "done"
        assert len(interventions.photos_of(session, order)) == 1
        assert len(interventions.reports_of(session, order)) == 1

    # The KPI page shows one more work order resolved.
    resolved_after = resolved_now(database, tenant_id)
    assert resolved_after == resolved_before + 1
    page.goto(f"{base}/kpis")
    shown = page.locator(f'tr[data-kpi="{RESOLVED}"][data-subject=""] td.number').first
    assert shown.inner_text() == translator("fr").format_number(int(resolved_after))

    # Its trend is charted (uPlot) with the figures in a table, and the page prints bare.
    charts = page.locator(".kpi-chart")
    expect(page.locator(".kpi-chart:not([data-state='ready'])")).to_have_count(0)
    assert charts.count() > 0 and page.locator(".kpi-chart canvas").count() >= charts.count()
    page.emulate_media(media="print")
    assert not page.locator(".site-header").is_visible()
    assert not page.locator("form.filters").is_visible()
    assert page.locator(".kpi-chart canvas").first.is_visible()
    page.emulate_media(media="screen")
    assert problems == []
