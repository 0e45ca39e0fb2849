"""Open311 GeoReport v2 at /open311/v2/, in XML and JSON, with FixMyStreet's
servicerequestupdates extension and page/page_size.

Each format has its own explicit route (`/services.xml`, `/services.json`…). Errors use
the spec's body (`errors` → `error` {code, description}) and status codes: 404 for
what does not exist, 403 for a missing or bad api_key, 400 otherwise (429 when a client
address sends too much, 413 for an oversized photo).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from territoire.config import Settings
from territoire.db.base import utcnow
from territoire.errors import DomainError, Forbidden, NotFound, invalid
from territoire.http import get_database, get_settings
from territoire.requests import catalogue, service
from territoire.requests.models import (
    CLOSED_STATUSES,
    Category,
    Channel,
    CitizenRequest,
    Status,
    UpdateSource,
)
from territoire.requests.notifications import base_url
from territoire.requests.open311_format import (
    FORMATS,
    domain_error_response,
    respond,
    w3_datetime,
)
from territoire.requests.ratelimit import TokenBucket
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import Tenant

router = APIRouter(prefix="/open311/v2", tags=["open311"])

SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
DEFAULT_SPAN = timedelta(days=90)
MAX_PAGE_SIZE = 1000
T = TypeVar("T")


# --- plumbing ------------------------------------------------------------------------


def submission_limiter(request: Request) -> TokenBucket:
    """One bucket set per application (tests get a fresh one with each app)."""
    state = request.app.state
    limiter: TokenBucket | None = getattr(state, "requests_limiter", None)
    if limiter is None:
        settings = get_settings(request)
        limiter = TokenBucket(
            settings.requests_submissions_per_minute, settings.requests_submission_burst
        )
        state.requests_limiter = limiter
    return limiter


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


async def _answer(
    request: Request, fmt: str, root: str, work: Callable[[Session], Any], status_code: int = 200
) -> Response:
    """Run `work` in one transaction off the event loop; a domain error rolls it back
    and becomes an Open311 error body."""

    def run() -> Any:
        with get_database(request).session() as session:
            return work(session)

    try:
        value = await run_in_threadpool(run)
    except DomainError as error:
        return domain_error_response(fmt, error)
    return respond(fmt, root, value, status_code)


def _param(params: dict[str, str], name: str) -> str | None:
    """The spec: an empty parameter is the same as an absent one."""
    value = params.get(name, "").strip()
    return value or None


def tenant_for(session: Session, request: Request, params: dict[str, str]) -> Tenant:
    """`jurisdiction_id` (slug or SIREN) selects the tenant; without it, the caller's
    tenant when a platform token is given, or the only tenant when there is one."""
    jurisdiction = _param(params, "jurisdiction_id")
    if jurisdiction is not None:
        tenant = tenancy.find_tenant_by_slug(session, jurisdiction)
        if tenant is None:
            tenant = next(
                (t for t in tenancy.list_tenants(session) if t.siren == jurisdiction), None
            )
        if tenant is None:
            raise NotFound(f"jurisdiction_id {jurisdiction!r} not found")
        return tenant
    authorization = request.headers.get("authorization", "")
    if authorization:
        scheme, _, raw = authorization.partition(" ")
        principal = (
            tenancy.resolve_api_token(session, raw.strip()) if scheme.lower() == "bearer" else None
        )
        if principal is None:
            raise Forbidden("invalid token in the Authorization header")
        return tenancy.get_tenant(session, principal.tenant_id)
    tenants = tenancy.list_tenants(session)
    if len(tenants) == 1:
        return tenants[0]
    raise invalid("jurisdiction_id", "required: this endpoint serves several jurisdictions")


def _query(request: Request) -> dict[str, str]:
    return dict(request.query_params)


def _parse_moment(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace(" ", "+"))
    except ValueError as error:
        raise invalid(name, "a W3C date-time with its zone, e.g. 2010-01-01T00:00:00Z") from error
    if moment.tzinfo is None:
        raise invalid(name, "the time zone is required (Z or ±HH:MM)")
    return moment.astimezone(UTC)


def date_range(params: dict[str, str]) -> tuple[datetime, datetime]:
    """start_date/end_date with the spec's defaults: the last 90 days, never a longer span."""
    start = _parse_moment(_param(params, "start_date"), "start_date")
    end = _parse_moment(_param(params, "end_date"), "end_date")
    if start is None and end is None:
        end = utcnow()
    if start is None:
        assert end is not None
        start = end - DEFAULT_SPAN
    if end is None:
        end = start + DEFAULT_SPAN
    if end < start:
        raise invalid("end_date", "before start_date")
    if end - start > DEFAULT_SPAN:
        raise invalid("end_date", "a search may not span more than 90 days")
    return start, end


