"""Citizen requests: create, find, follow, triage, answer, merge, moderate, hand over to
interventions, and erase personal data after closure.

The only entry point for other domains. Functions take a Session and plain data, raise
`territoire.errors` exceptions, and never import FastAPI.
"""

from __future__ import annotations

import math
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from shapely.geometry import Point
from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.orm import Session

from territoire import events
from territoire.db.base import utcnow
from territoire.errors import Conflict, Forbidden, NotFound, invalid
from territoire.registry import service as registry
from territoire.requests import catalogue, geocode, handover, photos
from territoire.requests.models import (
    CLOSED_STATUSES,
    Category,
    Channel,
    CitizenRequest,
    Contact,
    ContactAccess,
    Follower,
    OutboxItem,
    OutboxState,
    Photo,
    RequestUpdate,
    Status,
    UpdateSource,
)
from territoire.requests.text import clean_text, redact_personal_data
from territoire.tenancy import service as tenancy

CODE_ALPHABET = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"  # no 0/O, 1/I: read out on the phone
MAX_DESCRIPTION = 4000  # Open311's limit for description
MAX_PHOTOS = 3
EMAIL_PATTERN = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
PHONE_PATTERN = re.compile(r"^\+?[0-9 .()-]{6,30}$")
URL_PATTERN = re.compile(r"^https?://[^\s<>\"]{1,490}$")
EARTH_RADIUS_M = 6_371_000.0
CREATED_EVENT = "citizen_request.created"
STATUS_EVENT = "citizen_request.status_changed"


@dataclass(frozen=True)
class Actor:
    """Who makes a change: an agent, a resident, an Open311 client or the system."""

    source: UpdateSource
    user_id: int | None = None
    token_id: int | None = None
    api_key_id: int | None = None


@dataclass
class RequestDraft:
    """What a resident (or an agent for them) gives; photos are raw uploaded bytes."""

    category_code: str
    description: str = ""
    lat: float | None = None
    lon: float | None = None
    address: str = ""
    address_id: str | None = None
    attributes: dict[str, str | list[str]] = field(default_factory=dict)
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone: str | None = None
    follow: bool = True
    media_url: str | None = None
    channel: Channel = Channel.WEB
    photos: list[bytes] = field(default_factory=list)


@dataclass(frozen=True)
class PhotoLimits:
    uploads_dir: Path
    max_bytes: int = 4 * 1024 * 1024
    max_count: int = MAX_PHOTOS


@dataclass
class RequestFilter:
    statuses: Sequence[Status] = ()
    open_only: bool = False
    commune_id: int | None = None
    category_id: int | None = None
    channel: Channel | None = None
    text: str | None = None


@dataclass
class PublicQuery:
    """Open311 GET requests: `codes` overrides every other filter, as the spec says."""

    codes: Sequence[str] = ()
    category_ids: Sequence[int] = ()
    start: datetime | None = None
    end: datetime | None = None
    statuses: Sequence[Status] = ()
    limit: int = 1000
    offset: int = 0


@dataclass
class Page:
    items: list[CitizenRequest]
    total: int


@dataclass(frozen=True)
class ContactView:
    email: str | None
    first_name: str | None
    last_name: str | None
    phone: str | None
    erased: bool


def is_closed(status: Status) -> bool:
    return status in CLOSED_STATUSES


def open311_status(status: Status) -> str:
    """The spec's two-valued status; the extended one is in servicerequestupdates."""
    return "closed" if is_closed(status) else "open"


# --- creation ------------------------------------------------------------------------


def _new_code(session: Session) -> str:
    while True:
        raw = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
        code = f"{raw[:4]}-{raw[4:]}"
        if session.scalar(select(CitizenRequest.id).where(CitizenRequest.code == code)) is None:
            return code


def _optional(value: str | None, name: str, max_length: int) -> str | None:
    text = clean_text(value, name, max_length=max_length, multiline=False)
    return text or None


def _check_contact(draft: RequestDraft) -> dict[str, str | None]:
    email = _optional(draft.email, "email", 254)
    if email is not None:
        email = email.lower()
        if not EMAIL_PATTERN.match(email):
            raise invalid("email", "not an e-mail address")
    phone = _optional(draft.phone, "phone", 40)
    if phone is not None and not PHONE_PATTERN.match(phone):
        raise invalid("phone", "digits, spaces, + . ( ) - only")
    return {
        "email": email,
        "first_name": _optional(draft.first_name, "first_name", 100),
        "last_name": _optional(draft.last_name, "last_name", 100),
        "phone": phone,
    }


