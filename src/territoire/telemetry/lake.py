"""The Parquet lake: raw observations past their retention period, and range exports.

Layout: `<lake>/observations/tenant=<slug>/date=<YYYY-MM-DD>/part-<digest>.parquet`, one
Hive-style partition per tenant and UTC day, readable by DuckDB, Spark or Trino as is.
Rows are deleted from the database in the same transaction that returned them, and the
file is written (atomically, by rename) before that transaction commits: a crash leaves
the rows in the database, and the re-run rewrites the same file name for the same rows.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from territoire.db import Database
from territoire.db.base import utcnow
from territoire.telemetry import service, store
from territoire.telemetry.models import Series
from territoire.tenancy import service as tenancy

SERIES_PER_PASS = 1000
SCHEMA = pa.schema(
    [
        ("series_id", pa.int32()),
        ("entity", pa.string()),
        ("attribute", pa.string()),
        ("unit", pa.string()),
        ("ts", pa.timestamp("ms", tz="UTC")),
        ("value", pa.float64()),
    ]
)


@dataclass
class LakeReport:
    files: list[Path] = field(default_factory=list)
    rows: int = 0


def export_expired(
    database: Database,
    lake_dir: Path,
    *,
    now: datetime | None = None,
    tenant_slug: str | None = None,
) -> LakeReport:
    """Move raw observations older than each tenant's retention period to the lake."""
    now = now or utcnow()
    report = LakeReport()
    with database.session() as session:
        tenants = [(t.id, t.slug) for t in tenancy.list_tenants(session)]
    for tenant_id, slug in tenants:
        if tenant_slug is not None and slug != tenant_slug:
            continue
        # Rollups are kept: bring them up to date while the raw rows are still there.
        service.refresh_rollups(database, tenant_id=tenant_id)
        with database.session() as session:
            days = service.raw_retention_days(session, tenant_id)
            series = _series(session, tenant_id)
        cutoff = service.retention_cutoff_ms(now, days)
        for start in range(0, len(series), SERIES_PER_PASS):
            chunk = series[start : start + SERIES_PER_PASS]
            with database.session() as session:
                rows = _take_rows(session, [s[0] for s in chunk], cutoff)
                files = _write_days(lake_dir, slug, {s[0]: s for s in chunk}, rows)
            report.files.extend(files)
            report.rows += len(rows)
    return report


def _series(session: Session, tenant_id: int) -> list[tuple[int, str, str, str | None]]:
    rows = session.execute(
        select(Series.id, Series.entity, Series.attribute, Series.unit)
        .where(Series.tenant_id == tenant_id)
        .order_by(Series.id)
    )
    return [(sid, entity, attribute, unit) for sid, entity, attribute, unit in rows]


def _take_rows(session: Session, series_ids: Sequence[int], cutoff_ms: int) -> list[store.Row]:
    """Delete and return the rows past the cutoff (one statement, in the caller's transaction)."""
    ids = ",".join(str(int(i)) for i in series_ids)
    result = session.execute(
        text(
            f"DELETE FROM observation WHERE series_id IN ({ids}) AND ts < :cutoff "
            "RETURNING series_id, ts, value"
        ),
        {"cutoff": store.db_time(session, cutoff_ms)},
    )
    return [(sid, store.read_time(ts) or 0, value) for sid, ts, value in result]


def _write_days(
    lake_dir: Path,
    slug: str,
    series: dict[int, tuple[int, str, str, str | None]],
    rows: list[store.Row],
) -> list[Path]:
    by_day: dict[str, list[store.Row]] = defaultdict(list)
    for row in rows:
        by_day[store.from_ms(row[1]).date().isoformat()].append(row)
    written = []
    for day, day_rows in sorted(by_day.items()):
        day_rows.sort(key=lambda r: (r[0], r[1]))
        folder = lake_dir / "observations" / f"tenant={slug}" / f"date={day}"
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"part-{_digest(day_rows)}.parquet"
        temporary = target.with_suffix(".tmp")
        pq.write_table(_table(series, day_rows), temporary, compression="zstd")
        os.replace(temporary, target)
        written.append(target)
    return written


def _digest(rows: list[store.Row]) -> str:
    first, last = rows[0], rows[-1]
    key = f"{first[0]}:{first[1]}:{last[0]}:{last[1]}:{len(rows)}"
    return hashlib.sha256(key.encode()).hexdigest()[:16]


def _table(series: dict[int, tuple[int, str, str, str | None]], rows: list[store.Row]) -> Any:
    return pa.table(
        {
            "series_id": [r[0] for r in rows],
            "entity": [series[r[0]][1] for r in rows],
            "attribute": [series[r[0]][2] for r in rows],
            "unit": [series[r[0]][3] for r in rows],
            "ts": [r[1] for r in rows],
            "value": [r[2] for r in rows],
        },
        schema=SCHEMA,
    )


def series_parquet(info: service.SeriesInfo, rows: Sequence[tuple[int, float]]) -> bytes:
    """One series' range as a Parquet file (the export API)."""
    table = _table(
        {info.id: (info.id, info.entity, info.attribute, info.unit)},
        [(info.id, ms, value) for ms, value in rows],
    )
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    return buffer.getvalue()


def read_lake(lake_dir: Path, tenant_slug: str) -> Any:
    """The tenant's archived observations as one Arrow table (tests, small tenants)."""
    folder = lake_dir / "observations" / f"tenant={tenant_slug}"
    if not folder.exists():
        return SCHEMA.empty_table()
    return pq.read_table(folder, schema=SCHEMA)
