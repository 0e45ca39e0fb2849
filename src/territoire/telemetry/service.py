"""Telemetry services: the only way other domains touch devices, series and observations.

`ingest` is the one door every path goes through (HTTP, MQTT, the in-process bus, file
imports, the simulator): it checks each reading, resolves its series, stores the batch
in one transaction, then tells `batch_listeners` what was newly stored.
"""

from __future__ import annotations

import logging
import math
import re
import secrets
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import Select, bindparam, func, insert, select, text, tuple_
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
    series_state,
)
from territoire.telemetry.records import (
    ATTRIBUTE_PATTERN,
    ENTITY_PATTERN,
    PAYLOAD_FORMATS,
    DecodeOutcome,
    DeviceInfo,
    MappingTarget,
    Reading,
    ReadingColumns,
    Rejection,
    StoredBatch,
    StoredReading,
)
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import Tenant

__all__ = [
    "DecodeOutcome",
    "IngestResult",
    "MappingTarget",
    "Reading",
    "ReadingColumns",
    "StoredReading",
    "batch_listeners",
    "decode",
    "ensure_series",
    "ingest",
    "ingest_columns",
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
    # (attribute, unit given) -> entity -> series id, for combinations known to be valid
    valid: dict[tuple[str, str | None], dict[str, int]] = field(default_factory=dict)

    def remember(self, sid: int, entity: str, attribute: str, unit: str | None) -> None:
        self.by_key[(entity, attribute)] = (sid, unit)
        self.by_id[sid] = (entity, attribute, unit)


_caches: dict[tuple[str, int], _TenantCache] = {}
_cache_lock = threading.Lock()


def _tenant_cache(
    session: Session, database_url: str, tenant_id: int, fingerprint: datetime | None = None
) -> _TenantCache:
    """Series ids never change once given, so they are cached per process. The tenant's
    creation time guards against a recreated tenant reusing the id (tests, restores); a
    caller that has just read it in the same transaction (the HTTP sender lookup) passes
    it, which saves a query per batch."""
    if fingerprint is None:
        fingerprint = tenancy.get_tenant(session, tenant_id).created_at
    key = (database_url, tenant_id)
    with _cache_lock:
        cache = _caches.get(key)
        fresh = cache is not None and time.monotonic() - cache.loaded_at < CACHE_SECONDS
        if cache is not None and cache.fingerprint == fingerprint and fresh:
            return cache
        raw_days = session.scalar(
            select(RetentionPolicy.raw_days).where(RetentionPolicy.tenant_id == tenant_id)
        )
        if cache is None or cache.fingerprint != fingerprint:
            cache = _TenantCache(fingerprint, raw_days or DEFAULT_RAW_DAYS, time.monotonic())
            _caches[key] = cache
        else:
            cache.raw_days, cache.loaded_at = raw_days or DEFAULT_RAW_DAYS, time.monotonic()
        return cache


def forget_caches() -> None:
    with _cache_lock:
        _caches.clear()


def _forget_tenant(database_url: str, tenant_id: int) -> None:
    with _cache_lock:
        _caches.pop((database_url, tenant_id), None)


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
                "created_at": utcnow(),
            }
            for entity, attribute in missing
            if entity in known
        ]
        if rows:
            dialect = postgresql if store._is_postgres(session) else sqlite
            session.execute(dialect.insert(Series).on_conflict_do_nothing(), rows)
            created = _select_series(session, tenant_id, missing)
            store.add_series_states(session, [sid for sid, _unit in created.values()])
            found.update(created)
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

INT64_MAX = 2**63 - 1


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
    refused = list(rejections)
    columns = ReadingColumns()
    for reading in readings:
        problem = _shape_problem(reading)
        if problem is not None:
            refused.append(Rejection(problem[0], problem[1], _describe_reading(reading)))
        else:
            columns.append(
                reading.entity,
                reading.attribute,
                store.to_ms(reading.ts),
                float(reading.value),
                reading.unit,
                reading.series_id,
            )
    result = ingest_columns(
        database, tenant_id, columns, source=source, rejections=refused, now=now
    )
    result.accepted = len(readings) - (result.rejected - len(rejections))
    return result


def _shape_problem(reading: Reading) -> tuple[str, str] | None:
    value = reading.value
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "wrong_type", "value must be a number"
    moment = reading.ts
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        return "naive_timestamp", "ts must be a timezone-aware date-time"
    return None


