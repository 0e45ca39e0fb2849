"""HTTP routes of the alarms domain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from territoire.alarms import pages, service
from territoire.alarms.models import ACTIVE_STATUSES, Alarm, AlarmEvent, AlarmStatus
from territoire.alarms.schemas import (
    AlarmDetailOut,
    AlarmEventOut,
    AlarmIn,
    AlarmOut,
    AlarmPageOut,
    AlarmWorkOrderIn,
    AssignIn,
    CommentIn,
    NoteIn,
)
from territoire.db.base import utcnow
from territoire.http import DbSession, Reader, requires
from territoire.interventions.api import commune_id_of, detail_out, member_by_email, people
from territoire.interventions.schemas import Person, WorkOrderDetailOut
from territoire.tenancy import service as tenancy
from territoire.tenancy.permissions import Permission
from territoire.tenancy.service import Principal

api = APIRouter(prefix="/api/v1", tags=["alarms"])

Operator = Annotated[Principal, Depends(requires(Permission.OPERATE))]


class Presenter:
    """Loads once what a list of alarms refers to: people, communes, parents, children."""

    def __init__(self, session: DbSession, tenant_id: int, alarms: Sequence[Alarm]) -> None:
        self.persons = people(
            session, [a.assignee_id for a in alarms] + [a.acknowledged_by for a in alarms]
        )
        self.communes = {c.id: c.insee_code for c in tenancy.list_communes(session, tenant_id)}
        self.parents = service.public_ids(session, [a.parent_id for a in alarms if a.parent_id])
        self.children = service.child_counts(session, alarms)

    def out(self, alarm: Alarm) -> AlarmOut:
        return AlarmOut(
            id=alarm.public_id,
            rule_key=alarm.rule_key,
            entity_urn=alarm.entity_urn,
            entity_type=alarm.entity_type,
            commune=self.communes.get(alarm.commune_id) if alarm.commune_id else None,
            severity=alarm.severity,
            status=alarm.status,
            message=alarm.message,
            value=alarm.value,
            occurrences=alarm.occurrences,
            raised_at=alarm.raised_at,
            last_seen_at=alarm.last_seen_at,
            acknowledged_at=alarm.acknowledged_at,
            acknowledged_by=self._person(alarm.acknowledged_by),
            cleared_at=alarm.cleared_at,
            clear_kind=alarm.clear_kind,
            closed_at=alarm.closed_at,
            assignee=self._person(alarm.assignee_id),
            group_key=alarm.group_key,
            parent_id=self.parents.get(alarm.parent_id) if alarm.parent_id else None,
            children=self.children.get(alarm.id, 0),
            work_order_id=alarm.work_order_id,
            fix_reported_at=alarm.fix_reported_at,
        )

    def _person(self, user_id: int | None) -> Person | None:
        return self.persons.get(user_id) if user_id is not None else None


def event_out(event: AlarmEvent, who: dict[int, Person]) -> AlarmEventOut:
    return AlarmEventOut(
        at=event.at,
        kind=event.kind,
        by=who.get(event.user_id) if event.user_id else None,
        text=event.text,
        data=event.data,
    )


def detail_of(session: DbSession, tenant_id: int, alarm: Alarm) -> AlarmDetailOut:
    children = service.children_of(session, alarm)
    presenter = Presenter(session, tenant_id, [alarm, *children])
    events = service.history(session, alarm)
    who = people(session, [event.user_id for event in events])
    return AlarmDetailOut(
        **presenter.out(alarm).model_dump(),
        history=[event_out(event, who) for event in events],
        child_alarms=[presenter.out(child) for child in children],
    )


def _statuses(text: str | None) -> list[AlarmStatus]:
    """Comma-separated statuses; `active` stands for both active statuses."""
    statuses: list[AlarmStatus] = []
    for part in (text or "").split(","):
        if part == "active":
            statuses.extend(ACTIVE_STATUSES)
        elif part:
            statuses.append(service.parse_status(part))
    return statuses


def alarm_filter(
    session: DbSession,
    principal: Principal,
    *,
    status: str | None,
    severity: str | None,
    rule: str | None,
    entity: str | None,
    commune: str | None,
    assignee: str | None,
    parent: str | None,
    top_level: bool,
) -> service.AlarmFilter:
    tenant_id = principal.tenant_id
    assignee_id = (
        principal.user_id or -1
        if assignee == "me"
        else member_by_email(session, tenant_id, assignee, "assignee")
    )
    return service.AlarmFilter(
        statuses=_statuses(status),
        severities=[service.parse_severity(s) for s in (severity or "").split(",") if s],
        rule_key=rule or None,
        entity_urn=entity or None,
        commune_id=commune_id_of(session, tenant_id, commune),
        assignee_id=assignee_id,
        parent_id=service.get_alarm(session, tenant_id, parent).id if parent else None,
        top_level=top_level,
    )


@api.get("/alarms", response_model=AlarmPageOut)
def list_alarms(
    session: DbSession,
    principal: Reader,
    status: Annotated[
        str | None, Query(description="Comma-separated statuses, or 'active'")
    ] = None,
    severity: Annotated[str | None, Query(description="Comma-separated severities")] = None,
    rule: Annotated[str | None, Query(max_length=100)] = None,
    entity: Annotated[str | None, Query(max_length=255, description="Entity URN")] = None,
    commune: Annotated[str | None, Query(description="INSEE code")] = None,
    assignee: Annotated[str | None, Query(description="E-mail, or 'me'")] = None,
    parent: Annotated[str | None, Query(description="Alarms grouped under this one")] = None,
    top_level: Annotated[bool, Query(description="Leave out grouped alarms")] = False,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> AlarmPageOut:
    where = alarm_filter(
        session,
        principal,
        status=status,
        severity=severity,
        rule=rule,
        entity=entity,
        commune=commune,
        assignee=assignee,
        parent=parent,
        top_level=top_level,
    )
    page = service.list_alarms(session, principal.tenant_id, where, limit=limit, offset=offset)
    presenter = Presenter(session, principal.tenant_id, page.items)
    following = offset + limit
    return AlarmPageOut(
        items=[presenter.out(alarm) for alarm in page.items],
        total=page.total,
        limit=limit,
        offset=offset,
        next_offset=following if following < page.total else None,
    )


@api.post("/alarms", response_model=AlarmDetailOut, status_code=201)
def raise_alarm(
    body: AlarmIn, response: Response, session: DbSession, principal: Operator
) -> AlarmDetailOut:
    """Report an alarm from another system; a repeat of an active one answers 200."""
    observed_at = body.observed_at or utcnow()
    signal = service.AlarmSignal(
        rule_key=body.rule_key,
        entity_urn=body.entity_urn,
        severity=body.severity,
        message=body.message,
        observed_at=observed_at,
        value=body.value,
        group_key=body.group_key,
    )
    alarm = service.raise_alarm(session, principal.tenant_id, signal)
    if alarm.occurrences > 1:
        response.status_code = 200
    return detail_of(session, principal.tenant_id, alarm)


@api.get("/alarms/{alarm_id}", response_model=AlarmDetailOut)
def get_alarm(alarm_id: str, session: DbSession, principal: Reader) -> AlarmDetailOut:
    alarm = service.get_alarm(session, principal.tenant_id, alarm_id)
    return detail_of(session, principal.tenant_id, alarm)


@api.post("/alarms/{alarm_id}/acknowledge", response_model=AlarmDetailOut)
def acknowledge(
    alarm_id: str, session: DbSession, principal: Operator, body: NoteIn | None = None
) -> AlarmDetailOut:
    alarm = service.acknowledge(
        session,
        principal.tenant_id,
        alarm_id,
        by_user=principal.user_id,
        note=body.note if body else None,
    )
    return detail_of(session, principal.tenant_id, alarm)


@api.post("/alarms/{alarm_id}/clear", response_model=AlarmDetailOut)
def clear(
    alarm_id: str, session: DbSession, principal: Operator, body: NoteIn | None = None
) -> AlarmDetailOut:
    alarm = service.clear(
        session,
        principal.tenant_id,
        alarm_id,
        by_user=principal.user_id,
        note=body.note if body else None,
    )
    return detail_of(session, principal.tenant_id, alarm)


@api.post("/alarms/{alarm_id}/close", response_model=AlarmDetailOut)
def close(
    alarm_id: str, session: DbSession, principal: Operator, body: NoteIn | None = None
) -> AlarmDetailOut:
    alarm = service.close(
        session,
        principal.tenant_id,
        alarm_id,
        by_user=principal.user_id,
        note=body.note if body else None,
    )
    return detail_of(session, principal.tenant_id, alarm)


@api.post("/alarms/{alarm_id}/comments", response_model=AlarmEventOut, status_code=201)
def comment(
    alarm_id: str, body: CommentIn, session: DbSession, principal: Operator
) -> AlarmEventOut:
    event = service.add_comment(
        session, principal.tenant_id, alarm_id, body.text, by_user=principal.user_id
    )
    return event_out(event, people(session, [event.user_id]))


@api.post("/alarms/{alarm_id}/assign", response_model=AlarmDetailOut)
def assign(
    alarm_id: str, body: AssignIn, session: DbSession, principal: Operator
) -> AlarmDetailOut:
    assignee_id = member_by_email(session, principal.tenant_id, body.assignee, "assignee")
    alarm = service.assign(
        session, principal.tenant_id, alarm_id, assignee_id, by_user=principal.user_id
    )
    return detail_of(session, principal.tenant_id, alarm)


@api.post("/alarms/{alarm_id}/work-orders", response_model=WorkOrderDetailOut, status_code=201)
def create_work_order(
    alarm_id: str, session: DbSession, principal: Operator, body: AlarmWorkOrderIn | None = None
) -> WorkOrderDetailOut:
    chosen = body or AlarmWorkOrderIn()
    options = service.WorkOrderOptions(
        title=chosen.title,
        description=chosen.description,
        priority=chosen.priority,
        skill=chosen.skill.value if chosen.skill else None,
        team_id=chosen.team_id,
    )
    order = service.create_work_order(
        session, principal.tenant_id, alarm_id, options, by_user=principal.user_id
    )
    return detail_out(session, principal.tenant_id, order)


# The domain's one router: its API and its pages.
router = APIRouter()
router.include_router(api)
router.include_router(pages.router)