def _check_coordinates(lat: float | None, lon: float | None) -> tuple[float, float] | None:
    if lat is None and lon is None:
        return None
    if lat is None or lon is None:
        raise invalid("lat" if lat is None else "long", "lat and long go together")
    if not (math.isfinite(lat) and math.isfinite(lon)):
        raise invalid("lat", "coordinates must be finite numbers")
    if not -90 <= lat <= 90:
        raise invalid("lat", "latitude between -90 and 90 (WGS 84)")
    if not -180 <= lon <= 180:
        raise invalid("long", "longitude between -180 and 180 (WGS 84)")
    return round(lat, 7), round(lon, 7)


@dataclass
class _Placed:
    lat: float | None
    lon: float | None
    commune_id: int | None
    address: str


def _place(
    session: Session,
    tenant_id: int,
    draft: RequestDraft,
    processed: list[photos.ProcessedPhoto],
) -> _Placed:
    """Coordinates from the sender, else from a photo's EXIF, else from the address."""
    address = clean_text(draft.address, "address_string", max_length=300, multiline=False)
    address_id = _optional(draft.address_id, "address_id", 100)
    point = _check_coordinates(draft.lat, draft.lon)
    if point is None:
        located = [(p.exif_lat, p.exif_lon) for p in processed if p.exif_lat is not None]
        point = _check_coordinates(*located[0]) if located else None
    commune_id: int | None = None
    if point is None and address:
        found = geocode.locate_address(session, tenant_id, address)
        if found is not None:
            commune_id = found.commune_id
            if found.lat is not None and found.lon is not None:
                point = (found.lat, found.lon)
    if point is None and not address and not address_id:
        raise invalid(
            "location", "give lat and long, an address_string or address_id, or a located photo"
        )
    if point is not None:
        commune_id = _commune_of_point(session, tenant_id, point) or commune_id
    return _Placed(point[0] if point else None, point[1] if point else None, commune_id, address)


def _commune_of_point(session: Session, tenant_id: int, point: tuple[float, float]) -> int | None:
    """The commune containing the point; a point outside a mapped territory is refused."""
    if not any(c.boundary for c in tenancy.list_communes(session, tenant_id)):
        return None
    commune_id = registry.commune_locator(session, tenant_id).locate(Point(point[1], point[0]))
    if commune_id is None:
        raise invalid("lat", "this place is outside the territory of this authority")
    return commune_id


def _check_media_url(value: str | None) -> str | None:
    url = (value or "").strip()
    if not url:
        return None
    if not URL_PATTERN.match(url):
        raise invalid("media_url", "an http(s) URL of at most 500 characters")
    return url


def _process_photos(draft: RequestDraft, limits: PhotoLimits | None) -> list[photos.ProcessedPhoto]:
    if not draft.photos:
        return []
    if limits is None:
        raise invalid("media", "photos are not accepted here")
    if len(draft.photos) > limits.max_count:
        raise invalid("media", f"at most {limits.max_count} photos")
    return [
        photos.process_photo(raw, max_bytes=limits.max_bytes, field=f"media[{index}]")
        for index, raw in enumerate(draft.photos)
    ]


def create_request(
    session: Session,
    tenant_id: int,
    draft: RequestDraft,
    *,
    actor: Actor,
    photo_limits: PhotoLimits | None = None,
) -> CitizenRequest:
    """Check everything first, then store the request, its contact, follower and photos."""
    category = catalogue.get_category(session, tenant_id, draft.category_code)
    if not category.active:
        raise NotFound(f"no category (service_code) {draft.category_code!r}")
    description = clean_text(draft.description, "description", max_length=MAX_DESCRIPTION)
    answers = catalogue.check_answers(category, draft.attributes)
    contact = _check_contact(draft)
    media_url = _check_media_url(draft.media_url)
    processed = _process_photos(draft, photo_limits)
    placed = _place(session, tenant_id, draft, processed)
    route = catalogue.route_for(session, tenant_id, category.id, placed.commune_id)
    now = utcnow()
    request = CitizenRequest(
        tenant_id=tenant_id,
        public_id=str(uuid.uuid4()),
        code=_new_code(session),
        category_id=category.id,
        status=Status.OPEN,
        description=description,
        attributes=answers,
        lat=placed.lat,
        lon=placed.lon,
        address=placed.address,
        address_id=_optional(draft.address_id, "address_id", 100),
        commune_id=placed.commune_id,
        channel=draft.channel,
        entered_by=actor.user_id if actor.source is UpdateSource.AGENT else None,
        media_url=media_url,
        team_id=route.team_id if route else None,
        agency=route.agency if route else "",
        created_at=now,
        updated_at=now,
    )
    session.add(request)
    session.flush()
    _record(session, request, None, Status.OPEN, "", public=True, actor=actor)
    if any(contact.values()):
        session.add(Contact(tenant_id=tenant_id, request_id=request.id, **contact))
    if contact["email"] and draft.follow:
        follow(session, request, contact["email"])
    if processed and photo_limits is not None:
        _store_photos(session, request, processed, photo_limits.uploads_dir)
    session.flush()
    events.publish(
        session,
        events.Event(CREATED_EVENT, tenant_id, {"id": request.public_id, "code": request.code}),
    )
    return request


