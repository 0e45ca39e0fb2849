"""The alarm console: server-rendered pages, usable with the keyboard and without script.

Every action is a form posted to this router, which calls the alarm service and sends
the operator back where they were (303). A refused action shows the page again with the
reason and the matching status code; nothing is stored then.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import HTMLResponse, Response

from territoire.alarms import service
from territoire.alarms.labels import EVENT_LABELS, SEVERITY_LABELS, STATUS_LABELS
from territoire.alarms.models import ACTIVE_STATUSES, Alarm, Severity
from territoire.errors import DomainError, NotFound, invalid
from territoire.http import DbSession
from territoire.interventions import service as interventions
from territoire.interventions.labels import PRIORITY_LABELS, SKILL_LABELS
from territoire.interventions.models import Priority, Skill
from territoire.tenancy import service as tenancy
from territoire.tenancy.permissions import Permission, allows
from territoire.web.i18n import N_
from territoire.web.nav import NavEntry, register_nav
from territoire.web.templating import Page, PageContext, local_path, page_for

router = APIRouter(tags=["alarms pages"], include_in_schema=False)
OperatorPage = Annotated[PageContext, Depends(page_for(Permission.OPERATE))]
PAGE_SIZE = 50

register_nav(NavEntry("alarms", N_("Alarms"), "/alarms", Permission.READ, order=40))

STATUS_CHOICES: dict[str, str] = {
    "active": N_("Active"),
    **{status.value: label for status, label in STATUS_LABELS.items()},
    "all": N_("All statuses"),
}


def _names(session: DbSession, user_ids: list[int | None]) -> dict[int, str]:
    names: dict[int, str] = {}
    for user_id in {u for u in user_ids if u is not None}:
        try:
            names[user_id] = tenancy.get_user(session, user_id).full_name
        except NotFound:
            continue
    return names


def _assignable(session: DbSession, tenant_id: int) -> list[dict[str, Any]]:
    return [
        {"id": user.id, "name": user.full_name, "email": user.email}
        for user, role in tenancy.members_of(session, tenant_id)
        if allows(role, Permission.OPERATE) or allows(role, Permission.FIELD_WORK)
    ]


def _common(page: PageContext) -> dict[str, Any]:
    principal = page.principal
    return {
        "can_operate": principal is not None and allows(principal.role, Permission.OPERATE),
        "severity_labels": SEVERITY_LABELS,
        "status_labels": STATUS_LABELS,
        "event_labels": EVENT_LABELS,
        "priority_labels": PRIORITY_LABELS,
        "skill_labels": SKILL_LABELS,
    }


SORT_LABELS: dict[str, str] = {
    "severity": N_("Severity"),
    "raised": N_("Raised"),
    "last_seen": N_("Last seen"),
    "entity": N_("Asset"),
    "status": N_("Status"),
}


@dataclass(frozen=True)
class ConsoleQuery:
    """What the operator asked the console for (all from the query string)."""

    status: str = "active"
    severity: str = ""
    commune: str = ""
    type: str = ""
    assignee: str = ""
    sort: str = "severity"
    order: str = "asc"
    offset: int = 0

    def link(self, **changes: Any) -> str:
        """The console URL with some parameters changed (defaults left out)."""
        values = {**asdict(self), **changes}
        defaults = asdict(ConsoleQuery())
        kept = {k: v for k, v in values.items() if v != defaults[k] or k == "status"}
        return "/alarms?" + urlencode(kept)

    def sort_link(self, column: str) -> str:
        """Sorting by the current column again reverses it; another column starts ascending."""
        order = "desc" if column == self.sort and self.order == "asc" else "asc"
        return self.link(sort=column, order=order, offset=0)


def _assignee_filter(session: DbSession, page: PageContext, value: str) -> int | None:
    if not value:
        return None
    if value == "me":
        return page.principal.user_id if page.principal else None
    if not value.isdigit():
        raise invalid("assignee", "a user id or 'me'")
    return int(value)


def console_data(session: DbSession, page: PageContext, query: ConsoleQuery) -> dict[str, Any]:
    tenant_id = page.tenant_id
    communes = tenancy.list_communes(session, tenant_id)
    statuses = (
        list(ACTIVE_STATUSES)
        if query.status == "active"
        else ([] if query.status == "all" else [service.parse_status(query.status)])
    )
    if query.commune and not any(c.insee_code == query.commune for c in communes):
        raise invalid("commune", "not a commune of this collectivity")
    if query.order not in ("asc", "desc"):
        raise invalid("order", "asc or desc")
    where = service.AlarmFilter(
        statuses=statuses,
        severities=[service.parse_severity(query.severity)] if query.severity else [],
        commune_id=next((c.id for c in communes if c.insee_code == query.commune), None),
        assignee_id=_assignee_filter(session, page, query.assignee),
        top_level=True,
    )
    found = service.list_alarms_sorted(
        session,
        tenant_id,
        where,
        sort=query.sort,
        descending=query.order == "desc",
        entity_types=[query.type] if query.type else [],
        limit=PAGE_SIZE,
        offset=query.offset,
    )
    offset = query.offset
    return {
        **_common(page),
        "alarms": found.items,
        "total": found.total,
        "offset": offset,
        "next_offset": offset + PAGE_SIZE if offset + PAGE_SIZE < found.total else None,
        "previous_offset": max(0, offset - PAGE_SIZE) if offset else None,
        "children": service.child_counts(session, found.items),
        "names": _names(session, [a.assignee_id for a in found.items]),
        "commune_names": {c.id: c.name for c in communes},
        "communes": communes,
        "counts": service.counts_by_status(session, tenant_id),
        "query": query,
        "filters": asdict(query),
        "status_choices": STATUS_CHOICES,
        "severities": list(Severity),
        "entity_types": service.alarm_entity_types(session, tenant_id),
        "assignable": _assignable(session, tenant_id),
        "sort_labels": SORT_LABELS,
        "return_to": str(page.request.url.path)
        + (f"?{page.request.url.query}" if page.request.url.query else ""),
    }


@router.get("/alarms", response_class=HTMLResponse)
def console(
    page: Page,
    session: DbSession,
    status: Annotated[str, Query(max_length=32)] = "active",
    severity: Annotated[str, Query(max_length=16)] = "",
    commune: Annotated[str, Query(max_length=5)] = "",
    type: Annotated[str, Query(max_length=100)] = "",
    assignee: Annotated[str, Query(max_length=20)] = "",
    sort: Annotated[str, Query(max_length=16)] = "severity",
    order: Annotated[str, Query(max_length=4)] = "asc",
    offset: Annotated[int, Query(ge=0)] = 0,
) -> Response:
    query = ConsoleQuery(status, severity, commune, type, assignee, sort, order, offset)
    try:
        data = console_data(session, page, query)
    except DomainError as error:
        data = console_data(session, page, ConsoleQuery())
        return page.render(
            "alarms/console.html", {**data, "error": error.message}, status_code=error.status_code
        )
    return page.render("alarms/console.html", {**data, "error": None})


def detail_data(session: DbSession, page: PageContext, alarm: Alarm) -> dict[str, Any]:
    tenant_id = page.tenant_id
    events = service.history(session, alarm)
    children = service.children_of(session, alarm)
    parent = None
    if alarm.parent_id is not None:
        parent_ids = service.public_ids(session, [alarm.parent_id])
        parent = parent_ids.get(alarm.parent_id)
    communes = {c.id: c.name for c in tenancy.list_communes(session, tenant_id)}
    people = [alarm.assignee_id, alarm.acknowledged_by, *(e.user_id for e in events)]
    return {
        **_common(page),
        "alarm": alarm,
        "events": events,
        "children": children,
        "parent_id": parent,
        "commune_name": communes.get(alarm.commune_id) if alarm.commune_id else None,
        "names": _names(session, people),
        "assignable": _assignable(session, tenant_id),
        "teams": interventions.list_teams(session, tenant_id),
        "priorities": list(Priority),
        "skills": list(Skill),
        "suggested_priority": service.PRIORITY_OF_SEVERITY[alarm.severity],
        "return_to": f"/alarms/{alarm.public_id}",
    }


@router.get("/alarms/{alarm_id}", response_class=HTMLResponse)
def detail(alarm_id: str, page: Page, session: DbSession) -> Response:
    alarm = service.get_alarm(session, page.tenant_id, alarm_id)
    return page.render("alarms/alarm.html", {**detail_data(session, page, alarm), "error": None})


def _after(
    page: PageContext, session: DbSession, alarm_id: str, return_to: str, action: Any
) -> Response:
    """Run an operator's action, then go back; on refusal show the alarm with the reason."""
    try:
        action()
    except DomainError as error:
        session.rollback()
        alarm = service.get_alarm(session, page.tenant_id, alarm_id)
        return page.render(
            "alarms/alarm.html",
            {**detail_data(session, page, alarm), "error": error.message},
            status_code=error.status_code,
        )
    return page.redirect(local_path(return_to, f"/alarms/{alarm_id}"))


