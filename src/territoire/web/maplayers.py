"""Map layers: named sources of GeoJSON features for the current viewport.

The web shell registers one layer per registry domain (street lighting, waste...). Other
domains add their own (open alarms, work orders, citizen requests) with `register_layer`;
the map page offers every registered layer and fetches the checked ones by bounding box.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from territoire.errors import invalid
from territoire.geo import BBox
from territoire.registry import service as registry
from territoire.registry.types import Domain, domain_of
from territoire.tenancy import service as tenancy
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
