"""Map layers: named sources of GeoJSON features for the current viewport.

The web shell registers one layer per registry domain (street lighting, waste...). Other
domains add their own (open alarms, work orders, citizen requests) with `register_layer`;
the map page offers every registered layer and fetches the checked ones by bounding box.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from territoire.alarms import service as alarms
from territoire.alarms.models import Severity
from territoire.errors import invalid
from territoire.geo import BBox, bbox_of, parse_geometry
from territoire.registry import service as registry
from territoire.registry.types import Domain, domain_of, types_of
from territoire.requests import geocode
from territoire.telemetry import state as telemetry_state
from territoire.tenancy import service as tenancy
from territoire.web.i18n import N_
from territoire.web.labels import DOMAIN_COLOURS, DOMAIN_LABELS
from territoire.web.templating import entity_url

if TYPE_CHECKING:
    from territoire.registry.models import Entity

MAX_FEATURES_PER_LAYER = 5000


@dataclass(frozen=True)
class FeatureBatch:
    """Features found in a box, and how many there were in all (more than given if capped)."""

    features: list[dict[str, Any]]
    total: int


# (session, tenant id, bounding box, most features wanted) -> features
LayerSource = Callable[[Session, int, BBox, int], FeatureBatch]


@dataclass(frozen=True)
class MapLayer:
    key: str
    label: str  # an English message id, translated when shown
    colour: str
    source: LayerSource
    order: int = 100
    domain: Domain | None = None  # registry layers: offered only when the tenant has some
    shown_at_first: bool = True


_layers: dict[str, MapLayer] = {}


def register_layer(layer: MapLayer) -> None:
    _layers[layer.key] = layer


def registered_layers() -> list[MapLayer]:
    return sorted(_layers.values(), key=lambda layer: (layer.order, layer.key))


def offered_layers(session: Session, tenant_id: int) -> list[tuple[MapLayer, int | None]]:
    """The layers worth showing to a tenant, with their size when it is cheap to know."""
    per_domain: dict[Domain, int] = {}
    for entity_type, count in registry.count_by_type(session, tenant_id).items():
        domain = domain_of(entity_type)
        if domain is not None:
            per_domain[domain] = per_domain.get(domain, 0) + count
    offered: list[tuple[MapLayer, int | None]] = []
    for layer in registered_layers():
        if layer.domain is None:
            offered.append((layer, None))
        elif per_domain.get(layer.domain):
            offered.append((layer, per_domain[layer.domain]))
    return offered


def parse_layer_keys(text: str | None) -> list[MapLayer]:
    """Layers named in a comma-separated list; none named means all of them."""
    if not text:
        return registered_layers()
    chosen: list[MapLayer] = []
    for key in dict.fromkeys(part.strip() for part in text.split(",") if part.strip()):
        if key not in _layers:
            known = ", ".join(layer.key for layer in registered_layers())
            raise invalid("layers", f"unknown layer {key!r}; known layers: {known}")
        chosen.append(_layers[key])
    return chosen


def feature_collection(
    session: Session,
    tenant_id: int,
    bbox: BBox,
    layers: Iterable[MapLayer],
    label_type: Callable[[str], str],
) -> dict[str, Any]:
    """One FeatureCollection for several layers; `layers` tells each one's count and total."""
    features: list[dict[str, Any]] = []
    summary: dict[str, dict[str, int]] = {}
    for layer in layers:
        batch = layer.source(session, tenant_id, bbox, MAX_FEATURES_PER_LAYER)
        for feature in batch.features:
            properties = feature.setdefault("properties", {})
            properties["layer"] = layer.key
            properties["colour"] = layer.colour
            if "type" in properties:
                properties["typeLabel"] = label_type(properties["type"])
        features.extend(batch.features)
        summary[layer.key] = {"count": len(batch.features), "total": batch.total}
    return {"type": "FeatureCollection", "features": features, "layers": summary}