ReturnTo = Annotated[str, Form(max_length=2000)]
Note = Annotated[str, Form(max_length=2000)]


@router.post("/alarms/{alarm_id}/acknowledge")
def acknowledge(
    alarm_id: str, page: OperatorPage, session: DbSession, return_to: ReturnTo = "", note: Note = ""
) -> Response:
    user = page.principal.user_id if page.principal else None
    return _after(
        page,
        session,
        alarm_id,
        return_to,
        lambda: service.acknowledge(
            session, page.tenant_id, alarm_id, by_user=user, note=note or None
        ),
    )


@router.post("/alarms/{alarm_id}/clear")
def clear(
    alarm_id: str, page: OperatorPage, session: DbSession, return_to: ReturnTo = "", note: Note = ""
) -> Response:
    user = page.principal.user_id if page.principal else None
    return _after(
        page,
        session,
        alarm_id,
        return_to,
        lambda: service.clear(session, page.tenant_id, alarm_id, by_user=user, note=note or None),
    )


@router.post("/alarms/{alarm_id}/close")
def close(
    alarm_id: str, page: OperatorPage, session: DbSession, return_to: ReturnTo = "", note: Note = ""
) -> Response:
    user = page.principal.user_id if page.principal else None
    return _after(
        page,
        session,
        alarm_id,
        return_to,
        lambda: service.close(session, page.tenant_id, alarm_id, by_user=user, note=note or None),
    )


