"""Interventions services: teams, work orders and their lifecycle, field reports, photos
and service levels. The only way other domains touch interventions.

Every status change is written to the work order's history (the service-level clocks
are computed from it) and announced as a `work_order.status_changed` event.
"""

from __future__ import annotations

import enum
import hashlib
import math
import os
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from sqlalchemy import and_, delete, func, or_, select
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from territoire import events
from territoire.db.base import utcnow
from territoire.errors import AlreadyExists, Conflict, Forbidden, NotFound, invalid
from territoire.geo import parse_geometry
from territoire.interventions import sla
from territoire.interventions.models import (
    OPEN_STATUSES,
    FieldReport,
    Priority,
    ServiceLevel,
    Skill,
    SourceKind,
    Team,
    TeamMember,
    WorkOrder,
    WorkOrderEvent,
    WorkOrderPhoto,
    WorkOrderStatus,
)
from territoire.registry import service as registry
from territoire.tenancy import service as tenancy
from territoire.tenancy.permissions import Permission, allows

S = WorkOrderStatus
E = TypeVar("E", bound=enum.StrEnum)
MAX_TITLE = 200
MAX_TEXT = 10_000
MAX_SOURCE_REF = 64
MAX_PAGE_SIZE = 500
MAX_BREACH_SCAN = 5000
MAX_PHOTO_BYTES = 4 * 1024 * 1024
MAX_MINUTES_SPENT = 7 * 24 * 60
MAX_PARTS = 50

# Images only, recognised by their first bytes rather than by what the client declares.
PHOTO_SIGNATURES: dict[str, tuple[bytes, str]] = {
    "image/jpeg": (b"\xff\xd8\xff", ".jpg"),
    "image/png": (b"\x89PNG\r\n\x1a\n", ".png"),
    "image/webp": (b"RIFF", ".webp"),
}


@dataclass(frozen=True)
class Step:
    """One action of the lifecycle: the statuses it starts from and the one it leads to."""

    sources: frozenset[WorkOrderStatus]
    target: WorkOrderStatus | None  # None: decided by the work order (reopen)


LIFECYCLE: dict[str, Step] = {
    "assign": Step(frozenset({S.NEW}), S.ASSIGNED),
    "start": Step(frozenset({S.ASSIGNED}), S.IN_PROGRESS),
    "hold": Step(frozenset({S.IN_PROGRESS}), S.ON_HOLD),
    "resume": Step(frozenset({S.ON_HOLD}), S.IN_PROGRESS),
    "done": Step(frozenset({S.IN_PROGRESS}), S.DONE),
    "close": Step(frozenset({S.DONE}), S.CLOSED),
    "cancel": Step(frozenset(OPEN_STATUSES), S.CANCELLED),
    "reopen": Step(frozenset({S.DONE, S.CLOSED, S.CANCELLED}), None),
}
# What a field agent may do on a work order of their own (lifecycle actions, and writing
# notes, reports and photos); the rest is the operators'.
FIELD_ACTIONS = frozenset({"start", "hold", "resume", "done", "note", "report"})
REPORTABLE_STATUSES = frozenset({S.IN_PROGRESS, S.ON_HOLD, S.DONE})


@dataclass
class WorkOrderDraft:
    title: str
    description: str = ""
    priority: Priority = Priority.NORMAL
    skill: str | None = None
    team_id: str | None = None
    entity_urn: str | None = None
    location: dict[str, Any] | None = None
    source_kind: str = "manual"
    source_ref: str | None = None


@dataclass
class WorkOrderFilter:
    statuses: Sequence[WorkOrderStatus] = ()
    priorities: Sequence[Priority] = ()
    team_id: int | None = None
    assignee_id: int | None = None
    mine_user_id: int | None = None  # assigned to this agent, or to one of their teams
    commune_id: int | None = None
    source_kind: SourceKind | None = None
    source_ref: str | None = None
    entity_urn: str | None = None


@dataclass
class Page:
    items: list[WorkOrder]
    total: int
    limit: int
    offset: int


@dataclass
class ReportDraft:
    text: str
    minutes_spent: int = 0
    parts: list[dict[str, Any]] = field(default_factory=list)


# --- small checks --------------------------------------------------------------------


def _text(value: str, field_name: str, *, limit: int, required: bool) -> str:
    if not isinstance(value, str):
        raise invalid(field_name, "must be a text")
    cleaned = value.strip()
    if required and not cleaned:
        raise invalid(field_name, "must not be empty")
    if len(cleaned) > limit:
        raise invalid(field_name, f"at most {limit} characters")
    return cleaned


