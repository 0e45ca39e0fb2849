"""Telemetry services: the only way other domains touch devices, series and observations.

`ingest` is the one door every path goes through (HTTP, MQTT, the in-process bus, file
imports, the simulator): it checks each reading, resolves its series, stores the batch
in one transaction, then tells `batch_listeners` what was newly stored.
"""

from __future__ import annotations

import bisect
import logging
import math
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select, text, tuple_
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from territoire.db import Database
from territoire.db.base import utcnow
from territoire.errors import AlreadyExists, NotFound, invalid
from territoire.registry import service as registry
from territoire.telemetry import store, units
from territoire.telemetry.decoders import decode, mapping_target, normalise_device_id
from territoire.telemetry.models import (
    DeadLetter,
    Device,
    RejectionCounter,
    RetentionPolicy,
    Series,
)
from territoire.telemetry.records import (
    ATTRIBUTE_PATTERN,
    ENTITY_PATTERN,
    PAYLOAD_FORMATS,
    DecodeOutcome,
    DeviceInfo,
    MappingTarget,
    Reading,
    Rejection,
    StoredReading,
)
from territoire.tenancy import service as tenancy

__all__ = [
    "DecodeOutcome",
    "IngestResult",
    "MappingTarget",
    "Reading",
    "StoredReading",
    "batch_listeners",
    "decode",
    "ensure_series",
    "ingest",
    "register_device",
]

log = logging.getLogger("territoire.telemetry")

DEVICE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}$")
DEVICE_TOKEN_PREFIX = "trd_"  # noqa: S105  (a prefix that makes leaked tokens easy to scan for)
FUTURE_TOLERANCE = timedelta(minutes=5)
DEFAULT_RAW_DAYS = 730
DEAD_LETTERS_PER_BATCH = 50
DEAD_LETTER_LIMIT = 10_000
CACHE_SECONDS = 60.0
MAX_BUCKETS = 200_000
PERIODS = {"PT1H": store.HOUR_MS, "P1D": store.DAY_MS}
FUNCTIONS = ("avg", "min", "max", "sum", "count")

BatchListener = Callable[[Database, int, Sequence[StoredReading]], None]
# Other domains (rules) append here; called after each committed batch, outside it.
batch_listeners: list[BatchListener] = []


@dataclass
class IngestResult:
    accepted: int
    rejected: int
    reasons: dict[str, int]  # reason -> count
    stored: int = 0  # newly stored; accepted - stored were already there (replays)
    rejections: list[Rejection] = field(default_factory=list, repr=False)

    def merge(self, other: IngestResult) -> None:
        self.accepted += other.accepted
        self.rejected += other.rejected
        self.stored += other.stored
        for reason, count in other.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count
        self.rejections.extend(other.rejections)


# --- per-tenant cache of series --------------------------------------------------------


@dataclass
class _TenantCache:
    fingerprint: datetime
    raw_days: int
    loaded_at: float
    by_key: dict[tuple[str, str], tuple[int, str | None]] = field(default_factory=dict)
    by_id: dict[int, tuple[str, str, str | None]] = field(default_factory=dict)


_caches: dict[tuple[str, int], _TenantCache] = {}
_cache_lock = threading.Lock()


def _tenant_cache(session: Session, database_url: str, tenant_id: int) -> _TenantCache:
    """Series ids never change once given, so they are cached per process. The tenant's
    creation time guards against a recreated tenant reusing the id (tests, restores)."""
    tenant = tenancy.get_tenant(session, tenant_id)
    key = (database_url, tenant_id)
    with _cache_lock:
        cache = _caches.get(key)
        fresh = cache is not None and time.monotonic() - cache.loaded_at < CACHE_SECONDS
        if cache is not None and cache.fingerprint == tenant.created_at and fresh:
            return cache
        raw_days = session.scalar(
            select(RetentionPolicy.raw_days).where(RetentionPolicy.tenant_id == tenant_id)
        )
        if cache is None or cache.fingerprint != tenant.created_at:
            cache = _TenantCache(tenant.created_at, raw_days or DEFAULT_RAW_DAYS, time.monotonic())
            _caches[key] = cache
        else:
            cache.raw_days, cache.loaded_at = raw_days or DEFAULT_RAW_DAYS, time.monotonic()
        return cache