def communes_collection(session: Session, tenant_id: int) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "id": commune.insee_code,
                "geometry": commune.boundary,
                "properties": {"name": commune.name, "insee": commune.insee_code},
            }
            for commune in tenancy.list_communes(session, tenant_id)
            if commune.boundary is not None
        ],
    }


def _registry_source(domain: Domain) -> LayerSource:
    def source(session: Session, tenant_id: int, bbox: BBox, limit: int) -> FeatureBatch:
        where = registry.EntityFilter(domain=domain, bbox=bbox)
        features: list[dict[str, Any]] = []
        total = 0
        while len(features) < limit:
            size = min(registry.MAX_PAGE_SIZE, limit - len(features))
            page = registry.list_entities(
                session, tenant_id, where, limit=size, offset=len(features)
            )
            total = page.total
            features.extend(_entity_feature(entity) for entity in page.items)
            if len(page.items) < size:
                break
        return FeatureBatch(features, total)

    return source


def _entity_feature(entity: Entity) -> dict[str, Any]:
    return {
        "type": "Feature",
        "id": entity.urn,
        "geometry": entity.location,
        "properties": {
            "name": entity.name or entity.urn,
            "type": entity.type,
            "url": entity_url(entity.urn),
        },
    }


for _order, _domain in enumerate(Domain):
    register_layer(
        MapLayer(
            key=_domain.value,
            label=DOMAIN_LABELS[_domain],
            colour=DOMAIN_COLOURS[_domain],
            source=_registry_source(_domain),
            order=10 + _order,
            domain=_domain,
            # Devices mostly sit on the asset they measure: drawn at first they hide it.
            shown_at_first=_domain is not Domain.DEVICES,
        )
    )


# --- the territory map at scale: entity states, points or clusters ---------------------
#
# `/map/state` answers with compact JSON (arrays, short keys) for the viewport: every
# entity of the chosen domains with its state, as individual points when few enough are
# in view (or at street level), else as grid cells of `CELL_PIXELS` screen pixels with
# their count and worst state. See docs/decisions/0101-map-states-and-clusters.md.

# Ordered from best to worst: a cluster shows the worst state of its members.
STATES: tuple[str, ...] = ("normal", "silent", "warning", "minor", "major", "critical")
STATE_OF_SEVERITY: dict[Severity, int] = {
    Severity.WARNING: 2,
    Severity.MINOR: 3,
    Severity.MAJOR: 4,
    Severity.CRITICAL: 5,
}
SILENT = 1
# From calm to dark as the state worsens; white text on each keeps a 4.5:1 contrast
# (cluster badges). Alarm points also get a dark ring and a larger size, so that
# the state does not rest on colour alone.
STATE_COLOURS: dict[str, str] = {
    "normal": "#2e7d32",
    "silent": "#616161",
    "warning": "#8a6d00",
    "minor": "#bf4000",
    "major": "#c62828",
    "critical": "#4a0000",
}
STATE_LABELS: dict[str, str] = {
    "normal": N_("Working normally"),
    "silent": N_("Silent (no recent reading)"),
    "warning": N_("Warning"),
    "minor": N_("Minor"),
    "major": N_("Major"),
    "critical": N_("Critical"),
}

MAX_POINTS = 3000  # fewer in view: individual points at any zoom
POINTS_ZOOM = 16  # from this zoom on: points, up to HARD_MAX_POINTS
HARD_MAX_POINTS = 8000
CELL_PIXELS = 80
MAX_ZOOM = 22
MAX_URNS_IN_QUERY = 5000


@dataclass(frozen=True)
class MapQuery:
    bbox: BBox
    zoom: int
    domains: Sequence[Domain]
    commune_id: int | None = None
    states: frozenset[int] | None = None  # None: every state


def parse_zoom(text: str) -> int:
    if not text.strip().isdigit() or not 0 <= int(text) <= MAX_ZOOM:
        raise invalid("zoom", f"a whole number from 0 to {MAX_ZOOM}")
    return int(text)


