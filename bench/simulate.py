"""Simulator benchmark: generation speed against the ingestion path and the raw database.

    .venv/bin/python bench/simulate.py                      # medium, 30 days (about 2 min)
    .venv/bin/python bench/simulate.py --days 7 --ingest-days 1 --databases sqlite
    .venv/bin/python bench/simulate.py --large              # also time the large town

Prints: territory sizes and build times; generation rate (readings/s, NumPy arrays);
the rate at which those arrays become telemetry `Reading`s and device uplinks; the
in-process ingestion rate into a throw-away SQLite file and PostgreSQL database, and the
raw insert rate of the same rows into a bare table of the same database (executemany /
COPY) in the same run; finally generation time for the whole period against ingestion
time for the same readings (the simulator must be the faster of the two).
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, text

from territoire.db import Database, migrate
from territoire.demo.seed import DEMO_SLUG, ensure_tenant
from territoire.simulator.clock import DAY
from territoire.simulator.engine import DayResult, Simulation
from territoire.simulator.service import IngestSink, messages, readings, seed_territory
from territoire.simulator.sizes import Size
from territoire.simulator.territory import build_territory

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def line(label: str, value: str) -> None:
    print(f"  {label:<52} {value}")


def territories(large: bool) -> None:
    print("Territories (the town depends on the size only)")
    for size in (Size.SMALL, Size.MEDIUM, *((Size.LARGE,) if large else ())):
        started = time.perf_counter()
        territory = build_territory(1, size)
        elapsed = time.perf_counter() - started
        line(
            f"{size.value}: {len(territory.lamps):,} lamps, {len(territory.containers):,} bins",
            f"{territory.series_count:,} series, {territory.device_count:,} devices, "
            f"built in {elapsed:.2f} s",
        )


def generate(size: Size, days: int, start: datetime) -> tuple[list[DayResult], float]:
    simulation = Simulation(1, size, start.date())
    started = time.perf_counter()
    results = [simulation.next_day() for _ in range(days)]
    elapsed = time.perf_counter() - started
    total = sum(day.count for day in results)
    print(f"Generation: {size.value}, {days} days, seed 1")
    line("readings generated", f"{total:,}")
    line("generation time", f"{elapsed:.2f} s  ({total / elapsed:,.0f} readings/s)")
    faults = simulation.truth()
    line("labelled faults", f"{len(faults):,} ({len({f.kind for f in faults})} kinds)")
    return results, elapsed


def materialise(results: list[DayResult]) -> float:
    started = time.perf_counter()
    count = sum(1 for day in results for _ in readings(day, day.start, day.start + DAY))
    to_readings = time.perf_counter() - started
    line("arrays → telemetry Readings", f"{count / to_readings:,.0f} readings/s")
    day = results[0]
    started = time.perf_counter()
    uplinks = messages(day, day.start, day.start + DAY, DEMO_SLUG)
    encoding = time.perf_counter() - started
    line(
        "arrays → device uplinks (SenML, JSON, LoRaWAN)",
        f"{len(uplinks) / encoding:,.0f} messages/s",
    )
    return count / to_readings


def _pg_database() -> tuple[str, object]:
    name = f"territoire_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))

    def drop() -> None:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", drop


def raw_rate(database: Database, rows: list[tuple[int, int, float]]) -> float:
    """The same rows into a bare table: what the database alone can take."""
    with database.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS bench_raw"))
        connection.execute(
            text(
                "CREATE TABLE bench_raw (series_id integer, ts bigint, value double precision,"
                " PRIMARY KEY (series_id, ts))"
            )
        )
    started = time.perf_counter()
    if database.dialect == "postgresql":
        url = database.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url) as connection, connection.cursor() as cursor:
            with cursor.copy("COPY bench_raw (series_id, ts, value) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            connection.commit()
    else:
        raw = database.engine.raw_connection()
        try:
            cursor = raw.cursor()
            cursor.executemany("INSERT INTO bench_raw VALUES (?, ?, ?)", rows)
            raw.commit()
        finally:
            raw.close()
    return len(rows) / (time.perf_counter() - started)


def ingest(kind: str, size: Size, results: list[DayResult], ingest_days: int) -> float:
    drop = None
    if kind == "postgresql":
        url, drop = _pg_database()
    else:
        url = f"sqlite:///{Path(tempfile.mkdtemp(prefix='territoire-bench-')) / 'bench.db'}"
    try:
        migrate.upgrade(url)
        database = Database(url)
        started = time.perf_counter()
        with database.session() as session:
            tenant = ensure_tenant(session)
            seed_territory(session, tenant.id, build_territory(1, size))
        seeding = time.perf_counter() - started
        sink = IngestSink(database, tenant.id)
        started = time.perf_counter()
        sent = sum(sink.send(day, day.start, day.start + DAY) for day in results[:ingest_days])
        elapsed = time.perf_counter() - started
        rate = sent / elapsed
        rows = [
            (hash((r.entity, r.attribute)) & 0x7FFFFFFF, int(r.ts.timestamp() * 1000), r.value)
            for r in readings(results[0], results[0].start, results[0].start + DAY)
        ]
        raw = raw_rate(database, rows)
        print(f"Ingestion into {kind} (in-process telemetry.ingest, batches of 50,000)")
        line("seeding entities and devices", f"{seeding:.1f} s")
        line(
            f"{ingest_days} day(s): {sent:,} readings", f"{elapsed:.1f} s  ({rate:,.0f} readings/s)"
        )
        line("raw insert of one day's rows into a bare table", f"{raw:,.0f} rows/s")
        line("ingestion / raw", f"{rate / raw:.2f}")
        if sink.rejected:
            line("rejected", str(sink.rejected))
        database.dispose()
        return rate
    finally:
        if drop is not None:
            drop()  # type: ignore[operator]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=Size, default=Size.MEDIUM)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--ingest-days", type=int, default=2)
    parser.add_argument("--databases", default="sqlite,postgresql")
    parser.add_argument("--large", action="store_true", help="also build the large town")
    arguments = parser.parse_args()
    territories(arguments.large)
    start = datetime.now(UTC) - timedelta(days=arguments.days)
    results, generation = generate(arguments.size, arguments.days, start)
    conversion = materialise(results)
    total = sum(day.count for day in results)
    with_conversion = generation + total / conversion
    for kind in [k.strip() for k in arguments.databases.split(",") if k.strip()]:
        rate = ingest(kind, arguments.size, results, min(arguments.ingest_days, arguments.days))
        ingestion = total / rate
        line(
            f"{arguments.days} days: generation vs ingestion ({kind})",
            f"{generation:.1f} s vs {ingestion:.0f} s (estimated) → generation is "
            f"{ingestion / generation:.0f}× faster",
        )
        line(
            "  counting the conversion to Readings too",
            f"{with_conversion:.1f} s → {ingestion / with_conversion:.0f}× faster",
        )


if __name__ == "__main__":
    main()
