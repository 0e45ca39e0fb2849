"""The observation store: batched writes, last-value cache, rollups and range reads.

Inside the pipeline a time is an integer: milliseconds since the Unix epoch, UTC. That is
what SQLite stores; PostgreSQL stores `timestamptz` and the conversion happens here, at
the edge. Writes go through the driver directly (sqlite3 multi-row INSERT … RETURNING,
psycopg binary COPY) because the ORM would cost more than the database work.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

# Re-exported: the time helpers live with the records, the store is where callers look.
from territoire.telemetry.records import EPOCH as EPOCH
from territoire.telemetry.records import MILLISECOND as MILLISECOND
from territoire.telemetry.records import from_ms as from_ms
from territoire.telemetry.records import to_ms as to_ms

HOUR_MS = 3_600_000
DAY_MS = 86_400_000
SQLITE_CHUNK = 2000  # rows per INSERT statement: 6,000 parameters, well under SQLite's limit
PG_EPOCH_MS = 946_684_800_000  # 2000-01-01T00:00:00Z, where PostgreSQL's binary times start

Row = tuple[int, int, float]  # (series_id, epoch ms, value)
Bucket = tuple[int, int, float, float, float]  # (bucket ms, count, sum, min, max)
Ints = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Rows:
    """Observation rows as three numpy columns, sorted by series then time, unique."""

    series: Ints
    ms: Ints
    values: Floats

    def __len__(self) -> int:
        return len(self.ms)

    @classmethod
    def empty(cls) -> Rows:
        return cls(np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.float64))

    @classmethod
    def of(cls, rows: Sequence[Row]) -> Rows:
        if not rows:
            return cls.empty()
        series, ms, values = zip(*rows, strict=True)
        return cls(np.array(series, np.int64), np.array(ms, np.int64), np.array(values, np.float64))

    @classmethod
    def sorted_unique(cls, series: Ints, ms: Ints, values: Floats) -> Rows:
        """Sort by series then time; the same series and time twice keeps the last given."""
        order = np.lexsort((ms, series))  # stable: equal keys keep their arrival order
        series, ms, values = series[order], ms[order], values[order]
        if len(ms) > 1:
            repeated = (series[1:] == series[:-1]) & (ms[1:] == ms[:-1])
            if repeated.any():
                keep = np.r_[~repeated, True]
                series, ms, values = series[keep], ms[keep], values[keep]
        return cls(series, ms, values)

    @classmethod
    def joined(cls, parts: Sequence[Rows]) -> Rows:
        """Rows of several batches, sorted and unique."""
        if len(parts) == 1:
            return parts[0]
        return cls.sorted_unique(
            np.concatenate([part.series for part in parts]),
            np.concatenate([part.ms for part in parts]),
            np.concatenate([part.values for part in parts]),
        )

    def take(self, keep: npt.NDArray[Any]) -> Rows:
        return Rows(self.series[keep], self.ms[keep], self.values[keep])

    def tuples(self) -> list[Row]:
        return list(zip(self.series.tolist(), self.ms.tolist(), self.values.tolist(), strict=True))


def _driver(session: Session) -> Any:
    return session.connection().connection.dbapi_connection


def _is_postgres(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def db_time(session: Session, ms: int) -> Any:
    return from_ms(ms) if _is_postgres(session) else ms


def read_time(value: Any) -> int | None:
    if value is None:
        return None
    return to_ms(value) if isinstance(value, datetime) else int(value)


# --- writes --------------------------------------------------------------------------


def write_observations(session: Session, rows: Sequence[Row]) -> list[Row]:
    """Insert rows (unique per series and time); return those that were new.

    Rows already stored are left as they are: a replayed batch changes nothing.
    """
    ordered = sorted(rows, key=lambda row: (row[0], row[1]))
    return write_rows(session, Rows.of(ordered)).tuples()


def write_rows(session: Session, rows: Rows, *, trust_last_times: bool = True) -> Rows:
    """Insert sorted, unique rows; return those that were not stored yet.

    On SQLite, `trust_last_times=False` checks every row one by one (the way back when
    `StoreInconsistency` was raised). On PostgreSQL a batch holding stored rows is
    handled under a savepoint, inside the caller's transaction."""
    if not len(rows):
        return rows
    if _is_postgres(session):
        return _write_postgres(_driver(session), rows, "savepoint")[0]
    return _write_sqlite(_driver(session), rows, trust_last_times)


