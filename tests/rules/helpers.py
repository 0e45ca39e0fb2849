"""Hand-made territories and series for the rules tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from territoire.alarms import service as alarms
from territoire.alarms.models import Alarm
from territoire.db import Database
from territoire.registry import service as registry
from territoire.rules import service as rules
from territoire.telemetry import service as telemetry
from territoire.telemetry.records import Reading

# A Monday in January (heating season, long nights), well inside the raw retention period.
BASE = datetime(2026, 1, 12, tzinfo=UTC)
QUARTER = timedelta(minutes=15)
CABINET = "urn:ngsi-ld:StreetlightControlCabinet:c1"
LAMPS = [f"urn:ngsi-ld:Streetlight:l{i}" for i in range(10)]
NOMINAL = 40.0


def at(hours: float) -> datetime:
    return BASE + timedelta(hours=hours)


def entity(
    database: Database,
    tenant_id: int,
    urn: str,
    properties: dict[str, Any] | None = None,
    relationships: dict[str, Any] | None = None,
) -> None:
    kind = urn.split(":")[2]
    with database.session() as session:
        registry.create_entity(
            session,
            tenant_id,
            registry.EntityDraft(
                type=kind, id=urn, properties=properties or {}, relationships=relationships or {}
            ),
        )


def lighting(database: Database, tenant_id: int) -> None:
    entity(database, tenant_id, CABINET)
    for lamp in LAMPS:
        entity(
            database,
            tenant_id,
            lamp,
            {"nominalPower": NOMINAL},
            {"refStreetlightControlCabinet": CABINET},
        )


def rule(
    database: Database,
    tenant_id: int,
    key: str,
    definition: dict[str, Any],
    *,
    severity: str = "major",
    scope: dict[str, Any] | None = None,
) -> str:
    with database.session() as session:
        created = rules.create_rule(
            session,
            tenant_id,
            rules.RuleDraft(
                name=key, key=key, definition=definition, severity=severity, scope=scope
            ),
        )
        return created.public_id


def send(database: Database, tenant_id: int, readings: Iterable[Reading]) -> None:
    batch = list(readings)
    result = telemetry.ingest(database, tenant_id, batch, source="test")
    assert result.rejected == 0, result.reasons
    assert result.stored == len(batch)


def send_hourly(database: Database, tenant_id: int, readings: Iterable[Reading]) -> None:
    """In batches of one hour, time ordered, as a gateway would send them."""
    by_hour: dict[datetime, list[Reading]] = {}
    for reading in readings:
        by_hour.setdefault(reading.ts.replace(minute=0, second=0), []).append(reading)
    for hour in sorted(by_hour):
        send(database, tenant_id, by_hour[hour])


def alarms_of(database: Database, tenant_id: int, rule_key: str | None = None) -> list[Alarm]:
    with database.session() as session:
        page = alarms.list_alarms(
            session, tenant_id, alarms.AlarmFilter(rule_key=rule_key), limit=500
        )
        return sorted(page.items, key=lambda a: (a.raised_at, a.entity_urn))


def night(hours: float) -> bool:
    """Lamps are commanded on from 17:00 to 07:00 UTC in these tests."""
    hour = (BASE + timedelta(hours=hours)).hour
    return hour >= 17 or hour < 7


def lamp_readings(
    hours: float, power: Any, *, lamps: list[str] = LAMPS, start: float = 0.0
) -> list[Reading]:
    """Cabinet commands and lamp powers every quarter hour from `start` for `hours`;
    `power(lamp, hour, commanded_on)` gives each lamp's watts."""
    found: list[Reading] = []
    steps = int(hours * 4)
    for step in range(steps):
        moment = start + step / 4
        ts = at(moment)
        on = night(moment)
        found.append(Reading(CABINET, "illuminanceLevel", ts, 1.0 if on else 0.0))
        for index, lamp in enumerate(lamps):
            # Lamps report a few minutes after the cabinet, as their own phases would.
            found.append(
                Reading(
                    lamp,
                    "powerConsumption",
                    ts + timedelta(minutes=1 + index % 10),
                    float(power(lamp, moment, on)),
                )
            )
    return found


def healthy(lamp: str, hour: float, on: bool) -> float:
    return NOMINAL if on else 0.4
