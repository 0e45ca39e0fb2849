"""Back-office pages: triage inbox, a request's page (answer, merge, work order,
moderation, contact on demand) and agent-assisted entry for people who are not online.

Forms post to routes that find the request first (so another tenant's request is 404
before anything else), then read the form; errors re-render the page with the message.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from territoire.errors import DomainError, invalid
from territoire.http import DbSession
from territoire.requests import catalogue, handover, service
from territoire.requests.labels import CHANNEL_LABELS, channel_label, status_label
from territoire.requests.models import (
    ASSISTED_CHANNELS,
    CLOSED_STATUSES,
    Channel,
    CitizenRequest,
    Status,
    UpdateSource,
)
from territoire.tenancy import service as tenancy
from territoire.tenancy.permissions import Permission, allows
from territoire.web.i18n import N_
from territoire.web.nav import NavEntry, register_nav
from territoire.web.templating import Page, PageContext, page_for

router = APIRouter(tags=["requests back office"], include_in_schema=False)
OperatorPage = Annotated[PageContext, Depends(page_for(Permission.OPERATE))]
STATUS_GROUPS = ("open", "closed", "all")
PAGE_SIZE = 50

register_nav(NavEntry("requests", N_("Requests"), "/office/requests", order=45))


def _actor(page: PageContext) -> service.Actor:
    assert page.principal is not None
    return service.Actor(
        UpdateSource.AGENT, user_id=page.principal.user_id, token_id=page.principal.token_id
    )


def _tenant_id(page: PageContext) -> int:
    assert page.principal is not None
    return page.principal.tenant_id


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


# --- inbox ---------------------------------------------------------------------------


@router.get("/office/requests", response_class=HTMLResponse)
def inbox(page: Page, session: DbSession) -> Response:
    tenant_id = _tenant_id(page)
    params = page.request.query_params
    group = params.get("group", "open") if params.get("group") in STATUS_GROUPS else "open"
    communes = tenancy.list_communes(session, tenant_id)
    categories = catalogue.list_categories(session, tenant_id, active_only=False)
    commune = next((c for c in communes if c.insee_code == params.get("commune")), None)
    category = next((c for c in categories if c.code == params.get("category")), None)
    channel = params.get("channel") if params.get("channel") in set(Channel) else None
    try:
        offset = max(0, int(params.get("offset", "0")))
    except ValueError:
        offset = 0
    where = service.RequestFilter(
        statuses=list(CLOSED_STATUSES) if group == "closed" else [],
        open_only=group == "open",
        commune_id=commune.id if commune else None,
        category_id=category.id if category else None,
        channel=Channel(channel) if channel else None,
        text=(params.get("q") or "").strip()[:200] or None,
    )
    found = service.list_requests(session, tenant_id, where, limit=PAGE_SIZE, offset=offset)
    by_id = {c.id: c for c in categories}
    names = {c.id: c.name for c in communes}
    rows = [
        {
            "code": r.code,
            "created_at": r.created_at,
            "category": by_id[r.category_id].name,
            "commune": names.get(r.commune_id or 0, ""),
            "status": r.status.value,
            "status_label": status_label(r.status, page.language),
            "channel": channel_label(r.channel, page.language),
            "address": r.address,
            "hidden": r.hidden,
            "work_order": r.work_order_id,
        }
        for r in found.items
    ]
    return page.render(
        "requests/office_inbox.html",
        {
            "rows": rows,
            "total": found.total,
            "offset": offset,
            "page_size": PAGE_SIZE,
            "group": group,
            "communes": communes,
            "categories": categories,
            "channels": CHANNEL_LABELS.get(page.language, CHANNEL_LABELS["fr"]),
            "filters": {k: params.get(k, "") for k in ("commune", "category", "channel", "q")},
        },
    )


# --- agent-assisted entry ------------------------------------------------------------


ENTRY_FIELDS = (
    "channel",
    "category",
    "address",
    "lat",
    "lon",
    "description",
    "last_name",
    "first_name",
    "phone",
    "email",
)


def _entry_context(page: PageContext, session: Session, given: dict[str, Any]) -> dict[str, Any]:
    values = {name: "" for name in ENTRY_FIELDS} | given
    labels = CHANNEL_LABELS.get(page.language, CHANNEL_LABELS["fr"])
    return {
        "categories": catalogue.list_categories(session, _tenant_id(page)),
        "channels": [(c.value, labels[c]) for c in Channel if c in ASSISTED_CHANNELS],
        "values": values,
        "error": None,
    }


@router.get("/office/requests/new", response_class=HTMLResponse)
def entry_form(page: OperatorPage, session: DbSession) -> Response:
    return page.render(
        "requests/office_new.html", _entry_context(page, session, {"channel": "phone"})
    )


@router.post("/office/requests/new", response_class=HTMLResponse)
async def entry_submit(request: Request, page: OperatorPage, session: DbSession) -> Response:
    form = await request.form(max_files=0, max_fields=100)
    values = {key: _text(form, key) for key in form}
    try:
        channel = Channel(values.get("channel", ""))
        if channel not in ASSISTED_CHANNELS:
            raise ValueError(channel)
    except ValueError:
        channel = Channel.PHONE
    category_code = values.get("category", "")
    answers = {
        key.split(".", 2)[2]: value
        for key, value in values.items()
        if key.startswith(f"attr.{category_code}.") and value
    }
    draft = service.RequestDraft(
        category_code=category_code,
        description=values.get("description", ""),
        lat=_float(values.get("lat", "")),
        lon=_float(values.get("lon", "")),
        address=values.get("address", ""),
        attributes=dict(answers),
        email=values.get("email") or None,
        first_name=values.get("first_name") or None,
        last_name=values.get("last_name") or None,
        phone=values.get("phone") or None,
        follow=bool(values.get("email")),
        channel=channel,
    )
    try:
        if not category_code:
            raise invalid("category", page.gettext("Choose a category."))
        created = service.create_request(session, _tenant_id(page), draft, actor=_actor(page))
    except DomainError as error:
        session.rollback()
        context = _entry_context(page, session, values)
        context["error"] = error.message
        return page.render("requests/office_new.html", context, status_code=error.status_code)
    return page.redirect(f"/office/requests/{created.code}?created=1")


def _float(text: str) -> float | None:
    text = text.replace(",", ".").strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return float("nan")


# --- one request ---------------------------------------------------------------------


def _detail_context(
    page: PageContext, session: Session, found: CitizenRequest, **extra: Any
) -> dict[str, Any]:
    tenant_id = _tenant_id(page)
    tenant = tenancy.get_tenant(session, tenant_id)
    category = service.category_of(session, found)
    original = service.duplicate_of(session, found)
    communes = {c.id: c.name for c in tenancy.list_communes(session, tenant_id)}
    language = page.language
    context: dict[str, Any] = {
        "item": found,
        "place": tenant,
        "category": category,
        "commune": communes.get(found.commune_id or 0, ""),
        "status_label": status_label(found.status, language),
        "channel_label": channel_label(found.channel, language),
        "original": original,
        "closed": service.is_closed(found.status),
        "history": [
            {
                "entry": u,
                "status_label": status_label(u.status, language),
                "changed": u.old_status is not u.status,
            }
            for u in service.history(session, found, public_only=False)
        ],
        "photos": service.photos_of(session, found, public_only=False),
        "statuses": [
            (s.value, status_label(s, language)) for s in Status if s is not Status.DUPLICATE
        ],
        "templates": catalogue.list_templates(session, tenant_id),
        "duplicates": service.duplicate_candidates(session, tenant_id, found.code),
        "teams": handover.teams(session, tenant_id),
        "team_name": handover.team_name(session, tenant_id, found.team_id),
        "work_order_status": handover.work_order_status(session, tenant_id, found.work_order_id)
        if found.work_order_id
        else None,
        "has_contact": service.has_contact(session, found),
        "may_operate": page.principal is not None and _allows(page, Permission.OPERATE),
        "contact": None,
        "error": None,
        "message": page.gettext("Request recorded.")
        if page.request.query_params.get("created")
        else None,
    }
    context.update(extra)
    return context


def _allows(page: PageContext, permission: Permission) -> bool:
    return page.principal is not None and allows(page.principal.role, permission)


@router.get("/office/requests/{request_code}", response_class=HTMLResponse)
def detail(request_code: str, page: Page, session: DbSession) -> Response:
    found = service.get_request(session, _tenant_id(page), request_code)
    return page.render("requests/office_detail.html", _detail_context(page, session, found))


async def _act(
    request: Request,
    page: PageContext,
    session: Session,
    request_code: str,
    action: Any,
) -> Response:
    """Find the request, read the form, run `action`; show the page with any error."""
    found = service.get_request(session, _tenant_id(page), request_code)
    form = await request.form(max_files=0, max_fields=50)
    try:
        extra = action(found, form) or {}
    except DomainError as error:
        session.rollback()
        found = service.get_request(session, _tenant_id(page), request_code)
        context = _detail_context(page, session, found, error=error.message)
        return page.render("requests/office_detail.html", context, status_code=error.status_code)
    if "contact" in extra:
        context = _detail_context(page, session, found, **extra)
        return page.render("requests/office_detail.html", context)
    return page.redirect(f"/office/requests/{found.code}")


@router.post("/office/requests/{request_code}/update", response_class=HTMLResponse)
async def post_update(
    request_code: str, request: Request, page: OperatorPage, session: DbSession
) -> Response:
    def action(found: CitizenRequest, form: FormData) -> None:
        status_text, note = _text(form, "status"), _text(form, "note")
        template_id = _text(form, "template")
        status = Status(status_text) if status_text in set(Status) else None
        if template_id:
            template = catalogue.get_template(session, _tenant_id(page), template_id)
            note = note or template.body
            status = status or template.status
        if status is found.status:
            status = None
        service.add_update(
            session,
            _tenant_id(page),
            found.code,
            status=status,
            note=note,
            public=_text(form, "internal") != "1",
            actor=_actor(page),
        )

    return await _act(request, page, session, request_code, action)


@router.post("/office/requests/{request_code}/merge", response_class=HTMLResponse)
async def post_merge(
    request_code: str, request: Request, page: OperatorPage, session: DbSession
) -> Response:
    def action(found: CitizenRequest, form: FormData) -> None:
        into = _text(form, "into")
        if not into:
            raise invalid("into", page.gettext("Give the tracking number of the original."))
        service.merge(session, _tenant_id(page), found.code, into, actor=_actor(page))

    return await _act(request, page, session, request_code, action)


@router.post("/office/requests/{request_code}/work-order", response_class=HTMLResponse)
async def post_work_order(
    request_code: str, request: Request, page: OperatorPage, session: DbSession
) -> Response:
    def action(found: CitizenRequest, form: FormData) -> None:
        service.create_work_order(
            session,
            _tenant_id(page),
            found.code,
            actor=_actor(page),
            team_id=_text(form, "team_id") or None,
            priority=_text(form, "priority") or None,
        )

    return await _act(request, page, session, request_code, action)


@router.post("/office/requests/{request_code}/moderate", response_class=HTMLResponse)
async def post_moderation(
    request_code: str, request: Request, page: OperatorPage, session: DbSession
) -> Response:
    def action(found: CitizenRequest, form: FormData) -> None:
        tenant_id, actor = _tenant_id(page), _actor(page)
        what = _text(form, "action")
        if what in ("hide", "show"):
            service.set_hidden(session, tenant_id, found.code, what == "hide", actor=actor)
        elif what == "redact":
            replacement = form.get("description")
            text = replacement if isinstance(replacement, str) and replacement.strip() else None
            service.redact_description(session, tenant_id, found.code, text, actor=actor)
        elif what in ("hide_photo", "show_photo", "blur_photo"):
            service.moderate_photo(
                session,
                tenant_id,
                found.code,
                _text(form, "photo_id"),
                hidden={"hide_photo": True, "show_photo": False}.get(what),
                blur=what == "blur_photo",
                uploads_dir=page.settings.uploads_dir,
                actor=actor,
            )
        else:
            raise invalid("action", "unknown moderation action")

    return await _act(request, page, session, request_code, action)


@router.post("/office/requests/{request_code}/contact", response_class=HTMLResponse)
async def post_contact(
    request_code: str, request: Request, page: OperatorPage, session: DbSession
) -> Response:
    def action(found: CitizenRequest, form: FormData) -> dict[str, Any]:
        assert page.principal is not None
        seen = service.view_contact(
            session,
            _tenant_id(page),
            found.code,
            purpose=_text(form, "purpose"),
            user_id=page.principal.user_id,
            token_id=page.principal.token_id,
        )
        return {"contact": seen}

    return await _act(request, page, session, request_code, action)


@router.get("/office/photos/{request_photo_id}")
def office_photo(request_photo_id: str, page: Page, session: DbSession) -> Response:
    """Agents see every photo, hidden ones included (to moderate them)."""
    photo = service.get_photo(session, _tenant_id(page), request_photo_id, public=False)
    return FileResponse(
        page.settings.uploads_dir / photo.path,
        media_type=photo.content_type,
        headers={"Cache-Control": "no-store"},
    )
