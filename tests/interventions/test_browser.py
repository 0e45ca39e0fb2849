"""In a real browser: an operator handles a cabinet fault from the console with the
keyboard and dispatches it; the field agent, on a phone, starts the job, writes the
report with a photo and marks it done."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from territoire.alarms import service as alarms
from territoire.alarms.models import AlarmStatus
from territoire.db import Database
from territoire.demo.seed import DEMO_USERS, demo_password
from territoire.interventions import service
from territoire.interventions.demo import seed_operations
from territoire.interventions.models import WorkOrderStatus
from territoire.tenancy.models import Role
from tests.browser.fixtures import LiveDemo

pytestmark = pytest.mark.browser
JPEG = b"\xff\xd8\xff\xe0" + b"\x20" * 512


def credentials(role: Role) -> tuple[str, str]:
    email = next(email for member, email, _ in DEMO_USERS if member is role)
    return email, demo_password(role)


def sign_in(browser_page: Any, base_url: str, role: Role, target: str) -> None:
    email, password = credentials(role)
    browser_page.goto(f"{base_url}{target}")
    browser_page.get_by_label("Adresse électronique").fill(email)
    browser_page.get_by_label("Mot de passe").fill(password)
    browser_page.get_by_role("button", name="Se connecter").click()
    browser_page.wait_for_url(f"{base_url}{target}")


@pytest.fixture
def phone(chromium: Any) -> Iterator[Any]:
    context = chromium.new_context(
        viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True, locale="fr-FR"
    )
    browser_page = context.new_page()
    browser_page.set_default_timeout(15_000)
    yield browser_page
    context.close()


def test_from_the_console_to_the_field(
    page: Any,
    phone: Any,
    live_demo: LiveDemo,
    database: Database,
) -> None:
    with database.session() as session:
        seed_operations(session, live_demo.tenant_id)
        cabinet = alarms.list_alarms(
            session,
            live_demo.tenant_id,
            alarms.AlarmFilter(rule_key="cabinet_fault"),
        ).items[0]
        cabinet_id, message = cabinet.public_id, cabinet.message
    base = live_demo.base_url
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda note: problems.append(note.text) if "Content Security Policy" in note.text else None,
    )

    sign_in(page, base, Role.OPERATOR, "/alarms")
    row = page.locator(f'tr[data-alarm="{cabinet_id}"]')
    assert "Critique" in row.inner_text()
    acknowledge = row.get_by_role("button", name=re.compile(f"^Acquitter.*{re.escape(message)}"))
    acknowledge.focus()
    with page.expect_navigation():
        page.keyboard.press("Enter")  # keyboard only
    assert "Active, acquittée" in page.locator(f'tr[data-alarm="{cabinet_id}"]').inner_text()

    page.locator(f'tr[data-alarm="{cabinet_id}"] th a').click()
    page.wait_for_url(f"{base}/alarms/{cabinet_id}")
    assert page.locator(".ops-list li").count() >= 1, "the lamps of the cabinet are grouped"
    page.get_by_label("Équipe").select_option(label="Équipe polyvalente")
    page.get_by_role("button", name="Créer le bon d'intervention").click()
    page.wait_for_url(f"{base}/work-orders/**")
    order_id = page.url.rsplit("/", 1)[1]
    assert page.locator('dd[data-status="assigned"]').count() == 1
    assert problems == []

    sign_in(phone, base, Role.FIELD_AGENT, "/field")
    card = phone.locator(f'[data-work-order="{order_id}"]')
    assert card.is_visible()
    width = phone.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "the field page fits a phone without sideways scrolling"
    section = phone.locator(".ops-field-order", has=card)
    with phone.expect_navigation():
        section.get_by_role("button", name="Démarrer").click()
    card = phone.locator(f'[data-work-order="{order_id}"]')
    section = phone.locator(".ops-field-order", has=card)
    section.get_by_text("Compte rendu d’intervention").click()
    section.get_by_label("Ce qui a été fait").fill("Disjoncteur réarmé, armoire vérifiée")
    section.get_by_label("Temps passé (minutes)").fill("40")
    section.get_by_label("Photo (JPEG, PNG ou WebP, 4 Mo au plus)").set_input_files(
        {"name": "armoire.jpg", "mimeType": "image/jpeg", "buffer": JPEG}
    )
    with phone.expect_navigation():
        section.get_by_role("button", name="Enregistrer et marquer terminé").click()
    assert phone.url == f"{base}/field"
    assert phone.locator(f'[data-work-order="{order_id}"]').count() == 0

    with database.session() as session:
        order = service.get_work_order(session, live_demo.tenant_id, order_id)
        assert order.status is WorkOrderStatus.DONE
        assert [r.minutes_spent for r in service.reports_of(session, order)] == [40]
        assert len(service.photos_of(session, order)) == 1
        stored = alarms.get_alarm(session, live_demo.tenant_id, cabinet_id)
        assert stored.status is AlarmStatus.ACKNOWLEDGED
