"""Residents' pages, no account needed: report, follow, subscribe, see what is nearby.

Mobile first and usable without JavaScript: the map, "use my position" and the live
"already reported?" suggestions are added by requests.js when it runs; without it the
address field places the request and the server shows similar requests before saving.
"""

from __future__ import annotations

import hmac
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response
from shapely.geometry import shape
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from territoire.errors import DomainError, NotFound, invalid
from territoire.http import PRE_SESSION_COOKIE, DbSession, csrf_token_for
from territoire.requests import catalogue, service
from territoire.requests.labels import status_label
from territoire.requests.models import Category, Channel, CitizenRequest, Status, UpdateSource
from territoire.requests.open311_api import client_address, submission_limiter
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import Tenant
from territoire.web.templating import PageContext, PublicPage

router = APIRouter(tags=["requests pages"], include_in_schema=False)
STATIC = Path(__file__).parent / "static"
MAX_FORM_PHOTOS = 3


def tenant_or_404(session: Session, slug: str) -> Tenant:
    tenant = tenancy.find_tenant_by_slug(session, slug)
    if tenant is None:
        raise NotFound(f"no collectivity {slug}")
    return tenant


def _asset(name: str, media_type: str) -> FileResponse:
    return FileResponse(
        STATIC / name, media_type=media_type, headers={"Cache-Control": "max-age=3600"}
    )


@router.get("/c/assets/requests.js")
def script() -> FileResponse:
    return _asset("requests.js", "text/javascript; charset=utf-8")


@router.get("/c/assets/requests.css")
def stylesheet() -> FileResponse:
    return _asset("requests.css", "text/css; charset=utf-8")


def view_of(
    request: CitizenRequest, category: Category, language: str, note: str | None = None
) -> dict[str, Any]:
    return {
        "code": request.code,
        "status": request.status.value,
        "status_label": status_label(request.status, language),
        "closed": service.is_closed(request.status),
        "category": category.name,
        "description": request.description,
        "address": request.address,
        "lat": request.lat,
        "lon": request.lon,
        "created_at": request.created_at,
        "note": note,
    }


# --- home: public requests nearby ----------------------------------------------------


@router.get("/c/{tenant_slug}/requests", response_class=HTMLResponse)
def home(tenant_slug: str, page: PublicPage, session: DbSession) -> Response:
    tenant = tenant_or_404(session, tenant_slug)
    recent = service.search_public(session, tenant.id, service.PublicQuery(limit=30))
    categories = service.categories_by_id(session, tenant.id)
    return page.render(
        "requests/citizen_home.html",
        {
            "place": tenant,
            "requests": [view_of(r, categories[r.category_id], page.language) for r in recent],
            "geojson_url": f"/c/{tenant.slug}/requests.geojson",
        },
    )


@router.get("/c/{tenant_slug}/requests.geojson")
def public_geojson(tenant_slug: str, session: DbSession) -> Response:
    """Open and recent requests for the map (no personal data: nothing but public fields)."""
    tenant = tenant_or_404(session, tenant_slug)
    found = service.search_public(session, tenant.id, service.PublicQuery(limit=500))
    categories = service.categories_by_id(session, tenant.id)
    features = [
        {
            "type": "Feature",
            "geometry": {"type": "Point", "coordinates": [r.lon, r.lat]},
            "properties": {
                "code": r.code,
                "category": categories[r.category_id].name,
                "status": r.status.value,
                "statusLabel": status_label(r.status),
                "url": f"/c/{tenant.slug}/requests/{r.code}",
            },
        }
        for r in found
        if r.lat is not None and r.lon is not None
    ]
    return Response(
        orjson.dumps({"type": "FeatureCollection", "features": features}),
        media_type="application/geo+json",
    )


# --- the report form -------------------------------------------------------------------


def _form_context(
    page: PageContext, session: Session, tenant: Tenant, values: dict[str, Any]
) -> dict[str, Any]:
    categories = catalogue.list_categories(session, tenant.id)
    return {
        "place": tenant,
        "bbox": territory_bbox(session, tenant),
        "categories": categories,
        "form_token": page.pre_session_csrf_token(),
        "values": values,
        "error": None,
        "problems": [],
        "similar": [],
        "tile_url": page.settings.tile_url,
        "tile_attribution": page.settings.tile_attribution,
    }