def parse_enum(enum_cls: type[E], value: Any, field_name: str) -> E:
    try:
        return enum_cls(value)
    except ValueError as error:
        allowed = ", ".join(member.value for member in enum_cls)
        raise invalid(field_name, f"one of {allowed}") from error


def _moment(at: datetime | None, after: datetime | None) -> datetime:
    """The time of a change: now, or a given aware time no earlier than the last change."""
    if at is None:
        moment = utcnow()
        return max(moment, after) if after is not None else moment
    if at.tzinfo is None:
        raise invalid("at", "a time with its time zone is required")
    if after is not None and at < after:
        raise invalid("at", "earlier than the last recorded change")
    return at


def _flush(session: Session) -> None:
    """Flush, turning a compare-and-set failure into a 409 the caller can retry."""
    try:
        session.flush()
    except StaleDataError as error:
        raise Conflict("the work order was changed meanwhile; reload and try again") from error


def _member_role_allows(
    session: Session, tenant_id: int, user_id: int, permission: Permission
) -> bool:
    role = tenancy.role_in(session, user_id, tenant_id)
    return role is not None and allows(role, permission)


# --- teams ---------------------------------------------------------------------------


def _skills(values: Iterable[Any]) -> list[str]:
    skills = [parse_enum(Skill, value, "skills").value for value in values]
    return sorted(set(skills))


def _check_members(session: Session, tenant_id: int, user_ids: Iterable[int]) -> list[int]:
    unique = sorted(set(user_ids))
    for user_id in unique:
        if tenancy.role_in(session, user_id, tenant_id) is None:
            raise invalid("members", f"user {user_id} has no role in this tenant")
    return unique


def create_team(
    session: Session,
    tenant_id: int,
    *,
    name: str,
    skills: Iterable[Any] = (),
    member_ids: Iterable[int] = (),
) -> Team:
    clean_name = _text(name, "name", limit=MAX_TITLE, required=True)
    if _team_named(session, tenant_id, clean_name) is not None:
        raise AlreadyExists(f"a team named '{clean_name}' exists")
    team = Team(
        public_id=str(uuid.uuid4()), tenant_id=tenant_id, name=clean_name, skills=_skills(skills)
    )
    session.add(team)
    session.flush()
    _replace_members(session, team, _check_members(session, tenant_id, member_ids))
    return team


def _team_named(session: Session, tenant_id: int, name: str) -> Team | None:
    return session.scalar(select(Team).where(Team.tenant_id == tenant_id, Team.name == name))


def _replace_members(session: Session, team: Team, user_ids: list[int]) -> None:
    session.execute(delete(TeamMember).where(TeamMember.team_id == team.id))
    session.add_all(TeamMember(team_id=team.id, user_id=user_id) for user_id in user_ids)
    session.flush()


def update_team(
    session: Session,
    tenant_id: int,
    team_id: str,
    *,
    name: str | None = None,
    skills: Iterable[Any] | None = None,
    member_ids: Iterable[int] | None = None,
) -> Team:
    team = get_team(session, tenant_id, team_id)
    if name is not None:
        clean_name = _text(name, "name", limit=MAX_TITLE, required=True)
        other = _team_named(session, tenant_id, clean_name)
        if other is not None and other.id != team.id:
            raise AlreadyExists(f"a team named '{clean_name}' exists")
        team.name = clean_name
    if skills is not None:
        team.skills = _skills(skills)
    if member_ids is not None:
        _replace_members(session, team, _check_members(session, tenant_id, member_ids))
    session.flush()
    return team


def delete_team(session: Session, tenant_id: int, team_id: str) -> None:
    team = get_team(session, tenant_id, team_id)
    busy = session.scalar(
        select(func.count())
        .select_from(WorkOrder)
        .where(WorkOrder.team_id == team.id, WorkOrder.status.in_(OPEN_STATUSES))
    )
    if busy:
        raise Conflict(f"the team has {busy} open work orders; reassign them first")
    session.delete(team)
    session.flush()


def get_team(session: Session, tenant_id: int, team_id: str) -> Team:
    team = session.scalar(
        select(Team).where(Team.tenant_id == tenant_id, Team.public_id == team_id)
    )
    if team is None:
        raise NotFound(f"no team {team_id}")
    return team


def list_teams(session: Session, tenant_id: int) -> list[Team]:
    return list(
        session.scalars(select(Team).where(Team.tenant_id == tenant_id).order_by(Team.name))
    )


