"""HTTP routes of the telemetry domain: ingestion, devices, series queries and exports."""

from __future__ import annotations

import csv
import functools
import io
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from starlette.concurrency import run_in_threadpool

from territoire.config import Settings
from territoire.db import Database
from territoire.db.base import utcnow
from territoire.errors import DomainError, Forbidden, NotAuthenticated, PayloadTooLarge, invalid
from territoire.http import AppSettings, DbSession, Reader, RegistryEditor, get_database, requires
from territoire.telemetry import service, store
from territoire.telemetry.bus import RateLimiter
from territoire.telemetry.decoders import PIECE_READINGS, decode_pieces
from territoire.telemetry.models import Device
from territoire.telemetry.records import DeviceInfo, Rejection
from territoire.telemetry.schemas import (
    CounterOut,
    DeadLetterOut,
    DeviceCreatedOut,
    DeviceIn,
    DeviceOut,
    IngestOut,
    LatestIn,
    RetentionIn,
    SeriesOut,
    SeriesPageOut,
)
from territoire.tenancy import service as tenancy
from territoire.tenancy.permissions import Permission, allows
from territoire.tenancy.service import Principal

router = APIRouter(prefix="/api/v1", tags=["telemetry"])
Administrator = Annotated[Principal, Depends(requires(Permission.ADMINISTER))]

CONTENT_FORMATS = {"application/senml+json": "senml", "application/json": "json"}
MAX_EXPORT_ROWS = 2_000_000
# One bucket per token: a flood from one sender is refused early with 429.
_senders = RateLimiter(rate=50.0, burst=500.0)


class TooManyRequests(DomainError):
    status_code = 429
    code = "rate_limited"


# --- ingestion -------------------------------------------------------------------------


def _body(raw: bytes, encoding: str, limit: int) -> bytes:
    if encoding.strip().lower() != "gzip":
        return raw
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        body = inflater.decompress(raw, limit + 1)
    except zlib.error as error:
        raise invalid("body", f"Content-Encoding gzip but the body is not gzip: {error}") from error
    if len(body) > limit or inflater.unconsumed_tail:
        raise PayloadTooLarge(f"decompressed body larger than {limit} bytes")
    return body


def _format(request: Request, device: DeviceInfo | None, given: str | None) -> str:
    if given:
        return given
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/senml+json":
        return "senml"
    if device is not None:
        return device.payload_format
    return CONTENT_FORMATS.get(content_type, "json")


@router.post("/telemetry", response_model=IngestOut)
async def ingest_telemetry(
    request: Request,
    settings: AppSettings,
    payload_format: Annotated[
        str | None, Query(alias="format", description="json, senml, chirpstack or tts")
    ] = None,
) -> Response:
    """Ingest a batch. Partly valid batches are stored and answered 200 with the reasons
    for what was refused; a batch with nothing valid is answered 422."""
    raw = await request.body()  # bounded by BodySizeLimit before anything is read
    # Authentication, decoding and storing run in one trip to the thread pool: a batch
    # takes milliseconds of database and CPU work, during which the event loop keeps
    # serving other requests, and every extra trip costs a thread hand-over.
    result = await run_in_threadpool(
        _authenticate_and_ingest, request, get_database(request), raw, payload_format, settings
    )
    content = {
        "accepted": result.accepted,
        "rejected": result.rejected,
        "stored": result.stored,
        "reasons": result.reasons,
        "problems": [_problem(r) for r in result.rejections[:50]],
    }
    if result.accepted == 0 and result.rejected > 0:
        message = "; ".join(f"{reason}: {n}" for reason, n in sorted(result.reasons.items()))
        content["error"] = {
            "code": "invalid",
            "message": f"no reading accepted ({message})",
            "problems": [{"field": r.reason, "reason": r.detail} for r in result.rejections[:50]],
        }
        return Response(orjson.dumps(content), status_code=422, media_type="application/json")
    return Response(orjson.dumps(content), media_type="application/json")