def _store_photos(
    session: Session,
    request: CitizenRequest,
    processed: list[photos.ProcessedPhoto],
    uploads_dir: Path,
) -> None:
    written: list[str] = []
    try:
        for item in processed:
            public_id = str(uuid.uuid4())
            relative = f"requests/{request.tenant_id}/{public_id}.jpg"
            photos.store(uploads_dir, relative, item.data)
            written.append(relative)
            session.add(
                Photo(
                    tenant_id=request.tenant_id,
                    request_id=request.id,
                    public_id=public_id,
                    path=relative,
                    content_type=item.content_type,
                    width=item.width,
                    height=item.height,
                    size_bytes=len(item.data),
                    exif_lat=item.exif_lat,
                    exif_lon=item.exif_lon,
                )
            )
        session.flush()
    except BaseException:
        for relative in written:  # nothing stored half-way: the files go with the rows
            photos.remove(uploads_dir, relative)
        raise


# --- history and status --------------------------------------------------------------


def _record(
    session: Session,
    request: CitizenRequest,
    old: Status | None,
    new: Status,
    note: str,
    *,
    public: bool,
    actor: Actor,
    external_id: str | None = None,
    media_url: str | None = None,
) -> RequestUpdate:
    entry = RequestUpdate(
        tenant_id=request.tenant_id,
        request_id=request.id,
        public_id=str(uuid.uuid4()),
        old_status=old,
        status=new,
        note=note,
        public=public,
        source=actor.source,
        author_id=actor.user_id,
        api_key_id=actor.api_key_id,
        external_id=external_id,
        media_url=media_url,
        created_at=utcnow(),
    )
    session.add(entry)
    session.flush()
    return entry


def check_transition(old: Status, new: Status) -> None:
    if new is Status.DUPLICATE:
        raise invalid("status", "mark a duplicate by merging it into the original request")
    if new is Status.REOPENED and not is_closed(old):
        raise invalid("status", "only a closed request can be reopened")
    if is_closed(old) and not is_closed(new) and new is not Status.REOPENED:
        raise invalid("status", "this request is closed: reopen it first")


def add_update(
    session: Session,
    tenant_id: int,
    code: str,
    *,
    status: Status | None,
    note: str,
    public: bool,
    actor: Actor,
    external_id: str | None = None,
    media_url: str | None = None,
) -> RequestUpdate:
    """Change the status and/or answer. Public changes are told to the followers."""
    request = get_request(session, tenant_id, code)
    note = clean_text(note, "note", max_length=MAX_DESCRIPTION)
    new = status or request.status
    changed = new is not request.status
    if status is not None and changed:
        check_transition(request.status, new)
    if not changed and not note:
        raise invalid("note", "give a new status or a note")
    if changed and not public:
        raise invalid("public", "a status change is always public")
    old = request.status
    entry = _record(
        session,
        request,
        old,
        new,
        note,
        public=public,
        actor=actor,
        external_id=external_id,
        media_url=_check_media_url(media_url),
    )
    if changed:
        _apply_status(request, new)
        events.publish(
            session,
            events.Event(
                STATUS_EVENT,
                tenant_id,
                {"id": request.public_id, "code": request.code, "old": old, "new": new},
            ),
        )
    request.updated_at = entry.created_at
    if public:
        _enqueue_notifications(session, request, entry)
    session.flush()
    return entry


def _apply_status(request: CitizenRequest, new: Status) -> None:
    request.status = new
    if is_closed(new):
        request.closed_at = request.closed_at or utcnow()
    else:
        request.closed_at = None


