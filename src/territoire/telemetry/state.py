"""Whether an entity still reports: the last reading time of each entity, and silence.

Read only through `service.latest_columns`, so that where last values are kept (the
series table or a narrower last-value table) stays the service's business.

An entity is *silent* when its most recent reading, over all its series, is older than
three times the usual reporting interval of its domain (15 minutes for most sensors,
an hour for waste containers, air stations and devices). An entity that never reported
has no expectation and is not silent: the map shows it as normal.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from territoire.registry.types import Domain, domain_of
from territoire.telemetry import service

QUARTER_HOUR = timedelta(minutes=15)
HOUR = timedelta(hours=1)
MISSED_REPORTS = 3

USUAL_INTERVAL: dict[Domain, timedelta] = {
    Domain.LIGHTING: QUARTER_HOUR,
    Domain.WATER: QUARTER_HOUR,
    Domain.WASTE: HOUR,
    Domain.PARKING: QUARTER_HOUR,
    Domain.BUILDINGS: QUARTER_HOUR,
    Domain.AIR: HOUR,
    Domain.WEATHER: QUARTER_HOUR,
    Domain.MOBILITY: QUARTER_HOUR,
    Domain.DEVICES: HOUR,
    Domain.PLACES: HOUR,
}


def silent_after(entity_type: str) -> timedelta:
    """How long without a reading before an entity of this type counts as silent."""
    domain = domain_of(entity_type)
    return MISSED_REPORTS * (USUAL_INTERVAL[domain] if domain is not None else HOUR)


def last_seen_ms(session: Session, tenant_id: int) -> dict[str, int]:
    """Epoch milliseconds of each entity's most recent reading, over all its series."""
    columns = service.latest_columns(session, tenant_id)
    seen: dict[str, int] = {}
    for entity, ms in zip(columns.entity, columns.ts, strict=True):
        if ms is not None and ms > seen.get(entity, -1):
            seen[entity] = ms
    return seen


def silent_entities(session: Session, tenant_id: int, now: datetime) -> set[str]:
    """URNs of the entities whose last reading is overdue at `now`."""
    now_ms = int(now.timestamp() * 1000)
    limits: dict[str, int] = {}
    silent: set[str] = set()
    for urn, ms in last_seen_ms(session, tenant_id).items():
        entity_type = type_of(urn)
        limit = limits.get(entity_type)
        if limit is None:
            limit = limits[entity_type] = int(silent_after(entity_type).total_seconds() * 1000)
        if now_ms - ms > limit:
            silent.add(urn)
    return silent


def type_of(urn: str) -> str:
    """The type named in an NGSI-LD URN (urn:ngsi-ld:<Type>:<id>)."""
    parts = urn.split(":", 3)
    return parts[2] if len(parts) == 4 else ""
