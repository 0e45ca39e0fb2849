"""Page-shaped data for the web shell's templates, built from the domains' services.

Plain functions of a session and plain values (no FastAPI), so the routes stay thin
and this logic can be tested directly.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from sqlalchemy.orm import Session
from starlette.requests import Request

from territoire.alarms import service as alarms
from territoire.alarms.labels import SEVERITY_LABELS
from territoire.alarms.labels import STATUS_LABELS as ALARM_STATUS_LABELS
from territoire.config import Settings
from territoire.errors import invalid
from territoire.geo import parse_bbox
from territoire.http import LANGUAGE_COOKIE
from territoire.interventions import service as interventions
from territoire.interventions.labels import STATUS_LABELS as WORK_ORDER_STATUS_LABELS
from territoire.registry import service as registry
from territoire.registry.types import ENTITY_TYPES, Domain, domain_of
from territoire.telemetry import service as telemetry
from territoire.telemetry import state as telemetry_state
from territoire.tenancy import service as tenancy
from territoire.web import maplayers
from territoire.web.i18n import DISPLAY_ZONE, choose_language
from territoire.web.labels import DOMAIN_LABELS

if TYPE_CHECKING:
    from territoire.registry.models import Entity

PAGE_SIZE = 50
MAX_TEXT_LENGTH = 200


def query_string(params: dict[str, str]) -> str:
    return urlencode({key: value for key, value in params.items() if value})


def request_language(request: Request) -> str:
    settings: Settings = request.app.state.settings
    return choose_language(
        request.query_params.get("lang"),
        request.cookies.get(LANGUAGE_COOKIE),
        default=settings.default_language,
    )


def map_settings(settings: Settings) -> dict[str, str]:
    return {"tile_url": settings.tile_url, "tile_attribution": settings.tile_attribution}


# --- home ------------------------------------------------------------------------------


def home_data(session: Session, tenant_id: int) -> dict[str, Any]:
    counts = registry.count_by_type(session, tenant_id)
    domains: dict[Domain, dict[str, Any]] = {}
    for entity_type, count in counts.items():
        domain = domain_of(entity_type)
        if domain is None:
            continue
        entry = domains.setdefault(
            domain, {"key": domain.value, "label": DOMAIN_LABELS[domain], "total": 0, "types": []}
        )
        entry["total"] += count
        entry["types"].append({"type": entity_type, "count": count})
    communes = [
        {
            "insee_code": commune.insee_code,
            "name": commune.name,
            "population": commune.population,
            "entities": registry.list_entities(
                session, tenant_id, registry.EntityFilter(commune_id=commune.id), limit=1
            ).total,
        }
        for commune in tenancy.list_communes(session, tenant_id)
    ]
    return {
        "communes": communes,
        "domains": [domains[d] for d in Domain if d in domains],
        "entity_total": sum(counts.values()),
    }


# --- entity list -----------------------------------------------------------------------


@dataclass(frozen=True)
class EntityListFilters:
    type: str = ""
    commune: str = ""
    q: str = ""
    bbox: str = ""

    def params(self) -> dict[str, str]:
        return {key: value for key, value in asdict(self).items() if value}


def parse_page_number(text: str) -> int:
    if not text.strip().isdigit() or int(text) < 1:
        raise invalid("page", "a whole number from 1")
    return int(text)


def entity_filter(
    session: Session, tenant_id: int, filters: EntityListFilters
) -> registry.EntityFilter:
    """Turn the form's text values into a registry filter, refusing unknown values."""
    if filters.type and filters.type not in ENTITY_TYPES:
        raise invalid("type", f"unknown entity type {filters.type!r}")
    if len(filters.q) > MAX_TEXT_LENGTH:
        raise invalid("q", f"at most {MAX_TEXT_LENGTH} characters")
    commune_id = None
    if filters.commune:
        codes = {c.insee_code: c.id for c in tenancy.list_communes(session, tenant_id)}
        if filters.commune not in codes:
            raise invalid("commune", f"no commune {filters.commune!r} in this collectivity")
        commune_id = codes[filters.commune]
    return registry.EntityFilter(
        types=[filters.type] if filters.type else [],
        commune_id=commune_id,
        bbox=parse_bbox(filters.bbox) if filters.bbox else None,
        text=filters.q.strip() or None,
    )


def _form_options(session: Session, tenant_id: int) -> dict[str, Any]:
    counts = registry.count_by_type(session, tenant_id)
    return {
        "type_options": [{"type": t, "count": n} for t, n in sorted(counts.items())],
        "commune_options": [
            {"insee_code": c.insee_code, "name": c.name}
            for c in tenancy.list_communes(session, tenant_id)
        ],
    }


def entity_listing(
    session: Session, tenant_id: int, filters: EntityListFilters, page_text: str
) -> dict[str, Any]:
    number = parse_page_number(page_text)
    where = entity_filter(session, tenant_id, filters)
    found = registry.list_entities(
        session, tenant_id, where, limit=PAGE_SIZE, offset=(number - 1) * PAGE_SIZE
    )
    names = {c.id: c.name for c in tenancy.list_communes(session, tenant_id)}
    pages = max(1, math.ceil(found.total / PAGE_SIZE))
    return {
        **_form_options(session, tenant_id),
        "filters": filters,
        "entities": [
            {
                "urn": entity.urn,
                "name": entity.name,
                "type": entity.type,
                "commune": names.get(entity.commune_id) if entity.commune_id else None,
            }
            for entity in found.items
        ],
        "total": found.total,
        "page_number": number,
        "pages": pages,
        "previous_url": _page_url(filters, number - 1) if number > 1 else None,
        "next_url": _page_url(filters, number + 1) if number < pages else None,
        "error": None,
    }


