"""Work orders at the service level: creation, lifecycle, dispatch, reports, photos, events."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from territoire import events
from territoire.errors import AlreadyExists, Conflict, Forbidden, InvalidInput, NotFound
from territoire.interventions import service
from territoire.interventions.models import (
    Priority,
    Skill,
    WorkOrder,
    WorkOrderEvent,
    WorkOrderPhoto,
    WorkOrderStatus,
)
from tests.conftest import World
from tests.interventions.helpers import LAMPS, point, territory, user_id

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64

_seen: list[events.Event] = []


def _remember(_session: object, event: events.Event) -> None:
    _seen.append(event)


@pytest.fixture
def published() -> Iterator[list[events.Event]]:
    events.subscribe("work_order.created", _remember)
    events.subscribe("work_order.status_changed", _remember)
    _seen.clear()
    yield _seen
    _seen.clear()


def statuses(session, order: WorkOrder) -> list[str]:  # type: ignore[no-untyped-def]
    return [e.to_status.value for e in service.history(session, order) if e.to_status]


def test_create_minimal_then_walk_the_whole_lifecycle(
    world: World, published: list[events.Event]
) -> None:
    place = territory(world, "ville-a", "operator")
    with world.database.session() as session:
        operator = user_id(session, place.operator)
        team = service.create_team(session, place.id, name="Éclairage", skills=["lighting"])
        order = service.create_work_order(
            session, place.id, service.WorkOrderDraft(title="Lampe à changer"), created_by=operator
        )
        assert (order.status, order.priority, order.source_kind.value) == (
            WorkOrderStatus.NEW,
            Priority.NORMAL,
            "manual",
        )
        with pytest.raises(Conflict, match="team or an agent"):
            service.transition(session, place.id, order.public_id, "assign", by_user=operator)
        service.dispatch(
            session,
            place.id,
            order.public_id,
            team_id=team.public_id,
            assignee_id=None,
            by_user=operator,
        )
        assert order.status is WorkOrderStatus.ASSIGNED
        for action in ("start", "hold", "resume", "done", "close", "reopen"):
            service.transition(session, place.id, order.public_id, action, by_user=operator)
        assert order.status is WorkOrderStatus.ASSIGNED, "reopened to its team"
        service.transition(
            session, place.id, order.public_id, "cancel", by_user=operator, note="doublon"
        )
        assert statuses(session, order) == [
            "new",
            "assigned",
            "in_progress",
            "on_hold",
            "in_progress",
            "done",
            "closed",
            "assigned",
            "cancelled",
        ]
        assert service.history(session, order)[-1].note == "doublon"
    names = [(e.name, e.payload.get("new_status")) for e in published]
    assert names[0] == ("work_order.created", None)
    assert names[-1] == ("work_order.status_changed", "cancelled")
    last = published[-1].payload
    assert last == {
        "id": order.public_id,
        "old_status": "assigned",
        "new_status": "cancelled",
        "action": "cancel",
        "source_kind": "manual",
        "source_ref": None,
        "at": last["at"],
    }


REFUSED_TRANSITIONS: list[tuple[list[str], str]] = [
    ([], "start"),
    ([], "done"),
    ([], "close"),
    ([], "resume"),
    ([], "reopen"),
    (["dispatch"], "assign"),
    (["dispatch", "start"], "assign"),
    (["dispatch", "start"], "close"),
    (["dispatch", "start", "done"], "cancel"),
    (["dispatch", "start", "done"], "hold"),
    (["cancel"], "start"),
]


def test_transitions_the_lifecycle_does_not_allow_are_409(world: World) -> None:
    place = territory(world, "ville-a")
    with world.database.session() as session:
        team = service.create_team(session, place.id, name="Voirie", skills=["roads"])
        for path, refused in REFUSED_TRANSITIONS:
            order = service.create_work_order(
                session, place.id, service.WorkOrderDraft(title="Nid-de-poule"), created_by=None
            )
            for action in path:
                if action == "dispatch":
                    service.dispatch(
                        session,
                        place.id,
                        order.public_id,
                        team_id=team.public_id,
                        assignee_id=None,
                        by_user=None,
                    )
                else:
                    service.transition(session, place.id, order.public_id, action, by_user=None)
            before = order.status
            events_before = len(service.history(session, order))
            with pytest.raises(Conflict):
                service.transition(session, place.id, order.public_id, refused, by_user=None)
            assert order.status is before, (path, refused)
            assert len(service.history(session, order)) == events_before


def test_unknown_action_is_invalid(world: World) -> None:
    place = territory(world, "ville-a")
    with world.database.session() as session:
        order = service.create_work_order(
            session, place.id, service.WorkOrderDraft(title="X"), created_by=None
        )
        with pytest.raises(InvalidInput) as caught:
            service.transition(session, place.id, order.public_id, "teleport", by_user=None)
        assert caught.value.problems[0].field == "action"


def test_place_comes_from_the_location_or_the_entity(world: World) -> None:
    place = territory(world, "ville-a")
    with world.database.session() as session:
        from_entity = service.create_work_order(
            session,
            place.id,
            service.WorkOrderDraft(title="A", entity_urn=LAMPS[1]),
            created_by=None,
        )
        assert from_entity.entity_type == "Streetlight"
        assert from_entity.location == point(5.051, 47.05)
        assert from_entity.commune_id is not None
        east = service.create_work_order(
            session,
            place.id,
            service.WorkOrderDraft(title="B", entity_urn=LAMPS[1], location=point(5.15, 47.02)),
            created_by=None,
        )
        assert east.commune_id != from_entity.commune_id, "the given location wins"
        nowhere = service.create_work_order(
            session,
            place.id,
            service.WorkOrderDraft(title="C", location=point(6.0, 45.0)),
            created_by=None,
        )
        assert nowhere.commune_id is None


TRIANGLE = {"type": "Polygon", "coordinates": [[[5, 47], [5.1, 47], [5, 47.1], [5, 47]]]}
BAD_DRAFTS: list[tuple[dict[str, object], str]] = [
    ({"title": "  "}, "title"),
    ({"title": "x" * 201}, "title"),
    ({"priority": "whenever"}, "priority"),
    ({"skill": "juggling"}, "skill"),
    ({"team_id": "00000000-0000-0000-0000-000000000000"}, "team_id"),
    ({"entity_urn": "urn:ngsi-ld:Streetlight:nope"}, "entity_urn"),
    ({"location": TRIANGLE}, "location"),
    ({"location": {"type": "Point", "coordinates": [500, 47]}}, "location"),
    ({"source_kind": "request"}, "source_ref"),
    ({"source_kind": "manual", "source_ref": "R-1"}, "source_ref"),
    ({"source_kind": "pigeon", "source_ref": "R-1"}, "source_kind"),
]


def test_bad_drafts_are_refused_and_store_nothing(world: World) -> None:
    place = territory(world, "ville-a")
    for changes, field in BAD_DRAFTS:
        draft = service.WorkOrderDraft(**{"title": "Réparer", **changes})  # type: ignore[arg-type]
        with world.database.session() as session:
            with pytest.raises(InvalidInput) as caught:
                service.create_work_order(session, place.id, draft, created_by=None)
            assert caught.value.problems[0].field == field, changes
    with world.database.session() as session:
        assert session.scalar(select(func.count()).select_from(WorkOrder)) == 0
        assert session.scalar(select(func.count()).select_from(WorkOrderEvent)) == 0


def test_requests_contract_source_and_events(world: World, published: list[events.Event]) -> None:
    place = territory(world, "ville-a")
    with world.database.session() as session:
        order = service.create_work_order(
            session,
            place.id,
            service.WorkOrderDraft(
                title="Banc cassé",
                priority=Priority.HIGH,
                skill="green_spaces",
                source_kind="request",
                source_ref="a3b1c2d4-0000-4000-8000-000000000001",
            ),
            created_by=None,
        )
        assert service.get_work_order(session, place.id, order.public_id) is order
        found = service.find_by_source(session, place.id, "request", order.source_ref or "")
        assert [o.public_id for o in found] == [order.public_id]
        assert order.skill is Skill.GREEN_SPACES
    created = published[0]
    assert created.name == "work_order.created" and created.tenant_id == place.id
    assert created.payload["source_kind"] == "request"
    assert created.payload["source_ref"] == order.source_ref


def test_field_agents_act_only_on_their_own_work(world: World) -> None:
    place = territory(world, "ville-a", "agent", "other_agent", "viewer")
    with world.database.session() as session:
        agent = user_id(session, place.agent)
        other = user_id(session, place.other_agent)
        team = service.create_team(session, place.id, name="Éclairage", member_ids=[agent])
        order = service.create_work_order(
            session,
            place.id,
            service.WorkOrderDraft(title="A", team_id=team.public_id),
            created_by=None,
        )
        service.check_may_act(session, order, "start", user_id=agent, may_operate=False)
        with pytest.raises(Forbidden):
            service.check_may_act(session, order, "start", user_id=other, may_operate=False)
        with pytest.raises(Forbidden):
            service.check_may_act(session, order, "close", user_id=agent, may_operate=False)
        service.dispatch(
            session, place.id, order.public_id, team_id=None, assignee_id=other, by_user=None
        )
        with pytest.raises(Forbidden):
            service.check_may_act(session, order, "start", user_id=agent, may_operate=False)
        service.check_may_act(session, order, "start", user_id=other, may_operate=False)
        service.check_may_act(session, order, "close", user_id=None, may_operate=True)
        mine = service.list_work_orders(
            session, place.id, service.WorkOrderFilter(mine_user_id=other)
        )
        assert [o.public_id for o in mine.items] == [order.public_id]
        assert (
            service.list_work_orders(
                session, place.id, service.WorkOrderFilter(mine_user_id=agent)
            ).total
            == 0
        )
        with pytest.raises(InvalidInput):
            service.dispatch(
                session,
                place.id,
                order.public_id,
                team_id=None,
                assignee_id=user_id(session, place.viewer),
                by_user=None,
            )


def test_reports_and_photos(world: World, tmp_path: Path) -> None:
    place = territory(world, "ville-a", "agent")
    with world.database.session() as session:
        order = service.create_work_order(
            session, place.id, service.WorkOrderDraft(title="A", team_id=None), created_by=None
        )
        draft = service.ReportDraft(
            "Lampe remplacée", 45, [{"name": "Lampe LED 40 W", "quantity": 1}]
        )
        with pytest.raises(Conflict):
            service.add_field_report(session, place.id, order.public_id, draft, by_user=None)
        with pytest.raises(Conflict):
            service.add_photo(
                session, place.id, order.public_id, content=PNG, uploads_dir=tmp_path, by_user=None
            )
        agent = user_id(session, place.agent)
        service.dispatch(
            session, place.id, order.public_id, team_id=None, assignee_id=agent, by_user=None
        )
        service.transition(session, place.id, order.public_id, "start", by_user=agent)
        report = service.add_field_report(session, place.id, order.public_id, draft, by_user=agent)
        assert report.parts == [{"name": "Lampe LED 40 W", "quantity": 1}]
        photo = service.add_photo(
            session,
            place.id,
            order.public_id,
            content=JPEG,
            uploads_dir=tmp_path,
            by_user=agent,
            report_id=report.public_id,
        )
        stored = tmp_path / photo.stored_name
        assert stored.read_bytes() == JPEG and photo.content_type == "image/jpeg"
        assert stored.suffix == ".jpg" and str(place.id) in stored.parts
        for bad in (b"", b"GIF89a" + b"\x00" * 20, b"%PDF-1.7", b"RIFF\x00\x00\x00\x00WAVE"):
            with pytest.raises(InvalidInput):
                service.add_photo(
                    session,
                    place.id,
                    order.public_id,
                    content=bad,
                    uploads_dir=tmp_path,
                    by_user=agent,
                )
        with pytest.raises(InvalidInput):
            service.add_photo(
                session,
                place.id,
                order.public_id,
                content=PNG + b"\x00" * service.MAX_PHOTO_BYTES,
                uploads_dir=tmp_path,
                by_user=agent,
            )
        with pytest.raises(InvalidInput):
            service.add_photo(
                session,
                place.id,
                order.public_id,
                content=PNG,
                uploads_dir=tmp_path,
                by_user=agent,
                report_id="not-a-report",
            )
        assert session.scalar(select(func.count()).select_from(WorkOrderPhoto)) == 1
        assert len(list(tmp_path.rglob("*.*"))) == 1, "refused photos leave no file"
        for bad_report in (
            service.ReportDraft("", 10),
            service.ReportDraft("ok", -5),
            service.ReportDraft("ok", 10, [{"name": "vis", "quantity": 0}]),
            service.ReportDraft("ok", 10, [{"quantity": 2}]),
        ):
            with pytest.raises(InvalidInput):
                service.add_field_report(
                    session, place.id, order.public_id, bad_report, by_user=agent
                )


def test_teams_are_unique_per_tenant_and_scoped(world: World) -> None:
    place_a = territory(world, "ville-a")
    place_b = territory(world, "ville-b", "agent")
    with world.database.session() as session:
        team = service.create_team(session, place_a.id, name="Eau", skills=["water", "water"])
        assert team.skills == ["water"]
        with pytest.raises(AlreadyExists):
            service.create_team(session, place_a.id, name="Eau")
        service.create_team(session, place_b.id, name="Eau")
        with pytest.raises(NotFound):
            service.get_team(session, place_b.id, team.public_id)
        with pytest.raises(InvalidInput):
            service.create_work_order(
                session,
                place_b.id,
                service.WorkOrderDraft(title="x", team_id=team.public_id),
                created_by=None,
            )
        with pytest.raises(InvalidInput):
            service.create_team(
                session, place_a.id, name="Intrus", member_ids=[user_id(session, place_b.agent)]
            )
        order = service.create_work_order(
            session,
            place_a.id,
            service.WorkOrderDraft(title="x", team_id=team.public_id),
            created_by=None,
        )
        with pytest.raises(NotFound):
            service.get_work_order(session, place_b.id, order.public_id)
        with pytest.raises(NotFound):
            service.transition(session, place_b.id, order.public_id, "start", by_user=None)
        with pytest.raises(Conflict):
            service.delete_team(session, place_a.id, team.public_id)
        events_count = session.scalar(select(func.count()).select_from(WorkOrderEvent))
        assert events_count == 2, "created and assigned"
