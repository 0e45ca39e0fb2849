"""The hand-over to the interventions domain, through its service functions only."""

from __future__ import annotations

from sqlalchemy.orm import Session

from territoire.errors import NotFound, invalid
from territoire.interventions import service as interventions
from territoire.interventions.models import Priority
from territoire.requests.models import Category, CitizenRequest

# The work order's source kind that points back at a citizen request (its public id).
SOURCE_KIND = "request"


def check_team(session: Session, tenant_id: int, team_id: str, field_name: str) -> None:
    try:
        interventions.get_team(session, tenant_id, team_id)
    except NotFound as error:
        raise invalid(field_name, f"no team {team_id} in this tenant") from error


def teams(session: Session, tenant_id: int) -> list[tuple[str, str]]:
    """(public id, name) of the tenant's teams, for routing screens."""
    return [(team.public_id, team.name) for team in interventions.list_teams(session, tenant_id)]


def team_name(session: Session, tenant_id: int, team_id: str | None) -> str | None:
    if team_id is None:
        return None
    try:
        return interventions.get_team(session, tenant_id, team_id).name
    except NotFound:
        return None


def _priority(value: str | None) -> Priority:
    if value is None or value == "":
        return Priority.NORMAL
    try:
        return Priority(value)
    except ValueError as error:
        choices = ", ".join(p.value for p in Priority)
        raise invalid("priority", f"one of {choices}") from error


def create_work_order(
    session: Session,
    tenant_id: int,
    request: CitizenRequest,
    category: Category,
    *,
    team_id: str | None,
    priority: str | None,
    skill: str | None,
    created_by: int | None,
) -> str:
    """Create the work order for a request; returns its public id."""
    if team_id is not None:
        check_team(session, tenant_id, team_id, "team_id")
    location = (
        {"type": "Point", "coordinates": [request.lon, request.lat]}
        if request.lat is not None and request.lon is not None
        else None
    )
    where = f"\n{request.address}" if request.address else ""
    draft = interventions.WorkOrderDraft(
        title=f"{category.name} — signalement {request.code}"[:200],
        description=(request.description + where).strip(),
        priority=_priority(priority),
        skill=skill,
        team_id=team_id,
        location=location,
        source_kind=SOURCE_KIND,
        source_ref=request.public_id,
    )
    order = interventions.create_work_order(session, tenant_id, draft, created_by=created_by)
    return order.public_id


def work_order_status(session: Session, tenant_id: int, work_order_id: str) -> str | None:
    try:
        return interventions.get_work_order(session, tenant_id, work_order_id).status.value
    except NotFound:
        return None