def territory_bbox(session: Session, tenant: Tenant) -> str:
    """minLon,minLat,maxLon,maxLat of the communes, to frame the map; empty if unknown."""
    shapes = [shape(c.boundary) for c in tenancy.list_communes(session, tenant.id) if c.boundary]
    if not shapes:
        return ""
    bounds = [s.bounds for s in shapes]
    box = (
        min(b[0] for b in bounds),
        min(b[1] for b in bounds),
        max(b[2] for b in bounds),
        max(b[3] for b in bounds),
    )
    return ",".join(f"{value:.6f}" for value in box)


@router.get("/c/{tenant_slug}/requests/lookup")
def lookup(tenant_slug: str, page: PublicPage, session: DbSession) -> Response:
    """The tracking-number box of the home page."""
    tenant = tenant_or_404(session, tenant_slug)
    code = page.request.query_params.get("code", "").strip().upper()[:16]
    found = service.get_public_request(session, tenant.id, code)
    return page.redirect(f"/c/{tenant.slug}/requests/{found.code}")


@router.get("/c/{tenant_slug}/requests/new", response_class=HTMLResponse)
def report_form(tenant_slug: str, page: PublicPage, session: DbSession) -> Response:
    tenant = tenant_or_404(session, tenant_slug)
    chosen = page.request.query_params.get("category", "")
    return page.render(
        "requests/citizen_new.html",
        _form_context(page, session, tenant, blank_values(category=chosen)),
    )


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


def _number(form: FormData, name: str) -> float | None:
    text = _text(form, name).strip().replace(",", ".")
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        return float("nan")  # refused by the service with a clear message


def _answers(form: FormData, category: str) -> dict[str, str | list[str]]:
    """Fields `attr.<category>.<code>`: only the chosen category's questions count."""
    prefix = f"attr.{category}."
    answers: dict[str, str | list[str]] = {}
    for key, value in form.multi_items():
        if key.startswith(prefix) and isinstance(value, str):
            code = key[len(prefix) :]
            existing = answers.get(code)
            if existing is None:
                answers[code] = value
            else:
                answers[code] = [*(existing if isinstance(existing, list) else [existing]), value]
    return answers


FIELDS = (
    "category",
    "description",
    "address",
    "lat",
    "lon",
    "email",
    "first_name",
    "last_name",
    "phone",
)


def blank_values(**given: Any) -> dict[str, Any]:
    return {name: "" for name in FIELDS} | {"follow": True, "form": None} | given


def form_values(form: FormData) -> dict[str, Any]:
    return {name: _text(form, name) for name in FIELDS} | {
        "follow": _text(form, "follow") == "1",
        "form": form,
    }


def csrf_ok(request: Request, page: PageContext, form: FormData) -> bool:
    seed = request.cookies.get(PRE_SESSION_COOKIE, "")
    expected = csrf_token_for(page.settings, seed)
    return len(seed) >= 32 and hmac.compare_digest(expected, _text(form, "csrf_token"))


async def _photo_bytes(form: FormData) -> list[bytes]:
    files = [v for k, v in form.multi_items() if k == "photos" and isinstance(v, UploadFile)]
    return [await f.read() for f in files if f.filename][: MAX_FORM_PHOTOS + 1]


@router.post("/c/{tenant_slug}/requests/new", response_class=HTMLResponse)
async def report_submit(
    tenant_slug: str, request: Request, page: PublicPage, session: DbSession
) -> Response:
    form = await request.form(max_files=MAX_FORM_PHOTOS + 1, max_fields=100)
    photos = await _photo_bytes(form)
    limiter = submission_limiter(request)
    address = client_address(request)
    return await run_in_threadpool(
        _submit, tenant_slug, page, session, form, photos, limiter, address
    )


