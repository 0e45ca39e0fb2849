"""Human names (English message ids) for registry domains and entity types, and map colours.

Type names stay the Smart Data Model names in data and APIs; these labels are only shown.
"""

from __future__ import annotations

from territoire.registry.types import Domain
from territoire.tenancy.models import Role
from territoire.web.i18n import N_

ROLE_LABELS: dict[Role, str] = {
    Role.ADMIN: N_("Administrator"),
    Role.OPERATOR: N_("Operator"),
    Role.FIELD_AGENT: N_("Field agent"),
    Role.VIEWER: N_("Viewer"),
    Role.DATA_OFFICER: N_("Data officer"),
}

DOMAIN_LABELS: dict[Domain, str] = {
    Domain.LIGHTING: N_("Street lighting"),
    Domain.WATER: N_("Water"),
    Domain.WASTE: N_("Waste"),
    Domain.PARKING: N_("Parking"),
    Domain.BUILDINGS: N_("Buildings"),
    Domain.AIR: N_("Air and noise"),
    Domain.WEATHER: N_("Weather"),
    Domain.MOBILITY: N_("Roads and traffic"),
    Domain.DEVICES: N_("Devices"),
    Domain.PLACES: N_("Places"),
}

# Colours chosen to stay distinguishable for the common colour-vision deficiencies
# and to keep a 3:1 contrast against the plain map background.
DOMAIN_COLOURS: dict[Domain, str] = {
    Domain.LIGHTING: "#c25e00",
    Domain.WATER: "#0063b1",
    Domain.WASTE: "#2e7d32",
    Domain.PARKING: "#6a3d9a",
    Domain.BUILDINGS: "#a4262c",
    Domain.AIR: "#00838f",
    Domain.WEATHER: "#5d4037",
    Domain.MOBILITY: "#555555",
    Domain.DEVICES: "#ad1457",
    Domain.PLACES: "#283593",
}

TYPE_LABELS: dict[str, str] = {
    "Streetlight": N_("Street light"),
    "StreetlightGroup": N_("Street light group"),
    "StreetlightControlCabinet": N_("Lighting control cabinet"),
    "WaterConsumptionObserved": N_("Water meter"),
    "WaterQualityObserved": N_("Water quality station"),
    "Tank": N_("Water tank"),
    "WasteContainer": N_("Waste container"),
    "WasteContainerIsle": N_("Waste container isle"),
    "ParkingSpot": N_("Parking space"),
    "OnStreetParking": N_("On-street parking"),
    "OffStreetParking": N_("Car park"),
    "ParkingGroup": N_("Parking group"),
    "Building": N_("Building"),
    "ThreePhaseAcMeasurement": N_("Electricity meter"),
    "AirQualityObserved": N_("Air quality station"),
    "NoiseLevelObserved": N_("Noise sensor"),
    "WeatherObserved": N_("Weather station"),
    "TrafficFlowObserved": N_("Traffic counter"),
    "RoadSegment": N_("Street"),
    "Road": N_("Road"),
    "Device": N_("Device"),
    "DeviceMeasurement": N_("Device measurement"),
    "PointOfInterest": N_("Point of interest"),
}


def type_label(entity_type: str) -> str:
    """The message id for a type; unknown types (added later) show their own name."""
    return TYPE_LABELS.get(entity_type, entity_type)