def _enqueue_notifications(session: Session, request: CitizenRequest, entry: RequestUpdate) -> None:
    followers = session.scalars(
        select(Follower).where(
            Follower.request_id == request.id, Follower.unsubscribed_at.is_(None)
        )
    )
    for follower in followers:
        session.add(
            OutboxItem(
                tenant_id=request.tenant_id,
                follower_id=follower.id,
                request_id=request.id,
                update_id=entry.id,
                status=entry.status,
                note=entry.note,
                created_at=entry.created_at,
            )
        )


def history(session: Session, request: CitizenRequest, *, public_only: bool) -> list[RequestUpdate]:
    query = select(RequestUpdate).where(RequestUpdate.request_id == request.id)
    if public_only:
        query = query.where(RequestUpdate.public.is_(True))
    return list(session.scalars(query.order_by(RequestUpdate.created_at, RequestUpdate.id)))


def latest_public_note(session: Session, request: CitizenRequest) -> str:
    note = session.scalar(
        select(RequestUpdate.note)
        .where(
            RequestUpdate.request_id == request.id,
            RequestUpdate.public.is_(True),
            RequestUpdate.note != "",
        )
        .order_by(RequestUpdate.created_at.desc(), RequestUpdate.id.desc())
        .limit(1)
    )
    return note or ""


def find_update_by_external_id(
    session: Session, api_key_id: int, external_id: str
) -> RequestUpdate | None:
    return session.scalar(
        select(RequestUpdate).where(
            RequestUpdate.api_key_id == api_key_id, RequestUpdate.external_id == external_id
        )
    )


def public_updates(
    session: Session,
    tenant_id: int,
    *,
    start: datetime,
    end: datetime,
    limit: int,
    offset: int,
) -> list[tuple[RequestUpdate, CitizenRequest]]:
    rows = session.execute(
        select(RequestUpdate, CitizenRequest)
        .join(CitizenRequest, CitizenRequest.id == RequestUpdate.request_id)
        .where(
            RequestUpdate.tenant_id == tenant_id,
            RequestUpdate.public.is_(True),
            CitizenRequest.hidden.is_(False),
            RequestUpdate.created_at >= start,
            RequestUpdate.created_at <= end,
        )
        .order_by(RequestUpdate.created_at.desc(), RequestUpdate.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return [(entry, request) for entry, request in rows]


# --- queries -------------------------------------------------------------------------


def get_request(session: Session, tenant_id: int, code: str) -> CitizenRequest:
    request = session.scalar(
        select(CitizenRequest).where(
            CitizenRequest.tenant_id == tenant_id, CitizenRequest.code == code.strip().upper()
        )
    )
    if request is None:
        raise NotFound(f"no request {code}")
    return request


def get_public_request(session: Session, tenant_id: int, code: str) -> CitizenRequest:
    request = get_request(session, tenant_id, code)
    if request.hidden:
        raise NotFound(f"no request {code}")
    return request


def get_by_public_id(session: Session, tenant_id: int, public_id: str) -> CitizenRequest:
    request = session.scalar(
        select(CitizenRequest).where(
            CitizenRequest.tenant_id == tenant_id, CitizenRequest.public_id == public_id
        )
    )
    if request is None:
        raise NotFound(f"no request with token {public_id}")
    return request


def list_requests(
    session: Session, tenant_id: int, where: RequestFilter, *, limit: int = 50, offset: int = 0
) -> Page:
    """The triage inbox (agents): every request of the tenant, hidden ones included."""
    clauses: list[Any] = [CitizenRequest.tenant_id == tenant_id]
    if where.statuses:
        clauses.append(CitizenRequest.status.in_(list(where.statuses)))
    if where.open_only:
        clauses.append(CitizenRequest.status.not_in(list(CLOSED_STATUSES)))
    if where.commune_id is not None:
        clauses.append(CitizenRequest.commune_id == where.commune_id)
    if where.category_id is not None:
        clauses.append(CitizenRequest.category_id == where.category_id)
    if where.channel is not None:
        clauses.append(CitizenRequest.channel == where.channel)
    if where.text:
        pattern = "%" + where.text.lower().replace("%", r"\%").replace("_", r"\_") + "%"
        clauses.append(
            or_(
                func.lower(CitizenRequest.description).like(pattern, escape="\\"),
                func.lower(CitizenRequest.address).like(pattern, escape="\\"),
                func.lower(CitizenRequest.code).like(pattern, escape="\\"),
            )
        )
    condition = and_(*clauses)
    total = session.scalar(select(func.count()).select_from(CitizenRequest).where(condition))
    items = session.scalars(
        select(CitizenRequest)
        .where(condition)
        .order_by(CitizenRequest.created_at.desc(), CitizenRequest.id.desc())
        .limit(limit)
        .offset(offset)
    )
    return Page(list(items), int(total or 0))


def search_public(session: Session, tenant_id: int, query: PublicQuery) -> list[CitizenRequest]:
    clauses: list[Any] = [CitizenRequest.tenant_id == tenant_id, CitizenRequest.hidden.is_(False)]
    if query.codes:
        clauses.append(CitizenRequest.code.in_([c.strip().upper() for c in query.codes]))
    else:
        if query.category_ids:
            clauses.append(CitizenRequest.category_id.in_(list(query.category_ids)))
        if query.start is not None:
            clauses.append(CitizenRequest.created_at >= query.start)
        if query.end is not None:
            clauses.append(CitizenRequest.created_at <= query.end)
        if query.statuses:
            clauses.append(CitizenRequest.status.in_(list(query.statuses)))
    return list(
        session.scalars(
            select(CitizenRequest)
            .where(and_(*clauses))
            .order_by(CitizenRequest.created_at.desc(), CitizenRequest.id.desc())
            .limit(query.limit)
            .offset(query.offset)
        )
    )


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine), enough for 'within a few hundred metres'."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    d_phi, d_lambda = phi2 - phi1, math.radians(lon2 - lon1)
    a = math.sin(d_phi / 2) ** 2 + math.cos(phi1) * math.cos(phi2) * math.sin(d_lambda / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(a)))


