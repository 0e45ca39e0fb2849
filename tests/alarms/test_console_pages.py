"""The alarm console pages: French by default, actions through forms, refusals shown."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from territoire.alarms import service as alarms
from territoire.alarms.models import Severity
from territoire.tenancy.models import Role
from tests.conftest import World
from tests.interventions.helpers import CABINET, LAMPS, Territory, at, territory, user_id

HTML = {"Accept": "text/html"}


def raise_some(world: World, place: Territory) -> list[str]:
    with world.database.session() as session:
        cabinet = alarms.raise_alarm(
            session,
            place.id,
            alarms.AlarmSignal(
                "cabinet_fault", CABINET, Severity.CRITICAL, "Armoire en défaut", at(0)
            ),
        )
        lamp = alarms.raise_alarm(
            session,
            place.id,
            alarms.AlarmSignal(
                "lamp_out", LAMPS[0], Severity.MAJOR, "Lampe éteinte", at(1), None, CABINET
            ),
        )
        return [cabinet.public_id, lamp.public_id]


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found, "the page carries a CSRF token in its forms"
    return found.group(1)


def browser(world: World, place: Territory, role: str = "operator") -> TestClient:
    client = world.browser(getattr(place, role)).client
    client.headers.pop("X-CSRF-Token")  # pages post the token in the form, like a browser
    return client


def test_console_lists_top_level_alarms_in_french(world: World) -> None:
    place = territory(world, "ville-a", "operator")
    cabinet_id, lamp_id = raise_some(world, place)
    client = browser(world, place)
    page = client.get("/alarms", headers=HTML)
    assert page.status_code == 200
    assert '<html lang="fr">' in page.text
    assert "Console des alarmes" in page.text and "Acquitter" in page.text
    assert f'data-alarm="{cabinet_id}"' in page.text
    assert f'data-alarm="{lamp_id}"' not in page.text, "grouped alarms show under their parent"
    assert "regroupe 1 alarme" in page.text
    english = client.get("/alarms?lang=en", headers=HTML)
    assert "Alarm console" in english.text and "Acknowledge" in english.text
    filtered = client.get("/alarms", params={"severity": "minor"}, headers=HTML)
    assert 'data-total="0"' in filtered.text
    bad = client.get("/alarms", params={"status": "asleep"}, headers=HTML)
    assert bad.status_code == 422 and "alert-error" in bad.text


def test_acknowledge_comment_assign_and_dispatch_through_forms(world: World) -> None:
    place = territory(world, "ville-a", "operator", "agent")
    cabinet_id, _lamp_id = raise_some(world, place)
    client = browser(world, place)
    detail = client.get(f"/alarms/{cabinet_id}", headers=HTML)
    token = csrf_of(detail.text)
    assert "Alarmes regroupées" in detail.text

    no_token = client.post(f"/alarms/{cabinet_id}/acknowledge", data={}, headers=HTML)
    assert no_token.status_code == 403
    done = client.post(
        f"/alarms/{cabinet_id}/acknowledge",
        data={"csrf_token": token, "return_to": "/alarms"},
        headers=HTML,
        follow_redirects=False,
    )
    assert done.status_code == 303 and done.headers["location"] == "/alarms"
    twice = client.post(
        f"/alarms/{cabinet_id}/acknowledge", data={"csrf_token": token}, headers=HTML
    )
    assert twice.status_code == 409
    assert "alert-error" in twice.text and "already" in twice.text
    client.post(
        f"/alarms/{cabinet_id}/comment", data={"csrf_token": token, "text": "Électricien appelé"}
    )
    with world.database.session() as session:
        from territoire.tenancy import service as tenancy

        agent = tenancy.find_user_by_email(session, place.agent.email)
        assert agent is not None
        agent_id = agent.id
    client.post(
        f"/alarms/{cabinet_id}/assign", data={"csrf_token": token, "assignee": str(agent_id)}
    )
    created = client.post(
        f"/alarms/{cabinet_id}/work-order",
        data={"csrf_token": token, "title": "Réparer l'armoire", "priority": "urgent"},
        follow_redirects=False,
    )
    assert created.status_code == 303 and created.headers["location"].startswith("/work-orders/")
    detail = client.get(f"/alarms/{cabinet_id}", headers=HTML).text
    assert "Électricien appelé" in detail
    assert "Bon d'intervention créé" in detail
    api = world.api(place.tenant, Role.VIEWER)
    stored = api.get(f"/api/v1/alarms/{cabinet_id}").json()
    assert stored["status"] == "active_acknowledged"
    assert stored["assignee"]["email"] == place.agent.email
    assert stored["child_alarms"][0]["status"] == "active_acknowledged"


def test_viewers_see_no_action_and_cannot_post(world: World) -> None:
    place = territory(world, "ville-a", "viewer")
    cabinet_id, _ = raise_some(world, place)
    client = browser(world, place, "viewer")
    page = client.get(f"/alarms/{cabinet_id}", headers=HTML)
    assert page.status_code == 200 and "Acquitter" not in page.text
    token = csrf_of(page.text)  # the sign-out form
    refused = client.post(f"/alarms/{cabinet_id}/clear", data={"csrf_token": token}, headers=HTML)
    assert refused.status_code == 403
    other = territory(world, "ville-b", "operator")
    outsider = browser(world, other)
    assert outsider.get(f"/alarms/{cabinet_id}", headers=HTML).status_code == 404
    assert world.api(place.tenant, Role.VIEWER).get(f"/api/v1/alarms/{cabinet_id}").json()[
        "status"
    ] == ("active_unacknowledged")


def test_console_needs_sign_in(world: World) -> None:
    anonymous = TestClient(world.app)  # type: ignore[arg-type]
    response = anonymous.get("/alarms", headers=HTML, follow_redirects=False)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


def three_alarms(world: World, place: Territory) -> dict[str, str]:
    """Alarms on three different lamps, of different severities and ages (no grouping)."""
    raised = {}
    with world.database.session() as session:
        for index, (severity, minutes) in enumerate(
            [(Severity.MINOR, 0), (Severity.CRITICAL, 10), (Severity.MAJOR, 5)]
        ):
            alarm = alarms.raise_alarm(
                session,
                place.id,
                alarms.AlarmSignal(
                    "lamp_out", LAMPS[index], severity, f"Lampe {index}", at(minutes)
                ),
            )
            raised[severity.value] = alarm.public_id
    return raised


def order_on_page(page: str, ids: dict[str, str]) -> list[str]:
    positions = {name: page.index(f'data-alarm="{alarm}"') for name, alarm in ids.items()}
    return sorted(positions, key=positions.__getitem__)


def test_console_sorts_by_any_column_both_ways(world: World) -> None:
    place = territory(world, "ville-a", "operator")
    ids = three_alarms(world, place)
    client = browser(world, place)
    by_severity = client.get("/alarms", headers=HTML).text
    assert order_on_page(by_severity, ids) == ["critical", "major", "minor"]
    assert 'aria-sort="ascending"' in by_severity
    reverse = client.get("/alarms?sort=severity&order=desc", headers=HTML).text
    assert order_on_page(reverse, ids) == ["minor", "major", "critical"]
    assert 'aria-sort="descending"' in reverse
    newest_first = client.get("/alarms?sort=raised&order=desc", headers=HTML).text
    assert order_on_page(newest_first, ids) == ["critical", "major", "minor"]
    oldest_first = client.get("/alarms?sort=raised&order=asc", headers=HTML).text
    assert order_on_page(oldest_first, ids) == ["minor", "major", "critical"]
    # The heading of the current column links to the reverse order.
    assert "/alarms?status=active&amp;sort=raised&amp;order=desc" in oldest_first


def test_console_filters_by_type_and_assignee(world: World) -> None:
    place = territory(world, "ville-a", "operator")
    ids = three_alarms(world, place)
    client = browser(world, place)
    with world.database.session() as session:
        operator = user_id(session, place.operator)
        alarms.assign(session, place.id, ids["major"], operator, by_user=operator)
        alarms.raise_alarm(
            session,
            place.id,
            alarms.AlarmSignal("cabinet_fault", CABINET, Severity.CRITICAL, "Armoire", at(20)),
        )
    mine = client.get("/alarms?assignee=me", headers=HTML).text
    assert order_on_page(mine, {"major": ids["major"]}) == ["major"]
    assert ids["minor"] not in mine and ids["critical"] not in mine
    by_id = client.get(f"/alarms?assignee={operator}", headers=HTML).text
    assert ids["major"] in by_id and ids["minor"] not in by_id
    cabinets = client.get("/alarms?type=StreetlightControlCabinet", headers=HTML).text
    assert "Armoire" in cabinets and all(ids[name] not in cabinets for name in ids)


def test_console_refuses_bad_sorting_and_filters_in_the_page(world: World) -> None:
    place = territory(world, "ville-a", "operator")
    three_alarms(world, place)
    client = browser(world, place)
    for query, field in [
        ("sort=colour", "sort"),
        ("order=up", "order"),
        ("assignee=someone", "assignee"),
        ("commune=99999", "commune"),
    ]:
        refused = client.get(f"/alarms?{query}", headers=HTML)
        assert refused.status_code == 422, query
        assert 'role="alert"' in refused.text and f"{field}:" in refused.text, query
        assert "Console des alarmes" in refused.text, "the console is still shown"


def test_console_and_board_refresh_themselves_on_live_events(world: World) -> None:
    place = territory(world, "ville-a", "operator")
    client = browser(world, place)
    console = client.get("/alarms?severity=major", headers=HTML).text
    assert 'data-live-refresh="alarm"' in console
    assert 'hx-get="/alarms?severity=major"' in console and 'hx-select="#alarm-results"' in console
    assert 'data-live-url="/events"' in console and "js/live.js" in console
    board = client.get("/work-orders", headers=HTML).text
    assert 'data-live-refresh="work-order"' in board and 'hx-select="#work-order-board"' in board
