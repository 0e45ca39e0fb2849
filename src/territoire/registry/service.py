"""Registry services: create, read, update, delete, list and bulk-insert entities."""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from sqlalchemy import (
    Boolean,
    ColumnElement,
    and_,
    column,
    delete,
    func,
    insert,
    or_,
    select,
    table,
)
from sqlalchemy.orm import Session

from territoire.db.base import utcnow
from territoire.errors import AlreadyExists, NotFound, invalid
from territoire.geo import AreaLocator, BBox, bbox_of, parse_geometry
from territoire.registry.models import Entity
from territoire.registry.types import ENTITY_TYPES, Domain, types_of
from territoire.tenancy import service as tenancy

URN_PATTERN = re.compile(r"^urn:ngsi-ld:([A-Za-z][A-Za-z0-9_]{0,99}):([A-Za-z0-9\-_.:~%@]{1,150})$")
ATTRIBUTE_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,99}$")
MAX_PROPERTIES_BYTES = 64 * 1024
MAX_PAGE_SIZE = 1000

_rtree = table(
    "entity_rtree", column("id"), column("min_x"), column("max_x"), column("min_y"), column("max_y")
)


@dataclass
class EntityDraft:
    """What a caller gives to create an entity; `id` is generated when absent."""

    type: str
    id: str | None = None
    name: str | None = None
    properties: dict[str, Any] = field(default_factory=dict)
    relationships: dict[str, Any] = field(default_factory=dict)
    location: dict[str, Any] | None = None


@dataclass
class EntityFilter:
    types: Sequence[str] = ()
    domain: Domain | None = None
    commune_id: int | None = None
    bbox: BBox | None = None
    text: str | None = None


@dataclass
class Page:
    items: list[Entity]
    total: int
    limit: int
    offset: int


# --- validation ----------------------------------------------------------------------


def new_urn(entity_type: str) -> str:
    return f"urn:ngsi-ld:{entity_type}:{uuid.uuid4()}"


def check_type(entity_type: str, field_name: str = "type") -> None:
    if entity_type not in ENTITY_TYPES:
        raise invalid(
            field_name,
            f"unknown entity type {entity_type!r}; use a Smart Data Model name such as "
            "Streetlight, WasteContainer or ParkingSpot (GET /api/v1/entity-types lists them)",
        )


def check_urn(urn: str, entity_type: str) -> None:
    match = URN_PATTERN.match(urn)
    if not match:
        raise invalid("id", "an entity id is urn:ngsi-ld:<Type>:<local id>")
    if match.group(1) != entity_type:
        raise invalid("id", f"the type in the id ({match.group(1)}) differs from {entity_type}")


def check_properties(properties: Any) -> dict[str, Any]:
    if not isinstance(properties, dict):
        raise invalid("properties", "must be a JSON object")
    for key in properties:
        if not ATTRIBUTE_PATTERN.match(key):
            raise invalid(f"properties.{key}", "attribute names are letters, digits and _")
    if len(orjson.dumps(properties)) > MAX_PROPERTIES_BYTES:
        raise invalid("properties", f"larger than {MAX_PROPERTIES_BYTES} bytes")
    return properties


def check_relationships(relationships: Any) -> dict[str, Any]:
    if not isinstance(relationships, dict):
        raise invalid("relationships", "must be a JSON object")
    for key, target in relationships.items():
        if not ATTRIBUTE_PATTERN.match(key):
            raise invalid(f"relationships.{key}", "names are letters, digits and _")
        targets = target if isinstance(target, list) else [target]
        for value in targets:
            if not isinstance(value, str) or not URN_PATTERN.match(value):
                raise invalid(f"relationships.{key}", "targets are urn:ngsi-ld:<Type>:<id>")
    return relationships


def check_name(name: Any) -> str | None:
    if name is None:
        return None
    if not isinstance(name, str) or len(name) > 200:
        raise invalid("name", "a text of at most 200 characters")
    return name.strip() or None


def _spatial_columns(location: dict[str, Any] | None, locator: AreaLocator) -> dict[str, Any]:
    if location is None:
        return {
            "location": None,
            "min_lon": None,
            "min_lat": None,
            "max_lon": None,
            "max_lat": None,
            "commune_id": None,
        }
    geom = parse_geometry(location, "location")
    min_lon, min_lat, max_lon, max_lat = bbox_of(geom)
    return {
        "location": location,
        "min_lon": min_lon,
        "min_lat": min_lat,
        "max_lon": max_lon,
        "max_lat": max_lat,
        "commune_id": locator.locate(geom),
    }


def commune_locator(session: Session, tenant_id: int) -> AreaLocator:
    return AreaLocator(
        (commune.id, commune.boundary)
        for commune in tenancy.list_communes(session, tenant_id)
        if commune.boundary is not None
    )


