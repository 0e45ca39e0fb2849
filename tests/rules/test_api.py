"""/api/v1/rules: define, version, archive; bad definitions refused with their reasons."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import func, select

from territoire.rules.definitions import KINDS
from territoire.rules.models import Rule, RuleVersion
from territoire.tenancy.models import Role
from tests.conftest import World
from tests.rules.helpers import entity

LAMP_OUT = {"name": "Lampes éteintes", "severity": "major", "definition": {"kind": "lamp_out"}}


def _count(world: World, table: Any) -> int:
    with world.database.session() as session:
        return int(session.scalar(select(func.count()).select_from(table)) or 0)


def test_an_operator_defines_a_rule_with_its_descriptions(world: World) -> None:
    tenant = world.tenant("ville-a")
    client = world.api(tenant, Role.OPERATOR)
    response = client.post("/api/v1/rules", json={**LAMP_OUT, "key": "lamp-out"})
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["key"], body["kind"], body["version"], body["enabled"]) == (
        "lamp-out", "lamp_out", 1, True,
    )  # fmt: skip
    assert body["definition"]["samples"] == 12, "defaults are stored explicitly"
    assert "commande allumé" in body["description"]["fr"]
    assert "commands on" in body["description"]["en"]
    listed = world.api(tenant, Role.VIEWER).get("/api/v1/rules").json()
    assert [r["id"] for r in listed] == [body["id"]]


def test_a_key_is_made_from_the_name_and_must_be_unique(world: World) -> None:
    client = world.api(world.tenant("ville-a"), Role.ADMIN)
    first = client.post("/api/v1/rules", json=LAMP_OUT).json()
    second = client.post("/api/v1/rules", json=LAMP_OUT).json()
    assert (first["key"], second["key"]) == ("lampes-eteintes", "lampes-eteintes-2")
    again = client.post("/api/v1/rules", json={**LAMP_OUT, "key": "lampes-eteintes"})
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("body", "field", "reason"),
    [
        ({"definition": {"kind": "lamp_flicker"}}, "definition.kind", "unknown kind"),
        ({"definition": {"kind": "lamp_out", "samples": 0}}, "definition.samples", "greater"),
        (
            {"definition": {"kind": "lamp_out", "colour": "red"}},
            "definition.colour",
            "not permitted",
        ),
        (
            {"definition": {"kind": "threshold", "attribute": "t", "value": 5, "clear_value": 9}},
            "definition",
            "clear_value must be at or below value",
        ),
        ({"definition": {"kind": "threshold", "value": 5}}, "definition.attribute", "required"),
        (
            {"definition": {"kind": "night_flow", "window_start": "25:00"}},
            "definition",
            "HH:MM",
        ),
        ({"severity": "apocalyptic"}, "severity", "one of"),
        ({"scope": {"entity_types": ["Unicorn"]}}, "scope.entity_types", "unknown entity type"),
        (
            {"scope": {"entities": ["urn:ngsi-ld:Streetlight:nowhere"]}},
            "scope.entities",
            "no entity",
        ),
        ({"scope": {"commune": "99999"}}, "scope.commune", "no commune"),
        ({"name": "   "}, "name", "1 to 200"),
    ],
)
def test_bad_definitions_are_refused_with_a_reason_and_store_nothing(
    world: World, body: dict[str, Any], field: str, reason: str
) -> None:
    client = world.api(world.tenant("ville-a"), Role.OPERATOR)
    response = client.post("/api/v1/rules", json={**LAMP_OUT, **body})
    assert response.status_code == 422, response.text
    problems = response.json()["error"]["problems"]
    assert any(p["field"] == field and reason in p["reason"] for p in problems), problems
    assert _count(world, Rule) == 0 and _count(world, RuleVersion) == 0


def test_every_problem_is_reported_at_once(world: World) -> None:
    client = world.api(world.tenant("ville-a"), Role.OPERATOR)
    response = client.post(
        "/api/v1/rules",
        json={"name": "x", "severity": "loud", "definition": {"kind": "burst", "readings": -1}},
    )
    fields = {p["field"] for p in response.json()["error"]["problems"]}
    assert fields == {"severity", "definition.readings"}


def test_editing_makes_a_new_version_and_keeps_the_old_ones(world: World) -> None:
    tenant = world.tenant("ville-a")
    client = world.api(tenant, Role.OPERATOR)
    created = client.post("/api/v1/rules", json=LAMP_OUT).json()
    url = f"/api/v1/rules/{created['id']}"
    edited = client.patch(
        url, json={"definition": {"kind": "lamp_out", "samples": 8}, "version": 1}
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["version"] == 2 and "8 relevés" in edited.json()["description"]["fr"]
    stale = client.patch(url, json={"severity": "minor", "version": 1})
    assert stale.status_code == 409, "version 1 is no longer current"
    other_kind = client.patch(url, json={"definition": {"kind": "day_burner"}})
    assert other_kind.status_code == 422
    unchanged = client.patch(url, json={"severity": "major"})
    assert unchanged.json()["version"] == 2, "no change, no version"
    versions = client.get(f"{url}/versions").json()
    assert [(v["version"], v["definition"]["samples"]) for v in versions] == [(2, 8), (1, 12)]
    assert "12 relevés" in versions[1]["description"]["fr"]


def test_archiving_keeps_the_history_and_stops_the_rule(world: World) -> None:
    tenant = world.tenant("ville-a")
    client = world.api(tenant, Role.OPERATOR)
    created = client.post("/api/v1/rules", json=LAMP_OUT).json()
    url = f"/api/v1/rules/{created['id']}"
    archived = client.delete(url).json()
    assert archived["archived_at"] is not None and archived["enabled"] is False
    assert client.get("/api/v1/rules").json() == []
    assert len(client.get("/api/v1/rules?include_archived=true").json()) == 1
    assert client.patch(url, json={"enabled": True}).status_code == 409
    assert len(client.get(f"{url}/versions").json()) == 2


def test_roles_and_tenants(world: World) -> None:
    mine, theirs = world.tenant("ville-a"), world.tenant("ville-b")
    created = world.api(mine, Role.ADMIN).post("/api/v1/rules", json=LAMP_OUT).json()
    viewer = world.api(mine, Role.VIEWER)
    assert viewer.post("/api/v1/rules", json=LAMP_OUT).status_code == 403
    assert viewer.patch(f"/api/v1/rules/{created['id']}", json={}).status_code == 403
    assert (
        world.api(mine, Role.FIELD_AGENT).delete(f"/api/v1/rules/{created['id']}").status_code
        == 403
    )
    stranger = world.api(theirs, Role.ADMIN)
    assert stranger.get(f"/api/v1/rules/{created['id']}").status_code == 404
    assert stranger.get("/api/v1/rules").json() == []


def test_kinds_describe_and_defaults(world: World) -> None:
    tenant = world.tenant("ville-a")
    entity(world.database, tenant.id, "urn:ngsi-ld:WeatherObserved:meteo")
    client = world.api(tenant, Role.OPERATOR)
    kinds = client.get("/api/v1/rules/kinds").json()
    assert [k["kind"] for k in kinds] == list(KINDS)
    lamp_out = next(k for k in kinds if k["kind"] == "lamp_out")
    assert lamp_out["default_entity_types"] == ["Streetlight"]
    assert "samples" in lamp_out["parameters"]["properties"]
    described = client.post(
        "/api/v1/rules/describe", json={"definition": {"kind": "silence", "minutes": 90}}
    ).json()
    assert "1 h 30" not in described["fr"] and "90 min" in described["fr"]
    installed = client.post("/api/v1/rules/defaults")
    assert installed.status_code == 201
    keys = {r["key"] for r in installed.json()["created"]}
    assert {"lamp-out", "cabinet-fault", "water-leak", "building-gas-drift"} <= keys
    again = client.post("/api/v1/rules/defaults").json()
    assert again["created"] == [], "installing twice changes nothing"