def write_and_touch(
    session: Session, rows: Rows, *, trust_last_times: bool = True
) -> tuple[Rows, SeriesTouch | None]:
    """`write_rows` for `ingest`, which owns the transaction, plus what the new rows
    change in their series' state when it could be worked out while PostgreSQL was still
    taking the rows in (None otherwise).

    With `trust_last_times`, PostgreSQL gets a plain COPY, and `DuplicateRows` if some
    rows were already stored: the transaction is then lost, and the caller runs the batch
    again with `trust_last_times=False` (rows checked through a staging table). Replays
    are rare; two round trips (a savepoint and its release) per batch are not."""
    if not len(rows):
        return rows, None
    if _is_postgres(session):
        return _write_postgres(_driver(session), rows, "direct" if trust_last_times else "staged")
    return _write_sqlite(_driver(session), rows, trust_last_times), None


def _write_sqlite(connection: Any, rows: Rows, trust_last_times: bool) -> Rows:
    """Rows newer than their series' last time cannot be in the table yet (the last time
    only grows, in the same transaction as the rows): those go in with one plain
    executemany, in key order. Only older rows (late data, replays) go through INSERT …
    RETURNING, which tells which of them were new. A savepoint would be simpler, but
    SQLite then journals every page the batch touches a second time."""
    cursor = connection.cursor()
    if not connection.in_transaction:
        # Take the write lock before reading the last times, so they cannot move.
        cursor.execute("BEGIN IMMEDIATE")
    suspect = _not_newer(cursor, rows) if trust_last_times else np.ones(len(rows), bool)
    fresh = rows.take(~suspect) if suspect.any() else rows
    series, ms, values = fresh.series.tolist(), fresh.ms.tolist(), fresh.values.tolist()
    cursor.executemany(
        "INSERT INTO observation (series_id, ts, value) VALUES (?,?,?) ON CONFLICT DO NOTHING",
        zip(series, ms, values, strict=True),
    )
    if cursor.rowcount != len(series):
        cursor.close()
        raise StoreInconsistency("rows newer than their series' last time were already stored")
    if not suspect.any():
        cursor.close()
        return rows
    late = rows.take(suspect)
    inserted = _insert_returning(cursor, late)
    cursor.close()
    new = late.take(_is_in(late.series.tolist(), late.ms.tolist(), inserted))
    merged = Rows(
        np.concatenate([fresh.series, new.series]),
        np.concatenate([fresh.ms, new.ms]),
        np.concatenate([fresh.values, new.values]),
    )
    order = np.lexsort((merged.ms, merged.series))
    return merged.take(order)


class StoreInconsistency(RuntimeError):
    """A series' last time was behind its stored rows (rows written outside `ingest`)."""


class DuplicateRows(RuntimeError):
    """A plain COPY met rows already stored (a replay): the transaction is lost."""


class TransactionLost(RuntimeError):
    """PostgreSQL broke a lock cycle between two batches updating the same series' state
    (their plans may visit the rows in different orders) by aborting this transaction:
    nothing of the batch was kept, and it can run again."""


