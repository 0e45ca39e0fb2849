"""The whole loop in a real browser: a resident reports a dark street on a phone, an agent
turns it into a work order, the work is done, the resident's page says "fixed" and the
e-mail reached a real SMTP server."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import expect

from territoire.config import Settings
from territoire.db import Database
from territoire.demo.seed import DEMO_USERS, demo_password
from territoire.interventions import service as interventions
from territoire.requests import service
from territoire.requests.demo import seed_demo_requests
from territoire.tenancy.models import Role
from tests.browser.fixtures import LiveDemo

from .helpers import Sink, body_of

pytestmark = pytest.mark.browser
# In Clairval, away from the demo's sample requests (no "already reported?" detour).
PHONE_POSITION = {"latitude": 47.062, "longitude": 5.521}


@pytest.fixture
def served(
    sink: Sink, settings: Settings, database: Database, live_demo: LiveDemo
) -> Iterator[LiveDemo]:
    with database.session() as session:
        seed_demo_requests(session, live_demo.tenant_id)
        interventions.create_team(session, live_demo.tenant_id, name="Équipe éclairage")
    yield live_demo


@pytest.fixture
def phone(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="fr-FR",
        geolocation=PHONE_POSITION,
        permissions=["geolocation"],
    )
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


@pytest.fixture
def desk(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 800}, locale="fr-FR")
    page = context.new_page()
    page.set_default_timeout(15_000)
    yield page
    context.close()


def test_a_dark_street_reported_on_a_phone_ends_fixed_with_an_email(
    served: LiveDemo,
    phone: Any,
    desk: Any,
    sink: Sink,
    database: Database,
) -> None:
    base = served.base_url
    # The resident, on a phone, without an account.
    phone.goto(f"{base}/c/demo/requests")
    phone.get_by_role("link", name="Signaler un problème").click()
    phone.get_by_label("Éclairage public").check()
    phone.get_by_label("Le lampadaire est… *").select_option("eteint")
    notice = phone.locator(".category-extra.active .category-notice")
    assert "appelez le 112" in notice.inner_text() and notice.is_visible()
    phone.get_by_role("button", name="Utiliser ma position").click()
    expect(phone.locator("#lat")).not_to_have_value("")
    phone.get_by_label("Description *").fill("La rue est toute noire depuis hier soir.")
    phone.get_by_label("Adresse électronique").fill("riveraine@example.org")
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing wider than the phone's screen
    phone.get_by_role("button", name="Envoyer mon signalement").click()
    phone.wait_for_url("**/c/demo/requests/*?created=1")
    code = phone.locator("#tracking-code").inner_text()
    assert phone.locator("#request-status").get_attribute("data-status") == "open"
    with database.session() as session:
        found = service.get_request(session, served.tenant_id, code)
        assert found.lat == pytest.approx(PHONE_POSITION["latitude"], abs=1e-5)

    # The agent, at the office: signs in, routes it to a work order.
    email = next(e for role, e, _ in DEMO_USERS if role is Role.OPERATOR)
    desk.goto(f"{base}/office/requests/{code}")
    desk.get_by_label("Adresse électronique").fill(email)
    desk.get_by_label("Mot de passe").fill(demo_password(Role.OPERATOR))
    desk.get_by_role("button", name="Se connecter").click()
    desk.wait_for_url(f"**/office/requests/{code}")
    desk.get_by_label("Équipe").select_option(label="Équipe éclairage")
    desk.get_by_role("button", name="Créer le bon d'intervention").click()
    desk.wait_for_selector("#work-order-link")
    assert "Intervention programmée" in desk.locator("#request-status").inner_text()
    work_order_id = desk.locator("#work-order-link").inner_text()

    # The field team does the work (the interventions domain's own lifecycle).
    with database.session() as session:
        interventions.transition(session, served.tenant_id, work_order_id, "start", by_user=None)
    with database.session() as session:
        interventions.transition(session, served.tenant_id, work_order_id, "done", by_user=None)

    # The resident's page now says fixed.
    phone.reload()
    assert phone.locator("#request-status").get_attribute("data-status") == "fixed"
    assert phone.locator("#request-status").inner_text() == "Résolu"

    # And an e-mail reached the SMTP server (sent by the app's background sender).
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not any("Résolu" in body_of(m) for m in sink.messages):
        time.sleep(0.2)
    texts = [body_of(m) for m in sink.messages]
    assert any("Résolu" in text and code in text for text in texts), texts
    assert all(m["To"] == "riveraine@example.org" for m in sink.messages)