def validated_row(draft: EntityDraft, tenant_id: int, locator: AreaLocator) -> dict[str, Any]:
    """Check a draft and turn it into the column values of a new entity row."""
    check_type(draft.type)
    urn = draft.id or new_urn(draft.type)
    check_urn(urn, draft.type)
    now = utcnow()
    return {
        "tenant_id": tenant_id,
        "urn": urn,
        "type": draft.type,
        "name": check_name(draft.name),
        "properties": check_properties(draft.properties),
        "relationships": check_relationships(draft.relationships),
        "created_at": now,
        "modified_at": now,
        **_spatial_columns(draft.location, locator),
    }


# --- commands ------------------------------------------------------------------------


def _urn_taken(session: Session, tenant_id: int, urn: str) -> bool:
    found = session.scalar(
        select(Entity.id).where(Entity.tenant_id == tenant_id, Entity.urn == urn)
    )
    return found is not None


def create_entity(
    session: Session, tenant_id: int, draft: EntityDraft, locator: AreaLocator | None = None
) -> Entity:
    row = validated_row(draft, tenant_id, locator or commune_locator(session, tenant_id))
    if _urn_taken(session, tenant_id, row["urn"]):
        raise AlreadyExists(f"entity {row['urn']} already exists")
    entity = Entity(**row)
    session.add(entity)
    session.flush()
    return entity


def insert_entities(session: Session, rows: Sequence[dict[str, Any]]) -> int:
    """Insert already-validated rows in one statement batch (imports, demo seeding)."""
    if rows:
        session.execute(insert(Entity), list(rows))
    return len(rows)


def existing_urns(session: Session, tenant_id: int, urns: Iterable[str]) -> set[str]:
    wanted = list(urns)
    found: set[str] = set()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        found.update(
            session.scalars(
                select(Entity.urn).where(Entity.tenant_id == tenant_id, Entity.urn.in_(chunk))
            )
        )
    return found


def get_entity(session: Session, tenant_id: int, urn: str) -> Entity:
    entity = session.scalar(select(Entity).where(Entity.tenant_id == tenant_id, Entity.urn == urn))
    if entity is None:
        raise NotFound(f"no entity {urn}")
    return entity


def update_entity(session: Session, tenant_id: int, urn: str, changes: dict[str, Any]) -> Entity:
    """Apply a partial update. `properties` is merged key by key (null removes a key);
    `name`, `relationships` and `location` are replaced when given."""
    entity = get_entity(session, tenant_id, urn)
    unknown = set(changes) - {"name", "properties", "relationships", "location"}
    if unknown:
        raise invalid(sorted(unknown)[0], "not an updatable field")
    if "name" in changes:
        entity.name = check_name(changes["name"])
    if "properties" in changes:
        merged = dict(entity.properties)
        for key, value in check_properties(changes["properties"]).items():
            if value is None:
                merged.pop(key, None)
            else:
                merged[key] = value
        entity.properties = check_properties(merged)
    if "relationships" in changes:
        entity.relationships = check_relationships(changes["relationships"])
    if "location" in changes:
        spatial = _spatial_columns(changes["location"], commune_locator(session, tenant_id))
        for key, value in spatial.items():
            setattr(entity, key, value)
    entity.modified_at = utcnow()
    session.flush()
    return entity


def delete_entity(session: Session, tenant_id: int, urn: str) -> None:
    entity = get_entity(session, tenant_id, urn)
    session.execute(delete(Entity).where(Entity.id == entity.id))


# --- queries -------------------------------------------------------------------------


def bbox_clause(session: Session, bbox: BBox) -> ColumnElement[bool]:
    """Entities whose bounding box intersects `bbox`, through the dialect's spatial index."""
    min_x, min_y, max_x, max_y = bbox
    if session.get_bind().dialect.name == "sqlite":
        hits = select(_rtree.c.id).where(
            _rtree.c.max_x >= min_x,
            _rtree.c.min_x <= max_x,
            _rtree.c.max_y >= min_y,
            _rtree.c.min_y <= max_y,
        )
        return Entity.id.in_(hits)
    entity_box = func.box(
        func.point(Entity.min_lon, Entity.min_lat), func.point(Entity.max_lon, Entity.max_lat)
    )
    query_box = func.box(func.point(min_x, min_y), func.point(max_x, max_y))
    return entity_box.op("&&", return_type=Boolean)(query_box)


def _filter_clauses(session: Session, tenant_id: int, where: EntityFilter) -> list[Any]:
    clauses: list[Any] = [Entity.tenant_id == tenant_id]
    if where.types:
        for entity_type in where.types:
            check_type(entity_type)
        clauses.append(Entity.type.in_(list(where.types)))
    if where.domain is not None:
        clauses.append(Entity.type.in_(types_of(where.domain)))
    if where.commune_id is not None:
        clauses.append(Entity.commune_id == where.commune_id)
    if where.bbox is not None:
        clauses.append(bbox_clause(session, where.bbox))
    if where.text:
        pattern = "%" + where.text.lower().replace("%", r"\%").replace("_", r"\_") + "%"
        clauses.append(
            or_(
                func.lower(Entity.name).like(pattern, escape="\\"),
                func.lower(Entity.urn).like(pattern, escape="\\"),
            )
        )
    return clauses