def ingest_columns(
    database: Database,
    tenant_id: int,
    columns: ReadingColumns,
    *,
    source: str = "api",
    rejections: Sequence[Rejection] = (),
    now: datetime | None = None,
    sender: SenderTransaction | None = None,
) -> IngestResult:
    """`ingest` for a batch already in columns (what the decoders give): the hot path.

    With `sender`, the batch is written in the open transaction where its sender was just
    looked up (one pooled checkout, BEGIN and COMMIT per request instead of two, and no
    second read of the tenant); it is committed here, before the listeners run."""
    now = now or utcnow()
    try:
        new_rows, refused, cache = _store(
            database, tenant_id, columns, source, rejections, now, sender=sender
        )
    except (store.StoreInconsistency, store.DuplicateRows, store.TransactionLost) as error:
        if isinstance(error, store.StoreInconsistency):
            log.warning("observations were written outside ingest; checking the batch row by row")
        # Series created by the lost transaction were cached with ids that do not exist.
        _forget_tenant(database.url, tenant_id)
        new_rows, refused, cache = _store(
            database, tenant_id, columns, source, rejections, now, trust_last_times=False
        )
    return _ingested(database, tenant_id, cache, new_rows, len(columns), refused, len(rejections))


def _ingested(
    database: Database,
    tenant_id: int,
    cache: _TenantCache,
    new_rows: store.Rows,
    decoded: int,
    refused: list[Rejection],
    refused_by_decoder: int,
) -> IngestResult:
    """Tell the listeners about a committed batch; what the sender is answered."""
    if batch_listeners and len(new_rows):
        _notify(database, tenant_id, cache, new_rows)
    return IngestResult(
        accepted=decoded - (len(refused) - refused_by_decoder),
        rejected=len(refused),
        reasons=dict(Counter(r.reason for r in refused)),
        stored=len(new_rows),
        rejections=refused,
    )


def ingest_decoded(
    database: Database,
    tenant_id: int,
    pieces: Iterable[DecodeOutcome],
    *,
    source: str = "api",
    now: datetime | None = None,
    sender: SenderTransaction | None = None,
) -> IngestResult:
    """`ingest_columns` for a payload decoded piece by piece (`decoders.decode_pieces`).

    On PostgreSQL the pieces go into one COPY as they come, so that the server stores a
    piece while the next is decoded and checked: the batch is still one transaction. If
    that COPY meets a stored row (a replay), the whole batch runs again the careful way,
    as `ingest_columns` does. SQLite, which works in this process, gets the batch whole."""
    now = now or utcnow()
    taken: list[DecodeOutcome] = []

    def remembered() -> Iterator[DecodeOutcome]:
        for piece in pieces:
            taken.append(piece)
            yield piece

    stream = remembered()
    if database.dialect != "postgresql":
        whole = _whole(stream)
        return ingest_columns(
            database,
            tenant_id,
            whole.columns,
            source=source,
            rejections=whole.rejections,
            now=now,
            sender=sender,
        )
    try:
        new_rows, refused, cache = _store_streamed(database, tenant_id, stream, source, now, sender)
    except (store.DuplicateRows, store.TransactionLost):
        _forget_tenant(database.url, tenant_id)
        whole = _whole(taken + list(stream))
        new_rows, refused, cache = _store(
            database,
            tenant_id,
            whole.columns,
            source,
            whole.rejections,
            now,
            trust_last_times=False,
        )
    decoded = sum(len(piece.columns) for piece in taken)
    by_decoder = sum(len(piece.rejections) for piece in taken)
    return _ingested(database, tenant_id, cache, new_rows, decoded, refused, by_decoder)


def _whole(pieces: Iterable[DecodeOutcome]) -> DecodeOutcome:
    whole = DecodeOutcome()
    for piece in pieces:
        whole.columns.extend(piece.columns)
        whole.rejections.extend(piece.rejections)
    return whole


def _store_streamed(
    database: Database,
    tenant_id: int,
    pieces: Iterator[DecodeOutcome],
    source: str,
    now: datetime,
    sender: SenderTransaction | None,
) -> tuple[store.Rows, list[Rejection], _TenantCache]:
    refused: list[Rejection] = []
    if sender is None:
        with database.session() as session:
            written = _write_streamed(
                session, database.url, tenant_id, pieces, now, refused, source
            )
        return written.rows, refused, written.tenant
    try:
        written = _write_streamed(
            sender.session,
            database.url,
            tenant_id,
            pieces,
            now,
            refused,
            source,
            fingerprint=sender.tenant_created_at,
        )
        sender.session.commit()
    except BaseException:
        sender.session.rollback()
        raise
    return written.rows, refused, written.tenant


