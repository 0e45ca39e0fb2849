"""The rules admin page: list in the page's language, add, edit, archive, refusals."""

from __future__ import annotations

from sqlalchemy import func, select

from territoire.rules.models import Rule, RuleVersion
from territoire.tenancy.models import Role
from tests.conftest import World


def _count(world: World, table: object) -> int:
    with world.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)  # type: ignore[arg-type]


def test_an_operator_adds_edits_and_archives_a_rule_from_the_page(world: World) -> None:
    tenant = world.tenant("ville-a")
    browser = world.browser(world.account(tenant, Role.OPERATOR)).client
    page = browser.get("/rules", headers={"Accept": "text/html"})
    assert page.status_code == 200 and "Règles de détection" in page.text
    assert "Ajouter une règle" in page.text
    created = browser.post(
        "/rules",
        data={"name": "Fuites", "kind": "night_flow", "severity": "major",
              "parameters": '{"margin": 0.2}', "entity_types": ""},
        follow_redirects=False,
    )  # fmt: skip
    assert created.status_code == 303, created.text
    detail = browser.get(created.headers["location"])
    assert "Fuite : chaque nuit" in detail.text and "20 %" in detail.text
    assert "Leak: each night" in browser.get(created.headers["location"] + "?lang=en").text
    edited = browser.post(
        created.headers["location"],
        data={"severity": "minor", "parameters": '{"margin": 0.3}', "enabled": "on", "version": 1},
        follow_redirects=False,
    )
    assert edited.status_code == 303
    detail = browser.get(created.headers["location"]).text
    assert "v2" in detail and "30 %" in detail and "20 %" in detail, "both versions are shown"
    archived = browser.post(created.headers["location"] + "/archive", follow_redirects=False)
    assert archived.status_code == 303
    listing = browser.get("/rules?lang=fr").text
    assert "Règles archivées" in listing


def test_a_bad_definition_is_shown_with_its_reason_and_nothing_is_stored(world: World) -> None:
    tenant = world.tenant("ville-a")
    browser = world.browser(world.account(tenant, Role.OPERATOR)).client
    for parameters, reason in (
        ("{not json", "not valid JSON"),
        ('{"samples": -3}', "greater than or equal to 1"),
    ):
        refused = browser.post(
            "/rules", data={"name": "x", "kind": "lamp_out", "parameters": parameters}
        )
        assert refused.status_code == 422
        assert "n'a pas été enregistrée" in refused.text and reason in refused.text
        assert parameters.replace('"', "&#34;") in refused.text, "the form keeps what was typed"
    assert _count(world, Rule) == 0 and _count(world, RuleVersion) == 0


def test_a_viewer_reads_the_rules_but_cannot_change_them(world: World) -> None:
    tenant = world.tenant("ville-a")
    world.api(tenant, Role.ADMIN).post(
        "/api/v1/rules", json={"name": "Armoires", "definition": {"kind": "cabinet_fault"}}
    )
    viewer = world.browser(world.account(tenant, Role.VIEWER)).client
    page = viewer.get("/rules")
    assert page.status_code == 200 and "Armoires" in page.text
    assert "Ajouter une règle" not in page.text
    refused = viewer.post("/rules", data={"name": "x", "kind": "silence", "parameters": "{}"})
    assert refused.status_code == 403
    assert _count(world, Rule) == 1


def test_a_bad_edit_or_a_stale_one_is_refused_in_the_page_and_changes_nothing(
    world: World,
) -> None:
    tenant = world.tenant("ville-a")
    browser = world.browser(world.account(tenant, Role.OPERATOR)).client
    created = browser.post(
        "/rules",
        data={"name": "Lampes", "kind": "lamp_out", "severity": "major", "parameters": "{}"},
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    location = created.headers["location"]
    bad = browser.post(
        location, data={"severity": "minor", "parameters": '{"samples": 0}', "version": 1}
    )
    assert bad.status_code == 422
    assert "greater than or equal to 1" in bad.text and "&#34;samples&#34;: 0" in bad.text
    edited = browser.post(
        location,
        data={"severity": "minor", "parameters": '{"samples": 6}', "enabled": "on", "version": 1},
        follow_redirects=False,
    )
    assert edited.status_code == 303
    stale = browser.post(
        location,
        data={"severity": "critical", "parameters": '{"samples": 9}', "enabled": "on",
              "version": 1},
    )  # fmt: skip
    assert stale.status_code == 409, "version 1 is no longer the current one"
    assert _count(world, RuleVersion) == 2, "the bad and the stale edits stored nothing"
    with world.database.session() as session:
        (stored,) = session.scalars(select(Rule)).all()
        assert stored.severity.value == "minor" and stored.parameters["samples"] == 6