def empty_listing(
    session: Session, tenant_id: int, filters: EntityListFilters, error: str
) -> dict[str, Any]:
    return {
        **_form_options(session, tenant_id),
        "filters": filters,
        "entities": [],
        "total": 0,
        "page_number": 1,
        "pages": 1,
        "previous_url": None,
        "next_url": None,
        "error": error,
    }


def _page_url(filters: EntityListFilters, number: int) -> str:
    params = filters.params()
    if number > 1:
        params["page"] = str(number)
    query = query_string(params)
    return "/entities" + (f"?{query}" if query else "")


# --- entity detail ---------------------------------------------------------------------


def entity_data(
    session: Session, tenant_id: int, entity: Entity, settings: Settings
) -> dict[str, Any]:
    commune = None
    if entity.commune_id is not None:
        commune = next(
            (c for c in tenancy.list_communes(session, tenant_id) if c.id == entity.commune_id),
            None,
        )
    relationships = [
        {"name": name, "targets": targets if isinstance(targets, list) else [targets]}
        for name, targets in sorted(entity.relationships.items())
    ]
    domain = domain_of(entity.type)
    return {
        "entity": entity,
        "domain_label": DOMAIN_LABELS[domain] if domain else None,
        "commune": commune,
        "properties": [
            {"name": name, "value": value} for name, value in sorted(entity.properties.items())
        ],
        "relationships": relationships,
        "point": _point_of(entity.location),
        "context_layers": ",".join(
            layer.key for layer in maplayers.registered_layers() if layer.shown_at_first
        ),
        **map_settings(settings),
    }


def _point_of(location: dict[str, Any] | None) -> tuple[float, float] | None:
    if location and location.get("type") == "Point":
        lon, lat = location["coordinates"][:2]
        return float(lon), float(lat)
    return None


# --- entity panel: latest values, charts, alarms, work orders --------------------------

MAX_SERIES_SHOWN = 24
MAX_ITEMS_SHOWN = 10

# Period shown -> (span, bucket). Hourly rollups for a day or a week, daily for a month.
CHART_PERIODS: dict[str, tuple[timedelta, str]] = {
    "day": (timedelta(days=1), "PT1H"),
    "week": (timedelta(days=7), "PT1H"),
    "month": (timedelta(days=30), "P1D"),
}


def entity_panel_data(
    session: Session, tenant_id: int, entity: Entity, now: datetime
) -> dict[str, Any]:
    """What the map's side panel and the asset page show beyond the registry's facts."""
    urn = entity.urn
    series, series_total = telemetry.list_series(
        session, tenant_id, entity=urn, limit=MAX_SERIES_SHOWN
    )
    alarm_page = alarms.list_alarms(
        session, tenant_id, alarms.AlarmFilter(entity_urn=urn), limit=MAX_ITEMS_SHOWN
    )
    orders = interventions.list_work_orders(
        session, tenant_id, interventions.WorkOrderFilter(entity_urn=urn), limit=MAX_ITEMS_SHOWN
    )
    last_seen = max((s.last_ts for s in series if s.last_ts is not None), default=None)
    silent_after = telemetry_state.silent_after(entity.type)
    return {
        "series": series,
        "series_total": series_total,
        "last_seen": last_seen,
        "silent": last_seen is not None and now - last_seen > silent_after,
        "silent_after_minutes": int(silent_after.total_seconds() // 60),
        "alarms": alarm_page.items,
        "alarm_total": alarm_page.total,
        "alarm_labels": {**SEVERITY_LABELS, **ALARM_STATUS_LABELS},
        "work_orders": orders.items,
        "work_order_total": orders.total,
        "work_order_labels": WORK_ORDER_STATUS_LABELS,
        "periods": list(CHART_PERIODS),
    }


def parse_period(text: str) -> str:
    if text not in CHART_PERIODS:
        raise invalid("period", f"one of {', '.join(CHART_PERIODS)}")
    return text


def series_chart_data(
    session: Session, tenant_id: int, urn: str, period: str, now: datetime
) -> dict[str, Any]:
    """Buckets of every series of an entity over the period ending now, from the
    rollups, as columns: t (epoch seconds of each bucket's start), avg, min, max."""
    span, bucket = CHART_PERIODS[parse_period(period)]
    registry.get_entity(session, tenant_id, urn)  # another tenant's entity: 404
    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - span
    series, _total = telemetry.list_series(session, tenant_id, entity=urn, limit=MAX_SERIES_SHOWN)
    charts = []
    for info in series:
        columns = telemetry.aggregate_columns(
            session, tenant_id, info.id, start, end, bucket, DISPLAY_ZONE
        )
        charts.append(
            {
                "id": info.id,
                "attribute": info.attribute,
                "unit": info.unit,
                "t": (columns.start // 1000).tolist(),
                "avg": [round(v, 4) for v in columns.avg().tolist()],
                "min": columns.min.tolist(),
                "max": columns.max.tolist(),
            }
        )
    return {
        "entity": urn,
        "period": period,
        "bucket": bucket,
        "from": start.isoformat(),
        "to": end.isoformat(),
        "series": charts,
    }
