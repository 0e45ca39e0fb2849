"""axe-core on every main page: no serious or critical WCAG 2.1 A/AA violation.

Pages are reached as their users reach them (operator on a desktop, field agent on a
phone, citizens and sign-in anonymously); ids come from the lists, never written here.
"""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import expect

from territoire.demo.seed import DEMO_SLUG
from territoire.tenancy.models import Role
from tests.browser.axe import describe, violations
from tests.browser.fixtures import LiveDemo
from tests.browser.test_operations_journey import PHONE, sign_in

pytestmark = pytest.mark.browser


def first_link(page: Any, selector: str) -> str:
    href = page.locator(selector).first.get_attribute("href")
    assert href, f"no link matches {selector} on {page.url}"
    return str(href)


def check(page: Any, found: dict[str, list[dict[str, Any]]], name: str, url: str) -> None:
    page.goto(url)
    page.wait_for_load_state("load")
    found[name] = violations(page)


def wait_for_map(page: Any, selector: str) -> None:
    expect(page.locator(selector)).to_have_attribute("data-state", "ready")


def test_operator_pages_have_no_serious_violation(page: Any, live_demo: LiveDemo) -> None:
    base = live_demo.base_url
    found: dict[str, list[dict[str, Any]]] = {}
    check(page, found, "login", f"{base}/login")
    sign_in(page, base, Role.OPERATOR, "/")
    found["home"] = violations(page)
    check(page, found, "entities", f"{base}/entities")
    check(page, found, "alarms", f"{base}/alarms")
    check(page, found, "alarm", base + first_link(page, "tr[data-alarm] th a"))
    check(page, found, "work orders", f"{base}/work-orders")
    check(page, found, "work order", base + first_link(page, ".ops-card h3 a"))
    check(page, found, "KPIs", f"{base}/kpis")
    check(page, found, "rules", f"{base}/rules")
    rule_links = page.locator('main a[href^="/rules/"]')
    if rule_links.count():
        check(page, found, "rule", base + str(rule_links.first.get_attribute("href")))
    check(page, found, "office requests", f"{base}/office/requests")
    check(
        page,
        found,
        "office request",
        base + first_link(page, 'main a[href^="/office/requests/"]:not([href$="/new"])'),
    )
    problems = {name: v for name, v in found.items() if v}
    assert not problems, describe(problems)


def test_map_and_entity_pages_have_no_serious_violation(page: Any, live_demo: LiveDemo) -> None:
    base = live_demo.base_url
    found: dict[str, list[dict[str, Any]]] = {}
    sign_in(page, base, Role.OPERATOR, "/map")
    wait_for_map(page, "#territory-map")
    found["map"] = violations(page)
    page.goto(f"{base}/entities")
    check(page, found, "entity", base + first_link(page, ".entity-table tbody th a"))
    problems = {name: v for name, v in found.items() if v}
    assert not problems, describe(problems)


def test_field_and_citizen_pages_have_no_serious_violation(
    chromium: Any, live_demo: LiveDemo
) -> None:
    base = live_demo.base_url
    found: dict[str, list[dict[str, Any]]] = {}
    phone = chromium.new_context(viewport=PHONE, is_mobile=True, has_touch=True, locale="fr-FR")
    try:
        page = phone.new_page()
        sign_in(page, base, Role.FIELD_AGENT, "/field")
        found["field (phone)"] = violations(page)
        citizen = phone.new_page()
        check(citizen, found, "citizen home", f"{base}/c/{DEMO_SLUG}/requests")
        check(citizen, found, "citizen new request", f"{base}/c/{DEMO_SLUG}/requests/new")
    finally:
        phone.close()
    problems = {name: v for name, v in found.items() if v}
    assert not problems, describe(problems)