def paging(params: dict[str, str]) -> tuple[int, int]:
    """page (from 1) and page_size (1 to 1000, default 1000): limit and offset."""
    try:
        page = int(_param(params, "page") or 1)
        size = int(_param(params, "page_size") or MAX_PAGE_SIZE)
    except ValueError as error:
        raise invalid("page", "page and page_size are whole numbers") from error
    if page < 1:
        raise invalid("page", "starts at 1")
    if not 1 <= size <= MAX_PAGE_SIZE:
        raise invalid("page_size", f"between 1 and {MAX_PAGE_SIZE}")
    return size, (page - 1) * size


def statuses_from(value: str | None) -> list[Status]:
    """open/closed as in the spec, or any extended status name."""
    if value is None:
        return []
    chosen: list[Status] = []
    for name in (part.strip().lower() for part in value.split(",") if part.strip()):
        if name == "open":
            chosen.extend(s for s in Status if s not in CLOSED_STATUSES)
        elif name == "closed":
            chosen.extend(CLOSED_STATUSES)
        else:
            try:
                chosen.append(Status(name))
            except ValueError as error:
                raise invalid("status", f"unknown status {name!r}: open or closed") from error
    return chosen


# --- representations -----------------------------------------------------------------


def service_item(category: Category) -> dict[str, Any]:
    has_questions = any(a.get("variable", True) for a in category.attributes)
    return {
        "service_code": category.code,
        "service_name": category.name,
        "description": category.description or None,
        "metadata": has_questions,
        "type": "realtime",
        "keywords": category.keywords or None,
        "group": category.group or None,
    }


def definition(category: Category) -> dict[str, Any]:
    return {
        "service_code": category.code,
        "attributes": [
            {
                "variable": a.get("variable", True),
                "code": a["code"],
                "datatype": a["datatype"],
                "required": a["required"],
                "datatype_description": a.get("datatype_description") or None,
                "order": a["order"],
                "description": a["description"],
                "values": [{"key": v["key"], "name": v["name"]} for v in a.get("values", [])],
            }
            for a in category.attributes
        ],
    }


def request_items(
    session: Session, settings: Settings, tenant: Tenant, requests: list[CitizenRequest]
) -> list[dict[str, Any]]:
    ids = [r.id for r in requests]
    notes = service.latest_public_notes(session, ids)
    pictures = service.first_public_photos(session, ids)
    categories = service.categories_by_id(session, tenant.id)
    root = base_url(settings)
    items = []
    for request in requests:
        category = categories[request.category_id]
        photo = pictures.get(request.id)
        items.append(
            {
                "service_request_id": request.code,
                "status": service.open311_status(request.status),
                "status_notes": notes.get(request.id),
                "service_name": category.name,
                "service_code": category.code,
                "description": request.description or None,
                "agency_responsible": request.agency or None,
                "service_notice": category.service_notice or None,
                "requested_datetime": w3_datetime(request.created_at),
                "updated_datetime": w3_datetime(request.updated_at),
                "expected_datetime": None,
                "address": request.address or None,
                "address_id": request.address_id,
                "zipcode": None,
                "lat": request.lat,
                "long": request.lon,
                "media_url": f"{root}/c/{tenant.slug}/photos/{photo}"
                if photo
                else request.media_url,
            }
        )
    return items