def forget_caches() -> None:
    with _cache_lock:
        _caches.clear()


# --- series ----------------------------------------------------------------------------


def ensure_series(
    session: Session, tenant_id: int, entity: str, attribute: str, unit: str | None
) -> int:
    """The id of the series (entity, attribute), created if the entity exists."""
    if not ENTITY_PATTERN.match(entity):
        raise invalid("entity", "an entity id is urn:ngsi-ld:<Type>:<id>")
    if not ATTRIBUTE_PATTERN.match(attribute):
        raise invalid("attribute", "letters, digits and _, starting with a letter")
    if unit is not None and not units.is_known(unit):
        raise invalid("unit", f"unknown UN/CEFACT unit code {unit!r}")
    found = _ensure_many(session, tenant_id, {(entity, attribute): unit})
    if (entity, attribute) not in found:
        raise NotFound(f"no entity {entity}")
    return found[(entity, attribute)][0]


def _ensure_many(
    session: Session, tenant_id: int, wanted: dict[tuple[str, str], str | None]
) -> dict[tuple[str, str], tuple[int, str | None]]:
    found = _select_series(session, tenant_id, list(wanted))
    missing = [key for key in wanted if key not in found]
    if missing:
        known = registry.existing_urns(session, tenant_id, {entity for entity, _ in missing})
        rows = [
            {
                "tenant_id": tenant_id,
                "entity": entity,
                "attribute": attribute,
                "unit": wanted[(entity, attribute)],
                "dirty_generation": 0,
                "created_at": utcnow(),
            }
            for entity, attribute in missing
            if entity in known
        ]
        if rows:
            dialect = postgresql if store._is_postgres(session) else sqlite
            session.execute(dialect.insert(Series).on_conflict_do_nothing(), rows)
            found.update(_select_series(session, tenant_id, missing))
    return found


def _select_series(
    session: Session, tenant_id: int, keys: list[tuple[str, str]]
) -> dict[tuple[str, str], tuple[int, str | None]]:
    found: dict[tuple[str, str], tuple[int, str | None]] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows = session.execute(
            select(Series.id, Series.entity, Series.attribute, Series.unit).where(
                Series.tenant_id == tenant_id,
                tuple_(Series.entity, Series.attribute).in_(chunk),
            )
        )
        for sid, entity, attribute, unit in rows:
            found[(entity, attribute)] = (sid, unit)
    return found


def _series_by_ids(
    session: Session, tenant_id: int, ids: list[int]
) -> dict[int, tuple[str, str, str | None]]:
    found: dict[int, tuple[str, str, str | None]] = {}
    for start in range(0, len(ids), 500):
        rows = session.execute(
            select(Series.id, Series.entity, Series.attribute, Series.unit).where(
                Series.tenant_id == tenant_id, Series.id.in_(ids[start : start + 500])
            )
        )
        for sid, entity, attribute, unit in rows:
            found[sid] = (entity, attribute, unit)
    return found


# --- ingestion -------------------------------------------------------------------------


def ingest(
    database: Database,
    tenant_id: int,
    readings: Sequence[Reading],
    *,
    source: str = "api",
    rejections: Sequence[Rejection] = (),
    now: datetime | None = None,
) -> IngestResult:
    """Check, resolve and store a batch in one transaction; refused readings get a reason.

    `rejections` are refusals found earlier (by a decoder) to count and keep alongside.
    """
    now = now or utcnow()
    refused = list(rejections)
    with database.session() as session:
        cache = _tenant_cache(session, database.url, tenant_id)
        rows = _prepare(session, tenant_id, cache, readings, now, refused)
        new_rows = store.write_observations(session, rows)
        store.touch_series(session, new_rows)
        if refused:
            record_rejections(session, tenant_id, source, refused)
    if batch_listeners and new_rows:
        _notify(database, tenant_id, cache, new_rows)
    reasons = Counter(r.reason for r in refused)
    return IngestResult(
        accepted=len(readings) - (len(refused) - len(rejections)),
        rejected=len(refused),
        reasons=dict(reasons),
        stored=len(new_rows),
        rejections=refused,
    )


