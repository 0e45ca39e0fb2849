"""Rule evaluation benchmark: does evaluation keep up with ingestion?

    .venv/bin/python bench/rules.py            # medium territory, 2 simulated days
    .venv/bin/python bench/rules.py --quick    # small territory, 1 day, under a minute
    .venv/bin/python bench/rules.py --only sqlite

For SQLite and PostgreSQL, the same simulated territory is seeded in two tenants: one
without rules, one with the default rule set (31 rules). Each simulated hour of readings
goes through `telemetry.ingest` into both tenants, interleaved, and the rule timers run
for the second as of the end of that hour. Printed: readings/s through ingest without
rules, with rules (batch evaluation included), the time spent in timers, the ratio
with/without, how many times faster than real time the ruled tenant is ingested, and the
raw database rate for the same rows (executemany on SQLite, COPY on
PostgreSQL) measured in the same run. Uses a throw-away SQLite file and a throw-away
PostgreSQL database on 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, date, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

from territoire import events
from territoire.db import Database, migrate
from territoire.registry import service as registry
from territoire.rules import defaults, engine
from territoire.rules import service as rules
from territoire.simulator import service as simulation_service
from territoire.simulator.engine import Simulation
from territoire.simulator.sizes import Size
from territoire.telemetry import service as telemetry
from territoire.telemetry.records import Reading
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import TenantKind

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
START = date(2025, 11, 3)


def tenant(database: Database, slug: str, siren: str, simulation: Simulation) -> int:
    """The territory's entities (no devices: readings go in-process, and a device id
    belongs to one tenant only)."""
    with database.session() as session:
        created = tenancy.create_tenant(
            session, slug=slug, name=slug, siren=siren, kind=TenantKind.COMMUNE
        )
        locator = registry.commune_locator(session, created.id)
        drafts = simulation_service.entity_drafts(simulation.territory)
        registry.insert_entities(
            session, [registry.validated_row(d, created.id, locator) for d in drafts]
        )
        return created.id


def raw_rate(database: Database, batches: list[list[Reading]]) -> float:
    """Plain inserts of (series, ts, value) rows of the same batches, in the same database."""
    rows = [(i, r.ts, r.value) for batch in batches for i, r in enumerate(batch)]
    with database.engine.begin() as connection:
        connection.execute(text("CREATE TABLE bench_raw (s INTEGER, ts TIMESTAMP, v FLOAT)"))
    started = time.perf_counter()
    if database.dialect == "postgresql":
        raw = database.engine.raw_connection()
        try:
            cursor = raw.cursor()
            with cursor.copy("COPY bench_raw (s, ts, v) FROM STDIN") as copy:  # type: ignore[attr-defined]
                for row in rows:
                    copy.write_row(row)
            raw.commit()
        finally:
            raw.close()
    else:
        with database.engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO bench_raw VALUES (?, ?, ?)", rows)
    return len(rows) / (time.perf_counter() - started)


def run(url: str, size: Size, days: int) -> None:
    migrate.upgrade(url)
    database = Database(url)
    events.install_listeners()
    engine.forget_caches()
    telemetry.forget_caches()
    simulation = Simulation(101, size, START)
    plain = tenant(database, "bench-plain", "732829320", simulation)
    ruled = tenant(database, "bench-rules", "552100554", simulation)
    with database.session() as session:
        installed = rules.install_rules(session, ruled, defaults.default_rules(session, ruled))
    clock = simulation_service._Clock()
    seconds = {"plain": 0.0, "rules": 0.0, "timers": 0.0}
    count = 0
    batches: list[list[Reading]] = []
    for _ in range(days):
        day = simulation.next_day()
        for hour in range(24):
            first = day.start + hour * 3600
            batch = list(simulation_service.readings(day, first, first + 3600, clock))
            batches.append(batch)
            end = datetime.fromtimestamp(first + 3600, UTC)
            for name, tenant_id in (("plain", plain), ("rules", ruled)):
                started = time.perf_counter()
                result = telemetry.ingest(database, tenant_id, batch, source="bench", now=end)
                seconds[name] += time.perf_counter() - started
                assert result.stored == len(batch), result.reasons
            started = time.perf_counter()
            rules.run_timers(database, end)
            seconds["timers"] += time.perf_counter() - started
            count += len(batch)
    raw = raw_rate(database, batches)
    without = count / seconds["plain"]
    with_rules = count / seconds["rules"]
    overall = count / (seconds["rules"] + seconds["timers"])
    evaluation = seconds["rules"] - seconds["plain"]
    print(f"  {len(installed)} rules, {count:,} readings ({days} day(s) of {size.value}), "
          f"{len(batches)} hourly batches of ~{count // len(batches):,}")  # fmt: skip
    print(f"  raw {database.dialect} insert (same rows):  {raw:>10,.0f} readings/s")
    print(f"  ingest without rules:            {without:>10,.0f} readings/s  "
          f"({without / raw:.2f} × raw)")  # fmt: skip
    ratio = f"{with_rules / without:.2f} × without rules, {with_rules / raw:.2f} × raw"
    print(f"  ingest with rules (batch eval):  {with_rules:>10,.0f} readings/s  ({ratio})")
    print(f"  … and timers (hourly):           {overall:>10,.0f} readings/s  "
          f"(timers {seconds['timers']:.1f} s in all, "
          f"{1000 * seconds['timers'] / len(batches):.0f} ms per run)")  # fmt: skip
    print(f"  evaluation alone:                {count / max(evaluation, 1e-9):>10,.0f} "
          f"readings/s ({1000 * evaluation / len(batches):.0f} ms per hourly batch)")  # fmt: skip
    # Keeping up: the simulated hours against the time spent ingesting them with rules.
    real_time = days * 86_400 / (seconds["rules"] + seconds["timers"])
    print(f"  ingest + rules + timers run {real_time:,.0f} × faster than real time")
    database.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small territory, one day")
    parser.add_argument("--days", type=int, default=None, help="simulated days")
    parser.add_argument("--only", default="sqlite,postgresql", help="sqlite and/or postgresql")
    options = parser.parse_args()
    size = Size.SMALL if options.quick else Size.MEDIUM
    days = options.days or (1 if options.quick else 2)
    chosen = options.only.split(",")
    if "sqlite" in chosen:
        with tempfile.TemporaryDirectory() as folder:
            print("SQLite")
            run(f"sqlite:///{Path(folder) / 'bench.db'}", size, days)
    if "postgresql" in chosen:
        name = f"territoire_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        try:
            print("PostgreSQL")
            run(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", size, days)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
