"""Board, work-order page, the field page on a phone, and the indicators page."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from territoire.interventions import service
from territoire.interventions.models import Priority
from territoire.interventions.pages import parse_parts
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import Role
from tests.conftest import World
from tests.interventions.helpers import LAMPS, Territory, at, territory

HTML = {"Accept": "text/html"}
PHONE = {**HTML, "User-Agent": "Mozilla/5.0 (Linux; Android 14; Pixel 8) Mobile"}
JPEG = b"\xff\xd8\xff\xe0" + b"\x10" * 256


def browser(world: World, place: Territory, role: str) -> tuple[TestClient, str]:
    client = world.browser(getattr(place, role)).client
    token = client.headers.pop("X-CSRF-Token")  # pages post it in the form, like a browser
    return client, token


def team_with_agent(world: World, place: Territory) -> str:
    with world.database.session() as session:
        agent = tenancy.find_user_by_email(session, place.agent.email)
        assert agent is not None
        team = service.create_team(session, place.id, name="Éclairage", member_ids=[agent.id])
        return team.public_id


def test_board_shows_columns_and_creates_from_the_form(world: World) -> None:
    place = territory(world, "ville-a", "operator", "agent")
    team_id = team_with_agent(world, place)
    client, token = browser(world, place, "operator")
    board = client.get("/work-orders", headers=HTML)
    assert board.status_code == 200
    for column in ("Nouveau", "Attribué", "En cours", "En attente", "Terminé"):
        assert column in board.text
    created = client.post(
        "/work-orders",
        data={
            "csrf_token": token,
            "title": "Remplacer la lanterne",
            "priority": "high",
            "skill": "lighting",
            "team_id": team_id,
            "entity_urn": LAMPS[1],
        },
        follow_redirects=False,
    )
    assert created.status_code == 303, created.text
    order_url = created.headers["location"]
    board = client.get("/work-orders", headers=HTML).text
    assigned = board.split('data-status="assigned"')[1].split("</section>")[0]
    assert "Remplacer la lanterne" in assigned
    refused = client.post(
        "/work-orders",
        data={
            "csrf_token": token,
            "title": "Sans objet",
            "entity_urn": "urn:ngsi-ld:Streetlight:zz",
        },
        headers=HTML,
    )
    assert refused.status_code == 422 and "alert-error" in refused.text
    assert 'value="Sans objet"' in refused.text, "the form keeps what was typed"
    page = client.get(order_url, headers=HTML)
    assert "Niveaux de service" in page.text and "Prise en charge" in page.text
    assert 'data-clock="acknowledge" data-state="met"' in page.text


def test_work_order_page_actions_follow_role_and_lifecycle(world: World) -> None:
    place = territory(world, "ville-a", "operator", "agent", "viewer")
    team_id = team_with_agent(world, place)
    with world.database.session() as session:
        order = service.create_work_order(
            session,
            place.id,
            service.WorkOrderDraft("Poteau penché", team_id=team_id),
            created_by=None,
        ).public_id
    operator, op_token = browser(world, place, "operator")
    page = operator.get(f"/work-orders/{order}", headers=HTML).text
    assert 'value="start"' in page and 'value="cancel"' in page and 'value="close"' not in page
    viewer, viewer_token = browser(world, place, "viewer")
    assert 'name="action"' not in viewer.get(f"/work-orders/{order}", headers=HTML).text
    refused = viewer.post(
        f"/work-orders/{order}/transition",
        data={"csrf_token": viewer_token, "action": "start"},
        headers=HTML,
    )
    assert refused.status_code == 403
    wrong = operator.post(
        f"/work-orders/{order}/transition",
        data={"csrf_token": op_token, "action": "close"},
        headers=HTML,
    )
    assert wrong.status_code == 409 and "alert-error" in wrong.text
    held = operator.post(
        f"/work-orders/{order}/transition",
        data={"csrf_token": op_token, "action": "start", "note": "sur place"},
        follow_redirects=False,
    )
    assert held.status_code == 303
    operator.post(
        f"/work-orders/{order}/note", data={"csrf_token": op_token, "text": "Nacelle réservée"}
    )
    page = operator.get(f"/work-orders/{order}", headers=HTML).text
    assert "Nacelle réservée" in page and "sur place" in page
    assert 'data-status="in_progress"' in page


def test_field_page_on_a_phone_start_report_with_photo_and_finish(world: World) -> None:
    place = territory(world, "ville-a", "agent", "other_agent")
    team_id = team_with_agent(world, place)
    with world.database.session() as session:
        mine = service.create_work_order(
            session,
            place.id,
            service.WorkOrderDraft("Lampe éteinte", priority=Priority.URGENT, team_id=team_id),
            created_by=None,
            at=at(0),
        ).public_id
        service.create_work_order(
            session, place.id, service.WorkOrderDraft("Pas pour moi"), created_by=None
        )
    agent, token = browser(world, place, "agent")
    page = agent.get("/field", headers=PHONE)
    assert page.status_code == 200
    assert 'name="viewport"' in page.text and "ops-field" in page.text
    assert "Lampe éteinte" in page.text and "Pas pour moi" not in page.text
    assert "Délai dépassé" in page.text, "an urgent order 20 days old is late"
    started = agent.post(
        f"/work-orders/{mine}/transition",
        data={"csrf_token": token, "action": "start", "return_to": "/field"},
        follow_redirects=False,
    )
    assert started.status_code == 303 and started.headers["location"] == "/field"
    bad_photo = agent.post(
        f"/field/{mine}/report",
        data={"csrf_token": token, "text": "Lampe changée", "minutes_spent": "20", "then": "done"},
        files={"photo": ("notes.txt", b"just text", "image/jpeg")},
        headers=PHONE,
    )
    assert bad_photo.status_code == 422 and "JPEG" in bad_photo.text
    done = agent.post(
        f"/field/{mine}/report",
        data={
            "csrf_token": token,
            "text": "Lampe changée",
            "minutes_spent": "20",
            "parts": "1 x lampe LED 40 W\ncollier",
            "then": "done",
        },
        files={"photo": ("lampe.jpg", JPEG, "image/jpeg")},
        follow_redirects=False,
    )
    assert done.status_code == 303, done.text
    api = world.api(place.tenant, Role.VIEWER)
    detail = api.get(f"/api/v1/work-orders/{mine}").json()
    assert detail["status"] == "done"
    assert len(detail["reports"]) == 1, "the refused attempt stored nothing"
    assert detail["reports"][0]["parts"] == [
        {"name": "lampe LED 40 W", "quantity": 1.0},
        {"name": "collier", "quantity": 1},
    ]
    assert len(detail["photos"]) == 1
    assert api.get(detail["photos"][0]["url"]).content == JPEG
    assert "Rien à faire" in agent.get("/field", headers=PHONE).text
    stranger, stranger_token = browser(world, place, "other_agent")
    refused = stranger.post(
        f"/field/{mine}/report",
        data={"csrf_token": stranger_token, "text": "intrus", "minutes_spent": "1"},
        headers=PHONE,
    )
    assert refused.status_code == 403


def test_field_page_is_for_field_roles(world: World) -> None:
    place = territory(world, "ville-a", "viewer")
    viewer, _token = browser(world, place, "viewer")
    assert viewer.get("/field", headers=HTML).status_code == 403
    nav = viewer.get("/work-orders", headers=HTML).text
    assert 'href="/field"' not in nav and 'href="/alarms"' in nav


def test_indicators_page_and_csv_link(world: World) -> None:
    place = territory(world, "ville-a", "viewer")
    viewer, _token = browser(world, place, "viewer")
    page = viewer.get("/kpis", headers=HTML)
    assert page.status_code == 200
    assert "Disponibilité" in page.text and "Délai de résolution respecté" in page.text
    assert 'data-kpi="availability" data-subject="Streetlight"' in page.text
    link = re.search(r'href="(/api/v1/kpis\?[^"]+)"', page.text)
    assert link is not None
    csv_answer = viewer.get(link.group(1).replace("&amp;", "&"))
    assert csv_answer.status_code == 200 and csv_answer.text.startswith("key,label,unit")
    bad = viewer.get("/kpis", params={"from": "2026-05-01", "to": "2026-04-01"}, headers=HTML)
    assert bad.status_code == 422 and "alert-error" in bad.text


def test_parts_are_read_one_per_line() -> None:
    assert parse_parts("2 x boulon M8\n\n  lampe  \n1,5 × câble") == [
        {"name": "boulon M8", "quantity": 2.0},
        {"name": "lampe", "quantity": 1},
        {"name": "câble", "quantity": 1.5},
    ]