def _prepare(
    session: Session,
    tenant_id: int,
    cache: _TenantCache,
    readings: Sequence[Reading],
    now: datetime,
    refused: list[Rejection],
) -> list[store.Row]:
    latest = store.to_ms(now + FUTURE_TOLERANCE)
    oldest = retention_cutoff_ms(now, cache.raw_days)
    checked: list[tuple[Reading, int]] = []
    for reading in readings:
        problem = _problem(reading, oldest, latest, cache)
        if problem is not None:
            refused.append(Rejection(problem[0], problem[1], _describe(reading)))
        else:
            checked.append((reading, store.to_ms(reading.ts)))
    _resolve_missing(session, tenant_id, cache, checked)
    rows: list[store.Row] = []
    for reading, ms in checked:
        sid, problem = _series_of(reading, cache)
        if problem is not None:
            refused.append(Rejection(problem[0], problem[1], _describe(reading)))
        else:
            rows.append((sid, ms, float(reading.value)))
    rows.sort(key=lambda row: (row[0], row[1]))
    return _without_repeats(rows)


def _problem(
    reading: Reading, oldest: int, latest: int, cache: _TenantCache
) -> tuple[str, str] | None:
    value = reading.value
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "wrong_type", "value must be a number"
    if not math.isfinite(value):
        return "non_finite", "NaN and infinite values are not stored"
    moment = reading.ts
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        return "naive_timestamp", "ts must be a timezone-aware date-time"
    ms = store.to_ms(moment)
    if ms > latest:
        return "future_timestamp", "ts is more than 5 minutes in the future"
    if ms < oldest:
        return "too_old", f"ts is older than the raw retention period ({cache.raw_days} days)"
    if reading.unit is not None and not units.is_known(reading.unit):
        return "unknown_unit", f"unknown UN/CEFACT unit code {reading.unit!r}"
    if reading.series_id is None and (reading.entity, reading.attribute) not in cache.by_key:
        if not ENTITY_PATTERN.match(reading.entity):
            return "bad_entity", "an entity id is urn:ngsi-ld:<Type>:<id>"
        if not ATTRIBUTE_PATTERN.match(reading.attribute):
            return "bad_attribute", "attribute names are letters, digits and _"
    return None


def _resolve_missing(
    session: Session, tenant_id: int, cache: _TenantCache, checked: list[tuple[Reading, int]]
) -> None:
    keys: dict[tuple[str, str], str | None] = {}
    ids: set[int] = set()
    for reading, _ms in checked:
        if reading.series_id is not None:
            if reading.series_id not in cache.by_id:
                ids.add(reading.series_id)
        elif (reading.entity, reading.attribute) not in cache.by_key:
            keys.setdefault((reading.entity, reading.attribute), reading.unit)
    if keys:
        for (entity, attribute), (sid, unit) in _ensure_many(session, tenant_id, keys).items():
            cache.by_key[(entity, attribute)] = (sid, unit)
            cache.by_id[sid] = (entity, attribute, unit)
    if ids:
        for sid, (entity, attribute, unit) in _series_by_ids(session, tenant_id, list(ids)).items():
            cache.by_id[sid] = (entity, attribute, unit)
            cache.by_key[(entity, attribute)] = (sid, unit)


def _series_of(reading: Reading, cache: _TenantCache) -> tuple[int, tuple[str, str] | None]:
    if reading.series_id is not None:
        known = cache.by_id.get(reading.series_id)
        if known is None:
            return 0, ("unknown_series", f"no series {reading.series_id} in this tenant")
        sid, unit = reading.series_id, known[2]
    else:
        found = cache.by_key.get((reading.entity, reading.attribute))
        if found is None:
            return 0, ("unknown_entity", f"no entity {reading.entity} in this tenant")
        sid, unit = found
    if reading.unit is not None and unit is not None and reading.unit != unit:
        return 0, ("unit_mismatch", f"the series is in {unit}, the reading in {reading.unit}")
    return sid, None


def _without_repeats(rows: list[store.Row]) -> list[store.Row]:
    """Within one batch the same (series, time) twice keeps the last value given."""
    unique: list[store.Row] = []
    for row in rows:
        if unique and unique[-1][0] == row[0] and unique[-1][1] == row[1]:
            unique[-1] = row
        else:
            unique.append(row)
    return unique


