"""GeoJSON validation and point-in-commune lookup, shared by every domain with places."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import shape
from shapely.geometry.base import BaseGeometry
from shapely.strtree import STRtree

from territoire.errors import invalid

GEOMETRY_TYPES = {
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
}
AREA_TYPES = {"Polygon", "MultiPolygon"}

BBox = tuple[float, float, float, float]  # min_lon, min_lat, max_lon, max_lat


def _check_positions(value: Any, field: str) -> None:
    """Every position must be [lon, lat(, alt)] with finite numbers in WGS 84 range."""
    if isinstance(value, list) and value and all(isinstance(v, int | float) for v in value):
        if len(value) not in (2, 3) or isinstance(value[0], bool):
            raise invalid(field, "a position is [longitude, latitude] or with an altitude")
        lon, lat = float(value[0]), float(value[1])
        if not (math.isfinite(lon) and math.isfinite(lat)):
            raise invalid(field, "coordinates must be finite numbers")
        if not (-180 <= lon <= 180 and -90 <= lat <= 90):
            raise invalid(field, "coordinates are [longitude, latitude] in WGS 84 degrees")
        return
    if not isinstance(value, list) or not value:
        raise invalid(field, "coordinates must be nested arrays of numbers")
    for item in value:
        _check_positions(item, field)


def parse_geometry(geometry: Any, field: str = "location") -> BaseGeometry:
    """Validate a GeoJSON geometry object and return it as a shapely geometry."""
    if not isinstance(geometry, dict):
        raise invalid(field, "must be a GeoJSON geometry object")
    kind = geometry.get("type")
    if kind not in GEOMETRY_TYPES:
        raise invalid(field, f"unsupported geometry type {kind!r}")
    _check_positions(geometry.get("coordinates"), field)
    try:
        geom = shape(geometry)
    except (ValueError, TypeError, AttributeError, shapely.errors.ShapelyError) as error:
        raise invalid(field, f"invalid GeoJSON geometry: {error}") from error
    if geom.is_empty:
        raise invalid(field, "geometry is empty")
    if kind in AREA_TYPES and not geom.is_valid:
        raise invalid(field, f"invalid polygon: {shapely.is_valid_reason(geom)}")
    return geom


def validate_area(geometry: Any, field: str) -> BaseGeometry:
    geom = parse_geometry(geometry, field)
    if geometry.get("type") not in AREA_TYPES:
        raise invalid(field, "must be a Polygon or MultiPolygon")
    return geom


def bbox_of(geom: BaseGeometry) -> BBox:
    min_x, min_y, max_x, max_y = geom.bounds
    return float(min_x), float(min_y), float(max_x), float(max_y)


def parse_bbox(text: str, field: str = "bbox") -> BBox:
    """Parse 'minLon,minLat,maxLon,maxLat' as used by OGC API and most map clients."""
    parts = text.split(",")
    if len(parts) != 4:
        raise invalid(field, "expected minLon,minLat,maxLon,maxLat")
    try:
        min_x, min_y, max_x, max_y = (float(p) for p in parts)
    except ValueError as error:
        raise invalid(field, "the four values must be numbers") from error
    if not all(math.isfinite(v) for v in (min_x, min_y, max_x, max_y)):
        raise invalid(field, "the four values must be finite")
    if min_x > max_x or min_y > max_y:
        raise invalid(field, "minimum greater than maximum")
    return min_x, min_y, max_x, max_y


@dataclass(frozen=True)
class Area:
    key: int
    geometry: BaseGeometry


class AreaLocator:
    """Finds which area (commune) contains a geometry, with an STR-tree over boundaries.

    Build it once per request or import, then call `locate` for many geometries.
    """

    def __init__(self, areas: Iterable[tuple[int, dict[str, Any]]]) -> None:
        self._areas: list[Area] = [Area(key, shape(boundary)) for key, boundary in areas]
        for area in self._areas:
            shapely.prepare(area.geometry)
        self._tree = STRtree([area.geometry for area in self._areas]) if self._areas else None

    def locate(self, geom: BaseGeometry) -> int | None:
        """The area containing the geometry's representative point, if any."""
        if self._tree is None:
            return None
        point = geom if geom.geom_type == "Point" else geom.representative_point()
        candidates: Sequence[int] = self._tree.query(point, predicate="intersects")
        matches = sorted(int(index) for index in candidates)
        return self._areas[matches[0]].key if matches else None