def team_member_ids(session: Session, team_ids: Iterable[int]) -> dict[int, list[int]]:
    wanted = list(team_ids)
    members: dict[int, list[int]] = {team_id: [] for team_id in wanted}
    if wanted:
        rows = session.execute(
            select(TeamMember.team_id, TeamMember.user_id)
            .where(TeamMember.team_id.in_(wanted))
            .order_by(TeamMember.user_id)
        )
        for team_id, user_id in rows:
            members[team_id].append(user_id)
    return members


def team_ids_of_user(session: Session, tenant_id: int, user_id: int) -> list[int]:
    return list(
        session.scalars(
            select(Team.id)
            .join(TeamMember, TeamMember.team_id == Team.id)
            .where(Team.tenant_id == tenant_id, TeamMember.user_id == user_id)
        )
    )


# --- work orders: creation and reading -----------------------------------------------


def _location(session: Session, tenant_id: int, location: Any) -> tuple[dict[str, Any], int | None]:
    geom = parse_geometry(location, "location")
    if location.get("type") != "Point":
        raise invalid("location", "a work order is located by a GeoJSON Point")
    return location, registry.commune_locator(session, tenant_id).locate(geom)


def _source(kind: Any, ref: str | None) -> tuple[SourceKind, str | None]:
    source_kind = parse_enum(SourceKind, kind, "source_kind")
    if source_kind is SourceKind.MANUAL:
        if ref:
            raise invalid("source_ref", "a manual work order has no source reference")
        return source_kind, None
    if not ref or not isinstance(ref, str) or len(ref) > MAX_SOURCE_REF:
        raise invalid("source_ref", f"the {source_kind.value} id (at most {MAX_SOURCE_REF} chars)")
    return source_kind, ref


def create_work_order(
    session: Session,
    tenant_id: int,
    draft: WorkOrderDraft,
    *,
    created_by: int | None,
    at: datetime | None = None,
) -> WorkOrder:
    """Create a work order; given a team it is dispatched (assigned) at once."""
    source_kind, source_ref = _source(draft.source_kind, draft.source_ref)
    order = WorkOrder(
        public_id=str(uuid.uuid4()),
        tenant_id=tenant_id,
        title=_text(draft.title, "title", limit=MAX_TITLE, required=True),
        description=_text(draft.description or "", "description", limit=MAX_TEXT, required=False),
        priority=parse_enum(Priority, draft.priority, "priority"),
        skill=parse_enum(Skill, draft.skill, "skill") if draft.skill is not None else None,
        team_id=get_team_for_field(session, tenant_id, draft.team_id),
        source_kind=source_kind,
        source_ref=source_ref,
        status=S.NEW,
        created_by=created_by,
    )
    _place(session, tenant_id, order, draft.entity_urn, draft.location)
    order.created_at = order.updated_at = _moment(at, None)
    session.add(order)
    session.flush()
    _record(session, order, "create", None, S.NEW, created_by, None, order.created_at)
    events.publish(
        session,
        events.Event(
            "work_order.created",
            tenant_id,
            {
                "id": order.public_id,
                "status": order.status.value,
                "priority": order.priority.value,
                "source_kind": order.source_kind.value,
                "source_ref": order.source_ref,
            },
        ),
    )
    if order.team_id is not None:
        _change_status(session, order, "assign", S.ASSIGNED, created_by, None, order.created_at)
    return order


def get_team_for_field(session: Session, tenant_id: int, team_id: str | None) -> int | None:
    """The row id of a team given by public id in a request body (unknown → 422)."""
    if team_id is None:
        return None
    try:
        return get_team(session, tenant_id, team_id).id
    except NotFound as error:
        raise invalid("team_id", f"no team {team_id} in this tenant") from error


def _place(
    session: Session,
    tenant_id: int,
    order: WorkOrder,
    entity_urn: str | None,
    location: dict[str, Any] | None,
) -> None:
    """Set entity, location and commune: the location wins, else the entity's."""
    order.entity_urn = order.entity_type = order.location = order.commune_id = None
    if entity_urn is not None:
        try:
            entity = registry.get_entity(session, tenant_id, entity_urn)
        except NotFound as error:
            raise invalid("entity_urn", f"no entity {entity_urn} in this tenant") from error
        order.entity_urn, order.entity_type = entity.urn, entity.type
        order.commune_id = entity.commune_id
        if location is None and entity.location and entity.location.get("type") == "Point":
            order.location = entity.location
    if location is not None:
        order.location, order.commune_id = _location(session, tenant_id, location)