def _near(lat: float, lon: float, radius_m: float) -> list[Any]:
    """A bounding box around the point, for the index; the exact distance is checked after."""
    d_lat = radius_m / 111_200.0
    d_lon = radius_m / (111_200.0 * max(0.01, math.cos(math.radians(lat))))
    return [
        CitizenRequest.lat.between(lat - d_lat, lat + d_lat),
        CitizenRequest.lon.between(lon - d_lon, lon + d_lon),
    ]


def nearby(
    session: Session,
    tenant_id: int,
    lat: float,
    lon: float,
    radius_m: float,
    *,
    category_id: int | None = None,
    open_only: bool = False,
    public_only: bool = True,
    exclude_id: int | None = None,
    limit: int = 50,
) -> list[tuple[CitizenRequest, float]]:
    clauses: list[Any] = [CitizenRequest.tenant_id == tenant_id, *_near(lat, lon, radius_m)]
    if category_id is not None:
        clauses.append(CitizenRequest.category_id == category_id)
    if open_only:
        clauses.append(CitizenRequest.status.not_in(list(CLOSED_STATUSES)))
    if public_only:
        clauses.append(CitizenRequest.hidden.is_(False))
    if exclude_id is not None:
        clauses.append(CitizenRequest.id != exclude_id)
    found = []
    for request in session.scalars(select(CitizenRequest).where(and_(*clauses))):
        assert request.lat is not None and request.lon is not None
        distance = distance_m(lat, lon, request.lat, request.lon)
        if distance <= radius_m:
            found.append((request, distance))
    return sorted(found, key=lambda pair: pair[1])[:limit]


def similar_open(
    session: Session,
    tenant_id: int,
    category_code: str,
    lat: float,
    lon: float,
    *,
    public_only: bool = True,
    exclude_id: int | None = None,
) -> list[tuple[CitizenRequest, float]]:
    """Open requests of the same category within the category's duplicate radius."""
    category = catalogue.get_category(session, tenant_id, category_code)
    point = _check_coordinates(lat, lon)
    assert point is not None
    return nearby(
        session,
        tenant_id,
        point[0],
        point[1],
        category.duplicate_radius_m,
        category_id=category.id,
        open_only=True,
        public_only=public_only,
        exclude_id=exclude_id,
        limit=10,
    )


def duplicate_candidates(
    session: Session, tenant_id: int, code: str
) -> list[tuple[CitizenRequest, float]]:
    request = get_request(session, tenant_id, code)
    if request.lat is None or request.lon is None:
        return []
    category = catalogue.category_by_id(session, tenant_id, request.category_id)
    return similar_open(
        session,
        tenant_id,
        category.code,
        request.lat,
        request.lon,
        public_only=False,
        exclude_id=request.id,
    )


def category_of(session: Session, request: CitizenRequest) -> Category:
    return catalogue.category_by_id(session, request.tenant_id, request.category_id)