def _describe(reading: Reading) -> str:
    target = reading.series_id if reading.series_id is not None else reading.entity
    return f"{target} {reading.attribute} {reading.ts!s} {reading.value!r} {reading.unit or ''}"[
        :300
    ]


def _notify(
    database: Database, tenant_id: int, cache: _TenantCache, rows: Sequence[store.Row]
) -> None:
    stored = []
    for sid, ms, value in rows:
        entity, attribute, _unit = cache.by_id[sid]
        stored.append(StoredReading(sid, entity, attribute, store.from_ms(ms), value))
    for listener in list(batch_listeners):
        try:
            listener(database, tenant_id, stored)
        except Exception:  # a listener's failure must not undo or block ingestion
            log.exception("telemetry batch listener %r failed", listener)


def retention_cutoff_ms(now: datetime, raw_days: int) -> int:
    """Raw data strictly before the start of this UTC day is past the retention period."""
    day = (now - timedelta(days=raw_days)).date()
    return store.to_ms(datetime.combine(day, clock(0), tzinfo=UTC))


# --- rejections ------------------------------------------------------------------------


def record_rejections(
    session: Session, tenant_id: int, source: str, rejections: Sequence[Rejection]
) -> None:
    """Count every refusal; keep the first few of the batch in the bounded dead-letter table."""
    counts = Counter(r.reason for r in rejections)
    dialect = postgresql if store._is_postgres(session) else sqlite
    now = utcnow()
    statement = dialect.insert(RejectionCounter).values(
        [
            {"tenant_id": tenant_id, "source": source, "reason": r, "count": n, "updated_at": now}
            for r, n in counts.items()
        ]
    )
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["tenant_id", "source", "reason"],
            set_={
                "count": RejectionCounter.count + statement.excluded.count,
                "updated_at": statement.excluded.updated_at,
            },
        )
    )
    session.execute(
        insert(DeadLetter),
        [
            {
                "tenant_id": tenant_id,
                "received_at": now,
                "source": source,
                "reason": r.reason,
                "detail": r.detail[:1000],
                "excerpt": r.excerpt[:1000],
            }
            for r in rejections[:DEAD_LETTERS_PER_BATCH]
        ],
    )
    session.execute(
        text(
            "DELETE FROM telemetry_dead_letter WHERE tenant_id = :t AND id <= ("
            "SELECT id FROM telemetry_dead_letter WHERE tenant_id = :t "
            "ORDER BY id DESC LIMIT 1 OFFSET :keep)"
        ),
        {"t": tenant_id, "keep": DEAD_LETTER_LIMIT},
    )


def reject_payload(
    database: Database, tenant_id: int, source: str, rejections: Sequence[Rejection]
) -> None:
    """Record refusals that happened before any reading could be read (bad payload)."""
    if rejections:
        with database.session() as session:
            record_rejections(session, tenant_id, source, rejections)


def dead_letters(session: Session, tenant_id: int, limit: int = 100) -> list[DeadLetter]:
    return list(
        session.scalars(
            select(DeadLetter)
            .where(DeadLetter.tenant_id == tenant_id)
            .order_by(DeadLetter.id.desc())
            .limit(limit)
        )
    )


def rejection_counts(session: Session, tenant_id: int) -> list[RejectionCounter]:
    return list(
        session.scalars(
            select(RejectionCounter)
            .where(RejectionCounter.tenant_id == tenant_id)
            .order_by(RejectionCounter.source, RejectionCounter.reason)
        )
    )


# --- devices ---------------------------------------------------------------------------


def register_device(
    session: Session,
    tenant_id: int,
    *,
    device_id: str,
    entity: str,
    payload_format: str,
    mapping: dict[str, MappingTarget] | None,
) -> tuple[Device, str]:
    """Register a device; its raw ingest token is returned once and only its hash is kept."""
    if not DEVICE_ID_PATTERN.match(device_id):
        raise invalid("device_id", "1 to 64 letters, digits, '_', '.', ':' or '-'")
    device_id = normalise_device_id(device_id)
    if payload_format not in PAYLOAD_FORMATS:
        raise invalid("payload_format", f"one of {', '.join(PAYLOAD_FORMATS)}")
    _check_entity(session, tenant_id, entity, "entity")
    targets = {path: mapping_target(spec) for path, spec in (mapping or {}).items()}
    for path, target in targets.items():
        _check_target(session, tenant_id, path, target)
    _check_device_id_free(session, tenant_id, device_id)
    raw = DEVICE_TOKEN_PREFIX + secrets.token_urlsafe(32)
    device = Device(
        tenant_id=tenant_id,
        device_id=device_id,
        entity=entity,
        payload_format=payload_format,
        mapping={path: target.as_json() for path, target in targets.items()},
        token_hash=tenancy.digest(raw),
    )
    session.add(device)
    session.flush()
    return device, raw