# --- GET endpoints -------------------------------------------------------------------


async def discovery(request: Request, fmt: str) -> Response:
    def work(session: Session) -> dict[str, Any]:
        latest = session.scalar(select(func.max(Category.created_at)))
        changeset = (latest or datetime(2026, 1, 1, tzinfo=UTC)).strftime("%Y-%m-%d %H:%M")
        return {
            "changeset": changeset,
            "contact": "Contactez votre collectivité / contact your local authority",
            "key_service": "Une api_key est délivrée par la collectivité "
            "(territoire requests api-key create)",
            "endpoints": [
                {
                    "specification": SPECIFICATION,
                    "url": f"{base_url(get_settings(request))}/open311/v2",
                    "changeset": changeset,
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        }

    return await _answer(request, fmt, "discovery", work)


async def services(request: Request, fmt: str) -> Response:
    params = _query(request)

    def work(session: Session) -> list[dict[str, Any]]:
        tenant = tenant_for(session, request, params)
        return [service_item(c) for c in catalogue.list_categories(session, tenant.id)]

    return await _answer(request, fmt, "services", work)


async def service_definition(request: Request, fmt: str, service_code: str) -> Response:
    params = _query(request)

    def work(session: Session) -> dict[str, Any]:
        tenant = tenant_for(session, request, params)
        category = catalogue.get_category(session, tenant.id, service_code)
        if not category.active:
            raise NotFound(f"service_code {service_code!r} not found")
        return definition(category)

    return await _answer(request, fmt, "service_definition", work)


def _category_ids(session: Session, tenant_id: int, value: str | None) -> list[int]:
    codes = [c.strip() for c in (value or "").split(",") if c.strip()]
    return [catalogue.get_category(session, tenant_id, code).id for code in codes]


async def list_requests(request: Request, fmt: str) -> Response:
    params = _query(request)

    def work(session: Session) -> list[dict[str, Any]]:
        tenant = tenant_for(session, request, params)
        limit, offset = paging(params)
        codes = [c.strip() for c in (_param(params, "service_request_id") or "").split(",")]
        codes = [c for c in codes if c]
        query = service.PublicQuery(codes=codes, limit=limit, offset=offset)
        if not codes:
            query.start, query.end = date_range(params)
            query.category_ids = _category_ids(session, tenant.id, _param(params, "service_code"))
            query.statuses = statuses_from(_param(params, "status"))
        found = service.search_public(session, tenant.id, query)
        return request_items(session, get_settings(request), tenant, found)

    return await _answer(request, fmt, "service_requests", work)


async def get_request(request: Request, fmt: str, service_request_id: str) -> Response:
    params = _query(request)

    def work(session: Session) -> list[dict[str, Any]]:
        tenant = tenant_for(session, request, params)
        found = service.get_public_request(session, tenant.id, service_request_id)
        return request_items(session, get_settings(request), tenant, [found])

    return await _answer(request, fmt, "service_requests", work)


async def token(request: Request, fmt: str, request_token: str) -> Response:
    params = _query(request)

    def work(session: Session) -> list[dict[str, Any]]:
        tenant = tenant_for(session, request, params)
        found = service.get_by_public_id(session, tenant.id, request_token)
        if found.hidden:
            raise NotFound(f"token {request_token} not found")
        return [{"service_request_id": found.code, "token": found.public_id}]

    return await _answer(request, fmt, "service_requests", work)


async def list_updates(request: Request, fmt: str) -> Response:
    params = _query(request)

    def work(session: Session) -> list[dict[str, Any]]:
        tenant = tenant_for(session, request, params)
        start, end = date_range(params)
        limit, offset = paging(params)
        rows = service.public_updates(
            session, tenant.id, start=start, end=end, limit=limit, offset=offset
        )
        return [
            {
                "update_id": entry.public_id,
                "service_request_id": owner.code,
                "status": entry.status.value,
                "updated_datetime": w3_datetime(entry.created_at),
                "description": entry.note or None,
                "media_url": entry.media_url,
            }
            for entry, owner in rows
        ]

    return await _answer(request, fmt, "service_request_updates", work)


# --- POST endpoints ------------------------------------------------------------------


def _attributes(form: FormData) -> dict[str, str | list[str]]:
    """attribute[code]=value, and attribute[code][]=v1&attribute[code][]=v2 for lists."""
    answers: dict[str, str | list[str]] = {}
    for key, value in form.multi_items():
        if not key.startswith("attribute[") or not isinstance(value, str):
            continue
        inner = key[len("attribute[") :]
        code, _, rest = inner.partition("]")
        if not code or rest not in ("", "[]"):
            raise invalid(key, "expected attribute[code] or attribute[code][]")
        if rest == "[]":
            existing = answers.get(code, [])
            answers[code] = [*(existing if isinstance(existing, list) else [existing]), value]
        else:
            answers[code] = value
    return answers


def _fields(form: FormData, query: dict[str, str]) -> dict[str, str]:
    """Text parameters from the form body, then from the query string."""
    merged = dict(query)
    for key, value in form.multi_items():
        if isinstance(value, str):
            merged[key] = value
    return merged


def _float(params: dict[str, str], name: str) -> float | None:
    value = _param(params, name)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError as error:
        raise invalid(name, "must be a number (WGS 84 degrees)") from error


async def _read_form(request: Request) -> FormData:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        raise invalid(
            "Content-Type", "send application/x-www-form-urlencoded (or multipart/form-data)"
        )
    return await request.form(max_files=10, max_fields=200)


async def _photos(form: FormData) -> list[bytes]:
    uploads = [v for k, v in form.multi_items() if k == "media" and isinstance(v, UploadFile)]
    return [await upload.read() for upload in uploads if upload.filename or upload.size]


def _checked_key(session: Session, tenant: Tenant, params: dict[str, str]) -> Any:
    raw = _param(params, "api_key")
    if raw is None:
        raise Forbidden("api_key is missing")
    key = catalogue.resolve_open311_key(session, tenant.id, raw)
    if key is None:
        raise Forbidden("invalid api_key")
    return key


async def create_request(request: Request, fmt: str) -> Response:
    try:
        form = await _read_form(request)
        photos = await _photos(form)
    except DomainError as error:
        return domain_error_response(fmt, error)
    params = _fields(form, _query(request))
    attributes = _attributes(form)
    settings = get_settings(request)
    limiter = submission_limiter(request)
    address = client_address(request)

    def work(session: Session) -> list[dict[str, Any]]:
        tenant = tenant_for(session, request, params)
        key = _checked_key(session, tenant, params)
        if not key.trusted:
            limiter.check(address)
        code = _param(params, "service_code")
        if code is None:
            raise invalid("service_code", "required")
        draft = service.RequestDraft(
            category_code=code,
            description=params.get("description", ""),
            lat=_float(params, "lat"),
            lon=_float(params, "long"),
            address=params.get("address_string", ""),
            address_id=_param(params, "address_id"),
            attributes=attributes,
            email=_param(params, "email"),
            first_name=_param(params, "first_name"),
            last_name=_param(params, "last_name"),
            phone=_param(params, "phone"),
            media_url=_param(params, "media_url"),
            channel=Channel.OPEN311,
            photos=photos,
        )
        created = service.create_request(
            session,
            tenant.id,
            draft,
            actor=service.Actor(UpdateSource.OPEN311, api_key_id=key.id),
            photo_limits=service.PhotoLimits(
                settings.uploads_dir,
                settings.requests_max_photo_bytes,
                settings.requests_max_photos,
            ),
        )
        category = service.category_of(session, created)
        return [
            {
                "service_request_id": created.code,
                "service_notice": category.service_notice or None,
                "account_id": None,
            }
        ]

    return await _answer(request, fmt, "service_requests", work)


def _asked_status(value: str | None, current: Status) -> Status | None:
    """FixMyStreet sends OPEN/CLOSED or an extended name, in capitals."""
    if value is None:
        raise invalid("status", "required: OPEN, CLOSED or an extended status")
    name = value.strip().lower()
    if name == "open":
        return Status.REOPENED if service.is_closed(current) else None
    if name == "closed":
        return None if service.is_closed(current) else Status.CLOSED
    try:
        asked = Status(name)
    except ValueError as error:
        raise invalid("status", f"unknown status {value!r}") from error
    return None if asked is current else asked


async def create_update(request: Request, fmt: str) -> Response:
    try:
        form = await _read_form(request)
    except DomainError as error:
        return domain_error_response(fmt, error)
    params = _fields(form, _query(request))

    def work(session: Session) -> list[dict[str, Any]]:
        tenant = tenant_for(session, request, params)
        key = _checked_key(session, tenant, params)
        for name in ("service_request_id", "update_id", "updated_datetime", "description"):
            if _param(params, name) is None:
                raise invalid(name, "required")
        _parse_moment(_param(params, "updated_datetime"), "updated_datetime")
        external = str(_param(params, "update_id"))[:100]
        existing = service.find_update_by_external_id(session, key.id, external)
        if existing is not None:  # a client retrying: answer as the first time
            return [{"update_id": existing.public_id}]
        target = service.get_public_request(session, tenant.id, str(params["service_request_id"]))
        asked = _asked_status(_param(params, "status"), target.status)
        service.ensure_agent_may_change_status(key.trusted, target.status, asked)
        entry = service.add_update(
            session,
            tenant.id,
            target.code,
            status=asked,
            note=params.get("description", ""),
            public=True,
            actor=service.Actor(UpdateSource.OPEN311, api_key_id=key.id),
            external_id=external,
            media_url=_param(params, "media_url"),
        )
        return [{"update_id": entry.public_id}]

    return await _answer(request, fmt, "service_request_updates", work)


# --- one explicit route per format ---------------------------------------------------

Handler = Callable[..., Awaitable[Response]]


def _bind(handler: Handler, fmt: str) -> Handler:
    async def with_format(request: Request) -> Response:
        return await handler(request, fmt)

    return with_format


def _register(fmt: str) -> None:
    router.add_api_route(f"/discovery.{fmt}", _bind(discovery, fmt), methods=["GET"])
    router.add_api_route(f"/services.{fmt}", _bind(services, fmt), methods=["GET"])
    router.add_api_route(f"/requests.{fmt}", _bind(list_requests, fmt), methods=["GET"])
    router.add_api_route(f"/requests.{fmt}", _bind(create_request, fmt), methods=["POST"])
    router.add_api_route(f"/servicerequestupdates.{fmt}", _bind(list_updates, fmt), methods=["GET"])
    router.add_api_route(
        f"/servicerequestupdates.{fmt}", _bind(create_update, fmt), methods=["POST"]
    )

    async def one_service(request: Request, service_code: str) -> Response:
        return await service_definition(request, fmt, service_code)

    async def one_request(request: Request, service_request_id: str) -> Response:
        return await get_request(request, fmt, service_request_id)

    async def one_token(request: Request, request_token: str) -> Response:
        return await token(request, fmt, request_token)

    router.add_api_route(f"/services/{{service_code}}.{fmt}", one_service, methods=["GET"])
    router.add_api_route(f"/requests/{{service_request_id}}.{fmt}", one_request, methods=["GET"])
    router.add_api_route(f"/tokens/{{request_token}}.{fmt}", one_token, methods=["GET"])


for _fmt in FORMATS:
    _register(_fmt)
