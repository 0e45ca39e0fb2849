"""A person uses the web shell in a real browser: sign in, home, assets, map, English.

The demo territory comes from the simulator and may change size, so every expected
figure is read from the registry, never written here.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import expect

from territoire.db import Database
from territoire.demo.seed import DEMO_USERS, demo_password
from territoire.geo import parse_bbox
from territoire.registry import service as registry
from territoire.registry.types import Domain
from territoire.tenancy.models import Role
from territoire.web import maplayers
from territoire.web.i18n import translator
from tests.browser.fixtures import LiveDemo
from tests.browser.live import wait_for_attribute

pytestmark = pytest.mark.browser


def operator() -> tuple[str, str]:
    email = next(email for role, email, _ in DEMO_USERS if role is Role.OPERATOR)
    return email, demo_password(Role.OPERATOR)


def count(database: Database, tenant_id: int, where: registry.EntityFilter) -> int:
    with database.session() as session:
        return registry.list_entities(session, tenant_id, where, limit=1).total


def expected_on_map(database: Database, tenant_id: int, bbox: str, domains: list[Domain]) -> int:
    """What the map must draw in a box: each layer's entities, up to the per-layer cap."""
    box = parse_bbox(bbox)
    return sum(
        min(
            count(database, tenant_id, registry.EntityFilter(domain=domain, bbox=box)),
            maplayers.MAX_FEATURES_PER_LAYER,
        )
        for domain in domains
    )


def assets_text(total: int) -> str:
    french = translator("fr")
    return french.ngettext(
        "%(num)s asset", "%(num)s assets", total, num=french.format_number(total)
    )


def sign_in(page: Any, base_url: str) -> None:
    """Go to a page, land on the sign-in form, mistype the password once, then sign in."""
    email, password = operator()
    page.goto(f"{base_url}/entities")
    assert page.url.startswith(f"{base_url}/login?next=")
    page.get_by_label("Adresse électronique").fill(email)
    page.get_by_label("Mot de passe").fill("pas-le-bon-mot-de-passe")
    page.get_by_role("button", name="Se connecter").click()
    alert = page.get_by_role("alert")
    assert alert.inner_text() == "Adresse électronique ou mot de passe incorrect."
    assert page.get_by_label("Adresse électronique").input_value() == email
    page.get_by_label("Mot de passe").fill(password)
    page.get_by_role("button", name="Se connecter").click()
    page.wait_for_url(f"{base_url}/entities")


def wait_for_map(page: Any, selector: str, loads: int = 1) -> int:
    element = page.locator(selector)
    wait_for_attribute(element, "data-loads", lambda value: int(value) >= loads)
    expect(element).to_have_attribute("data-state", "ready")
    return int(page.get_attribute(selector, "data-rendered-features"))


def smallest_type(database: Database, tenant_id: int) -> tuple[str, int]:
    with database.session() as session:
        counts = registry.count_by_type(session, tenant_id)
    return min(counts.items(), key=lambda item: (item[1], item[0]))


def test_operator_journey(page: Any, live_demo: LiveDemo, database: Database) -> None:
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text) if "Content Security Policy" in message.text else None
        ),
    )
    base, tenant_id = live_demo.base_url, live_demo.tenant_id
    sign_in(page, base)

    # Home: the tenant and its communes.
    page.get_by_role("link", name="Accueil").click()
    page.wait_for_url(f"{base}/")
    assert page.locator("html").get_attribute("lang") == "fr"
    assert "Val de Lanterne" in page.get_by_role("heading", level=1).inner_text()
    assert page.locator("table.data-table tbody tr").count() == 3

    # Assets: filter by type, then by text, with htmx (no page reload).
    main_nav = page.get_by_role("navigation", name="Navigation principale")
    main_nav.get_by_role("link", name="Équipements").click()
    page.wait_for_url(f"{base}/entities")
    page.evaluate("window.__sameDocument = true")
    entity_type, of_type = smallest_type(database, tenant_id)
    page.get_by_label("Type").select_option(entity_type)
    page.wait_for_url(re.compile(f"type={entity_type}"))
    total = page.locator(".result-count")
    total.filter(has_text=assets_text(of_type)).wait_for()
    first_urn = page.locator(".entity-table tbody code").first.inner_text()
    query = first_urn.rsplit(":", 1)[1]
    matching = count(database, tenant_id, registry.EntityFilter(types=[entity_type], text=query))
    page.get_by_label("Recherche (nom ou identifiant)").fill(query)
    total.filter(has_text=assets_text(matching)).wait_for()
    assert first_urn in page.locator(".entity-table tbody").inner_text()
    assert page.evaluate("window.__sameDocument") is True  # swapped in, not reloaded

    # An asset's page, with its location on a small map.
    page.locator(".entity-table tbody th a").first.click()
    page.wait_for_url(re.compile(r"/entities/urn:ngsi-ld:"))
    assert page.locator("code.urn").inner_text() == first_urn
    assert wait_for_map(page, "#entity-map") > 0

    # Map: the features of the viewport are drawn on a canvas, though no tile loads.
    main_nav.get_by_role("link", name="Carte").click()
    page.wait_for_url(f"{base}/map")
    drawn = wait_for_map(page, "#territory-map")
    bbox = page.get_attribute("#territory-map", "data-bbox")
    checked = [
        Domain(key)
        for key in page.locator("input[name=layer]:checked").evaluate_all(
            "boxes => boxes.map(box => box.value)"
        )
    ]
    assert drawn > 0
    assert drawn == expected_on_map(database, tenant_id, bbox, checked)
    assert page.locator("#territory-map canvas").count() >= 1
    assert (
        page.locator("#map-status").inner_text().startswith(translator("fr").format_number(drawn))
    )
    page.get_by_label("Éclairage public").uncheck()
    after = wait_for_map(page, "#territory-map", loads=2)
    bbox = page.get_attribute("#territory-map", "data-bbox")
    rest = [domain for domain in checked if domain is not Domain.LIGHTING]
    assert after == expected_on_map(database, tenant_id, bbox, rest) < drawn

    # English on request, remembered on the next page.
    page.get_by_role("link", name="English").click()
    page.wait_for_url(re.compile(r"lang=en"))
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.get_by_role("heading", name="Map").count() == 1
    assert page.get_by_label("Street lighting").is_checked()
    page.get_by_role("navigation", name="Main navigation").get_by_role(
        "link", name="Assets"
    ).click()
    assert page.get_by_role("heading", name="Assets", level=1).is_visible()
    assert problems == []