def get_work_order(
    session: Session, tenant_id: int, work_order_id: str, *, for_update: bool = False
) -> WorkOrder:
    query = select(WorkOrder).where(
        WorkOrder.tenant_id == tenant_id, WorkOrder.public_id == work_order_id
    )
    if for_update:
        # Serialises concurrent changes on PostgreSQL (the version column covers SQLite);
        # the row is re-read so that a change committed meanwhile is seen.
        query = query.with_for_update().execution_options(populate_existing=True)
    order = session.scalar(query)
    if order is None:
        raise NotFound(f"no work order {work_order_id}")
    return order


def _filter_clauses(session: Session, tenant_id: int, where: WorkOrderFilter) -> list[Any]:
    clauses: list[Any] = [WorkOrder.tenant_id == tenant_id]
    if where.statuses:
        clauses.append(WorkOrder.status.in_(list(where.statuses)))
    if where.priorities:
        clauses.append(WorkOrder.priority.in_(list(where.priorities)))
    if where.team_id is not None:
        clauses.append(WorkOrder.team_id == where.team_id)
    if where.assignee_id is not None:
        clauses.append(WorkOrder.assignee_id == where.assignee_id)
    if where.mine_user_id is not None:
        clauses.append(_mine_clause(session, tenant_id, where.mine_user_id))
    if where.commune_id is not None:
        clauses.append(WorkOrder.commune_id == where.commune_id)
    if where.source_kind is not None:
        clauses.append(WorkOrder.source_kind == where.source_kind)
    if where.source_ref is not None:
        clauses.append(WorkOrder.source_ref == where.source_ref)
    if where.entity_urn is not None:
        clauses.append(WorkOrder.entity_urn == where.entity_urn)
    return clauses


def _mine_clause(session: Session, tenant_id: int, user_id: int) -> Any:
    teams = team_ids_of_user(session, tenant_id, user_id)
    own_team = and_(WorkOrder.assignee_id.is_(None), WorkOrder.team_id.in_(teams))
    return (
        or_(WorkOrder.assignee_id == user_id, own_team)
        if teams
        else (WorkOrder.assignee_id == user_id)
    )