def _write_streamed(
    session: Session,
    database_url: str,
    tenant_id: int,
    pieces: Iterator[DecodeOutcome],
    now: datetime,
    refused: list[Rejection],
    source: str,
    *,
    fingerprint: datetime | None = None,
) -> _Written:
    cache = _tenant_cache(session, database_url, tenant_id, fingerprint)
    stream = store.CopyStream(session)
    try:
        for piece in pieces:
            refused.extend(piece.rejections)
            rows = _prepare(session, tenant_id, cache, piece.columns, now, refused, stream.pause)
            stream.write(rows)
        new_rows, touch = stream.finish()
    except BaseException:
        stream.abort()
        raise
    store.touch_series(session, new_rows, touch)
    if refused:
        record_rejections(session, tenant_id, source, refused)
    return _Written(new_rows, cache)


def _store(
    database: Database,
    tenant_id: int,
    columns: ReadingColumns,
    source: str,
    rejections: Sequence[Rejection],
    now: datetime,
    *,
    trust_last_times: bool = True,
    sender: SenderTransaction | None = None,
) -> tuple[store.Rows, list[Rejection], _TenantCache]:
    """One transaction: check, resolve, write, update the series, count refusals."""
    refused = list(rejections)
    if sender is None:
        with database.session() as session:
            written = _write(
                session, database.url, tenant_id, columns, now, refused, source, trust_last_times
            )
        return written.rows, refused, written.tenant
    try:
        written = _write(
            sender.session,
            database.url,
            tenant_id,
            columns,
            now,
            refused,
            source,
            trust_last_times,
            fingerprint=sender.tenant_created_at,
        )
        sender.session.commit()
    except BaseException:
        # A replay's failed COPY leaves the transaction aborted: end it, so that the
        # caller's retry (in a fresh session) and the sender's session both start clean.
        sender.session.rollback()
        raise
    return written.rows, refused, written.tenant


@dataclass(frozen=True)
class SenderTransaction:
    """The open session in which a request's sender was looked up, and the creation time
    of the sender's tenant read there."""

    session: Session
    tenant_created_at: datetime


@dataclass(frozen=True)
class _Written:
    rows: store.Rows
    tenant: _TenantCache


def _write(
    session: Session,
    database_url: str,
    tenant_id: int,
    columns: ReadingColumns,
    now: datetime,
    refused: list[Rejection],
    source: str,
    trust_last_times: bool,
    *,
    fingerprint: datetime | None = None,
) -> _Written:
    cache = _tenant_cache(session, database_url, tenant_id, fingerprint)
    rows = _prepare(session, tenant_id, cache, columns, now, refused)
    new_rows, touch = store.write_and_touch(session, rows, trust_last_times=trust_last_times)
    store.touch_series(session, new_rows, touch)
    if refused:
        record_rejections(session, tenant_id, source, refused)
    return _Written(new_rows, cache)


def _prepare(
    session: Session,
    tenant_id: int,
    cache: _TenantCache,
    columns: ReadingColumns,
    now: datetime,
    refused: list[Rejection],
    before_queries: Callable[[], None] | None = None,
) -> store.Rows:
    """Check every reading and resolve its series, a few vectorised passes per batch; only
    readings that fail a check are looked at one by one, to say why. `before_queries` is
    called before series are looked up or created in the database, if they must be."""
    count = len(columns)
    if count == 0:
        return store.Rows.empty()
    ms = _int64(columns.ms)
    values = np.asarray(columns.value, dtype=np.float64)
    latest = store.to_ms(now + FUTURE_TOLERANCE)
    oldest = retention_cutoff_ms(now, cache.raw_days)
    early = ~np.isfinite(values) | (ms > latest) | (ms < oldest)
    unknown_units = {u for u in set(columns.unit) if u is not None and not units.is_known(u)}
    if unknown_units:
        early |= np.fromiter((u in unknown_units for u in columns.unit), bool, count)
    sids, problems = _resolve(session, tenant_id, cache, columns, early, before_queries)
    bad = np.flatnonzero(early)
    if len(bad) or problems:
        ok = ~early
        for index in bad.tolist():
            reason = _early_problem(columns, index, latest, oldest, cache.raw_days)
            refused.append(Rejection(reason[0], reason[1], _describe(columns, index)))
        for index, reason in problems.items():
            ok[index] = False
            refused.append(Rejection(reason[0], reason[1], _describe(columns, index)))
        keep = np.flatnonzero(ok)
        series = np.asarray([sids[i] for i in keep.tolist()], dtype=np.int64)
        ms, values = ms[keep], values[keep]
    else:
        series = np.asarray(sids, dtype=np.int64)
    return store.Rows.sorted_unique(series, ms, values)


