"""Alarm benchmark: how fast the alarm service takes a rules engine's signals, against the
raw database rate for rows of the same shape, measured in the same run.

    .venv/bin/python bench/alarms.py            # 5,000 entities
    .venv/bin/python bench/alarms.py --quick    # 1,000 entities, under a minute

For SQLite and PostgreSQL: a storm of new alarms (one per entity), the same signals again
as repeats, then the conditions clearing; each in transactions of BATCH signals, as a
rules engine evaluating a batch of observations would, once calling the service per
signal (`raise_alarm`) and once per batch (`raise_alarms`). The raw rate is a plain
executemany INSERT (new), UPDATE by key (repeat) and UPDATE (clear) of as many rows of a
table shaped like `alarm`, in the same batches. Also: the console's first page and the
KPIs of the period with every alarm in it. Uses a throw-away SQLite file and a
throw-away PostgreSQL database on 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

from territoire.alarms import service as alarms
from territoire.alarms.models import Severity
from territoire.db import Database, migrate
from territoire.db.base import utcnow
from territoire.interventions import kpis
from territoire.registry import service as registry
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import TenantKind

PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BATCH = 200
RAW_TABLE = """CREATE TABLE bench_raw (
    id INTEGER PRIMARY KEY, tenant_id INTEGER, public_id VARCHAR(36), rule_key VARCHAR(100),
    entity_urn VARCHAR(255), severity VARCHAR(32), status VARCHAR(32), message VARCHAR(500),
    occurrences INTEGER, raised_at VARCHAR(40), last_seen_at VARCHAR(40), cleared_at VARCHAR(40)
)"""


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("inf")


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def prepare(url: str, entities: int) -> tuple[Database, int, list[str]]:
    migrate.upgrade(url)
    database = Database(url)
    with database.session() as session:
        tenant = tenancy.create_tenant(
            session, slug="bench", name="Bench", siren="130025265", kind=TenantKind.COMMUNE
        )
        locator = registry.commune_locator(session, tenant.id)
        urns = [f"urn:ngsi-ld:Streetlight:bench-{i:06d}" for i in range(entities)]
        rows = [
            registry.validated_row(
                registry.EntityDraft(
                    type="Streetlight",
                    id=urn,
                    location={"type": "Point", "coordinates": [5.0 + i * 1e-5, 47.0]},
                ),
                tenant.id,
                locator,
            )
            for i, urn in enumerate(urns)
        ]
        registry.insert_entities(session, rows)
        return database, tenant.id, urns


def in_batches(
    database: Database, items: list[str], step: Callable[[object, str], object]
) -> float:
    def run() -> None:
        for start in range(0, len(items), BATCH):
            with database.session() as session:
                for item in items[start : start + BATCH]:
                    step(session, item)

    return timed(run)


def service_rates(database: Database, tenant_id: int, urns: list[str]) -> dict[str, float]:
    """Per-signal calls (`raise_alarm`) for rule A, whole batches (`raise_alarms`) for
    rule B, on the same entities."""
    base = utcnow() - timedelta(hours=2)

    def signal(rule: str, urn: str, minutes: int) -> alarms.AlarmSignal:
        moment = base + timedelta(minutes=minutes)
        return alarms.AlarmSignal(rule, urn, Severity.MAJOR, "Lamp out", moment, 1.0)

    def one_by_one(minutes: int) -> float:
        def step(session: Any, urn: str) -> None:
            alarms.raise_alarm(session, tenant_id, signal("rule_a", urn, minutes))

        return in_batches(database, urns, step)

    def batched(minutes: int) -> float:
        def run() -> None:
            for start in range(0, len(urns), BATCH):
                batch = [signal("rule_b", urn, minutes) for urn in urns[start : start + BATCH]]
                with database.session() as session:
                    alarms.raise_alarms(session, tenant_id, batch)

        return timed(run)

    def clear_batched(rule: str) -> float:
        def run() -> None:
            for start in range(0, len(urns), BATCH):
                keys = [(rule, urn) for urn in urns[start : start + BATCH]]
                with database.session() as session:
                    alarms.clear_alarm_conditions(
                        session, tenant_id, keys, base + timedelta(minutes=30)
                    )

        return timed(run)

    count = len(urns)
    figures = {
        "new": rate(count, one_by_one(0)),
        "repeat": rate(count, one_by_one(5)),
        "new_batch": rate(count, batched(0)),
        "repeat_batch": rate(count, batched(5)),
    }
    page_times = []
    for _ in range(20):
        with database.session() as session:
            where = alarms.AlarmFilter(top_level=True)
            page_times.append(
                timed(lambda s=session, w=where: alarms.list_alarms(s, tenant_id, w, limit=50))
            )
    figures["page_ms"] = 1000 * statistics.median(page_times)
    with database.session() as session:
        query = kpis.KpiQuery(tenant_id, base - timedelta(days=1), utcnow())
        figures["kpi_ms"] = 1000 * timed(lambda: kpis.compute(session, query))

    def clear_one(session: Any, urn: str) -> None:
        alarms.clear_alarm_condition(
            session, tenant_id, "rule_a", urn, base + timedelta(minutes=30)
        )

    figures["clear"] = rate(count, in_batches(database, urns, clear_one))
    figures["clear_batch"] = rate(count, clear_batched("rule_b"))
    return figures


def raw_rates(database: Database, count: int) -> dict[str, float]:
    now = utcnow().isoformat()
    with database.engine.begin() as connection:
        connection.execute(text("DROP TABLE IF EXISTS bench_raw"))
        connection.execute(text(RAW_TABLE))
    rows = [
        {
            "id": i,
            "tenant_id": 1,
            "public_id": str(uuid.uuid4()),
            "rule_key": "lamp_out",
            "entity_urn": f"urn:ngsi-ld:Streetlight:bench-{i:06d}",
            "severity": "major",
            "status": "active_unacknowledged",
            "message": "Lamp out",
            "occurrences": 1,
            "raised_at": now,
            "last_seen_at": now,
            "cleared_at": None,
        }
        for i in range(count)
    ]
    insert = text(
        "INSERT INTO bench_raw VALUES (:id, :tenant_id, :public_id, :rule_key, :entity_urn, "
        ":severity, :status, :message, :occurrences, :raised_at, :last_seen_at, :cleared_at)"
    )
    repeat = text(
        "UPDATE bench_raw SET occurrences = occurrences + 1, last_seen_at = :now WHERE id = :id"
    )
    clear = text("UPDATE bench_raw SET status = 'cleared', cleared_at = :now WHERE id = :id")

    def batched(statement: object, params: list[dict[str, object]]) -> float:
        def run() -> None:
            for start in range(0, len(params), BATCH):
                with database.engine.begin() as connection:
                    connection.execute(statement, params[start : start + BATCH])  # type: ignore[call-overload]

        return timed(run)

    keys = [{"id": i, "now": now} for i in range(count)]
    return {
        "new": rate(count, batched(insert, rows)),
        "repeat": rate(count, batched(repeat, keys)),
        "clear": rate(count, batched(clear, keys)),
    }


def report(name: str, entities: int, ours: dict[str, float], raw: dict[str, float]) -> None:
    print(f"\n{name} — {entities:,} entities, transactions of {BATCH} signals")
    print(f"{'':14}{'one by one':>14}{'batch':>14}{'raw SQL':>14}{'ratios':>16}")
    for key, label in (("new", "new alarms"), ("repeat", "repeats"), ("clear", "clears")):
        single, batch = ours[key], ours[f"{key}_batch"]
        ratios = f"{single / raw[key]:.3f} / {batch / raw[key]:.3f}"
        print(f"{label:14}{single:>12,.0f}/s{batch:>12,.0f}/s{raw[key]:>12,.0f}/s{ratios:>16}")
    print(
        f"{'console page':14}{ours['page_ms']:>12.1f} ms "
        f"(first 50 of {entities:,} active, median of 20)"
    )
    print(
        f"{'KPIs':14}{ours['kpi_ms']:>12.1f} ms (every KPI of the period, {2 * entities:,} alarms)"
    )


def run_sqlite(entities: int) -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'bench.db'}"
        database, tenant_id, urns = prepare(url, entities)
        ours = service_rates(database, tenant_id, urns)
        raw = raw_rates(database, entities)
        database.dispose()
    report("SQLite", entities, ours, raw)


def run_postgres(entities: int) -> None:
    name = f"territoire_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        database, tenant_id, urns = prepare(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}", entities)
        ours = service_rates(database, tenant_id, urns)
        raw = raw_rates(database, entities)
        database.dispose()
        report("PostgreSQL", entities, ours, raw)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1,000 entities instead of 5,000")
    parser.add_argument("--skip-postgres", action="store_true")
    options = parser.parse_args()
    entities = 1000 if options.quick else 5000
    run_sqlite(entities)
    if not options.skip_postgres:
        run_postgres(entities)


if __name__ == "__main__":
    main()