@router.post("/alarms/{alarm_id}/comment")
def comment(
    alarm_id: str,
    page: OperatorPage,
    session: DbSession,
    text: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    user = page.principal.user_id if page.principal else None
    return _after(
        page,
        session,
        alarm_id,
        "",
        lambda: service.add_comment(session, page.tenant_id, alarm_id, text, by_user=user),
    )


@router.post("/alarms/{alarm_id}/assign")
def assign(
    alarm_id: str,
    page: OperatorPage,
    session: DbSession,
    assignee: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    user = page.principal.user_id if page.principal else None

    def act() -> None:
        chosen = int(assignee) if assignee.isdigit() else None
        service.assign(session, page.tenant_id, alarm_id, chosen, by_user=user)

    return _after(page, session, alarm_id, "", act)


@router.post("/alarms/{alarm_id}/work-order")
def create_work_order(
    alarm_id: str,
    page: OperatorPage,
    session: DbSession,
    title: Annotated[str, Form(max_length=200)] = "",
    priority: Annotated[str, Form(max_length=16)] = "",
    skill: Annotated[str, Form(max_length=32)] = "",
    team_id: Annotated[str, Form(max_length=36)] = "",
) -> Response:
    user = page.principal.user_id if page.principal else None
    created: list[str] = []

    def act() -> None:
        options = service.WorkOrderOptions(
            title=title.strip() or None,
            priority=interventions.parse_enum(Priority, priority, "priority") if priority else None,
            skill=skill or None,
            team_id=team_id or None,
        )
        order = service.create_work_order(session, page.tenant_id, alarm_id, options, by_user=user)
        created.append(order.public_id)

    response = _after(page, session, alarm_id, "", act)
    if created:
        return page.redirect(f"/work-orders/{created[0]}")
    return response
