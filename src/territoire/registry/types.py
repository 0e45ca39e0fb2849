"""Entity types the registry accepts: FIWARE Smart Data Model names, by domain.

The domain drives map layers and rule families; a type absent from this table is
refused, so that typos never create a silent new layer.
"""

from __future__ import annotations

import enum


class Domain(enum.StrEnum):
    LIGHTING = "lighting"
    WATER = "water"
    WASTE = "waste"
    PARKING = "parking"
    BUILDINGS = "buildings"
    AIR = "air"
    WEATHER = "weather"
    MOBILITY = "mobility"
    DEVICES = "devices"
    PLACES = "places"


ENTITY_TYPES: dict[str, Domain] = {
    "Streetlight": Domain.LIGHTING,
    "StreetlightGroup": Domain.LIGHTING,
    "StreetlightControlCabinet": Domain.LIGHTING,
    "WaterConsumptionObserved": Domain.WATER,
    "WaterQualityObserved": Domain.WATER,
    "Tank": Domain.WATER,  # storage reservoir (WaterDistributionManagementEPANET model)
    "WasteContainer": Domain.WASTE,
    "WasteContainerIsle": Domain.WASTE,
    "ParkingSpot": Domain.PARKING,
    "OnStreetParking": Domain.PARKING,
    "OffStreetParking": Domain.PARKING,
    "ParkingGroup": Domain.PARKING,
    "Building": Domain.BUILDINGS,
    "ThreePhaseAcMeasurement": Domain.BUILDINGS,
    "AirQualityObserved": Domain.AIR,
    "NoiseLevelObserved": Domain.AIR,
    "WeatherObserved": Domain.WEATHER,
    "TrafficFlowObserved": Domain.MOBILITY,
    "RoadSegment": Domain.MOBILITY,
    "Road": Domain.MOBILITY,
    "Device": Domain.DEVICES,
    "DeviceMeasurement": Domain.DEVICES,
    "PointOfInterest": Domain.PLACES,
}


def domain_of(entity_type: str) -> Domain | None:
    return ENTITY_TYPES.get(entity_type)


def types_of(domain: Domain) -> list[str]:
    return sorted(name for name, owner in ENTITY_TYPES.items() if owner is domain)