def parse_states(text: str) -> frozenset[int] | None:
    """State names, comma-separated; none named means every state."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        return None
    unknown = [name for name in names if name not in STATES]
    if unknown:
        raise invalid("state", f"unknown state {unknown[0]!r}; one of {', '.join(STATES)}")
    return frozenset(STATES.index(name) for name in names)


def commune_id_of(session: Session, tenant_id: int, insee_code: str) -> int | None:
    if not insee_code:
        return None
    for commune in tenancy.list_communes(session, tenant_id):
        if commune.insee_code == insee_code:
            return commune.id
    raise invalid("commune", f"no commune {insee_code!r} in this collectivity")


def registry_domains(layers: Iterable[MapLayer]) -> list[Domain]:
    return [layer.domain for layer in layers if layer.domain is not None]


def entity_states(
    session: Session, tenant_id: int, now: datetime
) -> tuple[dict[str, int], set[str]]:
    """Alarm state (index in STATES) of the entities with an active alarm, and the
    silent ones. Both are small next to the registry: read for the whole tenant."""
    alarmed = {
        urn: STATE_OF_SEVERITY[severity]
        for urn, severity in alarms.active_severity_by_entity(session, tenant_id).items()
    }
    return alarmed, telemetry_state.silent_entities(session, tenant_id, now)


def map_state(
    session: Session,
    tenant_id: int,
    query: MapQuery,
    now: datetime,
    label_type: Callable[[str], str],
) -> dict[str, Any]:
    layer_keys = [domain.value for domain in query.domains]
    answer: dict[str, Any] = {"zoom": query.zoom, "states": list(STATES), "layers": layer_keys}
    if not query.domains:
        return {**answer, "mode": "points", "total": 0, "counts": {}, "types": [], "points": []}
    alarmed, silent = entity_states(session, tenant_id, now)
    where = registry.EntityFilter(
        types=[t for domain in query.domains for t in types_of(domain)],
        commune_id=query.commune_id,
        bbox=query.bbox,
    )
    urns = _urns_in_states(query.states, alarmed, silent)
    rows = registry.map_rows(session, tenant_id, where, urns=urns)
    states = [alarmed.get(urn, SILENT if urn in silent else 0) for urn in rows.urn]
    keep = [i for i, s in enumerate(states) if query.states is None or s in query.states]
    counts: dict[str, int] = {}
    for entity_type, count in Counter(rows.type[i] for i in keep).items():
        key = _domain_key(entity_type)
        counts[key] = counts.get(key, 0) + count
    answer.update(total=len(keep), counts=counts)
    if len(keep) <= MAX_POINTS or (query.zoom >= POINTS_ZOOM and len(keep) <= HARD_MAX_POINTS):
        return {**answer, **_points(session, tenant_id, rows, states, keep, label_type)}
    return {**answer, **_cells(query, rows, states, keep)}


def _urns_in_states(
    wanted: frozenset[int] | None, alarmed: dict[str, int], silent: set[str]
) -> set[str] | None:
    """When normal entities are not wanted, only the flagged ones need reading; past
    `MAX_URNS_IN_QUERY` (SQLite's limit on bound values is 32,766) everything in the box
    is read and the states are filtered after."""
    if wanted is None or 0 in wanted:
        return None
    urns = {urn for urn, s in alarmed.items() if s in wanted} | (
        silent - alarmed.keys() if SILENT in wanted else set()
    )
    return urns if len(urns) <= MAX_URNS_IN_QUERY else None


def _domain_key(entity_type: str) -> str:
    domain = domain_of(entity_type)
    return domain.value if domain is not None else ""


def _points(
    session: Session,
    tenant_id: int,
    rows: registry.MapRows,
    states: list[int],
    keep: list[int],
    label_type: Callable[[str], str],
) -> dict[str, Any]:
    """[urn, name, type index, lon, lat, state] per entity; lines and areas add their
    geometry so that streets stay drawn as streets."""
    types: list[str] = []
    type_index: dict[str, int] = {}
    shapes = registry.locations_of(
        session, tenant_id, [rows.urn[i] for i in keep if rows.extended[i]]
    )
    points: list[list[Any]] = []
    for i in keep:
        entity_type = rows.type[i]
        if entity_type not in type_index:
            type_index[entity_type] = len(types)
            types.append(entity_type)
        point: list[Any] = [
            rows.urn[i],
            rows.name[i] or "",
            type_index[entity_type],
            round(rows.lon[i], 6),
            round(rows.lat[i], 6),
            states[i],
        ]
        if rows.urn[i] in shapes:
            point.append(shapes[rows.urn[i]])
        points.append(point)
    return {
        "mode": "points",
        "types": [[t, _domain_key(t), label_type(t)] for t in types],
        "points": points,
    }


def cell_size(zoom: int, latitude: float) -> tuple[float, float]:
    """Degrees of longitude and latitude that make a cell of CELL_PIXELS at `zoom`
    (Web Mercator: a degree of latitude looks taller away from the equator)."""
    width = 360.0 / (256 * 2**zoom) * CELL_PIXELS
    return width, width * math.cos(math.radians(max(-85.0, min(85.0, latitude))))


def _cells(
    query: MapQuery, rows: registry.MapRows, states: list[int], keep: list[int]
) -> dict[str, Any]:
    """[lon, lat, count, worst state, flagged count] per occupied cell, placed at the
    mean position of its members (a cluster sits where its entities are)."""
    width, height = cell_size(query.zoom, (query.bbox[1] + query.bbox[3]) / 2)
    cells: dict[tuple[int, int], list[float]] = {}
    lon, lat = rows.lon, rows.lat
    for i in keep:
        key = (math.floor(lon[i] / width), math.floor(lat[i] / height))
        cell = cells.get(key)
        state = states[i]
        if cell is None:
            cells[key] = [lon[i], lat[i], 1, state, 1 if state else 0]
        else:
            cell[0] += lon[i]
            cell[1] += lat[i]
            cell[2] += 1
            cell[3] = max(cell[3], state)
            cell[4] += 1 if state else 0
    return {
        "mode": "cells",
        "cell": [width, height],
        "cells": [
            [round(c[0] / c[2], 5), round(c[1] / c[2], 5), int(c[2]), int(c[3]), int(c[4])]
            for c in cells.values()
        ],
    }


# --- search by name or address ---------------------------------------------------------

MAX_SEARCH_RESULTS = 8


def search(session: Session, tenant_id: int, text: str) -> list[dict[str, Any]]:
    """Entities whose name or identifier holds `text`, then the address it may be
    (streets and communes of the tenant, through the requests domain's geocoder)."""
    wanted = text.strip()
    if not wanted:
        raise invalid("q", "type a name or an address")
    if len(wanted) > 200:
        raise invalid("q", "at most 200 characters")
    results: list[dict[str, Any]] = []
    found = registry.list_entities(
        session,
        tenant_id,
        registry.EntityFilter(text=wanted, bbox=(-180.0, -90.0, 180.0, 90.0)),
        limit=MAX_SEARCH_RESULTS,
    )
    for entity in found.items:
        box = bbox_of(parse_geometry(entity.location, "location")) if entity.location else None
        if box is not None:
            results.append(
                {
                    "kind": "entity",
                    "label": entity.name or entity.urn,
                    "urn": entity.urn,
                    "type": entity.type,
                    "bbox": list(box),
                }
            )
    place = geocode.locate_address(session, tenant_id, wanted)
    if place is not None:
        results.append(_place_result(session, tenant_id, place))
    return results


def _place_result(session: Session, tenant_id: int, place: geocode.Place) -> dict[str, Any]:
    if place.lon is not None and place.lat is not None:
        box = [place.lon, place.lat, place.lon, place.lat]
    else:
        box = []
        for commune in tenancy.list_communes(session, tenant_id):
            if commune.id == place.commune_id and commune.boundary is not None:
                box = list(bbox_of(parse_geometry(commune.boundary, "boundary")))
    return {"kind": "address", "label": place.label, "bbox": box}