def _check_entity(session: Session, tenant_id: int, entity: str, field_name: str) -> None:
    if not ENTITY_PATTERN.match(entity):
        raise invalid(field_name, "an entity id is urn:ngsi-ld:<Type>:<id>")
    if not registry.existing_urns(session, tenant_id, [entity]):
        raise invalid(field_name, f"no entity {entity} in this tenant's registry")


def _check_target(session: Session, tenant_id: int, path: str, target: MappingTarget) -> None:
    where = f"mapping.{path}"
    if not path or len(path) > 200:
        raise invalid("mapping", "field paths are 1 to 200 characters")
    if not ATTRIBUTE_PATTERN.match(target.attribute):
        raise invalid(where, "attribute names are letters, digits and _")
    if target.unit is not None and not units.is_known(target.unit):
        raise invalid(where, f"unknown UN/CEFACT unit code {target.unit!r}")
    if not math.isfinite(target.scale) or target.scale == 0:
        raise invalid(where, "scale must be a finite, non-zero number")
    if target.entity is not None:
        _check_entity(session, tenant_id, target.entity, where)


def _check_device_id_free(session: Session, tenant_id: int, device_id: str) -> None:
    holders = set(session.scalars(select(Device.tenant_id).where(Device.device_id == device_id)))
    if tenant_id in holders:
        raise AlreadyExists(f"device {device_id} is already registered")
    if holders and len(device_id) == 16:
        # Network-server topics carry only the DevEUI: it must name one device overall.
        raise AlreadyExists(f"DevEUI {device_id} is registered by another organisation")


def get_device(session: Session, tenant_id: int, device_id: str) -> Device:
    device = session.scalar(
        select(Device).where(
            Device.tenant_id == tenant_id, Device.device_id == normalise_device_id(device_id)
        )
    )
    if device is None:
        raise NotFound(f"no device {device_id}")
    return device


def list_devices(session: Session, tenant_id: int) -> list[Device]:
    return list(
        session.scalars(
            select(Device).where(Device.tenant_id == tenant_id).order_by(Device.device_id)
        )
    )


def device_for_token(session: Session, raw: str) -> DeviceInfo | None:
    if not raw.startswith(DEVICE_TOKEN_PREFIX):
        return None
    device = session.scalar(select(Device).where(Device.token_hash == tenancy.digest(raw)))
    return _info(device) if device is not None else None


def find_device(session: Session, tenant_slug: str, device_id: str) -> DeviceInfo | None:
    tenant = tenancy.find_tenant_by_slug(session, tenant_slug)
    if tenant is None:
        return None
    device = session.scalar(
        select(Device).where(
            Device.tenant_id == tenant.id, Device.device_id == normalise_device_id(device_id)
        )
    )
    return _info(device) if device is not None else None


def devices_anywhere(session: Session, device_id: str) -> list[DeviceInfo]:
    """Devices with this id in any tenant (network-server topics name no tenant)."""
    rows = session.scalars(select(Device).where(Device.device_id == normalise_device_id(device_id)))
    return [_info(device) for device in rows]


def _info(device: Device) -> DeviceInfo:
    return DeviceInfo(
        id=device.id,
        tenant_id=device.tenant_id,
        device_id=device.device_id,
        entity=device.entity,
        payload_format=device.payload_format,
        mapping=dict(device.mapping or {}),
    )


# --- retention policy ------------------------------------------------------------------


def set_raw_retention(session: Session, tenant_id: int, days: int) -> None:
    if not 1 <= days <= 36_500:
        raise invalid("raw_days", "between 1 and 36,500 days")
    policy = session.get(RetentionPolicy, tenant_id)
    if policy is None:
        session.add(RetentionPolicy(tenant_id=tenant_id, raw_days=days))
    else:
        policy.raw_days = days
    session.flush()
    forget_caches()


