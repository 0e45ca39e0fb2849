"""Pages of the interventions domain: the work-order board, a work order, the field
page for agents on a phone, and the KPI table. Server-rendered, no script needed.

Actions are forms posted here; the route calls the service and redirects (303). A
refused action shows the page again with the reason, and nothing is stored.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, File, Form, Query, UploadFile
from fastapi.responses import FileResponse, HTMLResponse, Response

from territoire.errors import DomainError, NotFound, invalid
from territoire.http import DbSession
from territoire.interventions import kpis, service
from territoire.interventions.labels import (
    ACTION_LABELS,
    BOARD_COLUMNS,
    CLOCK_LABELS,
    MILESTONE_LABELS,
    PRIORITY_LABELS,
    SKILL_LABELS,
    STATUS_LABELS,
)
from territoire.interventions.models import OPEN_STATUSES, Priority, Skill, WorkOrder
from territoire.tenancy import service as tenancy
from territoire.tenancy.permissions import Permission, allows
from territoire.web.i18n import N_
from territoire.web.nav import NavEntry, register_nav
from territoire.web.templating import Page, PageContext, local_path, page_for

router = APIRouter(tags=["interventions pages"], include_in_schema=False)
OperatorPage = Annotated[PageContext, Depends(page_for(Permission.OPERATE))]
FieldPage = Annotated[PageContext, Depends(page_for(Permission.FIELD_WORK))]
STYLESHEET = Path(__file__).parent / "static" / "operations.css"
BOARD_LIMIT = 200

register_nav(NavEntry("work-orders", N_("Work orders"), "/work-orders", Permission.READ, order=50))
register_nav(NavEntry("field", N_("My work"), "/field", Permission.FIELD_WORK, order=55))
register_nav(NavEntry("kpis", N_("Indicators"), "/kpis", Permission.READ, order=60))


@router.get("/operations.css", include_in_schema=False)
def stylesheet() -> FileResponse:
    """The operations pages' styles (the web shell's static folder belongs to the shell)."""
    return FileResponse(
        STYLESHEET, media_type="text/css", headers={"Cache-Control": "public, max-age=3600"}
    )


def _user(page: PageContext) -> int | None:
    return page.principal.user_id if page.principal else None


def _may_operate(page: PageContext) -> bool:
    return page.principal is not None and allows(page.principal.role, Permission.OPERATE)


def _names(session: DbSession, user_ids: list[int | None]) -> dict[int, str]:
    names: dict[int, str] = {}
    for user_id in {u for u in user_ids if u is not None}:
        try:
            names[user_id] = tenancy.get_user(session, user_id).full_name
        except NotFound:
            continue
    return names


def _labels() -> dict[str, Any]:
    return {
        "status_labels": STATUS_LABELS,
        "priority_labels": PRIORITY_LABELS,
        "skill_labels": SKILL_LABELS,
        "action_labels": ACTION_LABELS,
        "milestone_labels": MILESTONE_LABELS,
        "clock_labels": CLOCK_LABELS,
    }


def _orders_context(session: DbSession, tenant_id: int, orders: list[WorkOrder]) -> dict[str, Any]:
    teams = {team.id: team for team in service.list_teams(session, tenant_id)}
    return {
        "sla": service.sla_reports(session, tenant_id, orders),
        "team_names": {team_id: team.name for team_id, team in teams.items()},
        "names": _names(session, [o.assignee_id for o in orders]),
        "commune_names": {c.id: c.name for c in tenancy.list_communes(session, tenant_id)},
    }


def _field_people(session: DbSession, tenant_id: int) -> list[dict[str, Any]]:
    return [
        {"id": user.id, "name": user.full_name}
        for user, role in tenancy.members_of(session, tenant_id)
        if allows(role, Permission.FIELD_WORK)
    ]


# --- board ---------------------------------------------------------------------------


def board_data(session: DbSession, page: PageContext, team: str, priority: str) -> dict[str, Any]:
    tenant_id = page.tenant_id
    where = service.WorkOrderFilter(
        statuses=list(BOARD_COLUMNS),
        priorities=[service.parse_enum(Priority, priority, "priority")] if priority else [],
        team_id=service.get_team_for_field(session, tenant_id, team) if team else None,
    )
    orders = service.list_work_orders(session, tenant_id, where, limit=BOARD_LIMIT).items
    context = _orders_context(session, tenant_id, orders)
    # Breached service levels first in each column; the sort is stable, so the service's
    # order (most urgent first) holds within the breached and the others.
    orders = sorted(orders, key=lambda order: not context["sla"][order.id].breached)
    columns = [
        {"status": status, "orders": [o for o in orders if o.status is status]}
        for status in BOARD_COLUMNS
    ]
    return {
        **_labels(),
        **context,
        "columns": columns,
        "teams": service.list_teams(session, tenant_id),
        "agents": _field_people(session, tenant_id),
        "priorities": list(Priority),
        "skills": list(Skill),
        "filters": {"team": team, "priority": priority},
        "can_operate": _may_operate(page),
        "return_to": page.request.url.path
        + (f"?{page.request.url.query}" if page.request.url.query else ""),
    }


@router.get("/work-orders", response_class=HTMLResponse)
def board(
    page: Page,
    session: DbSession,
    team: Annotated[str, Query(max_length=36)] = "",
    priority: Annotated[str, Query(max_length=16)] = "",
) -> Response:
    try:
        data = board_data(session, page, team, priority)
    except DomainError as error:
        data = board_data(session, page, "", "")
        return page.render(
            "interventions/board.html",
            {**data, "error": error.message, "form": {}},
            status_code=error.status_code,
        )
    return page.render("interventions/board.html", {**data, "error": None, "form": {}})


@router.post("/work-orders", response_class=HTMLResponse)
def create(
    page: OperatorPage,
    session: DbSession,
    title: Annotated[str, Form(max_length=200)] = "",
    description: Annotated[str, Form(max_length=10_000)] = "",
    priority: Annotated[str, Form(max_length=16)] = "normal",
    skill: Annotated[str, Form(max_length=32)] = "",
    team_id: Annotated[str, Form(max_length=36)] = "",
    entity_urn: Annotated[str, Form(max_length=255)] = "",
) -> Response:
    draft = service.WorkOrderDraft(
        title=title,
        description=description,
        priority=priority,  # type: ignore[arg-type]  # checked by the service
        skill=skill or None,
        team_id=team_id or None,
        entity_urn=entity_urn.strip() or None,
    )
    try:
        order = service.create_work_order(session, page.tenant_id, draft, created_by=_user(page))
    except DomainError as error:
        session.rollback()
        form = {"title": title, "description": description, "entity_urn": entity_urn}
        return page.render(
            "interventions/board.html",
            {**board_data(session, page, "", ""), "error": error.message, "form": form},
            status_code=error.status_code,
        )
    return page.redirect(f"/work-orders/{order.public_id}")


# --- one work order ------------------------------------------------------------------


def detail_data(session: DbSession, page: PageContext, order: WorkOrder) -> dict[str, Any]:
    tenant_id = page.tenant_id
    events = service.history(session, order)
    reports = service.reports_of(session, order)
    context = _orders_context(session, tenant_id, [order])
    may_operate = _may_operate(page)
    own = service.is_own(session, order, _user(page))
    actions = [
        action
        for action, step in service.LIFECYCLE.items()
        if order.status in step.sources
        and (may_operate or (own and action in service.FIELD_ACTIONS))
    ]
    return {
        **_labels(),
        **context,
        "order": order,
        "report": context["sla"][order.id],
        "events": events,
        "reports": reports,
        "photos": service.photos_of(session, order),
        "people": _names(
            session,
            [e.user_id for e in events] + [r.author_id for r in reports] + [order.created_by],
        ),
        "actions": actions,
        "can_operate": may_operate,
        "teams": service.list_teams(session, tenant_id),
        "agents": _field_people(session, tenant_id),
    }


@router.get("/work-orders/{work_order_id}", response_class=HTMLResponse)
def detail(work_order_id: str, page: Page, session: DbSession) -> Response:
    order = service.get_work_order(session, page.tenant_id, work_order_id)
    return page.render(
        "interventions/work_order.html", {**detail_data(session, page, order), "error": None}
    )


def _after(
    page: PageContext,
    session: DbSession,
    work_order_id: str,
    action: Callable[[], object],
    return_to: str = "",
    template: str = "interventions/work_order.html",
) -> Response:
    """Run an action, then go back; on refusal show the page again with the reason."""
    try:
        action()
    except DomainError as error:
        session.rollback()
        if template == "interventions/field.html":
            data = field_data(session, page)
        else:
            order = service.get_work_order(session, page.tenant_id, work_order_id)
            data = detail_data(session, page, order)
        return page.render(
            template, {**data, "error": error.message}, status_code=error.status_code
        )
    return page.redirect(local_path(return_to, f"/work-orders/{work_order_id}"))


@router.post("/work-orders/{work_order_id}/transition")
def transition(
    work_order_id: str,
    page: FieldPage,
    session: DbSession,
    action: Annotated[str, Form(max_length=32)] = "",
    note: Annotated[str, Form(max_length=10_000)] = "",
    return_to: Annotated[str, Form(max_length=2000)] = "",
) -> Response:
    def act() -> None:
        order = service.get_work_order(session, page.tenant_id, work_order_id)
        service.check_may_act(
            session, order, action, user_id=_user(page), may_operate=_may_operate(page)
        )
        service.transition(
            session, page.tenant_id, work_order_id, action, by_user=_user(page), note=note or None
        )

    template = (
        "interventions/field.html" if return_to == "/field" else "interventions/work_order.html"
    )
    return _after(page, session, work_order_id, act, return_to, template)


@router.post("/work-orders/{work_order_id}/dispatch")
def dispatch(
    work_order_id: str,
    page: OperatorPage,
    session: DbSession,
    team_id: Annotated[str, Form(max_length=36)] = "",
    assignee: Annotated[str, Form(max_length=20)] = "",
) -> Response:
    def act() -> None:
        service.dispatch(
            session,
            page.tenant_id,
            work_order_id,
            team_id=team_id or None,
            assignee_id=int(assignee) if assignee.isdigit() else None,
            by_user=_user(page),
        )

    return _after(page, session, work_order_id, act)


@router.post("/work-orders/{work_order_id}/note")
def note(
    work_order_id: str,
    page: FieldPage,
    session: DbSession,
    text: Annotated[str, Form(max_length=10_000)] = "",
) -> Response:
    def act() -> None:
        order = service.get_work_order(session, page.tenant_id, work_order_id)
        service.check_may_act(
            session, order, "note", user_id=_user(page), may_operate=_may_operate(page)
        )
        service.add_note(session, page.tenant_id, work_order_id, text, by_user=_user(page))

    return _after(page, session, work_order_id, act)


# --- the field page ------------------------------------------------------------------


def field_data(session: DbSession, page: PageContext) -> dict[str, Any]:
    tenant_id = page.tenant_id
    where = service.WorkOrderFilter(statuses=list(OPEN_STATUSES), mine_user_id=_user(page) or -1)
    orders = service.list_work_orders(session, tenant_id, where, limit=BOARD_LIMIT).items
    orders.sort(key=lambda o: (list(Priority).index(o.priority), o.created_at))
    return {
        **_labels(),
        **_orders_context(session, tenant_id, orders),
        "orders": orders,
        "actions": {
            o.id: [
                a for a in ("start", "hold", "resume") if o.status in service.LIFECYCLE[a].sources
            ]
            for o in orders
        },
    }


@router.get("/field", response_class=HTMLResponse)
def field(page: FieldPage, session: DbSession) -> Response:
    return page.render("interventions/field.html", {**field_data(session, page), "error": None})


def parse_parts(text: str) -> list[dict[str, Any]]:
    """One part per line, "name" or "quantity × name" (also "quantity x name")."""
    parts: list[dict[str, Any]] = []
    for line in text.splitlines():
        cleaned = line.strip()
        if not cleaned:
            continue
        head, _, rest = cleaned.replace("×", "x").partition(" x ")
        if rest and head.replace(",", ".").replace(".", "", 1).isdigit():
            parts.append({"name": rest.strip(), "quantity": float(head.replace(",", "."))})
        else:
            parts.append({"name": cleaned, "quantity": 1})
    return parts


@router.post("/field/{work_order_id}/report")
def field_report(
    work_order_id: str,
    page: FieldPage,
    session: DbSession,
    text: Annotated[str, Form(max_length=10_000)] = "",
    minutes_spent: Annotated[str, Form(max_length=10)] = "0",
    parts: Annotated[str, Form(max_length=5_000)] = "",
    photo: Annotated[UploadFile | None, File()] = None,
    then: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    """The report form of the field page: text, time, parts, an optional photo, and
    "finish" to mark the work done in the same step."""

    def act() -> None:
        order = service.get_work_order(session, page.tenant_id, work_order_id)
        service.check_may_act(
            session, order, "report", user_id=_user(page), may_operate=_may_operate(page)
        )
        if not minutes_spent.strip().isdigit():
            raise invalid("minutes_spent", "a whole number of minutes")
        draft = service.ReportDraft(text, int(minutes_spent), parse_parts(parts))
        report = service.add_field_report(
            session, page.tenant_id, work_order_id, draft, by_user=_user(page)
        )
        content = photo.file.read(service.MAX_PHOTO_BYTES + 1) if photo and photo.filename else b""
        if content:
            service.add_photo(
                session,
                page.tenant_id,
                work_order_id,
                content=content,
                uploads_dir=page.settings.uploads_dir,
                by_user=_user(page),
                report_id=report.public_id,
            )
        if then == "done":
            service.transition(session, page.tenant_id, work_order_id, "done", by_user=_user(page))

    return _after(page, session, work_order_id, act, "/field", "interventions/field.html")


# --- KPIs ----------------------------------------------------------------------------


# A trend splits the period into at most this many steps (one computation each).
MAX_TREND_STEPS = 31


def trend_steps(first: datetime, last: datetime) -> list[tuple[datetime, datetime]]:
    """Consecutive steps covering the period: days, or longer steps for long periods."""
    days = max(1, math.ceil((last - first).total_seconds() / 86_400))
    step = timedelta(days=max(1, math.ceil(days / MAX_TREND_STEPS)))
    steps = []
    start = first
    while start < last:
        steps.append((start, min(start + step, last)))
        start += step
    return steps


def kpi_trends(
    session: DbSession, tenant_id: int, first: datetime, last: datetime, commune_id: int | None
) -> dict[str, dict[str, Any]]:
    """Each overall KPI computed step by step over the period, for its chart and table."""
    trends: dict[str, dict[str, Any]] = {}
    for start, end in trend_steps(first, last):
        for row in kpis.compute(session, kpis.KpiQuery(tenant_id, start, end, commune_id)):
            if row.value.subject:
                continue
            trend = trends.setdefault(
                row.definition.key, {"t": [], "v": [], "starts": [], "target": row.target}
            )
            trend["t"].append(int(start.timestamp()))
            trend["starts"].append(start)
            trend["v"].append(row.value.value)
    return trends


@router.get("/kpis", response_class=HTMLResponse)
def kpi_page(
    page: Page,
    session: DbSession,
    start: Annotated[str, Query(alias="from", max_length=40)] = "",
    end: Annotated[str, Query(alias="to", max_length=40)] = "",
    commune: Annotated[str, Query(max_length=5)] = "",
) -> Response:
    tenant_id = page.tenant_id
    communes = tenancy.list_communes(session, tenant_id)
    status, error, rows, trends = 200, None, [], {}
    try:
        first, last = kpis.period(start or None, end or None)
        commune_id = next((c.id for c in communes if c.insee_code == commune), None)
        if commune and commune_id is None:
            raise invalid("commune", f"no commune {commune} in this tenant")
        rows = kpis.compute(session, kpis.KpiQuery(tenant_id, first, last, commune_id))
        trends = kpi_trends(session, tenant_id, first, last, commune_id)
    except DomainError as failure:
        status, error = failure.status_code, failure.message
    query = urlencode({"from": start, "to": end, "commune": commune, "format": "csv"})
    return page.render(
        "interventions/kpis.html",
        {
            "rows": rows,
            "trends": trends,
            "error": error,
            "communes": communes,
            "filters": {"from": start, "to": end, "commune": commune},
            "csv_url": f"/api/v1/kpis?{query}",
        },
        status_code=status,
    )