def _int64(ms: list[int]) -> store.Ints:
    try:
        return np.asarray(ms, dtype=np.int64)
    except OverflowError:  # absurd times: clamped, then refused by the time window
        return np.asarray([max(-INT64_MAX, min(INT64_MAX, m)) for m in ms], dtype=np.int64)


def _early_problem(
    columns: ReadingColumns, index: int, latest: int, oldest: int, raw_days: int
) -> tuple[str, str]:
    value, ms, unit = columns.value[index], columns.ms[index], columns.unit[index]
    if not math.isfinite(value):
        return "non_finite", "NaN and infinite values are not stored"
    if ms > latest:
        return "future_timestamp", "ts is more than 5 minutes in the future"
    if ms < oldest:
        return "too_old", f"ts is older than the raw retention period ({raw_days} days)"
    return "unknown_unit", f"unknown UN/CEFACT unit code {unit!r}"


def _resolve(
    session: Session,
    tenant_id: int,
    cache: _TenantCache,
    columns: ReadingColumns,
    early: np.ndarray[Any, Any],
    before_queries: Callable[[], None] | None = None,
) -> tuple[list[int | None], dict[int, tuple[str, str]]]:
    """Series id of every reading (None where refused) and why the others were refused.

    The tenant cache maps (entity, attribute, unit) to a series id for every combination
    already seen to be valid, so the usual batch is one dictionary lookup per reading.
    """
    sids = _known_series(cache, columns)
    by_id = columns.series
    if by_id is None and sids.count(None) == 0:
        return sids, {}
    keys = list(zip(columns.entity, columns.attribute, columns.unit, strict=True))
    skip = early.tolist()
    wanted: dict[tuple[str, str], str | None] = {}
    ids: set[int] = set()
    for index, sid in enumerate(sids):
        if sid is not None or skip[index]:
            continue
        if by_id is not None and by_id[index] is not None:
            if by_id[index] not in cache.by_id:
                ids.add(by_id[index])  # type: ignore[arg-type]
            continue
        entity, attribute, unit = keys[index]
        unknown = (entity, attribute) not in cache.by_key
        if unknown and ENTITY_PATTERN.match(entity) and ATTRIBUTE_PATTERN.match(attribute):
            wanted.setdefault((entity, attribute), unit)
    if (wanted or ids) and before_queries is not None:
        before_queries()
    _load_series(session, tenant_id, cache, wanted, ids)
    problems: dict[int, tuple[str, str]] = {}
    for index, sid in enumerate(sids):
        if sid is not None or skip[index]:
            continue
        series_id = by_id[index] if by_id is not None else None
        found, problem = _series_of(keys[index], series_id, cache)
        if problem is not None:
            problems[index] = problem
        else:
            sids[index] = found
    return sids, problems


def _load_series(
    session: Session,
    tenant_id: int,
    cache: _TenantCache,
    wanted: dict[tuple[str, str], str | None],
    ids: set[int],
) -> None:
    if wanted:
        for (entity, attribute), (sid, unit) in _ensure_many(session, tenant_id, wanted).items():
            cache.remember(sid, entity, attribute, unit)
    if ids:
        for sid, (entity, attribute, unit) in _series_by_ids(session, tenant_id, list(ids)).items():
            cache.remember(sid, entity, attribute, unit)