def raw_retention_days(session: Session, tenant_id: int) -> int:
    policy = session.get(RetentionPolicy, tenant_id)
    return policy.raw_days if policy is not None else DEFAULT_RAW_DAYS


# --- queries ---------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesInfo:
    id: int
    entity: str
    attribute: str
    unit: str | None
    last_ts: datetime | None
    last_value: float | None


def get_series(session: Session, tenant_id: int, series_id: int) -> SeriesInfo:
    row = session.execute(
        select(
            Series.id,
            Series.entity,
            Series.attribute,
            Series.unit,
            Series.last_ts,
            Series.last_value,
        ).where(Series.tenant_id == tenant_id, Series.id == series_id)
    ).first()
    if row is None:
        raise NotFound(f"no series {series_id}")
    return _series_info(row)


def _series_info(row: Any) -> SeriesInfo:
    last = store.read_time(row[4])
    return SeriesInfo(
        row[0], row[1], row[2], row[3], store.from_ms(last) if last is not None else None, row[5]
    )


def list_series(
    session: Session,
    tenant_id: int,
    *,
    entity: str | None = None,
    attribute: str | None = None,
    limit: int = 1000,
    offset: int = 0,
) -> tuple[list[SeriesInfo], int]:
    where = [Series.tenant_id == tenant_id]
    if entity:
        where.append(Series.entity == entity)
    if attribute:
        where.append(Series.attribute == attribute)
    total = session.scalar(select(func.count()).select_from(Series).where(*where)) or 0
    rows = session.execute(
        select(
            Series.id,
            Series.entity,
            Series.attribute,
            Series.unit,
            Series.last_ts,
            Series.last_value,
        )
        .where(*where)
        .order_by(Series.id)
        .limit(limit)
        .offset(offset)
    ).all()
    return [_series_info(row) for row in rows], total


def latest_values(
    session: Session,
    tenant_id: int,
    *,
    series_ids: Sequence[int] | None = None,
    attribute: str | None = None,
) -> list[tuple[int, str, str, str | None, int | None, float | None]]:
    """Last value of many series at once (the map): (id, entity, attribute, unit, ms, value)."""
    base = (
        "SELECT id, entity, attribute, unit, last_ts, last_value FROM telemetry_series "
        "WHERE tenant_id = :t"
    )
    params: dict[str, Any] = {"t": tenant_id}
    if attribute:
        base += " AND attribute = :a"
        params["a"] = attribute
    chunks: list[str] = [""]
    if series_ids is not None:
        ids = [int(i) for i in series_ids]
        chunks = [
            " AND id IN (" + ",".join(map(str, ids[i : i + 5000])) + ")"
            for i in range(0, len(ids), 5000)
        ]
    rows: list[tuple[int, str, str, str | None, int | None, float | None]] = []
    for chunk in chunks:
        for sid, entity, attr, unit, last_ts, value in session.execute(text(base + chunk), params):
            rows.append((sid, entity, attr, unit, store.read_time(last_ts), value))
    return rows


def observations(
    session: Session, tenant_id: int, series_id: int, start: datetime, end: datetime, limit: int
) -> list[tuple[int, float]]:
    """Raw (epoch ms, value) pairs in [start, end), oldest first."""
    get_series(session, tenant_id, series_id)
    _check_range(start, end)
    return store.read_observations(session, series_id, store.to_ms(start), store.to_ms(end), limit)


def iter_observations(
    session: Session, tenant_id: int, series_id: int, start: datetime, end: datetime
) -> Iterator[list[tuple[int, float]]]:
    """A long range in pages of 50,000 rows (exports)."""
    get_series(session, tenant_id, series_id)
    _check_range(start, end)
    cursor, end_ms = store.to_ms(start), store.to_ms(end)
    while True:
        page = store.read_observations(session, series_id, cursor, end_ms, 50_000)
        if not page:
            return
        yield page
        cursor = page[-1][0] + 1


def _check_range(start: datetime, end: datetime) -> None:
    if start.tzinfo is None or end.tzinfo is None:
        raise invalid("from", "dates need a UTC offset (ISO 8601), e.g. 2025-01-31T00:00:00+01:00")
    if end <= start:
        raise invalid("to", "must be after 'from'")