def photos_of(session: Session, request: CitizenRequest, *, public_only: bool) -> list[Photo]:
    query = select(Photo).where(Photo.request_id == request.id)
    if public_only:
        query = query.where(Photo.hidden.is_(False))
    return list(session.scalars(query.order_by(Photo.id)))


def get_photo(session: Session, tenant_id: int, public_id: str, *, public: bool) -> Photo:
    """A photo; publicly only when neither it nor its request is hidden."""
    found = session.execute(
        select(Photo, CitizenRequest.hidden)
        .join(CitizenRequest, CitizenRequest.id == Photo.request_id)
        .where(Photo.tenant_id == tenant_id, Photo.public_id == public_id)
    ).first()
    if found is None or (public and (found[0].hidden or found[1])):
        raise NotFound(f"no photo {public_id}")
    photo: Photo = found[0]
    return photo


# --- followers -----------------------------------------------------------------------


def follow(session: Session, request: CitizenRequest, email: str) -> Follower:
    """Subscribe an address to a request's public changes (again, if it had left)."""
    address = (email or "").strip().lower()
    if not EMAIL_PATTERN.match(address) or len(address) > 254:
        raise invalid("email", "not an e-mail address")
    follower = session.scalar(
        select(Follower).where(Follower.request_id == request.id, Follower.email == address)
    )
    if follower is None:
        follower = Follower(
            tenant_id=request.tenant_id,
            request_id=request.id,
            email=address,
            token=secrets.token_urlsafe(32),
        )
        session.add(follower)
    follower.unsubscribed_at = None
    session.flush()
    return follower


def get_follower(session: Session, tenant_id: int, token: str) -> Follower:
    follower = session.scalar(
        select(Follower).where(Follower.tenant_id == tenant_id, Follower.token == token)
    )
    if follower is None:
        raise NotFound("unknown or expired unsubscribe link")
    return follower


def unfollow(session: Session, tenant_id: int, token: str) -> Follower:
    follower = get_follower(session, tenant_id, token)
    if follower.unsubscribed_at is None:
        follower.unsubscribed_at = utcnow()
    session.execute(
        delete(OutboxItem).where(
            OutboxItem.follower_id == follower.id, OutboxItem.state == OutboxState.PENDING
        )
    )
    session.flush()
    return follower


def request_of_follower(session: Session, follower: Follower) -> CitizenRequest:
    request = session.get(CitizenRequest, follower.request_id)
    assert request is not None
    return request


def follower_count(session: Session, request: CitizenRequest) -> int:
    count = session.scalar(
        select(func.count())
        .select_from(Follower)
        .where(Follower.request_id == request.id, Follower.unsubscribed_at.is_(None))
    )
    return int(count or 0)


# --- triage: merge, work orders, moderation -------------------------------------------


def merge(
    session: Session, tenant_id: int, duplicate_code: str, into_code: str, *, actor: Actor
) -> CitizenRequest:
    """Mark a request as a duplicate of another; its followers now follow the original."""
    duplicate = get_request(session, tenant_id, duplicate_code)
    original = get_request(session, tenant_id, into_code)
    if duplicate.id == original.id:
        raise invalid("into", "a request cannot be merged into itself")
    if original.status is Status.DUPLICATE:
        raise invalid("into", f"{original.code} is itself a duplicate: merge into its original")
    if duplicate.status is Status.DUPLICATE:
        raise Conflict(f"{duplicate.code} is already a duplicate")
    note = f"Déjà signalé : suivez la demande {original.code}."
    entry = _record(
        session, duplicate, duplicate.status, Status.DUPLICATE, note, public=True, actor=actor
    )
    _apply_status(duplicate, Status.DUPLICATE)
    duplicate.duplicate_of_id = original.id
    duplicate.updated_at = entry.created_at
    _enqueue_notifications(session, duplicate, entry)
    active = session.scalars(
        select(Follower).where(
            Follower.request_id == duplicate.id, Follower.unsubscribed_at.is_(None)
        )
    )
    for follower in list(active):
        follow(session, original, follower.email)
    session.flush()
    return original


def duplicate_of(session: Session, request: CitizenRequest) -> CitizenRequest | None:
    if request.duplicate_of_id is None:
        return None
    return session.get(CitizenRequest, request.duplicate_of_id)


