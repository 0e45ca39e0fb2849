"""The default rule set offered to a tenant (and measured by `territoire evaluate detection`).

Parameters are chosen for typical French municipal equipment; `docs/detection.md` says
which simulated seeds they were tuned on. The set adapts to the tenant's registry only
where a rule needs a named entity (the weather station) or must leave one out (a
swimming pool keeps its water warm on purpose).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from territoire.registry import service as registry
from territoire.rules.service import RuleDraft

# Series that may stick, by attribute: entity types, and values that are not evidence
# (a fill sensor or a hygrometer saturates at 100 %).
STUCK_SERIES: tuple[tuple[str, tuple[str, ...], tuple[float, ...]], ...] = (
    ("flow", ("WaterConsumptionObserved",), ()),
    ("level", ("Tank",), ()),
    ("fillingLevel", ("WasteContainer",), (1.0,)),
    ("occupiedSpotNumber", ("OffStreetParking",), ()),
    ("activePower", ("StreetlightControlCabinet", "Building"), ()),
    ("gasConsumption", ("Building",), ()),
    ("waterConsumption", ("Building",), ()),
    ("temperature", ("Building", "WeatherObserved"), ()),
    ("no2", ("AirQualityObserved",), ()),
    ("pm10", ("AirQualityObserved",), ()),
    ("pm25", ("AirQualityObserved",), ()),
    ("o3", ("AirQualityObserved",), ()),
    ("relativeHumidity", ("WeatherObserved",), (1.0,)),
    ("atmosphericPressure", ("WeatherObserved",), ()),
    ("windSpeed", ("WeatherObserved",), ()),
    ("occupancy", ("ParkingSpot",), ()),
)
# Series whose slow drift the default set watches (history_range rules "drift-<attribute>").
DRIFT_SERIES: tuple[str, ...] = ()
POOL_USAGES = frozenset({"pool", "swimmingPool", "swimming_pool"})


def _urns_of(session: Session, tenant_id: int, entity_type: str) -> list[Any]:
    found = []
    offset = 0
    where = registry.EntityFilter(types=[entity_type])
    while True:
        page = registry.list_entities(
            session, tenant_id, where, limit=registry.MAX_PAGE_SIZE, offset=offset
        )
        found += page.items
        offset += len(page.items)
        if not page.items or offset >= page.total:
            return found


def _pools(session: Session, tenant_id: int) -> list[str]:
    return sorted(
        entity.urn
        for entity in _urns_of(session, tenant_id, "Building")
        if (entity.properties or {}).get("usage") in POOL_USAGES
        or "swimming_pool" in ((entity.properties or {}).get("category") or [])
    )


def _scope(types: tuple[str, ...] = (), exclude: list[str] | None = None) -> dict[str, Any]:
    return {"entity_types": list(types), "entities": [], "commune": None, "exclude": exclude or []}


def default_rules(session: Session, tenant_id: int) -> list[RuleDraft]:
    pools = _pools(session, tenant_id)
    drafts = [
        RuleDraft("Lampe éteinte", {"kind": "lamp_out"}, "major", key="lamp-out"),
        RuleDraft("Lampe allumée de jour", {"kind": "day_burner"}, "minor", key="day-burner"),
        RuleDraft("Lampe instable", {"kind": "lamp_cycling"}, "minor", key="lamp-cycling"),
        RuleDraft("Défaut d'armoire", {"kind": "cabinet_fault"}, "critical", key="cabinet-fault"),
        RuleDraft("Fuite (débit de nuit)", {"kind": "night_flow"}, "major", key="water-leak"),
        RuleDraft("Casse de canalisation", {"kind": "burst"}, "critical", key="water-burst"),
        RuleDraft(
            "Rendement de réseau", {"kind": "network_efficiency"}, "warning", key="water-efficiency"
        ),
        RuleDraft("Conteneur plein", {"kind": "container_full"}, "minor", key="container-full"),
        RuleDraft(
            "Conteneur bientôt plein",
            {"kind": "container_forecast"},
            "warning",
            key="container-forecast",
        ),
        RuleDraft(
            "Bâtiment éclairé hors occupation",
            {"kind": "unoccupied_consumption"},
            "minor",
            scope=_scope(("Building",), pools),
            key="building-lit-unoccupied",
        ),
        RuleDraft(
            "Bâtiment chauffé hors occupation",
            {"kind": "unoccupied_heating"},
            "minor",
            scope=_scope(("Building",), pools),
            key="building-heated-unoccupied",
        ),
        RuleDraft(
            "Équipement muet",
            {"kind": "silence", "minutes": 150},
            "minor",
            scope=_scope(),
            key="sensor-silence",
        ),
    ]
    weather = _urns_of(session, tenant_id, "WeatherObserved")
    if weather:
        drafts.append(
            RuleDraft(
                "Dérive de consommation de gaz",
                {"kind": "consumption_drift", "weather_entity": weather[0].urn},
                "warning",
                scope=_scope(("Building",), pools),
                key="building-gas-drift",
            )
        )
    for attribute, types, ignored in STUCK_SERIES:
        drafts.append(
            RuleDraft(
                f"Capteur figé ({attribute})",
                {"kind": "stuck", "attribute": attribute, "ignore_values": list(ignored)},
                "minor",
                scope=_scope(types),
                key=f"stuck-{attribute}",
            )
        )
    return drafts
