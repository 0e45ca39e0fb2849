"""The work-order and team API: dispatch, field work with a photo, permissions, tenants."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from territoire.interventions import service
from territoire.interventions.models import Priority
from territoire.tenancy.models import Role
from tests.conftest import World
from tests.interventions.helpers import LAMPS, at, point, territory

PNG = b"\x89PNG\r\n\x1a\n" + b"\x01" * 128


def make_team(admin: TestClient, name: str, members: list[str]) -> dict[str, Any]:
    response = admin.post(
        "/api/v1/teams", json={"name": name, "skills": ["lighting"], "members": members}
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_dispatch_and_field_work_end_to_end(world: World) -> None:
    place = territory(world, "ville-a", "agent", "other_agent")
    admin = world.api(place.tenant, Role.ADMIN)
    team = make_team(admin, "Éclairage nord", [place.agent.email])
    assert [m["email"] for m in team["members"]] == [place.agent.email]
    operator = world.browser(place.operator).client
    created = operator.post(
        "/api/v1/work-orders",
        json={
            "title": "Lampadaire éteint",
            "priority": "urgent",
            "skill": "lighting",
            "team_id": team["id"],
            "entity_urn": LAMPS[0],
        },
    )
    assert created.status_code == 201, created.text
    order = created.json()
    assert (order["status"], order["team"]["name"], order["commune"]) == (
        "assigned",
        "Éclairage nord",
        "21001",
    )
    assert [c["milestone"] for c in order["sla"]["clocks"]] == ["acknowledge", "start", "resolve"]
    assert order["sla"]["clocks"][0]["state"] == "met"
    url = f"/api/v1/work-orders/{order['id']}"

    stranger = world.browser(place.other_agent).client
    assert stranger.post(url + "/transition", json={"action": "start"}).status_code == 403
    agent = world.browser(place.agent).client
    mine = agent.get("/api/v1/work-orders", params={"mine": True}).json()
    assert [item["id"] for item in mine["items"]] == [order["id"]]
    assert (
        agent.post(url + "/transition", json={"action": "start"}).json()["status"] == "in_progress"
    )
    report = agent.post(
        url + "/reports",
        json={"text": "Lampe changée", "minutes_spent": 35, "parts": [{"name": "LED 40 W"}]},
    )
    assert report.status_code == 201, report.text
    photo = agent.post(
        url + "/photos",
        files={"photo": ("lampe.png", PNG, "image/png")},
        data={"report_id": report.json()["id"]},
    )
    assert photo.status_code == 201, photo.text
    assert photo.json()["report_id"] == report.json()["id"]
    fetched = operator.get(photo.json()["url"])
    assert fetched.status_code == 200 and fetched.content == PNG
    assert fetched.headers["content-type"] == "image/png"
    assert agent.post(url + "/transition", json={"action": "done"}).json()["status"] == "done"
    assert agent.post(url + "/transition", json={"action": "close"}).status_code == 403
    closed = operator.post(url + "/transition", json={"action": "close", "note": "vérifié"})
    assert closed.json()["status"] == "closed"
    detail = operator.get(url).json()
    assert [e["action"] for e in detail["history"]] == [
        "create",
        "assign",
        "start",
        "report",
        "done",
        "close",
    ]
    assert detail["reports"][0]["author"]["email"] == place.agent.email
    assert detail["actions"] == ["reopen"]


def test_refused_changes_leave_the_work_order_as_it_was(world: World) -> None:
    place = territory(world, "ville-a")
    operator = world.api(place.tenant, Role.OPERATOR)
    order = operator.post("/api/v1/work-orders", json={"title": "Nid-de-poule"}).json()
    url = f"/api/v1/work-orders/{order['id']}"
    refused = operator.post(url + "/transition", json={"action": "done"})
    assert refused.status_code == 409
    assert "cannot done" in refused.json()["error"]["message"]
    assert operator.post(url + "/transition", json={"action": "fly"}).status_code == 422
    bad = [
        ("/dispatch", {"team_id": "00000000-0000-0000-0000-000000000000"}, "team_id"),
        ("/dispatch", {}, "team_id"),
        ("/dispatch", {"assignee": "ghost@example.test"}, "assignee"),
        ("/reports", {"text": "x", "minutes_spent": -1}, "minutes_spent"),
    ]
    for path, body, field in bad:
        response = operator.post(url + path, json=body)
        assert response.status_code == 422, (path, response.text)
        assert any(field in p["field"] for p in response.json()["error"]["problems"])
    patch = operator.patch(
        url, json={"location": {"type": "LineString", "coordinates": [[5, 47], [5.1, 47]]}}
    )
    assert patch.status_code == 422
    assert operator.post("/api/v1/work-orders", json={"title": ""}).status_code == 422
    assert (
        operator.post("/api/v1/work-orders", json={"title": "x", "priority": "asap"}).status_code
        == 422
    )
    after = operator.get(url).json()
    assert (after["status"], after["location"], after["title"]) == ("new", None, "Nid-de-poule")
    assert [e["action"] for e in after["history"]] == ["create"]
    moved = operator.patch(url, json={"location": point(5.15, 47.05), "priority": "high"})
    assert moved.status_code == 200
    assert (moved.json()["commune"], moved.json()["priority"]) == ("21002", "high")


def test_photos_are_checked_and_tenants_are_isolated(world: World) -> None:
    place_a = territory(world, "ville-a")
    place_b = territory(world, "ville-b")
    operator = world.api(place_a.tenant, Role.OPERATOR)
    team = make_team(world.api(place_a.tenant, Role.ADMIN), "Équipe", [])
    order = operator.post(
        "/api/v1/work-orders", json={"title": "Photo", "team_id": team["id"]}
    ).json()
    url = f"/api/v1/work-orders/{order['id']}"
    operator.post(url + "/transition", json={"action": "start"})
    text_file = operator.post(url + "/photos", files={"photo": ("x.png", b"hello", "image/png")})
    assert text_file.status_code == 422
    assert text_file.json()["error"]["problems"][0]["field"] == "photo"
    photo = operator.post(url + "/photos", files={"photo": ("x.png", PNG, "image/png")}).json()

    intruder = world.api(place_b.tenant, Role.ADMIN)
    assert intruder.get(url).status_code == 404
    assert intruder.get(photo["url"]).status_code == 404
    assert intruder.get(f"/api/v1/teams/{team['id']}").status_code == 404
    assert intruder.patch(f"/api/v1/teams/{team['id']}", json={"name": "x"}).status_code == 404
    assert intruder.delete(f"/api/v1/teams/{team['id']}").status_code == 404
    for path, body in [
        ("/transition", {"action": "hold"}),
        ("/dispatch", {"team_id": team["id"]}),
        ("/notes", {"text": "coucou"}),
        ("/reports", {"text": "x"}),
    ]:
        assert intruder.post(url + path, json=body).status_code == 404, path
    assert (
        intruder.post(url + "/photos", files={"photo": ("x.png", PNG, "image/png")}).status_code
        == 404
    )
    assert intruder.get("/api/v1/work-orders").json()["total"] == 0
    assert operator.get(url).json()["status"] == "in_progress"


def test_viewers_read_only_and_admins_manage_teams(world: World) -> None:
    place = territory(world, "ville-a", "agent")
    viewer = world.api(place.tenant, Role.VIEWER)
    operator = world.api(place.tenant, Role.OPERATOR)
    assert viewer.post("/api/v1/work-orders", json={"title": "x"}).status_code == 403
    assert operator.post("/api/v1/teams", json={"name": "x"}).status_code == 403
    admin = world.api(place.tenant, Role.ADMIN)
    team = make_team(admin, "Espaces verts", [])
    renamed = admin.patch(
        f"/api/v1/teams/{team['id']}", json={"name": "Parcs", "members": [place.agent.email]}
    )
    assert renamed.json()["name"] == "Parcs"
    assert [m["email"] for m in renamed.json()["members"]] == [place.agent.email]
    assert admin.post("/api/v1/teams", json={"name": "Parcs"}).status_code == 409
    assert admin.post("/api/v1/teams", json={"name": "X", "skills": ["magic"]}).status_code == 422
    assert viewer.get("/api/v1/teams").json()[0]["name"] == "Parcs"
    assert admin.delete(f"/api/v1/teams/{team['id']}").status_code == 204
    assert viewer.get("/api/v1/teams").json() == []


def test_service_levels_are_configurable(world: World) -> None:
    place = territory(world, "ville-a")
    reader = world.api(place.tenant, Role.VIEWER)
    levels = {row["priority"]: row for row in reader.get("/api/v1/service-levels").json()}
    assert levels["urgent"] == {
        "priority": "urgent",
        "acknowledge_minutes": 15,
        "start_minutes": 60,
        "resolve_minutes": 240,
    }
    admin = world.api(place.tenant, Role.ADMIN)
    operator = world.api(place.tenant, Role.OPERATOR)
    url = "/api/v1/service-levels"
    body = {
        "priority": "urgent",
        "acknowledge_minutes": 5,
        "start_minutes": 30,
        "resolve_minutes": 120,
    }
    assert operator.put(url, json=body).status_code == 403
    assert admin.put(url, json=body).status_code == 200
    backwards = {**body, "priority": "high", "acknowledge_minutes": 500}
    assert admin.put(url, json=backwards).status_code == 422
    assert admin.put(url, json={**body, "priority": "soon"}).status_code == 422
    zero = {**body, "priority": "low", "acknowledge_minutes": 0}
    assert admin.put(url, json=zero).status_code == 422
    levels = {row["priority"]: row for row in reader.get("/api/v1/service-levels").json()}
    assert levels["urgent"]["resolve_minutes"] == 120
    assert levels["high"]["acknowledge_minutes"] == 60, "the refused change left the default"
    order = admin.post("/api/v1/work-orders", json={"title": "x", "priority": "urgent"}).json()
    assert order["sla"]["clocks"][2]["target_minutes"] == 120


def test_breached_filter(world: World) -> None:
    place = territory(world, "ville-a")
    operator = world.api(place.tenant, Role.OPERATOR)
    with world.database.session() as session:
        late = service.create_work_order(
            session,
            place.id,
            service.WorkOrderDraft(title="urgent", priority=Priority.URGENT),
            created_by=None,
            at=at(0),
        ).public_id
    operator.post("/api/v1/work-orders", json={"title": "récent", "priority": "urgent"})
    breached = operator.get("/api/v1/work-orders", params={"breached": True}).json()
    assert [item["id"] for item in breached["items"]] == [late]
    clocks = breached["items"][0]["sla"]["clocks"]
    assert [clock["state"] for clock in clocks] == ["breached"] * 3
    assert breached["items"][0]["sla"]["breached"] is True
    assert operator.get("/api/v1/work-orders").json()["total"] == 2