def list_work_orders(
    session: Session, tenant_id: int, where: WorkOrderFilter, *, limit: int = 100, offset: int = 0
) -> Page:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise invalid("limit", f"between 1 and {MAX_PAGE_SIZE}")
    if offset < 0:
        raise invalid("offset", "must not be negative")
    condition = and_(*_filter_clauses(session, tenant_id, where))
    total = session.scalar(select(func.count()).select_from(WorkOrder).where(condition)) or 0
    items = session.scalars(
        select(WorkOrder)
        .where(condition)
        .order_by(WorkOrder.created_at.desc(), WorkOrder.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return Page(items=list(items), total=int(total), limit=limit, offset=offset)


def find_by_source(
    session: Session, tenant_id: int, source_kind: str, source_ref: str
) -> list[WorkOrder]:
    """Work orders made from one alarm or one request, oldest first."""
    kind = parse_enum(SourceKind, source_kind, "source_kind")
    return list(
        session.scalars(
            select(WorkOrder)
            .where(
                WorkOrder.tenant_id == tenant_id,
                WorkOrder.source_kind == kind,
                WorkOrder.source_ref == source_ref,
            )
            .order_by(WorkOrder.created_at, WorkOrder.id)
        )
    )


def history(session: Session, work_order: WorkOrder) -> list[WorkOrderEvent]:
    return list(
        session.scalars(
            select(WorkOrderEvent)
            .where(WorkOrderEvent.work_order_id == work_order.id)
            .order_by(WorkOrderEvent.at, WorkOrderEvent.id)
        )
    )


# --- work orders: changes ------------------------------------------------------------


def is_own(session: Session, order: WorkOrder, user_id: int | None) -> bool:
    """Assigned to this agent, or to one of their teams with no agent named yet."""
    if user_id is None:
        return False
    if order.assignee_id is not None:
        return order.assignee_id == user_id
    return order.team_id is not None and order.team_id in team_ids_of_user(
        session, order.tenant_id, user_id
    )


def check_may_act(
    session: Session, order: WorkOrder, action: str, *, user_id: int | None, may_operate: bool
) -> None:
    """Operators act on any work order; field agents only on their own, and only in the field."""
    if may_operate:
        return
    if action not in FIELD_ACTIONS:
        raise Forbidden(f"only an operator may {action} a work order")
    if not is_own(session, order, user_id):
        raise Forbidden("this work order is not assigned to you or to your team")


def _last_change(session: Session, order: WorkOrder) -> datetime | None:
    return session.scalar(
        select(func.max(WorkOrderEvent.at)).where(WorkOrderEvent.work_order_id == order.id)
    )


def _record(
    session: Session,
    order: WorkOrder,
    action: str,
    from_status: WorkOrderStatus | None,
    to_status: WorkOrderStatus | None,
    user_id: int | None,
    note: str | None,
    at: datetime,
    data: dict[str, Any] | None = None,
) -> WorkOrderEvent:
    event = WorkOrderEvent(
        work_order_id=order.id,
        at=at,
        action=action,
        from_status=from_status,
        to_status=to_status,
        user_id=user_id,
        note=note,
        data=data or {},
    )
    session.add(event)
    return event


def _change_status(
    session: Session,
    order: WorkOrder,
    action: str,
    target: WorkOrderStatus,
    user_id: int | None,
    note: str | None,
    at: datetime,
) -> None:
    old = order.status
    order.status = target
    order.updated_at = at
    _flush(session)
    _record(session, order, action, old, target, user_id, note, at)
    session.flush()
    events.publish(
        session,
        events.Event(
            "work_order.status_changed",
            order.tenant_id,
            {
                "id": order.public_id,
                "old_status": old.value,
                "new_status": target.value,
                "action": action,
                "source_kind": order.source_kind.value,
                "source_ref": order.source_ref,
                "at": at.isoformat(),
            },
        ),
    )


def transition(
    session: Session,
    tenant_id: int,
    work_order_id: str,
    action: str,
    *,
    by_user: int | None,
    note: str | None = None,
    at: datetime | None = None,
) -> WorkOrder:
    """Apply one lifecycle action; an action the current status does not allow is a 409."""
    step = LIFECYCLE.get(action)
    if step is None:
        raise invalid("action", f"one of {', '.join(LIFECYCLE)}")
    clean_note = _text(note, "note", limit=MAX_TEXT, required=False) if note else None
    order = get_work_order(session, tenant_id, work_order_id, for_update=True)
    if order.status not in step.sources:
        raise Conflict(f"cannot {action} a work order that is {order.status.value}")
    if action == "assign" and order.team_id is None and order.assignee_id is None:
        raise Conflict("choose a team or an agent to assign the work order to")
    target = step.target or (
        S.ASSIGNED if order.team_id is not None or order.assignee_id is not None else S.NEW
    )
    moment = _moment(at, _last_change(session, order))
    _change_status(session, order, action, target, by_user, clean_note, moment)
    return order


def dispatch(
    session: Session,
    tenant_id: int,
    work_order_id: str,
    *,
    team_id: str | None,
    assignee_id: int | None,
    by_user: int | None,
    note: str | None = None,
    at: datetime | None = None,
) -> WorkOrder:
    """Give the work order to a team and/or an agent; a new one becomes assigned."""
    if team_id is None and assignee_id is None:
        raise invalid("team_id", "give a team, an agent, or both")
    order = get_work_order(session, tenant_id, work_order_id, for_update=True)
    if order.status not in OPEN_STATUSES:
        raise Conflict(f"cannot dispatch a work order that is {order.status.value}")
    team_row = get_team_for_field(session, tenant_id, team_id)
    if assignee_id is not None and not _member_role_allows(
        session, tenant_id, assignee_id, Permission.FIELD_WORK
    ):
        raise invalid("assignee", "this person has no field role in this tenant")
    moment = _moment(at, _last_change(session, order))
    order.team_id = team_row if team_row is not None else order.team_id
    order.assignee_id = assignee_id
    order.updated_at = moment
    _flush(session)
    data = {"team_id": team_id, "assignee_id": assignee_id}
    _record(session, order, "dispatch", None, None, by_user, note, moment, data)
    if order.status is S.NEW:
        _change_status(session, order, "assign", S.ASSIGNED, by_user, note, moment)
    session.flush()
    return order


def update_details(
    session: Session,
    tenant_id: int,
    work_order_id: str,
    changes: dict[str, Any],
    *,
    by_user: int | None,
) -> WorkOrder:
    """Change title, description, priority, skill, entity or location (open orders only)."""
    allowed = {"title", "description", "priority", "skill", "entity_urn", "location"}
    unknown = set(changes) - allowed
    if unknown:
        raise invalid(sorted(unknown)[0], "not an editable field")
    order = get_work_order(session, tenant_id, work_order_id, for_update=True)
    if order.status not in OPEN_STATUSES:
        raise Conflict(f"a work order that is {order.status.value} cannot be edited")
    before = {key: _plain(getattr(order, key)) for key in changes}
    if "title" in changes:
        order.title = _text(changes["title"], "title", limit=MAX_TITLE, required=True)
    if "description" in changes:
        order.description = _text(
            changes["description"] or "", "description", limit=MAX_TEXT, required=False
        )
    if "priority" in changes:
        order.priority = parse_enum(Priority, changes["priority"], "priority")
    if "skill" in changes:
        skill = changes["skill"]
        order.skill = parse_enum(Skill, skill, "skill") if skill is not None else None
    if "entity_urn" in changes or "location" in changes:
        _place(
            session,
            tenant_id,
            order,
            changes.get("entity_urn", order.entity_urn),
            changes.get("location", order.location if "entity_urn" not in changes else None),
        )
    moment = _moment(None, _last_change(session, order))
    order.updated_at = moment
    _flush(session)
    after = {key: _plain(getattr(order, key)) for key in changes}
    _record(
        session,
        order,
        "edit",
        None,
        None,
        by_user,
        None,
        moment,
        {"before": before, "after": after},
    )
    session.flush()
    return order


def _plain(value: Any) -> Any:
    return value.value if hasattr(value, "value") else value


def add_note(
    session: Session, tenant_id: int, work_order_id: str, text: str, *, by_user: int | None
) -> WorkOrderEvent:
    order = get_work_order(session, tenant_id, work_order_id)
    clean = _text(text, "text", limit=MAX_TEXT, required=True)
    event = _record(
        session,
        order,
        "note",
        None,
        None,
        by_user,
        clean,
        _moment(None, _last_change(session, order)),
    )
    session.flush()
    return event


# --- field reports and photos --------------------------------------------------------


def _parts(parts: Any) -> list[dict[str, Any]]:
    if not isinstance(parts, list) or len(parts) > MAX_PARTS:
        raise invalid("parts", f"a list of at most {MAX_PARTS} parts")
    cleaned: list[dict[str, Any]] = []
    for index, part in enumerate(parts):
        if not isinstance(part, dict):
            raise invalid(f"parts.{index}", "each part is {name, quantity}")
        name = _text(part.get("name", ""), f"parts.{index}.name", limit=200, required=True)
        quantity = part.get("quantity", 1)
        if isinstance(quantity, bool) or not isinstance(quantity, int | float):
            raise invalid(f"parts.{index}.quantity", "must be a number")
        if not math.isfinite(quantity) or not 0 < quantity <= 100_000:
            raise invalid(f"parts.{index}.quantity", "must be positive")
        cleaned.append({"name": name, "quantity": quantity})
    return cleaned


def add_field_report(
    session: Session,
    tenant_id: int,
    work_order_id: str,
    draft: ReportDraft,
    *,
    by_user: int | None,
) -> FieldReport:
    text = _text(draft.text, "text", limit=MAX_TEXT, required=True)
    minutes = draft.minutes_spent
    if isinstance(minutes, bool) or not isinstance(minutes, int):
        raise invalid("minutes_spent", "a whole number of minutes")
    if not 0 <= minutes <= MAX_MINUTES_SPENT:
        raise invalid("minutes_spent", f"between 0 and {MAX_MINUTES_SPENT}")
    parts = _parts(draft.parts)
    order = get_work_order(session, tenant_id, work_order_id)
    if order.status not in REPORTABLE_STATUSES:
        raise Conflict(f"a report is written once work has started, not when {order.status.value}")
    report = FieldReport(
        public_id=str(uuid.uuid4()),
        work_order_id=order.id,
        author_id=by_user,
        text=text,
        minutes_spent=minutes,
        parts=parts,
    )
    session.add(report)
    session.flush()
    moment = _moment(None, _last_change(session, order))
    _record(
        session, order, "report", None, None, by_user, None, moment, {"report": report.public_id}
    )
    session.flush()
    return report


def reports_of(session: Session, work_order: WorkOrder) -> list[FieldReport]:
    return list(
        session.scalars(
            select(FieldReport)
            .where(FieldReport.work_order_id == work_order.id)
            .order_by(FieldReport.created_at, FieldReport.id)
        )
    )


def photo_type(content: bytes) -> str | None:
    """The image type recognised from the first bytes, or None."""
    for content_type, (signature, _suffix) in PHOTO_SIGNATURES.items():
        if content.startswith(signature):
            if content_type == "image/webp" and content[8:12] != b"WEBP":
                continue
            return content_type
    return None


def add_photo(
    session: Session,
    tenant_id: int,
    work_order_id: str,
    *,
    content: bytes,
    uploads_dir: Path,
    by_user: int | None,
    report_id: str | None = None,
) -> WorkOrderPhoto:
    """Store a photo under `uploads_dir/work-orders/<tenant>/` once its type is checked."""
    if not content:
        raise invalid("photo", "the file is empty")
    if len(content) > MAX_PHOTO_BYTES:
        raise invalid("photo", f"larger than {MAX_PHOTO_BYTES // (1024 * 1024)} MB")
    content_type = photo_type(content)
    if content_type is None:
        raise invalid("photo", "not a JPEG, PNG or WebP image")
    order = get_work_order(session, tenant_id, work_order_id)
    if order.status not in REPORTABLE_STATUSES:
        raise Conflict(f"photos are added once work has started, not when {order.status.value}")
    report_row = _report_row(session, order, report_id)
    public_id = str(uuid.uuid4())
    stored_name = f"work-orders/{tenant_id}/{public_id}{PHOTO_SIGNATURES[content_type][1]}"
    photo = WorkOrderPhoto(
        public_id=public_id,
        work_order_id=order.id,
        report_id=report_row,
        stored_name=stored_name,
        content_type=content_type,
        size_bytes=len(content),
        sha256=hashlib.sha256(content).hexdigest(),
        uploaded_by=by_user,
    )
    session.add(photo)
    session.flush()
    _write_file(uploads_dir / stored_name, content)
    return photo


def _report_row(session: Session, order: WorkOrder, report_id: str | None) -> int | None:
    if report_id is None:
        return None
    row = session.scalar(
        select(FieldReport.id).where(
            FieldReport.work_order_id == order.id, FieldReport.public_id == report_id
        )
    )
    if row is None:
        raise invalid("report_id", f"no report {report_id} on this work order")
    return row


def _write_file(path: Path, content: bytes) -> None:
    """Write then rename, so that a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(path.suffix + ".part")
    partial.write_bytes(content)
    os.replace(partial, path)


def photos_of(session: Session, work_order: WorkOrder) -> list[WorkOrderPhoto]:
    return list(
        session.scalars(
            select(WorkOrderPhoto)
            .where(WorkOrderPhoto.work_order_id == work_order.id)
            .order_by(WorkOrderPhoto.created_at, WorkOrderPhoto.id)
        )
    )


def get_photo(
    session: Session, tenant_id: int, work_order_id: str, photo_id: str
) -> WorkOrderPhoto:
    order = get_work_order(session, tenant_id, work_order_id)
    photo = session.scalar(
        select(WorkOrderPhoto).where(
            WorkOrderPhoto.work_order_id == order.id, WorkOrderPhoto.public_id == photo_id
        )
    )
    if photo is None:
        raise NotFound(f"no photo {photo_id}")
    return photo


# --- service levels ------------------------------------------------------------------


def service_levels(session: Session, tenant_id: int) -> dict[Priority, sla.Targets]:
    """The tenant's targets per priority, defaults filling what it has not set."""
    levels = dict(sla.DEFAULT_TARGETS)
    for row in session.scalars(select(ServiceLevel).where(ServiceLevel.tenant_id == tenant_id)):
        levels[row.priority] = sla.Targets(
            row.acknowledge_minutes, row.start_minutes, row.resolve_minutes
        )
    return levels


def set_service_level(
    session: Session, tenant_id: int, priority: Any, targets: sla.Targets
) -> sla.Targets:
    level = parse_enum(Priority, priority, "priority")
    values = (targets.acknowledge_minutes, targets.start_minutes, targets.resolve_minutes)
    names = ("acknowledge_minutes", "start_minutes", "resolve_minutes")
    for name, value in zip(names, values, strict=True):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 525_600:
            raise invalid(name, "a whole number of minutes between 1 and 525600 (one year)")
    if not targets.acknowledge_minutes <= targets.start_minutes <= targets.resolve_minutes:
        raise invalid("resolve_minutes", "acknowledge ≤ start ≤ resolve")
    row = session.scalar(
        select(ServiceLevel).where(
            ServiceLevel.tenant_id == tenant_id, ServiceLevel.priority == level
        )
    )
    if row is None:
        row = ServiceLevel(tenant_id=tenant_id, priority=level)
        session.add(row)
    row.acknowledge_minutes, row.start_minutes, row.resolve_minutes = values
    session.flush()
    return targets


def timelines(
    session: Session, work_orders: Sequence[WorkOrder]
) -> dict[int, list[tuple[datetime, WorkOrderStatus]]]:
    """The status timeline of each work order, in one query."""
    result: dict[int, list[tuple[datetime, WorkOrderStatus]]] = {wo.id: [] for wo in work_orders}
    ids = list(result)
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(WorkOrderEvent.work_order_id, WorkOrderEvent.at, WorkOrderEvent.to_status)
            .where(
                WorkOrderEvent.work_order_id.in_(ids[start : start + 500]),
                WorkOrderEvent.to_status.is_not(None),
            )
            .order_by(WorkOrderEvent.work_order_id, WorkOrderEvent.at, WorkOrderEvent.id)
        )
        for order_id, at, to_status in rows:
            if to_status is not None:
                result[order_id].append((at, to_status))
    return result


def sla_reports(
    session: Session, tenant_id: int, work_orders: Sequence[WorkOrder], now: datetime | None = None
) -> dict[int, sla.SlaReport]:
    """Service-level clocks of each work order, keyed by row id."""
    levels = service_levels(session, tenant_id)
    moment = now or utcnow()
    lines = timelines(session, work_orders)
    return {
        wo.id: sla.sla_report(wo.created_at, lines[wo.id], levels[wo.priority], moment)
        for wo in work_orders
    }


def list_breached(
    session: Session,
    tenant_id: int,
    where: WorkOrderFilter,
    *,
    limit: int = 100,
    offset: int = 0,
    now: datetime | None = None,
) -> Page:
    """Like `list_work_orders`, keeping those with a breached clock. The clocks are
    computed, not stored, so the filter runs over at most MAX_BREACH_SCAN work orders."""
    condition = and_(*_filter_clauses(session, tenant_id, where))
    orders = list(
        session.scalars(
            select(WorkOrder)
            .where(condition)
            .order_by(WorkOrder.created_at.desc(), WorkOrder.id.desc())
            .limit(MAX_BREACH_SCAN)
        )
    )
    reports = sla_reports(session, tenant_id, orders, now)
    matching = [order for order in orders if reports[order.id].breached]
    return Page(matching[offset : offset + limit], len(matching), limit, offset)


def created_between(
    session: Session, tenant_id: int, start: datetime, end: datetime, commune_id: int | None
) -> list[WorkOrder]:
    clauses: list[Any] = [
        WorkOrder.tenant_id == tenant_id,
        WorkOrder.created_at >= start,
        WorkOrder.created_at < end,
    ]
    if commune_id is not None:
        clauses.append(WorkOrder.commune_id == commune_id)
    return list(session.scalars(select(WorkOrder).where(*clauses).order_by(WorkOrder.created_at)))


# --- live updates (read by the web's event stream) -------------------------------------


@dataclass(frozen=True)
class WorkOrderChange:
    """One recorded work-order event with what a board needs to show it, without reloading."""

    event_id: int
    action: str
    at: datetime
    work_order_id: str
    title: str
    status: WorkOrderStatus
    from_status: WorkOrderStatus | None
    to_status: WorkOrderStatus | None
    priority: Priority


def last_work_order_event_id(session: Session, tenant_id: int) -> int:
    """The newest work-order event of the tenant (0 when none): where a live stream starts."""
    newest = session.scalar(
        select(func.max(WorkOrderEvent.id))
        .join(WorkOrder, WorkOrder.id == WorkOrderEvent.work_order_id)
        .where(WorkOrder.tenant_id == tenant_id)
    )
    return int(newest or 0)


def work_order_changes_after(
    session: Session, tenant_id: int, after_id: int, *, limit: int = 200
) -> list[WorkOrderChange]:
    """The tenant's work-order events recorded after `after_id`, oldest first."""
    rows = session.execute(
        select(
            WorkOrderEvent.id,
            WorkOrderEvent.action,
            WorkOrderEvent.at,
            WorkOrderEvent.from_status,
            WorkOrderEvent.to_status,
            WorkOrder,
        )
        .join(WorkOrder, WorkOrder.id == WorkOrderEvent.work_order_id)
        .where(WorkOrder.tenant_id == tenant_id, WorkOrderEvent.id > after_id)
        .order_by(WorkOrderEvent.id)
        .limit(limit)
    )
    return [
        WorkOrderChange(
            event_id=int(event_id),
            action=action,
            at=at,
            work_order_id=order.public_id,
            title=order.title,
            status=order.status,
            from_status=from_status,
            to_status=to_status,
            priority=order.priority,
        )
        for event_id, action, at, from_status, to_status, order in rows
    ]
