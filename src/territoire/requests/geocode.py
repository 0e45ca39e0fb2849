"""Address → place, against the tenant's own data (no external geocoder is reachable).

Streets come from the registry (`RoadSegment` and `Road` entities and their names),
communes from tenancy. A street name found in the address gives the street's middle
point; a commune name alone gives the commune without coordinates. See
docs/decisions/0500-geocoding-against-own-data.md.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from shapely.geometry import shape
from sqlalchemy.orm import Session

from territoire.registry import service as registry
from territoire.registry.models import Entity
from territoire.tenancy import service as tenancy

STREET_TYPES = ["RoadSegment", "Road"]
MAX_STREETS = 1000
PARENTHESIS = re.compile(r"\([^)]*\)")


@dataclass(frozen=True)
class Place:
    lat: float | None
    lon: float | None
    commune_id: int | None
    label: str


def normalise(text: str) -> str:
    """Lowercase, accents removed, punctuation as spaces: 'Rue de l'Église' → 'rue de l eglise'."""
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", plain).split())


def _contains(haystack: str, needle: str) -> bool:
    return bool(needle) and f" {needle} " in f" {haystack} "


def _commune_in(session: Session, tenant_id: int, address: str) -> tuple[int, str] | None:
    found: tuple[int, int, str] | None = None
    for commune in tenancy.list_communes(session, tenant_id):
        name = normalise(commune.name)
        named = _contains(address, name) or _contains(address, commune.insee_code)
        if named and (found is None or len(name) > found[0]):
            found = (len(name), commune.id, commune.name)
    return (found[1], found[2]) if found else None


def locate_address(session: Session, tenant_id: int, address: str) -> Place | None:
    wanted = normalise(address)
    if not wanted:
        return None
    commune = _commune_in(session, tenant_id, wanted)
    streets = registry.list_entities(
        session, tenant_id, registry.EntityFilter(types=STREET_TYPES), limit=MAX_STREETS
    ).items
    best: tuple[int, Entity] | None = None
    for street in streets:
        if not street.name or street.location is None:
            continue
        base = normalise(PARENTHESIS.sub(" ", street.name))
        if not _contains(wanted, base):
            continue
        if commune is not None and street.commune_id not in (None, commune[0]):
            continue
        if best is None or len(base) > best[0]:
            best = (len(base), street)
    if best is not None:
        street = best[1]
        geometry = shape(street.location)
        middle = (
            geometry.interpolate(0.5, normalized=True)
            if geometry.geom_type == "LineString"
            else geometry.representative_point()
        )
        return Place(
            round(middle.y, 7),
            round(middle.x, 7),
            street.commune_id or (commune[0] if commune else None),
            street.name or address,
        )
    if commune is not None:
        return Place(None, None, commune[0], commune[1])
    return None
