"""HTTP routes of the citizen requests domain: the back-office JSON API under /api/v1/,
and the assembly of the Open311 API, the residents' pages and the back-office pages."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Query, Response
from sqlalchemy.orm import Session

from territoire.errors import invalid
from territoire.http import AppSettings, DbSession, Reader, requires
from territoire.requests import catalogue, notifications, service
from territoire.requests.labels import status_label
from territoire.requests.models import (
    ASSISTED_CHANNELS,
    Channel,
    CitizenRequest,
    Status,
    UpdateSource,
)
from territoire.requests.schemas import (
    AssistedRequestIn,
    CategoryIn,
    CategoryOut,
    ContactIn,
    ContactOut,
    CreatedOut,
    InboxOut,
    KeyCreatedOut,
    KeyIn,
    KeyOut,
    MergeIn,
    ModerationIn,
    PhotoOut,
    RequestOut,
    RequestSummaryOut,
    RoutingIn,
    RoutingRuleOut,
    SettingsIn,
    SettingsOut,
    SimilarOut,
    TemplateIn,
    TemplateOut,
    UpdateIn,
    UpdateOut,
    WorkOrderIn,
    WorkOrderOut,
)
from territoire.tenancy import service as tenancy
from territoire.tenancy.permissions import Permission
from territoire.tenancy.service import Principal

Operator = Annotated[Principal, Depends(requires(Permission.OPERATE))]
Administrator = Annotated[Principal, Depends(requires(Permission.ADMINISTER))]


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """Send notifications in the background when SMTP is configured (embedded default)."""
    settings = app.state.settings
    task = None
    if settings.smtp_host:
        task = asyncio.create_task(notifications.run_forever(app.state.database, settings))
    try:
        yield
    finally:
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


api = APIRouter(prefix="/api/v1", tags=["requests"])


def actor_of(principal: Principal) -> service.Actor:
    return service.Actor(UpdateSource.AGENT, user_id=principal.user_id, token_id=principal.token_id)


# --- representations -----------------------------------------------------------------


def photo_url(tenant_slug: str, public_id: str, *, office: bool) -> str:
    return f"/office/photos/{public_id}" if office else f"/c/{tenant_slug}/photos/{public_id}"


def summary(
    request: CitizenRequest, category_code: str, category_name: str, communes: dict[int, str]
) -> dict[str, Any]:
    return {
        "code": request.code,
        "id": request.public_id,
        "status": request.status,
        "status_label": status_label(request.status),
        "service_code": category_code,
        "service_name": category_name,
        "description": request.description,
        "lat": request.lat,
        "long": request.lon,
        "address": request.address,
        "commune": communes.get(request.commune_id) if request.commune_id else None,
        "channel": request.channel,
        "agency": request.agency,
        "team_id": request.team_id,
        "work_order_id": request.work_order_id,
        "hidden": request.hidden,
        "created_at": request.created_at,
        "updated_at": request.updated_at,
    }


def commune_codes(session: Session, tenant_id: int) -> dict[int, str]:
    return {c.id: c.insee_code for c in tenancy.list_communes(session, tenant_id)}


def request_out(session: Session, principal: Principal, request: CitizenRequest) -> RequestOut:
    category = service.category_of(session, request)
    original = service.duplicate_of(session, request)
    return RequestOut(
        **summary(request, category.code, category.name, commune_codes(session, request.tenant_id)),
        attributes=request.attributes,
        duplicate_of=original.code if original else None,
        closed_at=request.closed_at,
        has_contact=service.has_contact(session, request),
        contact_erased=request.contact_erased_at is not None,
        followers=service.follower_count(session, request),
        photos=[
            PhotoOut(
                id=p.public_id,
                url=photo_url("", p.public_id, office=True),
                hidden=p.hidden,
                width=p.width,
                height=p.height,
            )
            for p in service.photos_of(session, request, public_only=False)
        ],
        history=[update_out(u) for u in service.history(session, request, public_only=False)],
    )


def update_out(entry: Any) -> UpdateOut:
    return UpdateOut(
        id=entry.public_id,
        status=entry.status,
        old_status=entry.old_status,
        note=entry.note,
        public=entry.public,
        source=entry.source.value,
        created_at=entry.created_at,
    )


def category_out(category: Any) -> CategoryOut:
    return CategoryOut(
        code=category.code,
        name=category.name,
        description=category.description,
        group=category.group,
        keywords=category.keywords,
        notice=category.notice,
        service_notice=category.service_notice,
        attributes=category.attributes,
        duplicate_radius_m=category.duplicate_radius_m,
        active=category.active,
    )


def key_out(key: Any) -> dict[str, Any]:
    return {
        "id": key.public_id,
        "name": key.name,
        "trusted": key.trusted,
        "created_at": key.created_at,
        "revoked_at": key.revoked_at,
    }


# --- requests --------------------------------------------------------------------------


@api.get("/requests", response_model=InboxOut)
def inbox(
    session: DbSession,
    principal: Reader,
    status: Annotated[list[Status] | None, Query()] = None,
    open_only: bool = False,
    commune: Annotated[str | None, Query(max_length=5)] = None,
    service_code: Annotated[str | None, Query(max_length=64)] = None,
    channel: Channel | None = None,
    q: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> InboxOut:
    tenant_id = principal.tenant_id
    where = service.RequestFilter(
        statuses=status or [],
        open_only=open_only,
        commune_id=tenancy.get_commune(session, tenant_id, commune).id if commune else None,
        category_id=catalogue.get_category(session, tenant_id, service_code).id
        if service_code
        else None,
        channel=channel,
        text=q or None,
    )
    page = service.list_requests(session, tenant_id, where, limit=limit, offset=offset)
    categories = service.categories_by_id(session, tenant_id)
    codes = commune_codes(session, tenant_id)
    items = [
        RequestSummaryOut(
            **summary(r, categories[r.category_id].code, categories[r.category_id].name, codes)
        )
        for r in page.items
    ]
    return InboxOut(items=items, total=page.total, limit=limit, offset=offset)


@api.post("/requests", response_model=CreatedOut, status_code=201)
def assisted_entry(
    body: AssistedRequestIn, session: DbSession, principal: Operator, settings: AppSettings
) -> CreatedOut:
    if body.channel not in ASSISTED_CHANNELS:
        raise invalid("channel", "an agent enters requests received by phone, desk, mail or social")
    draft = service.RequestDraft(
        category_code=body.service_code,
        description=body.description,
        lat=body.lat,
        lon=body.long,
        address=body.address,
        attributes=body.attributes,
        email=body.email,
        first_name=body.first_name,
        last_name=body.last_name,
        phone=body.phone,
        follow=body.follow,
        channel=body.channel,
    )
    created = service.create_request(session, principal.tenant_id, draft, actor=actor_of(principal))
    tenant = tenancy.get_tenant(session, principal.tenant_id)
    return CreatedOut(
        code=created.code,
        id=created.public_id,
        url=f"{notifications.base_url(settings)}/c/{tenant.slug}/requests/{created.code}",
    )


@api.get("/requests/{request_code}", response_model=RequestOut)
def one_request(request_code: str, session: DbSession, principal: Reader) -> RequestOut:
    found = service.get_request(session, principal.tenant_id, request_code)
    return request_out(session, principal, found)


@api.get("/requests/{request_code}/duplicates", response_model=list[SimilarOut])
def duplicates(request_code: str, session: DbSession, principal: Reader) -> list[SimilarOut]:
    found = service.duplicate_candidates(session, principal.tenant_id, request_code)
    categories = service.categories_by_id(session, principal.tenant_id)
    return [
        SimilarOut(
            code=r.code,
            status=r.status,
            service_code=categories[r.category_id].code,
            description=r.description,
            distance_m=round(distance, 1),
            created_at=r.created_at,
        )
        for r, distance in found
    ]


@api.post("/requests/{request_code}/updates", response_model=UpdateOut, status_code=201)
def add_update(
    request_code: str, body: UpdateIn, session: DbSession, principal: Operator
) -> UpdateOut:
    target = service.get_request(session, principal.tenant_id, request_code)
    status, note = body.status, body.note
    if body.template:
        template = catalogue.get_template(session, principal.tenant_id, body.template)
        note = note or template.body
        status = status or template.status
    entry = service.add_update(
        session,
        principal.tenant_id,
        target.code,
        status=status,
        note=note,
        public=body.public,
        actor=actor_of(principal),
    )
    return update_out(entry)


@api.post("/requests/{request_code}/merge", response_model=RequestSummaryOut)
def merge(
    request_code: str, body: MergeIn, session: DbSession, principal: Operator
) -> RequestSummaryOut:
    original = service.merge(
        session, principal.tenant_id, request_code, body.into, actor=actor_of(principal)
    )
    category = service.category_of(session, original)
    codes = commune_codes(session, principal.tenant_id)
    return RequestSummaryOut(**summary(original, category.code, category.name, codes))


@api.post("/requests/{request_code}/work-order", response_model=WorkOrderOut, status_code=201)
def work_order(
    request_code: str, body: WorkOrderIn, session: DbSession, principal: Operator
) -> WorkOrderOut:
    service.get_request(session, principal.tenant_id, request_code)
    work_order_id = service.create_work_order(
        session,
        principal.tenant_id,
        request_code,
        actor=actor_of(principal),
        team_id=body.team_id,
        priority=body.priority,
    )
    found = service.get_request(session, principal.tenant_id, request_code)
    return WorkOrderOut(work_order_id=work_order_id, status=found.status)


@api.post("/requests/{request_code}/moderation", response_model=RequestOut)
def moderate(
    request_code: str,
    body: ModerationIn,
    session: DbSession,
    principal: Operator,
    settings: AppSettings,
) -> RequestOut:
    tenant_id, actor = principal.tenant_id, actor_of(principal)
    found = service.get_request(session, tenant_id, request_code)
    if body.hidden is not None:
        service.set_hidden(session, tenant_id, found.code, body.hidden, actor=actor)
    if body.redact_description or body.description is not None:
        service.redact_description(session, tenant_id, found.code, body.description, actor=actor)
    if body.photo_id is not None:
        box = (body.box[0], body.box[1], body.box[2], body.box[3]) if body.box else None
        service.moderate_photo(
            session,
            tenant_id,
            found.code,
            body.photo_id,
            hidden=body.photo_hidden,
            blur=(box or True) if body.blur else False,
            uploads_dir=settings.uploads_dir,
            actor=actor,
        )
    return request_out(session, principal, found)


@api.post("/requests/{request_code}/contact", response_model=ContactOut)
def contact(
    request_code: str, body: ContactIn, session: DbSession, principal: Operator
) -> ContactOut:
    seen = service.view_contact(
        session,
        principal.tenant_id,
        request_code,
        purpose=body.purpose,
        user_id=principal.user_id,
        token_id=principal.token_id,
    )
    return ContactOut(
        email=seen.email,
        first_name=seen.first_name,
        last_name=seen.last_name,
        phone=seen.phone,
        erased=seen.erased,
    )


# --- configuration -------------------------------------------------------------------


@api.get("/request-categories", response_model=list[CategoryOut])
def categories(session: DbSession, principal: Reader) -> list[CategoryOut]:
    found = catalogue.list_categories(session, principal.tenant_id, active_only=False)
    return [category_out(c) for c in found]


@api.post("/request-categories", response_model=CategoryOut, status_code=201)
def create_category(body: CategoryIn, session: DbSession, principal: Administrator) -> CategoryOut:
    draft = catalogue.CategoryDraft(**body.model_dump())
    return category_out(catalogue.create_category(session, principal.tenant_id, draft))


@api.put("/request-categories/{category_code}", response_model=CategoryOut)
def update_category(
    category_code: str, body: CategoryIn, session: DbSession, principal: Administrator
) -> CategoryOut:
    draft = catalogue.CategoryDraft(**body.model_dump())
    return category_out(
        catalogue.update_category(session, principal.tenant_id, category_code, draft)
    )


def _routing_out(session: Session, tenant_id: int) -> list[RoutingRuleOut]:
    codes = commune_codes(session, tenant_id)
    categories = service.categories_by_id(session, tenant_id)
    return [
        RoutingRuleOut(
            category=categories[r.category_id].code if r.category_id else None,
            commune=codes.get(r.commune_id) if r.commune_id else None,
            team_id=r.team_id,
            agency=r.agency,
            skill=r.skill,
        )
        for r in catalogue.list_routing(session, tenant_id)
    ]


@api.get("/request-routing", response_model=list[RoutingRuleOut])
def routing(session: DbSession, principal: Reader) -> list[RoutingRuleOut]:
    return _routing_out(session, principal.tenant_id)


@api.put("/request-routing", response_model=list[RoutingRuleOut])
def replace_routing(
    body: RoutingIn, session: DbSession, principal: Administrator
) -> list[RoutingRuleOut]:
    tenant_id = principal.tenant_id
    drafts = [
        catalogue.RoutingDraft(
            category_code=rule.category,
            commune_id=tenancy.get_commune(session, tenant_id, rule.commune).id
            if rule.commune
            else None,
            team_id=rule.team_id,
            agency=rule.agency,
            skill=rule.skill,
        )
        for rule in body.rules
    ]
    catalogue.replace_routing(session, tenant_id, drafts)
    return _routing_out(session, tenant_id)


def template_out(template: Any) -> TemplateOut:
    return TemplateOut(
        id=template.public_id, title=template.title, body=template.body, status=template.status
    )


@api.get("/request-answer-templates", response_model=list[TemplateOut])
def templates(session: DbSession, principal: Reader) -> list[TemplateOut]:
    return [template_out(t) for t in catalogue.list_templates(session, principal.tenant_id)]


@api.post("/request-answer-templates", response_model=TemplateOut, status_code=201)
def create_template(body: TemplateIn, session: DbSession, principal: Operator) -> TemplateOut:
    template = catalogue.create_template(
        session, principal.tenant_id, title=body.title, body=body.body, status=body.status
    )
    return template_out(template)


@api.delete("/request-answer-templates/{answer_template_id}", status_code=204)
def delete_template(answer_template_id: str, session: DbSession, principal: Operator) -> Response:
    catalogue.delete_template(session, principal.tenant_id, answer_template_id)
    return Response(status_code=204)


@api.get("/request-settings", response_model=SettingsOut)
def get_settings_(session: DbSession, principal: Reader) -> SettingsOut:
    return SettingsOut(
        contact_retention_days=catalogue.retention_days(session, principal.tenant_id)
    )


@api.put("/request-settings", response_model=SettingsOut)
def put_settings(body: SettingsIn, session: DbSession, principal: Administrator) -> SettingsOut:
    row = catalogue.set_retention_days(session, principal.tenant_id, body.contact_retention_days)
    return SettingsOut(contact_retention_days=row.contact_retention_days)


@api.get("/open311-keys", response_model=list[KeyOut])
def keys(session: DbSession, principal: Administrator) -> list[KeyOut]:
    return [KeyOut(**key_out(k)) for k in catalogue.list_open311_keys(session, principal.tenant_id)]


@api.post("/open311-keys", response_model=KeyCreatedOut, status_code=201)
def create_key(body: KeyIn, session: DbSession, principal: Administrator) -> KeyCreatedOut:
    key, raw = catalogue.create_open311_key(
        session, principal.tenant_id, name=body.name, trusted=body.trusted
    )
    return KeyCreatedOut(**key_out(key), api_key=raw)


@api.delete("/open311-keys/{open311_key_id}", response_model=KeyOut)
def revoke_key(open311_key_id: str, session: DbSession, principal: Administrator) -> KeyOut:
    return KeyOut(
        **key_out(catalogue.revoke_open311_key(session, principal.tenant_id, open311_key_id))
    )


def build_router() -> APIRouter:
    from territoire.requests.office import router as office_router
    from territoire.requests.open311_api import router as open311_router
    from territoire.requests.pages import router as pages_router

    router = APIRouter(lifespan=lifespan)
    router.include_router(api)
    router.include_router(open311_router)
    router.include_router(pages_router)
    router.include_router(office_router)
    return router


router = build_router()