@dataclass(frozen=True, slots=True)
class AggregateBucket:
    start: datetime
    count: int
    sum: float
    min: float
    max: float

    @property
    def avg(self) -> float:
        return self.sum / self.count


def aggregate(
    session: Session,
    tenant_id: int,
    series_id: int,
    start: datetime,
    end: datetime,
    period: str,
    zone: ZoneInfo,
) -> list[AggregateBucket]:
    """Buckets of `period` (PT1H or P1D, days in `zone`) over [start, end).

    Whole hours (or whole UTC days) come from the rollups; partial ones at either end
    from raw rows. Stale rollups of this series are refreshed first.
    """
    get_series(session, tenant_id, series_id)
    _check_range(start, end)
    if period not in PERIODS:
        raise invalid("period", "PT1H or P1D")
    start_ms, end_ms = store.to_ms(start), store.to_ms(end)
    if (end_ms - start_ms) // PERIODS[period] > MAX_BUCKETS:
        raise invalid("to", f"at most {MAX_BUCKETS} buckets per query")
    store.refresh_rollups(session, series_ids=[series_id])
    edges = _bucket_edges(start, end, period, zone)
    grain = store.DAY_MS if all(e % store.DAY_MS == 0 for e in edges) else store.HOUR_MS
    if any(e % grain for e in edges):
        grain = 0  # a zone whose days do not start on a UTC hour: raw rows only
    pieces = _pieces(session, series_id, start_ms, end_ms, grain)
    totals: dict[int, list[float]] = {}
    for moment, count, total, low, high in pieces:
        index = bisect.bisect_right(edges, moment) - 1
        slot = totals.get(index)
        if slot is None:
            totals[index] = [count, total, low, high]
        else:
            slot[0] += count
            slot[1] += total
            slot[2] = min(slot[2], low)
            slot[3] = max(slot[3], high)
    return [
        AggregateBucket(store.from_ms(edges[i]).astimezone(zone), int(c), s, lo, hi)
        for i, (c, s, lo, hi) in sorted(totals.items())
    ]


def _bucket_edges(start: datetime, end: datetime, period: str, zone: ZoneInfo) -> list[int]:
    start_ms, end_ms = store.to_ms(start), store.to_ms(end)
    if period == "PT1H":
        first = start_ms - start_ms % store.HOUR_MS
        return list(range(first, end_ms + store.HOUR_MS, store.HOUR_MS))
    day: date = start.astimezone(zone).date()
    edges = []
    while True:
        edge = store.to_ms(datetime.combine(day, clock(0), tzinfo=zone))
        edges.append(edge)
        if edge >= end_ms:
            return edges
        day += timedelta(days=1)


def _pieces(
    session: Session, series_id: int, start_ms: int, end_ms: int, grain: int
) -> list[store.Bucket]:
    if grain == 0:
        return _raw_pieces(session, series_id, start_ms, end_ms)
    inner_start = -(-start_ms // grain) * grain
    inner_end = end_ms - end_ms % grain
    if inner_start >= inner_end:
        return _raw_pieces(session, series_id, start_ms, end_ms)
    table = "observation_daily" if grain == store.DAY_MS else "observation_hourly"
    return (
        _raw_pieces(session, series_id, start_ms, inner_start)
        + store.read_rollups(session, table, series_id, inner_start, inner_end)
        + _raw_pieces(session, series_id, inner_end, end_ms)
    )


def _raw_pieces(session: Session, series_id: int, start_ms: int, end_ms: int) -> list[store.Bucket]:
    if start_ms >= end_ms:
        return []
    rows = store.read_observations(session, series_id, start_ms, end_ms, 10_000_000)
    return [(ms, 1, value, value, value) for ms, value in rows]


def refresh_rollups(database: Database, *, tenant_id: int | None = None) -> int:
    """Bring every stale series' rollups up to date (background job, CLI, before archiving)."""
    total = 0
    # Bounded: under constant ingestion a series may turn stale again at once; the next
    # run (or the query that needs it) picks it up.
    for _round in range(1000):
        with database.session() as session:
            done = store.refresh_rollups(session, tenant_id=tenant_id)
        total += done
        if done == 0:
            break
    return total