def set_hidden(
    session: Session, tenant_id: int, code: str, hidden: bool, *, actor: Actor
) -> CitizenRequest:
    request = get_request(session, tenant_id, code)
    if request.hidden != hidden:
        request.hidden = hidden
        note = "Masqué par la modération" if hidden else "Rendu public par la modération"
        _record(session, request, request.status, request.status, note, public=False, actor=actor)
    session.flush()
    return request


def redact_description(
    session: Session, tenant_id: int, code: str, replacement: str | None, *, actor: Actor
) -> CitizenRequest:
    """Replace the description by an agent's text, or mask e-mails and phone numbers.

    The original text is not kept anywhere: that is the point of redacting it.
    """
    request = get_request(session, tenant_id, code)
    if replacement is None:
        new_text = redact_personal_data(request.description)
    else:
        new_text = clean_text(replacement, "description", max_length=MAX_DESCRIPTION)
    request.description = new_text
    request.redacted_at = utcnow()
    _record(
        session,
        request,
        request.status,
        request.status,
        "Texte caviardé",
        public=False,
        actor=actor,
    )
    session.flush()
    return request


def moderate_photo(
    session: Session,
    tenant_id: int,
    code: str,
    photo_id: str,
    *,
    hidden: bool | None,
    blur: tuple[float, float, float, float] | bool | None,
    uploads_dir: Path,
    actor: Actor,
) -> Photo:
    """Hide or show a photo, and/or blur a region of it (`blur=True`: the whole photo)."""
    request = get_request(session, tenant_id, code)
    photo = get_photo(session, tenant_id, photo_id, public=False)
    if photo.request_id != request.id:
        raise NotFound(f"no photo {photo_id} on request {code}")
    if hidden is not None:
        photo.hidden = hidden
    if blur is not False and blur is not None:
        box = None if blur is True else blur
        photo.size_bytes = photos.blur_region(uploads_dir, photo.path, box)
        photo.redacted_at = utcnow()
    note = "Photo modérée"
    _record(session, request, request.status, request.status, note, public=False, actor=actor)
    session.flush()
    return photo


def create_work_order(
    session: Session,
    tenant_id: int,
    code: str,
    *,
    actor: Actor,
    team_id: str | None = None,
    priority: str | None = None,
) -> str:
    """Hand the request over to interventions; its work order's progress comes back
    through the `work_order.status_changed` event (see listeners.py)."""
    request = get_request(session, tenant_id, code)
    if request.work_order_id is not None:
        raise Conflict(f"{request.code} already has a work order ({request.work_order_id})")
    if is_closed(request.status):
        raise Conflict(f"{request.code} is closed: reopen it first")
    category = category_of(session, request)
    route = catalogue.route_for(session, tenant_id, category.id, request.commune_id)
    work_order_id = handover.create_work_order(
        session,
        tenant_id,
        request,
        category,
        team_id=team_id if team_id is not None else request.team_id,
        priority=priority,
        skill=route.skill if route else None,
        created_by=actor.user_id,
    )
    request.work_order_id = work_order_id
    add_update(
        session,
        tenant_id,
        request.code,
        status=Status.ACTION_SCHEDULED,
        note="Une intervention est programmée.",
        public=True,
        actor=actor,
    )
    return work_order_id


WORK_ORDER_TO_STATUS: dict[str, tuple[Status, str]] = {
    "in_progress": (Status.IN_PROGRESS, "L'intervention a commencé."),
    "done": (Status.FIXED, "L'intervention est terminée : le problème est résolu."),
    "closed": (Status.FIXED, "L'intervention est terminée : le problème est résolu."),
}


def on_work_order_status(
    session: Session, tenant_id: int, request_public_id: str, new_status: str
) -> RequestUpdate | None:
    """Follow a work order made from a request: in progress, then fixed."""
    mapped = WORK_ORDER_TO_STATUS.get(new_status)
    if mapped is None:
        return None
    try:
        request = get_by_public_id(session, tenant_id, request_public_id)
    except NotFound:
        return None
    status, note = mapped
    if request.status is status or is_closed(request.status):
        return None
    return add_update(
        session,
        tenant_id,
        request.code,
        status=status,
        note=note,
        public=True,
        actor=Actor(UpdateSource.WORK_ORDER),
    )


# --- personal data -------------------------------------------------------------------