def _submit(
    tenant_slug: str,
    page: PageContext,
    session: Session,
    form: FormData,
    photos: list[bytes],
    limiter: Any,
    address: str,
) -> Response:
    tenant = tenant_or_404(session, tenant_slug)
    values = form_values(form)
    context = _form_context(page, session, tenant, values)
    if not csrf_ok(page.request, page, form):
        context["error"] = page.gettext("This form has expired. Please send it again.")
        return page.render("requests/citizen_new.html", context, status_code=403)
    draft = service.RequestDraft(
        category_code=values["category"],
        description=values["description"],
        lat=_number(form, "lat"),
        lon=_number(form, "lon"),
        address=values["address"],
        attributes=_answers(form, values["category"]),
        email=values["email"] or None,
        first_name=values["first_name"] or None,
        last_name=values["last_name"] or None,
        phone=values["phone"] or None,
        follow=values["follow"],
        channel=Channel.WEB,
        photos=photos,
    )
    try:
        _check_form(page, draft)
        limiter.check(address)
        similar = _similar_first(session, tenant, draft, form)
        if similar:
            context["similar"] = similar
            return page.render("requests/citizen_new.html", context)
        created = service.create_request(
            session,
            tenant.id,
            draft,
            actor=service.Actor(UpdateSource.CITIZEN),
            photo_limits=service.PhotoLimits(
                page.settings.uploads_dir,
                page.settings.requests_max_photo_bytes,
                page.settings.requests_max_photos,
            ),
        )
    except DomainError as error:
        session.rollback()
        context["error"] = error.message
        context["problems"] = [p.field for p in error.problems]
        return page.render("requests/citizen_new.html", context, status_code=error.status_code)
    return page.redirect(f"/c/{tenant.slug}/requests/{created.code}?created=1")


def _check_form(page: PageContext, draft: service.RequestDraft) -> None:
    """What the web form requires on top of Open311: a category and a few words."""
    if not draft.category_code:
        raise invalid("category", page.gettext("Choose a category."))
    if len(draft.description.strip()) < 3:
        raise invalid("description", page.gettext("Describe the problem in a few words."))


def _similar_first(
    session: Session, tenant: Tenant, draft: service.RequestDraft, form: FormData
) -> list[dict[str, Any]]:
    """Before saving, similar open requests nearby — once, unless the resident confirmed."""
    if _text(form, "confirm_new") == "1" or draft.lat is None or draft.lon is None:
        return []
    if draft.lat != draft.lat or draft.lon != draft.lon:  # NaN: let the service explain
        return []
    found = service.similar_open(session, tenant.id, draft.category_code, draft.lat, draft.lon)
    return [_similar_item(tenant, r, d) for r, d in found]


def _similar_item(tenant: Tenant, request: CitizenRequest, distance: float) -> dict[str, Any]:
    return {
        "code": request.code,
        "description": request.description,
        "status_label": status_label(request.status),
        "distance": round(distance),
        "url": f"/c/{tenant.slug}/requests/{request.code}",
        "created_at": request.created_at,
    }


@router.get("/c/{tenant_slug}/requests/similar", response_class=HTMLResponse)
def similar(tenant_slug: str, page: PublicPage, session: DbSession) -> Response:
    """An HTML fragment for requests.js: open requests of this category nearby."""
    tenant = tenant_or_404(session, tenant_slug)
    params = page.request.query_params
    items: list[dict[str, Any]] = []
    try:
        lat, lon = float(params.get("lat", "")), float(params.get("lon", ""))
        found = service.similar_open(session, tenant.id, params.get("category", ""), lat, lon)
        items = [_similar_item(tenant, r, d) for r, d in found]
    except (ValueError, DomainError):
        items = []
    return page.render("requests/_similar.html", {"similar": items, "place": tenant})


# --- following a request -------------------------------------------------------------


@router.get("/c/{tenant_slug}/requests/{request_code}", response_class=HTMLResponse)
def follow_page(
    tenant_slug: str, request_code: str, page: PublicPage, session: DbSession
) -> Response:
    tenant = tenant_or_404(session, tenant_slug)
    found = service.get_public_request(session, tenant.id, request_code)
    return _render_follow(page, session, tenant, found, message=_message(page))


