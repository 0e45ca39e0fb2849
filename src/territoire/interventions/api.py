"""HTTP routes of the interventions domain: teams, work orders, service levels, KPIs."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Depends, File, Form, Query, Response, UploadFile
from fastapi.responses import FileResponse

from territoire.errors import NotFound, invalid
from territoire.http import Administrator, AppSettings, DbSession, Reader, requires
from territoire.interventions import kpis, pages, service
from territoire.interventions.models import (
    FieldReport,
    Priority,
    Skill,
    SourceKind,
    Team,
    WorkOrder,
    WorkOrderEvent,
    WorkOrderPhoto,
    WorkOrderStatus,
)
from territoire.interventions.schemas import (
    ClockOut,
    DispatchIn,
    KpiDefinitionOut,
    KpiReportOut,
    KpiRowOut,
    KpiTargetIn,
    KpiTargetOut,
    NoteIn,
    Person,
    PhotoOut,
    ReportIn,
    ReportOut,
    ServiceLevelOut,
    SlaOut,
    TeamIn,
    TeamOut,
    TeamPatch,
    TeamRef,
    TransitionIn,
    WorkOrderDetailOut,
    WorkOrderEventOut,
    WorkOrderIn,
    WorkOrderOut,
    WorkOrderPageOut,
    WorkOrderPatch,
)
from territoire.interventions.sla import SlaReport, Targets
from territoire.tenancy import service as tenancy
from territoire.tenancy.permissions import Permission, allows
from territoire.tenancy.service import Principal

api = APIRouter(prefix="/api/v1", tags=["interventions"])

Operator = Annotated[Principal, Depends(requires(Permission.OPERATE))]
FieldWorker = Annotated[Principal, Depends(requires(Permission.FIELD_WORK))]


# --- presenting people, teams and work orders ----------------------------------------


def people(session: DbSession, user_ids: Iterable[int | None]) -> dict[int, Person]:
    found: dict[int, Person] = {}
    for user_id in {user_id for user_id in user_ids if user_id is not None}:
        try:
            user = tenancy.get_user(session, user_id)
        except NotFound:
            continue
        found[user_id] = Person(email=user.email, full_name=user.full_name)
    return found


def member_by_email(
    session: DbSession, tenant_id: int, email: str | None, field_name: str
) -> int | None:
    """The user id of a member of the tenant named by e-mail (None stays None)."""
    if email is None:
        return None
    user = tenancy.find_user_by_email(session, email)
    if user is None or tenancy.role_in(session, user.id, tenant_id) is None:
        raise invalid(field_name, f"no member {email} in this tenant")
    return user.id


def team_out(session: DbSession, team: Team) -> TeamOut:
    member_ids = service.team_member_ids(session, [team.id])[team.id]
    found = people(session, member_ids)
    return TeamOut(
        id=team.public_id,
        name=team.name,
        skills=[Skill(skill) for skill in team.skills],
        members=[found[user_id] for user_id in member_ids if user_id in found],
    )


def sla_out(report: SlaReport) -> SlaOut:
    return SlaOut(
        breached=report.breached,
        paused=report.paused,
        clocks=[
            ClockOut(
                milestone=clock.milestone,
                target_minutes=clock.target_minutes,
                elapsed_minutes=round(clock.elapsed_minutes, 2),
                reached_at=clock.reached_at,
                due_at=clock.due_at,
                state=clock.state,
            )
            for clock in report.clocks
        ],
    )


def allowed_actions(order: WorkOrder) -> list[str]:
    return [action for action, step in service.LIFECYCLE.items() if order.status in step.sources]


@dataclass
class Presenter:
    """Loads once what a list of work orders refers to: teams, people, communes, clocks."""

    session: DbSession
    tenant_id: int
    orders: Sequence[WorkOrder]
    teams: dict[int, Team] = field(default_factory=dict)
    persons: dict[int, Person] = field(default_factory=dict)
    communes: dict[int, str] = field(default_factory=dict)
    reports: dict[int, SlaReport] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.teams = {team.id: team for team in service.list_teams(self.session, self.tenant_id)}
        self.persons = people(
            self.session, [o.assignee_id for o in self.orders] + [o.created_by for o in self.orders]
        )
        self.communes = {
            c.id: c.insee_code for c in tenancy.list_communes(self.session, self.tenant_id)
        }
        self.reports = service.sla_reports(self.session, self.tenant_id, self.orders)

    def out(self, order: WorkOrder) -> WorkOrderOut:
        team = self.teams.get(order.team_id) if order.team_id is not None else None
        return WorkOrderOut(
            id=order.public_id,
            title=order.title,
            description=order.description,
            priority=order.priority,
            skill=order.skill,
            status=order.status,
            team=TeamRef(id=team.public_id, name=team.name) if team else None,
            assignee=self.persons.get(order.assignee_id) if order.assignee_id else None,
            entity_urn=order.entity_urn,
            entity_type=order.entity_type,
            commune=self.communes.get(order.commune_id) if order.commune_id else None,
            location=order.location,
            source_kind=order.source_kind,
            source_ref=order.source_ref,
            created_by=self.persons.get(order.created_by) if order.created_by else None,
            created_at=order.created_at,
            updated_at=order.updated_at,
            sla=sla_out(self.reports[order.id]),
            actions=allowed_actions(order),
        )


def detail_out(session: DbSession, tenant_id: int, order: WorkOrder) -> WorkOrderDetailOut:
    base = Presenter(session, tenant_id, [order]).out(order)
    events = service.history(session, order)
    reports = service.reports_of(session, order)
    photos = service.photos_of(session, order)
    who = people(
        session,
        [e.user_id for e in events] + [r.author_id for r in reports],
    )
    report_ids = {report.id: report.public_id for report in reports}
    return WorkOrderDetailOut(
        **base.model_dump(),
        history=[event_out(event, who) for event in events],
        reports=[report_out(report, who) for report in reports],
        photos=[photo_out(order, photo, report_ids) for photo in photos],
    )


def event_out(event: WorkOrderEvent, who: dict[int, Person]) -> WorkOrderEventOut:
    return WorkOrderEventOut(
        at=event.at,
        action=event.action,
        from_status=event.from_status,
        to_status=event.to_status,
        by=who.get(event.user_id) if event.user_id else None,
        note=event.note,
        data=event.data,
    )


def report_out(report: FieldReport, who: dict[int, Person]) -> ReportOut:
    return ReportOut(
        id=report.public_id,
        author=who.get(report.author_id) if report.author_id else None,
        text=report.text,
        minutes_spent=report.minutes_spent,
        parts=report.parts,
        created_at=report.created_at,
    )


def photo_out(order: WorkOrder, photo: WorkOrderPhoto, report_ids: dict[int, str]) -> PhotoOut:
    return PhotoOut(
        id=photo.public_id,
        content_type=photo.content_type,
        size_bytes=photo.size_bytes,
        sha256=photo.sha256,
        report_id=report_ids.get(photo.report_id) if photo.report_id else None,
        url=f"/api/v1/work-orders/{order.public_id}/photos/{photo.public_id}",
        created_at=photo.created_at,
    )


def may_operate(principal: Principal) -> bool:
    return allows(principal.role, Permission.OPERATE)


# --- teams ---------------------------------------------------------------------------


def _member_ids(session: DbSession, tenant_id: int, emails: list[str]) -> list[int]:
    return [
        user_id
        for email in emails
        if (user_id := member_by_email(session, tenant_id, email, "members")) is not None
    ]


@api.get("/teams", response_model=list[TeamOut])
def list_teams(session: DbSession, principal: Reader) -> list[TeamOut]:
    return [team_out(session, team) for team in service.list_teams(session, principal.tenant_id)]


@api.post("/teams", response_model=TeamOut, status_code=201)
def create_team(body: TeamIn, session: DbSession, principal: Administrator) -> TeamOut:
    team = service.create_team(
        session,
        principal.tenant_id,
        name=body.name,
        skills=body.skills,
        member_ids=_member_ids(session, principal.tenant_id, body.members),
    )
    return team_out(session, team)


@api.get("/teams/{team_id}", response_model=TeamOut)
def get_team(team_id: str, session: DbSession, principal: Reader) -> TeamOut:
    return team_out(session, service.get_team(session, principal.tenant_id, team_id))


@api.patch("/teams/{team_id}", response_model=TeamOut)
def update_team(
    team_id: str, body: TeamPatch, session: DbSession, principal: Administrator
) -> TeamOut:
    members = body.members
    team = service.update_team(
        session,
        principal.tenant_id,
        team_id,
        name=body.name,
        skills=body.skills,
        member_ids=_member_ids(session, principal.tenant_id, members)
        if members is not None
        else None,
    )
    return team_out(session, team)


@api.delete("/teams/{team_id}", status_code=204)
def delete_team(team_id: str, session: DbSession, principal: Administrator) -> Response:
    service.delete_team(session, principal.tenant_id, team_id)
    return Response(status_code=204)


# --- work orders ---------------------------------------------------------------------


def _enum_list(text: str | None, parse: Any, field_name: str) -> list[Any]:
    return [parse(part, field_name) for part in (text or "").split(",") if part]


def commune_id_of(session: DbSession, tenant_id: int, code: str | None) -> int | None:
    if not code:
        return None
    try:
        return tenancy.get_commune(session, tenant_id, code).id
    except NotFound as error:
        raise invalid("commune", f"no commune {code} in this tenant") from error


@api.get("/work-orders", response_model=WorkOrderPageOut)
def list_work_orders(
    session: DbSession,
    principal: Reader,
    status: Annotated[
        str | None, Query(description="One status or several, comma-separated")
    ] = None,
    priority: Annotated[str | None, Query(description="Comma-separated priorities")] = None,
    team: Annotated[str | None, Query(description="Team id")] = None,
    assignee: Annotated[str | None, Query(description="E-mail of the agent")] = None,
    mine: Annotated[bool, Query(description="Mine or my teams' (signed-in agent)")] = False,
    commune: Annotated[str | None, Query(description="INSEE code")] = None,
    source_kind: SourceKind | None = None,
    source_ref: Annotated[str | None, Query(max_length=64)] = None,
    entity: Annotated[str | None, Query(max_length=255, description="Entity URN")] = None,
    breached: Annotated[bool, Query(description="Only those with a breached clock")] = False,
    limit: Annotated[int, Query(ge=1, le=service.MAX_PAGE_SIZE)] = 100,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> WorkOrderPageOut:
    tenant_id = principal.tenant_id
    where = service.WorkOrderFilter(
        statuses=_enum_list(
            status, lambda v, f: service.parse_enum(WorkOrderStatus, v, f), "status"
        ),
        priorities=_enum_list(
            priority, lambda v, f: service.parse_enum(Priority, v, f), "priority"
        ),
        team_id=service.get_team_for_field(session, tenant_id, team) if team else None,
        assignee_id=member_by_email(session, tenant_id, assignee, "assignee"),
        mine_user_id=(principal.user_id or -1) if mine else None,
        commune_id=commune_id_of(session, tenant_id, commune),
        source_kind=source_kind,
        source_ref=source_ref,
        entity_urn=entity,
    )
    lister = service.list_breached if breached else service.list_work_orders
    page = lister(session, tenant_id, where, limit=limit, offset=offset)
    presenter = Presenter(session, tenant_id, page.items)
    page_items, total = page.items, page.total
    following = offset + limit
    return WorkOrderPageOut(
        items=[presenter.out(order) for order in page_items],
        total=total,
        limit=limit,
        offset=offset,
        next_offset=following if following < total else None,
    )


@api.post("/work-orders", response_model=WorkOrderDetailOut, status_code=201)
def create_work_order(
    body: WorkOrderIn, session: DbSession, principal: Operator
) -> WorkOrderDetailOut:
    tenant_id = principal.tenant_id
    assignee_id = member_by_email(session, tenant_id, body.assignee, "assignee")
    draft = service.WorkOrderDraft(
        title=body.title,
        description=body.description,
        priority=body.priority,
        skill=body.skill,
        team_id=body.team_id,
        entity_urn=body.entity_urn,
        location=body.location,
    )
    order = service.create_work_order(session, tenant_id, draft, created_by=principal.user_id)
    if assignee_id is not None:
        order = service.dispatch(
            session,
            tenant_id,
            order.public_id,
            team_id=None,
            assignee_id=assignee_id,
            by_user=principal.user_id,
        )
    return detail_out(session, tenant_id, order)


@api.get("/work-orders/{work_order_id}", response_model=WorkOrderDetailOut)
def get_work_order(work_order_id: str, session: DbSession, principal: Reader) -> WorkOrderDetailOut:
    order = service.get_work_order(session, principal.tenant_id, work_order_id)
    return detail_out(session, principal.tenant_id, order)


@api.patch("/work-orders/{work_order_id}", response_model=WorkOrderDetailOut)
def update_work_order(
    work_order_id: str, body: WorkOrderPatch, session: DbSession, principal: Operator
) -> WorkOrderDetailOut:
    order = service.update_details(
        session,
        principal.tenant_id,
        work_order_id,
        body.model_dump(exclude_unset=True),
        by_user=principal.user_id,
    )
    return detail_out(session, principal.tenant_id, order)


@api.post("/work-orders/{work_order_id}/transition", response_model=WorkOrderDetailOut)
def transition(
    work_order_id: str, body: TransitionIn, session: DbSession, principal: FieldWorker
) -> WorkOrderDetailOut:
    """Lifecycle actions. Field agents may start, hold, resume and finish their own."""
    tenant_id = principal.tenant_id
    order = service.get_work_order(session, tenant_id, work_order_id)
    service.check_may_act(
        session, order, body.action, user_id=principal.user_id, may_operate=may_operate(principal)
    )
    order = service.transition(
        session, tenant_id, work_order_id, body.action, by_user=principal.user_id, note=body.note
    )
    return detail_out(session, tenant_id, order)


@api.post("/work-orders/{work_order_id}/dispatch", response_model=WorkOrderDetailOut)
def dispatch(
    work_order_id: str, body: DispatchIn, session: DbSession, principal: Operator
) -> WorkOrderDetailOut:
    tenant_id = principal.tenant_id
    order = service.dispatch(
        session,
        tenant_id,
        work_order_id,
        team_id=body.team_id,
        assignee_id=member_by_email(session, tenant_id, body.assignee, "assignee"),
        by_user=principal.user_id,
        note=body.note,
    )
    return detail_out(session, tenant_id, order)


@api.post("/work-orders/{work_order_id}/notes", status_code=201, response_model=WorkOrderEventOut)
def add_note(
    work_order_id: str, body: NoteIn, session: DbSession, principal: FieldWorker
) -> WorkOrderEventOut:
    order = service.get_work_order(session, principal.tenant_id, work_order_id)
    service.check_may_act(
        session, order, "note", user_id=principal.user_id, may_operate=may_operate(principal)
    )
    event = service.add_note(
        session, principal.tenant_id, work_order_id, body.text, by_user=principal.user_id
    )
    return event_out(event, people(session, [event.user_id]))


@api.post("/work-orders/{work_order_id}/reports", status_code=201, response_model=ReportOut)
def add_report(
    work_order_id: str, body: ReportIn, session: DbSession, principal: FieldWorker
) -> ReportOut:
    order = service.get_work_order(session, principal.tenant_id, work_order_id)
    service.check_may_act(
        session, order, "report", user_id=principal.user_id, may_operate=may_operate(principal)
    )
    draft = service.ReportDraft(
        text=body.text,
        minutes_spent=body.minutes_spent,
        parts=[part.model_dump() for part in body.parts],
    )
    report = service.add_field_report(
        session, principal.tenant_id, work_order_id, draft, by_user=principal.user_id
    )
    return report_out(report, people(session, [report.author_id]))


@api.post("/work-orders/{work_order_id}/photos", status_code=201, response_model=PhotoOut)
def add_photo(
    work_order_id: str,
    session: DbSession,
    settings: AppSettings,
    principal: FieldWorker,
    photo: Annotated[UploadFile | None, File(description="JPEG, PNG or WebP, ≤ 4 MB")] = None,
    report_id: Annotated[str | None, Form(max_length=36)] = None,
) -> PhotoOut:
    order = service.get_work_order(session, principal.tenant_id, work_order_id)
    service.check_may_act(
        session, order, "report", user_id=principal.user_id, may_operate=may_operate(principal)
    )
    if photo is None:
        raise invalid("photo", "send the image as the multipart field 'photo'")
    content = photo.file.read(service.MAX_PHOTO_BYTES + 1)
    stored = service.add_photo(
        session,
        principal.tenant_id,
        work_order_id,
        content=content,
        uploads_dir=settings.uploads_dir,
        by_user=principal.user_id,
        report_id=report_id or None,
    )
    report_ids = {r.id: r.public_id for r in service.reports_of(session, order)}
    return photo_out(order, stored, report_ids)


@api.get("/work-orders/{work_order_id}/photos/{photo_id}", response_class=FileResponse)
def get_photo(
    work_order_id: str,
    photo_id: str,
    session: DbSession,
    settings: AppSettings,
    principal: Reader,
) -> FileResponse:
    photo = service.get_photo(session, principal.tenant_id, work_order_id, photo_id)
    path = settings.uploads_dir / photo.stored_name
    if not path.is_file():
        raise NotFound(f"the file of photo {photo_id} is missing")
    return FileResponse(path, media_type=photo.content_type)


# --- service levels ------------------------------------------------------------------


def _levels_out(levels: dict[Priority, Targets]) -> list[ServiceLevelOut]:
    return [
        ServiceLevelOut(
            priority=priority,
            acknowledge_minutes=targets.acknowledge_minutes,
            start_minutes=targets.start_minutes,
            resolve_minutes=targets.resolve_minutes,
        )
        for priority, targets in levels.items()
    ]


@api.get("/service-levels", response_model=list[ServiceLevelOut])
def service_levels(session: DbSession, principal: Reader) -> list[ServiceLevelOut]:
    return _levels_out(service.service_levels(session, principal.tenant_id))


@api.put("/service-levels", response_model=list[ServiceLevelOut])
def set_service_level(
    body: ServiceLevelOut, session: DbSession, principal: Administrator
) -> list[ServiceLevelOut]:
    """Set the targets of one priority (given in the body); the others are unchanged."""
    targets = Targets(body.acknowledge_minutes, body.start_minutes, body.resolve_minutes)
    service.set_service_level(session, principal.tenant_id, body.priority, targets)
    return _levels_out(service.service_levels(session, principal.tenant_id))


# --- KPIs ----------------------------------------------------------------------------


@api.get("/kpis/definitions", response_model=list[KpiDefinitionOut])
def kpi_definitions(principal: Reader) -> list[KpiDefinitionOut]:
    return [
        KpiDefinitionOut(
            key=d.key,
            label=d.label,
            unit=d.unit.value,
            higher_is_better=d.higher_is_better,
            description=d.description,
        )
        for d in kpis.definitions().values()
    ]


def kpi_rows_out(rows: list[kpis.KpiRow]) -> list[KpiRowOut]:
    return [
        KpiRowOut(
            key=row.definition.key,
            label=row.definition.label,
            unit=row.definition.unit.value,
            subject=row.value.subject,
            commune=row.commune_code or None,
            value=row.value.value,
            sample=row.value.sample,
            target=row.target,
            met=row.met,
            higher_is_better=row.definition.higher_is_better,
        )
        for row in rows
    ]


def kpis_csv(report: KpiReportOut) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(
        [
            "key",
            "label",
            "unit",
            "subject",
            "commune",
            "start",
            "end",
            "value",
            "sample",
            "target",
            "met",
        ]
    )
    for item in report.items:
        writer.writerow(
            [
                item.key,
                item.label,
                item.unit,
                item.subject,
                item.commune or "",
                report.start.isoformat(),
                report.end.isoformat(),
                "" if item.value is None else item.value,
                item.sample,
                "" if item.target is None else item.target,
                "" if item.met is None else str(item.met).lower(),
            ]
        )
    return buffer.getvalue()


def kpi_report(
    session: DbSession,
    tenant_id: int,
    start_text: str | None,
    end_text: str | None,
    commune: str | None,
) -> KpiReportOut:
    start, end = kpis.period(start_text, end_text)
    query = kpis.KpiQuery(tenant_id, start, end, commune_id_of(session, tenant_id, commune))
    rows = kpis.compute(session, query)
    return KpiReportOut(start=start, end=end, commune=commune or None, items=kpi_rows_out(rows))


@api.get("/kpis", response_model=KpiReportOut)
def get_kpis(
    session: DbSession,
    principal: Reader,
    start: Annotated[
        str | None, Query(alias="from", description="Date (Paris) or time with offset")
    ] = None,
    end: Annotated[str | None, Query(alias="to", description="Exclusive end; default now")] = None,
    commune: Annotated[str | None, Query(description="INSEE code")] = None,
    format: Annotated[str, Query(pattern="^(json|csv)$")] = "json",
) -> Any:
    report = kpi_report(session, principal.tenant_id, start, end, commune)
    if format == "csv":
        name = f"kpis-{report.start.date()}-{report.end.date()}.csv"
        return Response(
            kpis_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )
    return report


def target_out(row: Any) -> KpiTargetOut:
    return KpiTargetOut(
        kpi=row.kpi_key,
        subject=row.subject,
        commune=row.commune_code,
        target=row.target,
        updated_at=row.updated_at,
    )


@api.get("/kpis/targets", response_model=list[KpiTargetOut])
def list_targets(session: DbSession, principal: Reader) -> list[KpiTargetOut]:
    return [target_out(row) for row in kpis.list_targets(session, principal.tenant_id)]


@api.put("/kpis/targets", response_model=KpiTargetOut)
def set_target(body: KpiTargetIn, session: DbSession, principal: Administrator) -> KpiTargetOut:
    row = kpis.set_target(
        session,
        principal.tenant_id,
        kpi_key=body.kpi,
        target=body.target,
        subject=body.subject,
        commune_code=body.commune,
    )
    return target_out(row)


@api.delete("/kpis/targets", status_code=204)
def delete_target(
    session: DbSession,
    principal: Administrator,
    kpi: Annotated[str, Query(max_length=64)],
    subject: Annotated[str, Query(max_length=100)] = "",
    commune: Annotated[str, Query(max_length=5)] = "",
) -> Response:
    kpis.delete_target(
        session, principal.tenant_id, kpi_key=kpi, subject=subject, commune_code=commune
    )
    return Response(status_code=204)


# The domain's one router: its API and its pages.
router = APIRouter()
router.include_router(api)
router.include_router(pages.router)