def view_contact(
    session: Session,
    tenant_id: int,
    code: str,
    *,
    purpose: str,
    user_id: int | None,
    token_id: int | None,
) -> ContactView:
    """The reporter's contact, for an authorised agent; every view is logged with its why."""
    request = get_request(session, tenant_id, code)
    why = clean_text(purpose, "purpose", max_length=300, multiline=False)
    if len(why) < 3:
        raise invalid("purpose", "say why you need this person's contact details")
    contact = session.scalar(select(Contact).where(Contact.request_id == request.id))
    session.add(
        ContactAccess(
            tenant_id=tenant_id,
            request_id=request.id,
            user_id=user_id,
            token_id=token_id,
            fields="email,first_name,last_name,phone",
            purpose=why,
        )
    )
    session.flush()
    if contact is None:
        return ContactView(None, None, None, None, erased=request.contact_erased_at is not None)
    return ContactView(contact.email, contact.first_name, contact.last_name, contact.phone, False)


def has_contact(session: Session, request: CitizenRequest) -> bool:
    found = session.scalar(select(Contact.id).where(Contact.request_id == request.id))
    return found is not None


def contact_accesses(session: Session, tenant_id: int, code: str) -> list[ContactAccess]:
    request = get_request(session, tenant_id, code)
    return list(
        session.scalars(
            select(ContactAccess)
            .where(ContactAccess.request_id == request.id)
            .order_by(ContactAccess.accessed_at)
        )
    )


@dataclass(frozen=True)
class PurgeReport:
    requests: int
    contacts: int
    followers: int


def purge_personal_data(
    session: Session, tenant_id: int, *, now: datetime | None = None
) -> PurgeReport:
    """Erase contacts and followers of requests closed more than the tenant's retention
    period ago. The request, its history and photos stay (they hold no contact)."""
    moment = now or utcnow()
    cutoff = moment - timedelta(days=catalogue.retention_days(session, tenant_id))
    due = list(
        session.scalars(
            select(CitizenRequest.id).where(
                CitizenRequest.tenant_id == tenant_id,
                CitizenRequest.closed_at.is_not(None),
                CitizenRequest.closed_at <= cutoff,
                CitizenRequest.contact_erased_at.is_(None),
            )
        )
    )
    if not due:
        return PurgeReport(0, 0, 0)
    contacts = session.execute(delete(Contact).where(Contact.request_id.in_(due)))
    followers = session.execute(delete(Follower).where(Follower.request_id.in_(due)))
    session.execute(
        update(CitizenRequest).where(CitizenRequest.id.in_(due)).values(contact_erased_at=moment)
    )
    return PurgeReport(
        len(due),
        int(getattr(contacts, "rowcount", 0) or 0),
        int(getattr(followers, "rowcount", 0) or 0),
    )


def purge_all_tenants(session: Session, tenant_ids: Sequence[int]) -> dict[int, PurgeReport]:
    return {tenant_id: purge_personal_data(session, tenant_id) for tenant_id in tenant_ids}


def ensure_agent_may_change_status(trusted: bool, current: Status, asked: Status | None) -> None:
    """Open311 clients that are not trusted may comment but not change statuses."""
    if asked is not None and asked is not current and not trusted:
        raise Forbidden("this api_key may add comments but not change a request's status")


def _chunks(ids: Sequence[int], size: int = 500) -> list[list[int]]:
    return [list(ids[start : start + size]) for start in range(0, len(ids), size)]


def latest_public_notes(session: Session, request_ids: Sequence[int]) -> dict[int, str]:
    """The last public answer of each request, in one query per 500 requests."""
    notes: dict[int, str] = {}
    for chunk in _chunks(request_ids):
        rows = session.execute(
            select(RequestUpdate.request_id, RequestUpdate.note)
            .where(
                RequestUpdate.request_id.in_(chunk),
                RequestUpdate.public.is_(True),
                RequestUpdate.note != "",
            )
            .order_by(RequestUpdate.created_at, RequestUpdate.id)
        )
        for request_id, note in rows:
            notes[request_id] = note
    return notes


def first_public_photos(session: Session, request_ids: Sequence[int]) -> dict[int, str]:
    """The public id of each request's first visible photo."""
    found: dict[int, str] = {}
    for chunk in _chunks(request_ids):
        rows = session.execute(
            select(Photo.request_id, Photo.public_id)
            .where(Photo.request_id.in_(chunk), Photo.hidden.is_(False))
            .order_by(Photo.id.desc())
        )
        for request_id, public_id in rows:
            found[request_id] = public_id
    return found


def categories_by_id(session: Session, tenant_id: int) -> dict[int, Category]:
    return {
        category.id: category
        for category in catalogue.list_categories(session, tenant_id, active_only=False)
    }