def _series_of(
    key: tuple[str, str, str | None], series_id: int | None, cache: _TenantCache
) -> tuple[int, tuple[str, str] | None]:
    entity, attribute, given_unit = key
    if series_id is not None:
        known = cache.by_id.get(series_id)
        if known is None:
            return 0, ("unknown_series", f"no series {series_id} in this tenant")
        sid, unit = series_id, known[2]
    else:
        found = cache.by_key.get((entity, attribute))
        if found is None:
            if not ENTITY_PATTERN.match(entity):
                return 0, ("bad_entity", "an entity id is urn:ngsi-ld:<Type>:<id>")
            if not ATTRIBUTE_PATTERN.match(attribute):
                return 0, ("bad_attribute", "attribute names are letters, digits and _")
            return 0, ("unknown_entity", f"no entity {entity} in this tenant")
        sid, unit = found
    if given_unit is not None and unit is not None and given_unit != unit:
        return 0, ("unit_mismatch", f"the series is in {unit}, the reading in {given_unit}")
    if series_id is None:
        cache.valid.setdefault((attribute, given_unit), {})[entity] = sid
    return sid, None


def _known_series(cache: _TenantCache, columns: ReadingColumns) -> list[int | None]:
    """Series ids already known valid for these readings (None for the others). A batch
    usually carries one attribute in one unit: then it is one lookup per entity."""
    attributes, given_units = set(columns.attribute), set(columns.unit)
    if len(attributes) == 1 and len(given_units) == 1:
        known = cache.valid.get((attributes.pop(), given_units.pop()), {})
        return list(map(known.get, columns.entity))
    empty: dict[str, int] = {}
    valid = cache.valid
    return [
        valid.get((attribute, unit), empty).get(entity)
        for entity, attribute, unit in zip(
            columns.entity, columns.attribute, columns.unit, strict=True
        )
    ]


def _describe(columns: ReadingColumns, index: int) -> str:
    series = columns.series[index] if columns.series is not None else None
    target = series if series is not None else columns.entity[index]
    ms = columns.ms[index]
    try:
        moment: object = store.from_ms(ms)
    except OverflowError:
        moment = ms
    unit = columns.unit[index] or ""
    text = f"{target} {columns.attribute[index]} {moment!s} {columns.value[index]!r} {unit}"
    return text[:300]


def _describe_reading(reading: Reading) -> str:
    target = reading.series_id if reading.series_id is not None else reading.entity
    return f"{target} {reading.attribute} {reading.ts!s} {reading.value!r} {reading.unit or ''}"[
        :300
    ]


def _notify(database: Database, tenant_id: int, cache: _TenantCache, rows: store.Rows) -> None:
    stored = StoredBatch(rows.series, rows.ms, rows.values, cache.by_id)
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


# Built once (the same for every request); run on the session's connection, which skips
# the ORM's handling of the result.
_DEVICE_SENDER = (
    select(
        Device.id,
        Device.tenant_id,
        Device.device_id,
        Device.entity,
        Device.payload_format,
        Device.mapping,
        Tenant.created_at,
    )
    .join(Tenant, Tenant.id == Device.tenant_id)
    .where(Device.token_hash == bindparam("token_hash"))
)


def device_sender(session: Session, raw: str) -> tuple[DeviceInfo, datetime] | None:
    """`device_for_token` for the ingest hot path: one Core SELECT of the device's columns
    and its tenant's creation time, no ORM object."""
    if not raw.startswith(DEVICE_TOKEN_PREFIX):
        return None
    found = session.connection().execute(_DEVICE_SENDER, {"token_hash": tenancy.digest(raw)})
    row = found.one_or_none()
    if row is None:
        return None
    device_pk, tenant_id, device_id, entity, payload_format, mapping, tenant_created_at = row
    info = DeviceInfo(device_pk, tenant_id, device_id, entity, payload_format, dict(mapping or {}))
    return info, tenant_created_at


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


def tenant_devices(session: Session, tenant_slug: str) -> dict[str, DeviceInfo]:
    """Every device of a tenant by device id (empty for an unknown tenant)."""
    tenant = tenancy.find_tenant_by_slug(session, tenant_slug)
    if tenant is None:
        return {}
    rows = session.scalars(select(Device).where(Device.tenant_id == tenant.id))
    return {device.device_id: _info(device) for device in rows}


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
        _series_with_state().where(Series.tenant_id == tenant_id, Series.id == series_id)
    ).first()
    if row is None:
        raise NotFound(f"no series {series_id}")
    return _series_info(row)


def _series_with_state() -> Select[Any]:
    """Series rows with their last value (the state row, read through this module only),
    in the order `_series_info` reads them."""
    return (
        select(
            Series.id,
            Series.entity,
            Series.attribute,
            Series.unit,
            series_state.c.last_ts,
            series_state.c.last_value,
        )
        .select_from(Series)
        .outerjoin(series_state, series_state.c.series_id == Series.id)
    )


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
        _series_with_state().where(*where).order_by(Series.id).limit(limit).offset(offset)
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
    columns = latest_columns(session, tenant_id, series_ids=series_ids, attribute=attribute)
    return list(
        zip(
            columns.id,
            columns.entity,
            columns.attribute,
            columns.unit,
            columns.ts,
            columns.value,
            strict=True,
        )
    )


