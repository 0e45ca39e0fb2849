"""Shared helpers of the telemetry tests: entities to measure, readings, counts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from territoire.db import Database
from territoire.registry import service as registry
from territoire.telemetry.records import Reading


def entities(
    database: Database, tenant_id: int, count: int, kind: str = "Streetlight"
) -> list[str]:
    urns = [f"urn:ngsi-ld:{kind}:t{tenant_id}-{i}" for i in range(count)]
    with database.session() as session:
        for urn in urns:
            registry.create_entity(session, tenant_id, registry.EntityDraft(type=kind, id=urn))
    return urns


def hour_ago(minutes: int = 0) -> datetime:
    base = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=12)
    return base + timedelta(minutes=minutes)


def readings(
    entity: str, start: datetime, count: int, step: timedelta, attribute: str = "powerConsumption"
) -> list[Reading]:
    return [Reading(entity, attribute, start + i * step, float(i), "WTT") for i in range(count)]


def count_rows(database: Database, table: str = "observation") -> int:
    with database.engine.connect() as connection:
        return int(connection.execute(text(f"SELECT count(*) FROM {table}")).scalar_one())