def _message(page: PageContext) -> str | None:
    flags = page.request.query_params
    if flags.get("created"):
        return page.gettext("Your request has been recorded. Keep its tracking number.")
    if flags.get("subscribed"):
        return page.gettext("You will receive an e-mail when this request changes.")
    return None


def _render_follow(
    page: PageContext,
    session: Session,
    tenant: Tenant,
    found: CitizenRequest,
    *,
    message: str | None,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    category = service.category_of(session, found)
    original = service.duplicate_of(session, found)
    updates = service.history(session, found, public_only=True)
    return page.render(
        "requests/citizen_follow.html",
        {
            "place": tenant,
            "item": view_of(found, category, page.language),
            "history": [
                {
                    "at": u.created_at,
                    "status_label": status_label(u.status, page.language),
                    "changed": u.old_status is None or u.old_status is not u.status,
                    "note": u.note,
                }
                for u in updates
            ],
            "photos": [
                f"/c/{tenant.slug}/photos/{p.public_id}"
                for p in service.photos_of(session, found, public_only=True)
            ],
            "original": original.code if original and not original.hidden else None,
            "message": message,
            "error": error,
            "form_token": page.pre_session_csrf_token(),
            "fixed": found.status is Status.FIXED,
        },
        status_code=status_code,
    )


@router.post("/c/{tenant_slug}/requests/{request_code}/subscribe", response_class=HTMLResponse)
async def subscribe(
    tenant_slug: str, request_code: str, request: Request, page: PublicPage, session: DbSession
) -> Response:
    form = await request.form(max_files=0, max_fields=10)
    limiter = submission_limiter(request)
    address = client_address(request)

    def work() -> Response:
        tenant = tenant_or_404(session, tenant_slug)
        found = service.get_public_request(session, tenant.id, request_code)
        if not csrf_ok(request, page, form):
            error = page.gettext("This form has expired. Please send it again.")
            return _render_follow(
                page, session, tenant, found, message=None, error=error, status_code=403
            )
        try:
            limiter.check(address)
            service.follow(session, found, _text(form, "email"))
        except DomainError as problem:
            session.rollback()
            return _render_follow(
                page,
                session,
                tenant,
                found,
                message=None,
                error=problem.message,
                status_code=problem.status_code,
            )
        return page.redirect(f"/c/{tenant.slug}/requests/{found.code}?subscribed=1")

    return await run_in_threadpool(work)


@router.get("/c/{tenant_slug}/unsubscribe/{follow_token}", response_class=HTMLResponse)
def unsubscribe_form(
    tenant_slug: str, follow_token: str, page: PublicPage, session: DbSession
) -> Response:
    tenant = tenant_or_404(session, tenant_slug)
    follower = service.get_follower(session, tenant.id, follow_token)
    found = service.request_of_follower(session, follower)
    return page.render(
        "requests/citizen_unsubscribe.html",
        {"place": tenant, "code": found.code, "done": follower.unsubscribed_at is not None},
    )


@router.post("/c/{tenant_slug}/unsubscribe/{follow_token}", response_class=HTMLResponse)
def unsubscribe(
    tenant_slug: str, follow_token: str, page: PublicPage, session: DbSession
) -> Response:
    """The link's token is the credential (it also serves RFC 8058 one-click unsubscribe)."""
    tenant = tenant_or_404(session, tenant_slug)
    follower = service.unfollow(session, tenant.id, follow_token)
    found = service.request_of_follower(session, follower)
    return page.render(
        "requests/citizen_unsubscribe.html", {"place": tenant, "code": found.code, "done": True}
    )


@router.get("/c/{tenant_slug}/photos/{request_photo_id}")
def public_photo(
    tenant_slug: str, request_photo_id: str, session: DbSession, request: Request
) -> Response:
    tenant = tenant_or_404(session, tenant_slug)
    photo = service.get_photo(session, tenant.id, request_photo_id, public=True)
    uploads = request.app.state.settings.uploads_dir
    return FileResponse(
        uploads / photo.path,
        media_type=photo.content_type,
        headers={"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"},
    )