@dataclass(frozen=True, slots=True)
class LatestColumns:
    """Last values as parallel columns, in series id order; `ts` in epoch milliseconds."""

    id: list[int]
    entity: list[str]
    attribute: list[str]
    unit: list[str | None]
    ts: list[int | None]
    value: list[float | None]


def latest_columns(
    session: Session,
    tenant_id: int,
    *,
    series_ids: Sequence[int] | None = None,
    attribute: str | None = None,
) -> LatestColumns:
    """`latest_values` as columns, read straight from the series table's last-value
    columns with the driver (no per-row objects): 50,000 series in one pass."""
    columns = latest_fields(session, tenant_id, LATEST_FIELDS, series_ids, attribute)
    return LatestColumns(**columns)


LATEST_FIELDS = tuple(store.LATEST_FIELDS)


def latest_fields(
    session: Session,
    tenant_id: int,
    fields: Sequence[str],
    series_ids: Sequence[int] | None = None,
    attribute: str | None = None,
) -> dict[str, list[Any]]:
    """`latest_columns` limited to some fields (among `LATEST_FIELDS`; `id` always comes
    first): a map that already knows its series polls only their times and values, a
    third of the bytes and of the work."""
    unknown = [name for name in fields if name not in LATEST_FIELDS]
    if unknown:
        raise invalid("fields", f"unknown fields {unknown}; choose among {list(LATEST_FIELDS)}")
    chunks: list[list[int] | None] = [None]
    if series_ids is not None:
        ids = sorted({int(i) for i in series_ids})
        chunks = [ids[i : i + 5000] for i in range(0, len(ids), 5000)]
    rows: list[tuple[Any, ...]] = []
    for chunk in chunks:
        rows.extend(store.read_latest(session, tenant_id, attribute, chunk, fields))
    names = ["id", *fields]
    if not rows:
        return {name: [] for name in names}
    with store.gc_paused():
        return {
            name: list(column) for name, column in zip(names, zip(*rows, strict=True), strict=True)
        }


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


@dataclass(frozen=True, slots=True)
class AggregateColumns:
    """Buckets as numpy columns: start (epoch ms of the bucket's first instant), count,
    sum, min, max. Only buckets holding data are present."""

    start: store.Ints
    count: store.Ints
    sum: store.Floats
    min: store.Floats
    max: store.Floats

    def __len__(self) -> int:
        return len(self.start)

    def avg(self) -> store.Floats:
        return self.sum / self.count

    def start_texts(self, zone: ZoneInfo) -> list[str]:
        """ISO 8601 starts in `zone`, as `datetime.isoformat` writes them."""
        return iso_times(self.start, zone)


def aggregate(
    session: Session,
    tenant_id: int,
    series_id: int,
    start: datetime,
    end: datetime,
    period: str,
    zone: ZoneInfo,
) -> list[AggregateBucket]:
    """Buckets of `period` (PT1H or P1D, days in `zone`) over [start, end)."""
    columns = aggregate_columns(session, tenant_id, series_id, start, end, period, zone)
    return [
        AggregateBucket(store.from_ms(ms).astimezone(zone), count, total, low, high)
        for ms, count, total, low, high in zip(
            columns.start.tolist(),
            columns.count.tolist(),
            columns.sum.tolist(),
            columns.min.tolist(),
            columns.max.tolist(),
            strict=True,
        )
    ]