def _not_newer(cursor: Any, rows: Rows) -> npt.NDArray[np.bool_]:
    """Which rows are not later than their series' last stored time."""
    ids = np.unique(rows.series)
    cursor.execute(
        "SELECT series_id, last_ts FROM telemetry_series_state "
        "WHERE last_ts IS NOT NULL AND series_id IN (" + ",".join(map(str, ids.tolist())) + ")"
    )
    last = dict(cursor.fetchall())
    if not last:
        return np.zeros(len(rows), dtype=bool)
    floor = np.asarray([last.get(i, -(2**62)) for i in ids.tolist()], dtype=np.int64)
    return np.asarray(rows.ms <= floor[np.searchsorted(ids, rows.series)])


def _insert_returning(cursor: Any, rows: Rows) -> set[tuple[int, int]]:
    series, ms, values = rows.series.tolist(), rows.ms.tolist(), rows.values.tolist()
    inserted: set[tuple[int, int]] = set()
    for start in range(0, len(series), SQLITE_CHUNK):
        chunk = list(
            zip(
                series[start : start + SQLITE_CHUNK],
                ms[start : start + SQLITE_CHUNK],
                values[start : start + SQLITE_CHUNK],
                strict=True,
            )
        )
        cursor.execute(
            "INSERT INTO observation (series_id, ts, value) VALUES "
            + ",".join(["(?,?,?)"] * len(chunk))
            + " ON CONFLICT DO NOTHING RETURNING series_id, ts",
            [value for row in chunk for value in row],
        )
        inserted.update(cursor.fetchall())
    return inserted


def _is_in(series: list[int], ms: list[int], keys: set[tuple[int, int]]) -> npt.NDArray[Any]:
    return np.fromiter((key in keys for key in zip(series, ms, strict=True)), bool, len(ms))


# PostgreSQL's binary COPY format, one row: field count, then (length, value) per field.
_COPY_ROW = np.dtype(
    [
        ("fields", ">i2"),
        ("series_length", ">i4"),
        ("series", ">i4"),
        ("ts_length", ">i4"),
        ("ts", ">i8"),  # microseconds since 2000-01-01 UTC
        ("value_length", ">i4"),
        ("value", ">f8"),
    ]
)
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, no header extension
_COPY_TRAILER = b"\xff\xff"


def copy_payload(rows: Rows) -> bytes:
    """The whole batch as one binary COPY stream, built by numpy (no Python per row)."""
    return _COPY_HEADER + _copy_rows(rows) + _COPY_TRAILER


def _copy_rows(rows: Rows) -> bytes:
    block = np.empty(len(rows), dtype=_COPY_ROW)
    block["fields"] = 3
    block["series_length"] = 4
    block["series"] = rows.series
    block["ts_length"] = 8
    block["ts"] = (rows.ms - PG_EPOCH_MS) * 1000
    block["value_length"] = 8
    block["value"] = rows.values
    return block.tobytes()


class CopyStream:
    """A batch written to PostgreSQL piece by piece in one binary COPY: the server takes
    a piece in (on its own core) while the caller decodes and checks the next, instead of
    the two waiting for each other. Like a plain COPY, a row already stored, or the same
    row in two pieces, loses the transaction (`DuplicateRows`): the caller runs the batch
    again through `write_and_touch(trust_last_times=False)`.

    `pause` ends the COPY under way so that the caller can run other statements (create
    the series of a new entity); the next piece starts another COPY."""

    def __init__(self, session: Session) -> None:
        self._connection: psycopg.Connection[Any] = _driver(session)
        self._open: contextlib.ExitStack | None = None
        self._copy: psycopg.Copy | None = None
        self._pieces: list[Rows] = []

    def write(self, rows: Rows) -> None:
        if not len(rows):
            return
        if self._copy is None:
            self._open = contextlib.ExitStack()
            cursor = self._open.enter_context(self._connection.cursor())
            self._copy = self._open.enter_context(
                cursor.copy("COPY observation (series_id, ts, value) FROM STDIN (FORMAT BINARY)")
            )
            self._copy.write(_COPY_HEADER)
        self._copy.write(_copy_rows(rows))
        self._pieces.append(rows)

    def pause(self) -> None:
        """Wait for the COPY under way to end."""
        if self._copy is None or self._open is None:
            return
        copy, stack = self._copy, self._open
        self._copy = self._open = None
        copy.write(_COPY_TRAILER)
        try:
            stack.close()
        except psycopg.errors.UniqueViolation as error:
            raise DuplicateRows(str(error)) from error

    def finish(self) -> tuple[Rows, SeriesTouch | None]:
        """End the COPY; the rows written (sorted, unique) and what they change in their
        series, worked out while the server takes the last piece in."""
        if not self._pieces:
            self.pause()
            return Rows.empty(), None
        rows = Rows.joined(self._pieces)
        if len(rows) < sum(len(piece) for piece in self._pieces):
            raise DuplicateRows("the same series and time in two pieces of a batch")
        touch = SeriesTouch.of(rows)
        touch.array_texts()
        self.pause()
        return rows, touch

    def abort(self) -> None:
        """Give the COPY under way up (the transaction is lost; the caller rolls back)."""
        stack = self._open
        self._copy = self._open = None
        if stack is not None:
            with contextlib.suppress(psycopg.Error):
                stack.__exit__(DuplicateRows, DuplicateRows("abandoned"), None)