def list_entities(
    session: Session, tenant_id: int, where: EntityFilter, *, limit: int = 100, offset: int = 0
) -> Page:
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise invalid("limit", f"between 1 and {MAX_PAGE_SIZE}")
    if offset < 0:
        raise invalid("offset", "must not be negative")
    condition = and_(*_filter_clauses(session, tenant_id, where))
    total = session.scalar(select(func.count()).select_from(Entity).where(condition)) or 0
    items = session.scalars(
        select(Entity).where(condition).order_by(Entity.id).limit(limit).offset(offset)
    )
    return Page(items=list(items), total=int(total), limit=limit, offset=offset)


def count_by_type(session: Session, tenant_id: int) -> dict[str, int]:
    rows = session.execute(
        select(Entity.type, func.count())
        .where(Entity.tenant_id == tenant_id)
        .group_by(Entity.type)
        .order_by(Entity.type)
    )
    return {entity_type: int(count) for entity_type, count in rows}


def commune_code_by_id(session: Session, tenant_id: int) -> dict[int, str]:
    return {c.id: c.insee_code for c in tenancy.list_communes(session, tenant_id)}


# --- light reads for the map -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MapRows:
    """Located entities as parallel columns (the map reads tens of thousands at once).

    `lon`/`lat` are the middle of each entity's bounding box; `extended` is true when
    the entity is a line or an area rather than a point (its geometry is then worth
    drawing, see `locations_of`)."""

    urn: list[str]
    name: list[str | None]
    type: list[str]
    lon: list[float]
    lat: list[float]
    extended: list[bool]

    def __len__(self) -> int:
        return len(self.urn)


def map_rows(
    session: Session,
    tenant_id: int,
    where: EntityFilter,
    *,
    urns: Collection[str] | None = None,
    limit: int | None = None,
) -> MapRows:
    """Urn, name, type and middle point of the located entities matching `where` (and
    among `urns` when given), without loading whole rows: no properties, no geometry."""
    box, where = where.bbox, replace(where, bbox=None)
    clauses = [*_filter_clauses(session, tenant_id, where), Entity.min_lon.is_not(None)]
    if box is not None:
        clauses.append(_map_bbox_clause(session, box))
    if urns is not None:
        if not urns:
            return MapRows([], [], [], [], [], [])
        clauses.append(Entity.urn.in_(sorted(urns)))
    query = select(
        Entity.urn,
        Entity.name,
        Entity.type,
        Entity.min_lon,
        Entity.min_lat,
        Entity.max_lon,
        Entity.max_lat,
    ).where(*clauses)
    if limit is not None:
        query = query.order_by(Entity.id).limit(limit)
    # Core rows through the session's connection: no ORM row processing for 50,000 rows.
    rows = session.connection().execute(query).all()
    if not rows:
        return MapRows([], [], [], [], [], [])
    urn, name, types, min_lon, min_lat, max_lon, max_lat = (
        list(c) for c in zip(*rows, strict=True)
    )
    return MapRows(
        urn=urn,
        name=name,
        type=types,
        lon=[(low + high) / 2 for low, high in zip(min_lon, max_lon, strict=True)],
        lat=[(low + high) / 2 for low, high in zip(min_lat, max_lat, strict=True)],
        extended=[
            x0 != x1 or y0 != y1
            for x0, x1, y0, y1 in zip(min_lon, max_lon, min_lat, max_lat, strict=True)
        ],
    )


def _map_bbox_clause(session: Session, bbox: BBox) -> ColumnElement[bool]:
    """On SQLite, compare the bounding box columns directly: the map's boxes often hold
    most of a tenant's entities, and then reading the (tenant, type) index and filtering
    is several times faster than gathering ids from the R*Tree (1.2 s against 0.14 s for
    50,000 entities); a street-level box costs a few tens of milliseconds either way."""
    if session.get_bind().dialect.name != "sqlite":
        return bbox_clause(session, bbox)
    min_x, min_y, max_x, max_y = bbox
    return and_(
        Entity.max_lon >= min_x,
        Entity.min_lon <= max_x,
        Entity.max_lat >= min_y,
        Entity.min_lat <= max_y,
    )


def locations_of(session: Session, tenant_id: int, urns: Collection[str]) -> dict[str, Any]:
    """GeoJSON geometry of a few entities (the lines and areas of a street-level view)."""
    found: dict[str, Any] = {}
    wanted = sorted(urns)
    for start in range(0, len(wanted), 500):
        rows = session.execute(
            select(Entity.urn, Entity.location).where(
                Entity.tenant_id == tenant_id, Entity.urn.in_(wanted[start : start + 500])
            )
        )
        found.update({urn: location for urn, location in rows if location is not None})
    return found
