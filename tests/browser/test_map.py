"""The territory map in a real browser: clusters counted by the server, a search that
zooms to an asset, and a click on its marker opening the side panel with a drawn chart.

Expected figures are read from the registry and from what the test ingests."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from playwright.sync_api import expect

from territoire.alarms import service as alarms
from territoire.alarms.models import Severity
from territoire.db import Database
from territoire.db.base import utcnow
from territoire.demo.seed import DEMO_USERS, demo_password
from territoire.registry import service as registry
from territoire.telemetry import service as telemetry
from territoire.telemetry.records import Reading
from territoire.tenancy.models import Role
from territoire.web import maplayers
from tests.browser.fixtures import LiveDemo
from tests.browser.live import wait_for_attribute

pytestmark = pytest.mark.browser


def sign_in(page: Any, base_url: str) -> None:
    email = next(email for role, email, _ in DEMO_USERS if role is Role.OPERATOR)
    page.goto(f"{base_url}/login?next=/map")
    page.fill("#email", email)
    page.fill("#password", demo_password(Role.OPERATOR))
    page.click("form.stacked-form button[type=submit]")
    page.wait_for_url(f"{base_url}/map")


def wait_for_map(page: Any, loads: int) -> dict[str, str]:
    element = page.locator("#territory-map")
    wait_for_attribute(element, "data-loads", lambda value: int(value) >= loads)
    expect(element).to_have_attribute("data-state", "ready")
    facts: dict[str, str] = page.eval_on_selector("#territory-map", "el => ({...el.dataset})")
    return facts


def a_lamp_with_history(database: Database, tenant_id: int) -> tuple[str, str]:
    """A street light with two days of readings and a major alarm."""
    with database.session() as session:
        rows = registry.map_rows(
            session, tenant_id, registry.EntityFilter(types=["Streetlight"]), limit=1
        )
        urn, name = rows.urn[0], rows.name[0] or rows.urn[0]
        alarms.raise_alarm(
            session,
            tenant_id,
            alarms.AlarmSignal(
                rule_key="browser.lamp",
                entity_urn=urn,
                severity=Severity.MAJOR,
                message="Lampe éteinte",
                observed_at=utcnow() - timedelta(minutes=5),
            ),
        )
    now = utcnow()
    readings = [
        Reading(urn, "powerConsumption", now - timedelta(minutes=20 * k), 50.0 + k % 7)
        for k in range(1, 144)
    ]
    assert telemetry.ingest(database, tenant_id, readings).accepted == len(readings)
    return urn, name


def test_map_clusters_search_and_entity_panel(
    page: Any, live_demo: LiveDemo, database: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    # Few points allowed: the whole small demo must come as clusters.
    monkeypatch.setattr(maplayers, "MAX_POINTS", 50)
    base, tenant_id = live_demo.base_url, live_demo.tenant_id
    urn, name = a_lamp_with_history(database, tenant_id)
    sign_in(page, base)

    facts = wait_for_map(page, 1)
    assert facts["mode"] == "cells"
    counts = page.locator("#territory-map .cluster-count").evaluate_all(
        "nodes => nodes.map(n => Number(n.textContent.replace(/\\D/g, '')))"
    )
    assert counts and sum(counts) == int(facts["renderedFeatures"]) > 50
    assert page.locator("#territory-map .cluster-alarm").count() >= 1  # the lamp's alarm

    # Search by name: the map zooms onto the lamp and its panel opens.
    page.get_by_label("Trouver un équipement ou une adresse").fill(name)
    page.get_by_role("button", name="Rechercher").click()
    page.locator("#map-search-results button", has_text=name).first.click()
    panel = page.locator("#entity-panel")
    panel.get_by_role("heading", name=name).wait_for()
    facts = wait_for_map(page, int(facts["loads"]) + 1)
    assert facts["mode"] == "points"
    page.get_by_role("button", name="Fermer le panneau").click()
    assert panel.is_hidden()
    page.wait_for_selector("#territory-map[data-state=ready]")

    # Click the lamp's marker on the canvas: the panel shows its alarm and a drawn chart.
    x, y = page.eval_on_selector(
        "#territory-map",
        """(el) => {
            const box = el.getBoundingClientRect();
            return [box.x + box.width / 2, box.y + box.height / 2];
        }""",
    )
    page.mouse.click(x, y)
    panel.get_by_role("heading", name=name).wait_for()
    assert panel.locator(".entity-panel-body").get_attribute("data-entity") == urn
    assert (
        panel.get_by_role("link", name="Lampe éteinte").get_attribute("href").startswith("/alarms/")
    )
    charts = panel.locator(".entity-charts")
    expect(charts).to_have_attribute("data-state", "ready")
    assert charts.get_attribute("data-charts") == "1"
    assert panel.locator(".chart-canvas canvas").count() == 1
    assert "moyenne" in panel.locator(".chart-summary").inner_text()
    # A month: daily buckets, the chart redrawn.
    panel.get_by_label("Mois").check()
    expect(charts).to_have_attribute("data-period", "month")
    assert panel.locator(".chart-canvas canvas").count() == 1

    # Live updates announce an alarm change: the map re-reads its view (once per burst).
    loads = int(wait_for_map(page, 1)["loads"])
    page.evaluate(
        """() => { for (let i = 0; i < 3; i++) {
            document.dispatchEvent(new CustomEvent("territoire:alarm", {detail: {}}));
        } }"""
    )
    assert int(wait_for_map(page, loads + 1)["loads"]) == loads + 1
    page.wait_for_timeout(1500)
    assert int(wait_for_map(page, 1)["loads"]) == loads + 1
    assert problems == []