def _write_postgres(
    connection: psycopg.Connection[Any], rows: Rows, mode: str
) -> tuple[Rows, SeriesTouch | None]:
    """COPY straight into the table. A duplicate makes COPY fail as a whole: `direct`
    then raises `DuplicateRows`; `savepoint` runs the COPY under a savepoint and falls
    back to a staging table + ON CONFLICT, which `staged` goes to at once."""
    payload = copy_payload(rows)
    with connection.cursor() as cursor:
        if mode == "direct":
            try:
                return rows, _copy(cursor, "observation", payload, rows)
            except psycopg.errors.UniqueViolation as error:
                raise DuplicateRows(str(error)) from error
        if mode == "savepoint":
            cursor.execute("SAVEPOINT telemetry_copy")
            try:
                touch = _copy(cursor, "observation", payload, rows)
            except psycopg.errors.UniqueViolation:
                cursor.execute("ROLLBACK TO SAVEPOINT telemetry_copy")
            else:
                cursor.execute("RELEASE SAVEPOINT telemetry_copy")
                return rows, touch
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS observation_staging "
            "(series_id int, ts timestamptz, value float8) ON COMMIT DELETE ROWS"
        )
        cursor.execute("DELETE FROM observation_staging")
        _copy(cursor, "observation_staging", payload)
        cursor.execute(
            "INSERT INTO observation (series_id, ts, value) "
            "SELECT series_id, ts, value FROM observation_staging "
            "ON CONFLICT DO NOTHING RETURNING series_id, "
            "CAST(extract(epoch FROM ts) * 1000 AS bigint)"
        )
        inserted = {(sid, int(ms)) for sid, ms in cursor.fetchall()}
        cursor.execute("DELETE FROM observation_staging")
    return rows.take(_is_in(rows.series.tolist(), rows.ms.tolist(), inserted)), None