def aggregate_columns(
    session: Session,
    tenant_id: int,
    series_id: int,
    start: datetime,
    end: datetime,
    period: str,
    zone: ZoneInfo,
) -> AggregateColumns:
    """Buckets of `period` (PT1H or P1D, days in `zone`) over [start, end), as columns.

    Whole hours (or whole UTC days) come from the rollups, one indexed range read; partial
    ones at either end from raw rows. Stale rollups of this series are refreshed first.
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
    grain = store.DAY_MS if not (edges % store.DAY_MS).any() else store.HOUR_MS
    if (edges % grain).any():
        grain = 0  # a zone whose days do not start on a UTC hour: raw rows only
    pieces = _pieces(session, series_id, start_ms, end_ms, grain)
    if grain == PERIODS[period] and period == "PT1H" and pieces.aligned:
        # Hourly rollups are the buckets themselves: nothing to regroup.
        return AggregateColumns(pieces.ms, pieces.count, pieces.sum, pieces.min, pieces.max)
    return _regroup(pieces, edges)


def _regroup(pieces: store.Pieces, edges: store.Ints) -> AggregateColumns:
    """Fold time-ordered pieces (rollup rows or raw rows) into the buckets they fall in."""
    if not len(pieces.ms):
        empty = np.empty(0, np.float64)
        return AggregateColumns(np.empty(0, np.int64), np.empty(0, np.int64), empty, empty, empty)
    slot = np.searchsorted(edges, pieces.ms, side="right") - 1
    firsts = np.flatnonzero(np.r_[True, slot[1:] != slot[:-1]])
    return AggregateColumns(
        edges[slot[firsts]],
        np.add.reduceat(pieces.count, firsts),
        np.add.reduceat(pieces.sum, firsts),
        np.minimum.reduceat(pieces.min, firsts),
        np.maximum.reduceat(pieces.max, firsts),
    )


def _bucket_edges(start: datetime, end: datetime, period: str, zone: ZoneInfo) -> store.Ints:
    start_ms, end_ms = store.to_ms(start), store.to_ms(end)
    if period == "PT1H":
        first = start_ms - start_ms % store.HOUR_MS
        return np.arange(first, end_ms + store.HOUR_MS, store.HOUR_MS, dtype=np.int64)
    day: date = start.astimezone(zone).date()
    edges = []
    while True:
        edge = store.to_ms(datetime.combine(day, clock(0), tzinfo=zone))
        edges.append(edge)
        if edge >= end_ms:
            return np.asarray(edges, dtype=np.int64)
        day += timedelta(days=1)


def _pieces(
    session: Session, series_id: int, start_ms: int, end_ms: int, grain: int
) -> store.Pieces:
    if grain == 0:
        return store.read_raw_pieces(session, series_id, start_ms, end_ms)
    inner_start = -(-start_ms // grain) * grain
    inner_end = end_ms - end_ms % grain
    if inner_start >= inner_end:
        return store.read_raw_pieces(session, series_id, start_ms, end_ms)
    table = "observation_daily" if grain == store.DAY_MS else "observation_hourly"
    return store.Pieces.join(
        store.read_raw_pieces(session, series_id, start_ms, inner_start),
        store.read_rollup_pieces(session, table, series_id, inner_start, inner_end),
        store.read_raw_pieces(session, series_id, inner_end, end_ms),
    )


def iso_times(moments: store.Ints, zone: ZoneInfo) -> list[str]:
    """Epoch milliseconds (whole seconds) as ISO 8601 local times with their offset in
    `zone`, like `datetime.isoformat`, without a datetime per value."""
    if not len(moments):
        return []
    offsets = _zone_offsets(moments, zone)
    local = (moments // 1000 + offsets).astype("datetime64[s]")
    texts: list[str] = np.datetime_as_string(local, unit="s").tolist()
    suffixes = {offset: _offset_text(offset) for offset in set(offsets.tolist())}
    return [text + suffixes[offset] for text, offset in zip(texts, offsets.tolist(), strict=True)]


def _zone_offsets(moments: store.Ints, zone: ZoneInfo) -> store.Ints:
    """UTC offset in seconds at each moment. The zone is asked once per UTC day spanned,
    and again only for moments in a day whose offset changes (real zones change at most
    once a day)."""
    first_day = int(moments.min()) // store.DAY_MS * store.DAY_MS
    days = np.arange(first_day, int(moments.max()) + 2 * store.DAY_MS, store.DAY_MS)
    per_day = np.asarray([_offset_at(ms, zone) for ms in days.tolist()], dtype=np.int64)
    day = (moments - first_day) // store.DAY_MS
    offsets = per_day[day]
    for index in np.flatnonzero(per_day[day] != per_day[day + 1]).tolist():
        offsets[index] = _offset_at(int(moments[index]), zone)
    return offsets


def _offset_at(ms: int, zone: ZoneInfo) -> int:
    offset = store.from_ms(ms).astimezone(zone).utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _offset_text(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = f"{sign}{hours:02d}:{minutes:02d}"
    return text + f":{secs:02d}" if secs else text


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
