"""The alarms API: console actions, permissions, tenant isolation and bad input."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from territoire.tenancy.models import Role
from tests.conftest import World
from tests.interventions.helpers import BIN, CABINET, LAMPS, territory

LAMP_OUT = {
    "rule_key": "lamp_out",
    "entity_urn": LAMPS[0],
    "severity": "critical",
    "message": "Lampe éteinte",
    "value": 3.5,
}


def raise_one(api: TestClient, **changes: Any) -> dict[str, Any]:
    response = api.post("/api/v1/alarms", json={**LAMP_OUT, **changes})
    assert response.status_code in (200, 201), response.text
    body: dict[str, Any] = response.json()
    return body


def test_console_flow_over_the_api(world: World) -> None:
    place = territory(world, "ville-a", "agent")
    operator = world.browser(place.operator).client
    created = operator.post("/api/v1/alarms", json=LAMP_OUT)
    assert created.status_code == 201, created.text
    alarm = created.json()
    assert (alarm["status"], alarm["occurrences"], alarm["commune"]) == (
        "active_unacknowledged",
        1,
        "21001",
    )
    repeat = operator.post("/api/v1/alarms", json={**LAMP_OUT, "severity": "major"})
    assert repeat.status_code == 200
    assert repeat.json()["id"] == alarm["id"] and repeat.json()["occurrences"] == 2
    url = f"/api/v1/alarms/{alarm['id']}"

    acknowledged = operator.post(url + "/acknowledge", json={"note": "pris en compte"})
    assert acknowledged.status_code == 200
    assert acknowledged.json()["acknowledged_by"]["email"] == place.operator.email
    again = operator.post(url + "/acknowledge")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "conflict"

    comment = operator.post(url + "/comments", json={"text": "Équipe prévenue"})
    assert comment.status_code == 201 and comment.json()["kind"] == "comment"
    assigned = operator.post(url + "/assign", json={"assignee": place.agent.email})
    assert assigned.json()["assignee"]["email"] == place.agent.email

    order = operator.post(url + "/work-orders", json={"title": "Changer la lampe"})
    assert order.status_code == 201, order.text
    assert order.json()["priority"] == "high", "the latest severity (major) sets the priority"
    assert order.json()["source_kind"] == "alarm" and order.json()["source_ref"] == alarm["id"]
    assert operator.post(url + "/work-orders", json={}).status_code == 409

    cleared = operator.post(url + "/clear", json={"note": "réparé"})
    assert cleared.json()["status"] == "cleared"
    closed = operator.post(url + "/close")
    assert closed.json()["status"] == "closed"
    detail = operator.get(url).json()
    assert [event["kind"] for event in detail["history"]] == [
        "raised",
        "severity_changed",
        "acknowledged",
        "comment",
        "assigned",
        "work_order_created",
        "cleared",
        "closed",
    ]
    assert detail["work_order_id"] == order.json()["id"]


def test_list_filters_and_grouping(world: World) -> None:
    place = territory(world, "ville-a")
    api = world.api(place.tenant, Role.OPERATOR)
    cabinet = raise_one(api, entity_urn=CABINET, rule_key="cabinet_fault")
    for lamp in LAMPS[:3]:
        raise_one(api, entity_urn=lamp, severity="major", group_key=CABINET)
    raise_one(api, entity_urn=BIN, rule_key="overflow", severity="minor")

    def ids(**params: Any) -> list[str]:
        response = api.get("/api/v1/alarms", params=params)
        assert response.status_code == 200, response.text
        return [item["entity_urn"] for item in response.json()["items"]]

    assert ids(top_level=True) == [CABINET, BIN]
    assert sorted(ids(parent=cabinet["id"])) == sorted(LAMPS[:3])
    assert ids(severity="minor") == [BIN]
    assert ids(commune="21002") == [BIN]
    assert len(ids(status="active")) == 5
    assert ids(status="cleared") == []
    listed = api.get("/api/v1/alarms", params={"top_level": True}).json()
    assert listed["items"][0]["children"] == 3
    page = api.get("/api/v1/alarms", params={"limit": 2}).json()
    assert (page["total"], page["next_offset"]) == (5, 2)


def test_viewers_read_but_do_not_act(world: World) -> None:
    place = territory(world, "ville-a")
    alarm = raise_one(world.api(place.tenant, Role.OPERATOR))
    viewer = world.api(place.tenant, Role.VIEWER)
    assert viewer.get(f"/api/v1/alarms/{alarm['id']}").status_code == 200
    for action in ("acknowledge", "clear", "close"):
        assert viewer.post(f"/api/v1/alarms/{alarm['id']}/{action}").status_code == 403
    assert viewer.post("/api/v1/alarms", json=LAMP_OUT).status_code == 403
    agent = world.api(place.tenant, Role.FIELD_AGENT)
    assert agent.post(f"/api/v1/alarms/{alarm['id']}/acknowledge").status_code == 403
    assert TestClient(world.app).get("/api/v1/alarms").status_code == 401  # type: ignore[arg-type]
    after = viewer.get(f"/api/v1/alarms/{alarm['id']}").json()
    assert after["status"] == "active_unacknowledged"


def test_another_tenant_gets_404_on_every_route(world: World) -> None:
    place_a = territory(world, "ville-a")
    place_b = territory(world, "ville-b")
    alarm = raise_one(world.api(place_a.tenant, Role.OPERATOR))
    intruder = world.api(place_b.tenant, Role.ADMIN)
    url = f"/api/v1/alarms/{alarm['id']}"
    assert intruder.get(url).status_code == 404
    for action, body in [
        ("acknowledge", None),
        ("clear", None),
        ("close", None),
        ("comments", {"text": "coucou"}),
        ("assign", {"assignee": None}),
        ("work-orders", {}),
    ]:
        response = intruder.post(f"{url}/{action}", json=body)
        assert response.status_code == 404, (action, response.text)
    assert intruder.get("/api/v1/alarms", params={"parent": alarm["id"]}).status_code == 404
    assert intruder.get("/api/v1/alarms").json()["total"] == 0
    same_urn = intruder.post("/api/v1/alarms", json=LAMP_OUT)
    assert same_urn.status_code == 201, "tenant B has its own lamp l1"
    assert same_urn.json()["id"] != alarm["id"]


def test_bad_input_is_a_422_naming_the_field(world: World) -> None:
    place = territory(world, "ville-a")
    api = world.api(place.tenant, Role.OPERATOR)
    cases: list[tuple[dict[str, Any], str]] = [
        ({"entity_urn": "urn:ngsi-ld:Streetlight:ghost"}, "entity_urn"),
        ({"severity": "apocalyptic"}, "severity"),
        ({"observed_at": "2026-01-01T10:00:00"}, "observed_at"),
        ({"rule_key": "a b"}, "rule_key"),
        ({"group_key": "nope"}, "group_key"),
        ({"extra": 1}, "extra"),
    ]
    for changes, field in cases:
        response = api.post("/api/v1/alarms", json={**LAMP_OUT, **changes})
        assert response.status_code == 422, (changes, response.text)
        problems = response.json()["error"]["problems"]
        assert any(field in problem["field"] for problem in problems), (field, problems)
    assert api.get("/api/v1/alarms").json()["total"] == 0
    alarm = raise_one(api)
    url = f"/api/v1/alarms/{alarm['id']}"
    assert api.post(url + "/comments", json={"text": "   "}).status_code == 422
    assert api.post(url + "/assign", json={"assignee": "nobody@example.test"}).status_code == 422
    assert api.get("/api/v1/alarms", params={"status": "sleeping"}).status_code == 422
    assert api.get("/api/v1/alarms", params={"commune": "99999"}).status_code == 422
    assert api.get(f"/api/v1/alarms/{alarm['id']}").json()["history"][-1]["kind"] == "raised"