def _copy(
    cursor: psycopg.Cursor[Any], table: str, payload: bytes, rows: Rows | None = None
) -> SeriesTouch | None:
    """COPY the payload; with `rows`, work out their series' changes while the server
    takes the data in (it runs on another core; the answer is awaited on leaving)."""
    with cursor.copy(f"COPY {table} (series_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy:
        copy.write(payload)
        if rows is None:
            return None
        touch = SeriesTouch.of(rows)
        touch.array_texts()
        return touch


def _array_text(values: list[int] | list[float]) -> str:
    # repr of a float is its shortest exact form, which PostgreSQL reads back exactly.
    return "{" + ",".join(map(repr, values)) + "}"


def add_series_states(session: Session, series_ids: Sequence[int]) -> None:
    """The state row of new series (kept if it is already there)."""
    for start in range(0, len(series_ids), 5000):
        chunk = series_ids[start : start + 5000]
        session.execute(
            text(
                "INSERT INTO telemetry_series_state (series_id, dirty_generation) VALUES "
                + ",".join(f"({int(sid)}, 0)" for sid in chunk)
                + " ON CONFLICT DO NOTHING"
            )
        )


@dataclass(slots=True)
class SeriesTouch:
    """What a batch changes in its series' state: per series, the time and value of its
    last row and the time of its first (columns, in series order)."""

    ids: list[int]
    first_ms: list[int]
    last_ms: list[int]
    last_values: list[float]
    _texts: tuple[str, ...] | None = None

    @classmethod
    def of(cls, rows: Rows) -> SeriesTouch:
        series = rows.series
        firsts = np.flatnonzero(np.r_[True, series[1:] != series[:-1]])
        lasts = np.r_[firsts[1:] - 1, len(series) - 1]
        return cls(
            series[firsts].tolist(),
            rows.ms[firsts].tolist(),
            rows.ms[lasts].tolist(),
            rows.values[lasts].tolist(),
        )

    def array_texts(self) -> tuple[str, ...]:
        """The columns as PostgreSQL array literals (worked out once, and best while the
        server is busy with the rows)."""
        if self._texts is None:
            # Joined in C, where the driver's list adapter works per item.
            self._texts = tuple(
                _array_text(column)
                for column in (self.ids, self.last_ms, self.last_values, self.first_ms)
            )
        return self._texts


_TOUCH_POSTGRES = (
    "UPDATE telemetry_series_state AS s SET "
    "last_value = CASE WHEN s.last_ts IS NULL OR u.ms >= s.last_ts "
    "THEN u.value ELSE s.last_value END, "
    "last_ts = CASE WHEN s.last_ts IS NULL OR u.ms >= s.last_ts "
    "THEN u.ms ELSE s.last_ts END, "
    "dirty_since = LEAST(s.dirty_since, u.first_ms), "
    "dirty_generation = s.dirty_generation + 1 "
    "FROM unnest(%s::int[], %s::bigint[], %s::float8[], %s::bigint[]) "
    "AS u(id, ms, value, first_ms) WHERE s.series_id = u.id"
)


def touch_series(session: Session, rows: Rows, touch: SeriesTouch | None = None) -> None:
    """Update each series' last value and mark its rollups stale from the oldest new time.

    `rows` are sorted by series then time; `touch`, when given, is what they change
    (computed while the database was busy with the rows). One statement per batch,
    whatever its size, on the narrow state table, whose rows PostgreSQL rewrites in place.
    """
    if not len(rows):
        return
    touch = touch or SeriesTouch.of(rows)
    if _is_postgres(session):
        with _driver(session).cursor() as cursor:
            try:
                cursor.execute(_TOUCH_POSTGRES, touch.array_texts())
            except psycopg.errors.DeadlockDetected as error:
                raise TransactionLost(str(error)) from error
        return
    cursor = _driver(session).cursor()
    cursor.executemany(
        "UPDATE telemetry_series_state SET "
        "last_value = CASE WHEN last_ts IS NULL OR ?1 >= last_ts THEN ?2 ELSE last_value END, "
        "last_ts = CASE WHEN last_ts IS NULL OR ?1 >= last_ts THEN ?1 ELSE last_ts END, "
        "dirty_since = min(coalesce(dirty_since, ?3), ?3), "
        "dirty_generation = dirty_generation + 1 WHERE series_id = ?4",
        zip(touch.last_ms, touch.last_values, touch.first_ms, touch.ids, strict=True),
    )
    cursor.close()


# --- rollups -------------------------------------------------------------------------


def _bucket_sql(session: Session, column: str, size: str) -> str:
    if _is_postgres(session):
        return f"date_trunc('{size}', {column}, 'UTC')"
    width = HOUR_MS if size == "hour" else DAY_MS
    return f"({column} / {width}) * {width}"


def refresh_rollups(
    session: Session,
    *,
    tenant_id: int | None = None,
    series_ids: Sequence[int] | None = None,
    limit: int = 500,
) -> int:
    """Recompute the hourly then daily rollups of stale series, from their oldest change.

    Recomputing touched buckets from the raw rows (rather than adding deltas) makes the
    refresh idempotent: a replayed batch or a crash between two refreshes cannot skew it.
    Returns how many series were refreshed.
    """
    where = ["st.dirty_since IS NOT NULL"]
    params: dict[str, Any] = {"limit": limit}
    source = "telemetry_series_state AS st"
    if tenant_id is not None:
        source += " JOIN telemetry_series AS s ON s.id = st.series_id"
        where.append("s.tenant_id = :tenant_id")
        params["tenant_id"] = tenant_id
    if series_ids is not None:
        if not series_ids:
            return 0
        where.append("st.series_id IN (" + ",".join(str(int(i)) for i in series_ids) + ")")
    stale = session.execute(
        text(
            f"SELECT st.series_id, st.dirty_since, st.dirty_generation FROM {source} "
            f"WHERE {' AND '.join(where)} ORDER BY st.series_id LIMIT :limit"
        ),
        params,
    ).all()
    if not stale:
        return 0
    starts = [(sid, read_time(since) or 0, generation) for sid, since, generation in stale]
    _recompute(session, "observation", "ts", "observation_hourly", "hour", starts, HOUR_MS)
    _recompute(session, "observation_hourly", "bucket", "observation_daily", "day", starts, DAY_MS)
    for sid, _since, generation in starts:
        session.execute(
            text(
                "UPDATE telemetry_series_state SET dirty_since = NULL "
                "WHERE series_id = :id AND dirty_generation = :generation"
            ),
            {"id": sid, "generation": generation},
        )
    return len(starts)


def _recompute(
    session: Session,
    source: str,
    time_column: str,
    target: str,
    size: str,
    starts: Sequence[tuple[int, int, int]],
    width: int,
) -> None:
    bucket = _bucket_sql(session, time_column, size)
    raw = source == "observation"
    count = "count(*)" if raw else "sum(count)"
    total = "sum(value)" if raw else "sum(sum)"
    low = "min(value)" if raw else "min(min)"
    high = "max(value)" if raw else "max(max)"
    values = ",".join(f"(:id{i}, :start{i})" for i in range(len(starts)))
    params: dict[str, Any] = {}
    for i, (sid, since, _generation) in enumerate(starts):
        params[f"id{i}"] = sid
        params[f"start{i}"] = db_time(session, since - since % width)
    cast = "CAST(d.start AS timestamptz)" if _is_postgres(session) else "d.start"
    session.execute(
        text(
            f"WITH d(id, start) AS (VALUES {values}) "
            f"INSERT INTO {target} (series_id, bucket, count, sum, min, max) "
            f"SELECT o.series_id, {bucket}, {count}, {total}, {low}, {high} "
            f"FROM {source} AS o JOIN d ON o.series_id = d.id AND o.{time_column} >= {cast} "
            f"WHERE true GROUP BY o.series_id, {bucket} "
            "ON CONFLICT (series_id, bucket) DO UPDATE SET count = excluded.count, "
            "sum = excluded.sum, min = excluded.min, max = excluded.max"
        ),
        params,
    )


# --- reads ---------------------------------------------------------------------------


def read_observations(
    session: Session, series_id: int, start_ms: int, end_ms: int, limit: int
) -> list[tuple[int, float]]:
    rows = _fetch(
        session,
        f"SELECT {_ms_sql(session, 'ts')}, value FROM observation WHERE series_id = {{p}} "
        "AND ts >= {p} AND ts < {p} ORDER BY ts LIMIT {p}",
        (series_id, db_time(session, start_ms), db_time(session, end_ms), limit),
    )
    return [(int(ms), value) for ms, value in rows]


def read_rollups(
    session: Session, table: str, series_id: int, start_ms: int, end_ms: int
) -> list[Bucket]:
    pieces = read_rollup_pieces(session, table, series_id, start_ms, end_ms)
    return list(
        zip(
            pieces.ms.tolist(),
            pieces.count.tolist(),
            pieces.sum.tolist(),
            pieces.min.tolist(),
            pieces.max.tolist(),
            strict=True,
        )
    )


@dataclass(frozen=True, slots=True)
class Pieces:
    """Time-ordered parts of an aggregate as columns: rollup rows or raw rows (a raw row
    is a piece of count 1). `aligned` is true when they are all rollup rows."""

    ms: Ints
    count: Ints
    sum: Floats
    min: Floats
    max: Floats
    aligned: bool

    @classmethod
    def of(cls, rows: list[tuple[Any, ...]], *, raw: bool) -> Pieces:
        if not rows:
            empty = np.empty(0, np.float64)
            return cls(np.empty(0, np.int64), np.empty(0, np.int64), empty, empty, empty, not raw)
        table = np.asarray(rows, dtype=np.float64)
        ms = table[:, 0].astype(np.int64)
        if raw:
            values = np.ascontiguousarray(table[:, 1])
            return cls(ms, np.ones(len(ms), np.int64), values, values, values, False)
        return cls(
            ms,
            table[:, 1].astype(np.int64),
            np.ascontiguousarray(table[:, 2]),
            np.ascontiguousarray(table[:, 3]),
            np.ascontiguousarray(table[:, 4]),
            True,
        )

    @classmethod
    def join(cls, *parts: Pieces) -> Pieces:
        present = [part for part in parts if len(part.ms)]
        if len(present) <= 1:
            return present[0] if present else parts[0]
        return cls(
            np.concatenate([p.ms for p in present]),
            np.concatenate([p.count for p in present]),
            np.concatenate([p.sum for p in present]),
            np.concatenate([p.min for p in present]),
            np.concatenate([p.max for p in present]),
            all(p.aligned for p in present),
        )


def read_raw_pieces(session: Session, series_id: int, start_ms: int, end_ms: int) -> Pieces:
    if start_ms >= end_ms:
        return Pieces.of([], raw=True)
    rows = _fetch(
        session,
        f"SELECT {_ms_sql(session, 'ts')}, value FROM observation WHERE series_id = {{p}} "
        "AND ts >= {p} AND ts < {p} ORDER BY ts",
        (series_id, db_time(session, start_ms), db_time(session, end_ms)),
    )
    return Pieces.of(rows, raw=True)


def read_rollup_pieces(
    session: Session, table: str, series_id: int, start_ms: int, end_ms: int
) -> Pieces:
    rows = _fetch(
        session,
        f"SELECT {_ms_sql(session, 'bucket')}, count, sum, min, max FROM {table} "
        "WHERE series_id = {p} AND bucket >= {p} AND bucket < {p} ORDER BY bucket",
        (series_id, db_time(session, start_ms), db_time(session, end_ms)),
    )
    return Pieces.of(rows, raw=False)


LATEST_FIELDS = {
    "entity": "s.entity",
    "attribute": "s.attribute",
    "unit": "s.unit",
    "ts": "st.last_ts",
    "value": "st.last_value",
}


def read_latest(
    session: Session,
    tenant_id: int,
    attribute: str | None,
    ids: list[int] | None,
    fields: Sequence[str] = tuple(LATEST_FIELDS),
) -> list[tuple[Any, ...]]:
    """(id, then the `fields` asked for) of a tenant's series: by default entity,
    attribute, unit, last ms and last value."""
    sql = (
        "SELECT s.id"
        + "".join(f", {LATEST_FIELDS[name]}" for name in fields)
        + " FROM telemetry_series AS s "
        "LEFT JOIN telemetry_series_state AS st ON st.series_id = s.id WHERE s.tenant_id = {p}"
    )
    params: list[Any] = [tenant_id]
    if attribute:
        sql += " AND s.attribute = {p}"
        params.append(attribute)
    if ids is not None:
        sql += " AND s.id IN (" + ",".join(str(int(i)) for i in ids) + ")"
        return _fetch(session, sql + " ORDER BY s.id", tuple(params))
    with _planned_as_large(session):
        return _fetch(session, sql + " ORDER BY s.id", tuple(params))


# A read of all a tenant's series sorts a few MB: in memory, not in temporary files.
_LARGE_READ_SETTINGS = {"enable_nestloop": "off", "work_mem": "64MB"}


@contextlib.contextmanager
def _planned_as_large(session: Session) -> Iterator[None]:
    """Plan a read of all a tenant's series as the large read it always is.

    Right after a bulk registration, and until autovacuum analyses the tables (a minute
    or more), the planner believes the tenant has a few dozen series: it then probes the
    state table once per series, or sorts on disk, 2 to 3 times slower for 50,000 series.
    The settings are local to the transaction (a rollback also undoes them) and put back
    on success."""
    if not _is_postgres(session):
        yield
        return
    names = list(_LARGE_READ_SETTINGS)
    with _driver(session).cursor() as cursor:
        cursor.execute(
            "SELECT " + ", ".join("current_setting(%s), set_config(%s, %s, true)" for _ in names),
            [value for name in names for value in (name, name, _LARGE_READ_SETTINGS[name])],
        )
        row = cursor.fetchone()
        previous = [row[2 * index] for index in range(len(names))]
    yield
    with _driver(session).cursor() as cursor:
        cursor.execute(
            "SELECT " + ", ".join("set_config(%s, %s, true)" for _ in names),
            [value for pair in zip(names, previous, strict=True) for value in pair],
        )


def _ms_sql(session: Session, column: str) -> str:
    """A time column as epoch milliseconds, computed by the database (no datetime objects)."""
    if _is_postgres(session):
        return f"CAST(extract(epoch FROM {column}) * 1000 AS bigint)"
    return column


def _fetch(session: Session, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    """Run a read through the driver: rows come back as plain tuples, no ORM rows.

    `{p}` in `sql` marks a parameter, written in the driver's own style."""
    postgres = _is_postgres(session)
    # PostgreSQL's binary format: numbers arrive as machine values, not text to parse
    # (2 to 3 times faster for thousands of rows).
    cursor = _driver(session).cursor(binary=True) if postgres else _driver(session).cursor()
    try:
        cursor.execute(sql.format(p="%s" if postgres else "?"), params)
        with gc_paused():
            return list(cursor.fetchall())
    finally:
        cursor.close()


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Hold the cyclic garbage collector while tens of thousands of row tuples are made.

    Each burst of allocations would otherwise set off collections that walk every object
    of the process (twice the time of the read itself for 50,000 rows); rows hold no
    cycles, so nothing is lost by collecting later."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def freeze_startup_objects() -> None:
    """Move what start-up made (modules, app, metadata: hundreds of thousands of objects
    that live as long as the process) out of the collector's sight, so that a full
    collection set off by a burst of ingestion walks only what came since (a 60-100 ms
    pause every few dozen batches otherwise). For `serve` and `worker`, once ready."""
    gc.collect()
    gc.freeze()


def delete_observations_before(session: Session, series_ids: Sequence[int], cutoff_ms: int) -> int:
    total = 0
    for start in range(0, len(series_ids), 500):
        chunk = ",".join(str(int(i)) for i in series_ids[start : start + 500])
        result = session.execute(
            text(f"DELETE FROM observation WHERE series_id IN ({chunk}) AND ts < :cutoff"),
            {"cutoff": db_time(session, cutoff_ms)},
        )
        total += int(getattr(result, "rowcount", 0) or 0)
    return total
