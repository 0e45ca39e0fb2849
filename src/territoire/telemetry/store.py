"""The observation store: batched writes, last-value cache, rollups and range reads.

Inside the pipeline a time is an integer: milliseconds since the Unix epoch, UTC. That is
what SQLite stores; PostgreSQL stores `timestamptz` and the conversion happens here, at
the edge. Writes go through the driver directly (sqlite3 multi-row INSERT … RETURNING,
psycopg binary COPY) because the ORM would cost more than the database work.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from sqlalchemy import text
from sqlalchemy.orm import Session

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MILLISECOND = timedelta(milliseconds=1)
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
SQLITE_CHUNK = 2000  # rows per INSERT statement: 6,000 parameters, well under SQLite's limit

Row = tuple[int, int, float]  # (series_id, epoch ms, value)
Bucket = tuple[int, int, float, float, float]  # (bucket ms, count, sum, min, max)


def to_ms(moment: datetime) -> int:
    return (moment - EPOCH) // MILLISECOND


def from_ms(ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=ms)


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
    if not rows:
        return []
    if _is_postgres(session):
        return _write_postgres(_driver(session), rows)
    return _write_sqlite(_driver(session), rows)


def _write_sqlite(connection: Any, rows: Sequence[Row]) -> list[Row]:
    cursor = connection.cursor()
    inserted: set[tuple[int, int]] = set()
    complete = True
    for start in range(0, len(rows), SQLITE_CHUNK):
        chunk = rows[start : start + SQLITE_CHUNK]
        sql = (
            "INSERT INTO observation (series_id, ts, value) VALUES "
            + ",".join(["(?,?,?)"] * len(chunk))
            + " ON CONFLICT DO NOTHING RETURNING series_id, ts"
        )
        cursor.execute(sql, [value for row in chunk for value in row])
        returned = cursor.fetchall()
        if len(returned) != len(chunk):
            complete = False
        inserted.update(returned)
    cursor.close()
    if complete:
        return list(rows)
    return [row for row in rows if (row[0], row[1]) in inserted]


def _write_postgres(connection: psycopg.Connection[Any], rows: Sequence[Row]) -> list[Row]:
    # Fast path: COPY straight into the table. A duplicate makes COPY fail as a whole, so
    # it runs under a savepoint and the batch falls back to a staging table + ON CONFLICT.
    records = [(sid, from_ms(ms), value) for sid, ms, value in rows]
    with connection.cursor() as cursor:
        cursor.execute("SAVEPOINT telemetry_copy")
        try:
            _copy(cursor, "observation", records)
        except psycopg.errors.UniqueViolation:
            cursor.execute("ROLLBACK TO SAVEPOINT telemetry_copy")
        else:
            cursor.execute("RELEASE SAVEPOINT telemetry_copy")
            return list(rows)
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS observation_staging "
            "(series_id int, ts timestamptz, value float8) ON COMMIT DELETE ROWS"
        )
        cursor.execute("DELETE FROM observation_staging")
        _copy(cursor, "observation_staging", records)
        cursor.execute(
            "INSERT INTO observation (series_id, ts, value) "
            "SELECT DISTINCT ON (series_id, ts) series_id, ts, value FROM observation_staging "
            "ORDER BY series_id, ts ON CONFLICT DO NOTHING RETURNING series_id, ts"
        )
        inserted = {(sid, to_ms(ts)) for sid, ts in cursor.fetchall()}
        cursor.execute("DELETE FROM observation_staging")
    return [row for row in rows if (row[0], row[1]) in inserted]


def _copy(cursor: psycopg.Cursor[Any], table: str, records: Iterable[tuple[Any, ...]]) -> None:
    with cursor.copy(f"COPY {table} (series_id, ts, value) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(["int4", "timestamptz", "float8"])
        for record in records:
            copy.write_row(record)


def touch_series(session: Session, rows: Sequence[Row]) -> None:
    """Update each series' last value and mark its rollups stale from the oldest new time.

    `rows` must be sorted by series then time. One statement per batch, whatever its size.
    """
    summary: list[tuple[int, int, float, int]] = []  # (id, last ms, last value, first ms)
    for sid, ms, value in rows:
        if summary and summary[-1][0] == sid:
            first = summary[-1][3]
            summary[-1] = (sid, ms, value, first)
        else:
            summary.append((sid, ms, value, ms))
    if not summary:
        return
    if _is_postgres(session):
        session.execute(
            text(
                "UPDATE telemetry_series AS s SET "
                "last_value = CASE WHEN s.last_ts IS NULL OR u.ts >= s.last_ts "
                "THEN u.value ELSE s.last_value END, "
                "last_ts = CASE WHEN s.last_ts IS NULL OR u.ts >= s.last_ts "
                "THEN u.ts ELSE s.last_ts END, "
                "dirty_since = LEAST(s.dirty_since, u.first), "
                "dirty_generation = s.dirty_generation + 1 "
                "FROM unnest(CAST(:ids AS int[]), CAST(:ts AS timestamptz[]), "
                "CAST(:values AS float8[]), CAST(:firsts AS timestamptz[])) "
                "AS u(id, ts, value, first) WHERE s.id = u.id"
            ),
            {
                "ids": [s[0] for s in summary],
                "ts": [from_ms(s[1]) for s in summary],
                "values": [s[2] for s in summary],
                "firsts": [from_ms(s[3]) for s in summary],
            },
        )
        return
    cursor = _driver(session).cursor()
    cursor.executemany(
        "UPDATE telemetry_series SET "
        "last_value = CASE WHEN last_ts IS NULL OR ?1 >= last_ts THEN ?2 ELSE last_value END, "
        "last_ts = CASE WHEN last_ts IS NULL OR ?1 >= last_ts THEN ?1 ELSE last_ts END, "
        "dirty_since = min(coalesce(dirty_since, ?3), ?3), "
        "dirty_generation = dirty_generation + 1 WHERE id = ?4",
        [(last, value, first, sid) for sid, last, value, first in summary],
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
    where = ["dirty_since IS NOT NULL"]
    params: dict[str, Any] = {"limit": limit}
    if tenant_id is not None:
        where.append("tenant_id = :tenant_id")
        params["tenant_id"] = tenant_id
    if series_ids is not None:
        if not series_ids:
            return 0
        where.append("id IN (" + ",".join(str(int(i)) for i in series_ids) + ")")
    stale = session.execute(
        text(
            "SELECT id, dirty_since, dirty_generation FROM telemetry_series "
            f"WHERE {' AND '.join(where)} ORDER BY id LIMIT :limit"
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
                "UPDATE telemetry_series SET dirty_since = NULL "
                "WHERE id = :id AND dirty_generation = :generation"
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
    rows = session.execute(
        text(
            "SELECT ts, value FROM observation WHERE series_id = :sid "
            "AND ts >= :start AND ts < :end ORDER BY ts LIMIT :limit"
        ),
        {
            "sid": series_id,
            "start": db_time(session, start_ms),
            "end": db_time(session, end_ms),
            "limit": limit,
        },
    ).all()
    if _is_postgres(session):
        return [(to_ms(ts), value) for ts, value in rows]
    return [(ts, value) for ts, value in rows]


def read_rollups(
    session: Session, table: str, series_id: int, start_ms: int, end_ms: int
) -> list[Bucket]:
    rows = session.execute(
        text(
            f"SELECT bucket, count, sum, min, max FROM {table} WHERE series_id = :sid "
            "AND bucket >= :start AND bucket < :end ORDER BY bucket"
        ),
        {"sid": series_id, "start": db_time(session, start_ms), "end": db_time(session, end_ms)},
    ).all()
    if _is_postgres(session):
        return [(to_ms(b), c, s, lo, hi) for b, c, s, lo, hi in rows]
    return [(b, c, s, lo, hi) for b, c, s, lo, hi in rows]


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