def _authenticate_and_ingest(
    request: Request,
    database: Database,
    raw: bytes,
    given_format: str | None,
    settings: Settings,
) -> service.IngestResult:
    # The sender is looked up in the transaction that then stores the batch: one pooled
    # checkout, BEGIN and COMMIT per request, and the tenant's fingerprint read with the
    # token. A refusal (401/403, 429, a bad payload) rolls that read back.
    with database.session() as session:
        sender = _ingest_sender(request, session)
        if not _senders.allow(sender.key):
            raise TooManyRequests("too many requests from this sender; slow down")
        body = _body(raw, request.headers.get("content-encoding", ""), settings.max_body_bytes)
        payload_format = _format(request, sender.device, given_format)
        return service.ingest_decoded(
            database,
            sender.tenant_id,
            # Only PostgreSQL, working beside this process, gains from pieces.
            decode_pieces(payload_format, body, sender.device, size=_piece_size(database)),
            source="http",
            sender=service.SenderTransaction(session, sender.tenant_created_at),
        )


def _piece_size(database: Database) -> int | None:
    return PIECE_READINGS if database.dialect == "postgresql" else None


@dataclass(frozen=True)
class _Sender:
    tenant_id: int
    tenant_created_at: datetime
    device: DeviceInfo | None
    key: str  # the rate limiter's bucket


def _ingest_sender(request: Request, session: DbSession) -> _Sender:
    scheme, _, raw = request.headers.get("authorization", "").partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not raw:
        raise NotAuthenticated("send a device ingest token or an API token as 'Bearer <token>'")
    found = service.device_sender(session, raw)
    if found is not None:
        device, tenant_created_at = found
        return _Sender(device.tenant_id, tenant_created_at, device, f"device:{device.id}")
    token = tenancy.api_token_sender(session, raw)
    if token is None:
        raise NotAuthenticated("unknown, expired or revoked token")
    principal = token.principal
    if not allows(principal.role, Permission.INGEST_TELEMETRY):
        raise Forbidden(f"the role '{principal.role.value}' may not ingest telemetry")
    key = f"token:{principal.token_id}"
    return _Sender(principal.tenant_id, token.tenant_created_at, None, key)


def _problem(rejection: Rejection) -> dict[str, str]:
    return {"reason": rejection.reason, "detail": rejection.detail, "excerpt": rejection.excerpt}


# --- devices ---------------------------------------------------------------------------


def _device_out(device: Device) -> dict[str, Any]:
    return {
        "device_id": device.device_id,
        "entity": device.entity,
        "payload_format": device.payload_format,
        "mapping": device.mapping,
        "created_at": device.created_at,
    }


@router.post("/devices", response_model=DeviceCreatedOut, status_code=201)
def create_device(
    body: DeviceIn, session: DbSession, principal: RegistryEditor
) -> DeviceCreatedOut:
    mapping = (
        {
            path: service.MappingTarget(m.attribute, m.unit, m.scale, m.entity)
            for path, m in body.mapping.items()
        }
        if body.mapping
        else None
    )
    device, raw = service.register_device(
        session,
        principal.tenant_id,
        device_id=body.device_id,
        entity=body.entity,
        payload_format=body.payload_format,
        mapping=mapping,
    )
    return DeviceCreatedOut(**_device_out(device), ingest_token=raw)


@router.get("/devices", response_model=list[DeviceOut])
def list_devices(session: DbSession, principal: Reader) -> list[DeviceOut]:
    return [DeviceOut(**_device_out(d)) for d in service.list_devices(session, principal.tenant_id)]


@router.get("/devices/{device_id}", response_model=DeviceOut)
def get_device(device_id: str, session: DbSession, principal: Reader) -> DeviceOut:
    return DeviceOut(**_device_out(service.get_device(session, principal.tenant_id, device_id)))


# --- series ----------------------------------------------------------------------------


def _series_out(info: service.SeriesInfo) -> SeriesOut:
    return SeriesOut(
        id=info.id,
        entity=info.entity,
        attribute=info.attribute,
        unit=info.unit,
        last_ts=info.last_ts,
        last_value=info.last_value,
    )


@router.get("/series", response_model=SeriesPageOut)
def list_series(
    session: DbSession,
    principal: Reader,
    entity: str | None = None,
    attribute: str | None = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> SeriesPageOut:
    items, total = service.list_series(
        session, principal.tenant_id, entity=entity, attribute=attribute, limit=limit, offset=offset
    )
    return SeriesPageOut(
        items=[_series_out(i) for i in items], total=total, limit=limit, offset=offset
    )


def _latest_response(columns: dict[str, list[Any]]) -> Response:
    # Columns, not objects: 50,000 series stay a small, fast answer for the map.
    content: dict[str, Any] = {"count": len(columns["id"]), **columns}
    if "ts" in columns:
        content["ts_unit"] = "ms since 1970-01-01T00:00:00Z"
    return Response(orjson.dumps(content), media_type="application/json")


def _field_list(text: str | None) -> list[str]:
    if text is None:
        return list(service.LATEST_FIELDS)
    return [part.strip() for part in text.split(",") if part.strip() and part.strip() != "id"]


FieldsQuery = Annotated[
    str | None,
    Query(
        description="Comma-separated columns besides id, among entity, attribute, unit, ts, "
        "value (default: all); a map that knows its series asks for ts,value"
    ),
]


@router.get("/series/latest")
def latest_values(
    session: DbSession,
    principal: Reader,
    ids: Annotated[str | None, Query(description="Comma-separated series ids")] = None,
    attribute: str | None = None,
    fields: FieldsQuery = None,
) -> Response:
    """Last value of many series at once; all the tenant's series when no ids are given."""
    wanted = _id_list(ids) if ids else None
    columns = service.latest_fields(
        session, principal.tenant_id, _field_list(fields), wanted, attribute
    )
    return _latest_response(columns)


@router.post("/series/latest")
def latest_values_for(
    body: LatestIn, session: DbSession, principal: Reader, fields: FieldsQuery = None
) -> Response:
    columns = service.latest_fields(session, principal.tenant_id, _field_list(fields), body.ids)
    return _latest_response(columns)


def _id_list(text: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise invalid("ids", "comma-separated integer series ids") from error


@router.get("/series/{series_id}", response_model=SeriesOut)
def get_series(series_id: int, session: DbSession, principal: Reader) -> SeriesOut:
    return _series_out(service.get_series(session, principal.tenant_id, series_id))


def parse_moment(value: str | None, name: str, default: datetime) -> datetime:
    """ISO 8601 with any offset; a '+' turned into a space by a URL is put back."""
    if value is None:
        return default
    text = value.strip().replace(" ", "+") if "T" in value else value.strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as error:
        raise invalid(
            name, "an ISO 8601 date-time with offset, e.g. 2025-03-30T00:00:00+01:00"
        ) from error
    if moment.tzinfo is None:
        raise invalid(name, "give a UTC offset (Z or ±hh:mm): a local time is ambiguous")
    return moment


def _range(start: str | None, end: str | None, span: timedelta) -> tuple[datetime, datetime]:
    stop = parse_moment(end, "to", utcnow())
    return parse_moment(start, "from", stop - span), stop


@router.get("/series/{series_id}/observations")
def observations(
    series_id: int,
    session: DbSession,
    principal: Reader,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 1000,
) -> Response:
    """Raw observations in [from, to), oldest first; `next_from` pages onwards."""
    first, last = _range(start, end, timedelta(days=1))
    rows = service.observations(session, principal.tenant_id, series_id, first, last, limit)
    following = None
    if len(rows) == limit:
        following = _iso(rows[-1][0] + 1)
    return Response(
        orjson.dumps(
            {
                "series": series_id,
                "from": first.isoformat(),
                "to": last.isoformat(),
                "items": [{"ts": _iso(ms), "value": value} for ms, value in rows],
                "next_from": following,
            }
        ),
        media_type="application/json",
    )


def _iso(ms: int) -> str:
    return store.from_ms(ms).isoformat().replace("+00:00", "Z")


@router.get("/series/{series_id}/aggregate")
def aggregate(
    series_id: int,
    session: DbSession,
    principal: Reader,
    period: Annotated[str, Query(description="PT1H or P1D")] = "PT1H",
    fn: Annotated[str, Query(description="Among avg,min,max,sum,count")] = "avg,min,max",
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
    tz: Annotated[str, Query(description="Zone for day buckets")] = "Europe/Paris",
    layout: Annotated[
        str,
        Query(
            description="rows: one object per bucket (default); columns: one array per "
            "field, with bucket starts as epoch milliseconds in 't' (smaller, faster)"
        ),
    ] = "rows",
) -> Response:
    functions = [f.strip() for f in fn.split(",") if f.strip()]
    unknown = [f for f in functions if f not in service.FUNCTIONS]
    if unknown or not functions:
        raise invalid("fn", f"choose among {', '.join(service.FUNCTIONS)}")
    if layout not in {"rows", "columns"}:
        raise invalid("layout", "rows or columns")
    try:
        zone = ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise invalid("tz", f"unknown time zone {tz!r}") from error
    first, last = _range(start, end, timedelta(days=7))
    buckets = service.aggregate_columns(
        session, principal.tenant_id, series_id, first, last, period, zone
    )
    fields = {name: _aggregate_field(buckets, name) for name in functions}
    content: dict[str, Any] = {"series": series_id, "period": period, "tz": tz}
    if layout == "columns":
        content.update({"t": buckets.start.tolist(), **fields})
        return Response(orjson.dumps(content), media_type="application/json")
    row = _bucket_type(tuple(fields))
    starts = buckets.start_texts(zone)
    content["buckets"] = list(map(row, starts, *fields.values()))
    return Response(msgspec.json.encode(content), media_type="application/json")


def _aggregate_field(buckets: service.AggregateColumns, name: str) -> list[Any]:
    if name == "avg":
        return list(buckets.avg().tolist())
    return list(getattr(buckets, name).tolist())


@functools.cache
def _bucket_type(functions: tuple[str, ...]) -> Any:
    """A struct per choice of functions: thousands of buckets are made and encoded as
    objects several times faster than dictionaries."""
    fields = [("start", str), *((name, int if name == "count" else float) for name in functions)]
    return msgspec.defstruct("Bucket", fields, gc=False)


@router.get("/series/{series_id}/export.csv")
def export_csv(
    series_id: int,
    session: DbSession,
    principal: Reader,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    first, last = _range(start, end, timedelta(days=30))
    info = service.get_series(session, principal.tenant_id, series_id)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["ts", "value", "unit"])
    for ms, value in _export_rows(session, principal.tenant_id, series_id, first, last):
        writer.writerow([_iso(ms), repr(value), info.unit or ""])
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="series-{series_id}.csv"'},
    )


@router.get("/series/{series_id}/export.parquet")
def export_parquet(
    series_id: int,
    session: DbSession,
    principal: Reader,
    start: Annotated[str | None, Query(alias="from")] = None,
    end: Annotated[str | None, Query(alias="to")] = None,
) -> Response:
    from territoire.telemetry import lake

    first, last = _range(start, end, timedelta(days=30))
    info = service.get_series(session, principal.tenant_id, series_id)
    rows = _export_rows(session, principal.tenant_id, series_id, first, last)
    return Response(
        lake.series_parquet(info, rows),
        media_type="application/vnd.apache.parquet",
        headers={"Content-Disposition": f'attachment; filename="series-{series_id}.parquet"'},
    )


def _export_rows(
    session: DbSession, tenant_id: int, series_id: int, first: datetime, last: datetime
) -> list[tuple[int, float]]:
    rows: list[tuple[int, float]] = []
    for page in service.iter_observations(session, tenant_id, series_id, first, last):
        rows.extend(page)
        if len(rows) > MAX_EXPORT_ROWS:
            raise PayloadTooLarge(f"more than {MAX_EXPORT_ROWS} rows; export a shorter range")
    return rows


# --- operations ------------------------------------------------------------------------


@router.get("/telemetry/dead-letters", response_model=list[DeadLetterOut])
def dead_letters(
    session: DbSession, principal: Reader, limit: Annotated[int, Query(ge=1, le=1000)] = 100
) -> list[DeadLetterOut]:
    return [
        DeadLetterOut(
            received_at=d.received_at,
            source=d.source,
            reason=d.reason,
            detail=d.detail,
            excerpt=d.excerpt,
        )
        for d in service.dead_letters(session, principal.tenant_id, limit)
    ]


@router.get("/telemetry/counters", response_model=list[CounterOut])
def counters(session: DbSession, principal: Reader) -> list[CounterOut]:
    return [
        CounterOut(source=c.source, reason=c.reason, count=c.count)
        for c in service.rejection_counts(session, principal.tenant_id)
    ]


@router.put("/telemetry/retention", response_model=RetentionIn)
def set_retention(body: RetentionIn, session: DbSession, principal: Administrator) -> RetentionIn:
    service.set_raw_retention(session, principal.tenant_id, body.raw_days)
    return body
