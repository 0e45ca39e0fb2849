"""Peer drift: a station whose daily mean moves away from what the other stations measure."""

from __future__ import annotations

import math

import pytest

from territoire.alarms.models import AlarmStatus
from territoire.errors import InvalidInput
from territoire.rules import service as rules
from territoire.rules.definitions import parse_definition
from territoire.telemetry.records import Reading
from tests.conftest import World
from tests.rules.helpers import alarms_of, at, entity, rule, send

STATIONS = [f"urn:ngsi-ld:AirQualityObserved:aq-{i}" for i in range(5)]
FACTORS = [1.0, 1.3, 0.8, 1.1, 0.9]  # each station's own level (traffic near it)


def _pm10(station: int, hour: float, drift_from: float, drift_until: float) -> float:
    common = 20 + 6 * math.sin(hour / 24 * 2 * math.pi) + 4 * math.sin(hour / 70)
    value = FACTORS[station] * common * (1 + 0.05 * math.sin(hour * 1.7 + station))
    if station == 0 and drift_from <= hour < drift_until:
        value *= 1.5
    return value


def test_a_station_departing_from_its_peers_for_three_days_is_a_drift(world: World) -> None:
    tenant = world.tenant("ville-air").id
    for urn in STATIONS:
        entity(world.database, tenant, urn)
    rule(world.database, tenant, "drift", {"kind": "peer_drift", "attributes": ["pm10"]})
    # January in Paris is UTC+1: local day d runs from hour 24 d - 1 to 24 d + 23 (UTC).
    drift_from, drift_until = 6 * 24 - 1, 10 * 24 - 1  # local days 6 to 9
    for day in range(12):
        readings = [
            Reading(urn, "pm10", at(h), _pm10(i, h, drift_from, drift_until))
            for h in range(day * 24, day * 24 + 24)
            for i, urn in enumerate(STATIONS)
        ]
        send(world.database, tenant, readings)
        for hour in range(day * 24, day * 24 + 24):
            rules.run_timers(world.database, at(hour + 0.5))
    (alarm,) = alarms_of(world.database, tenant)
    assert alarm.entity_urn == STATIONS[0], "the peers' median does not move with one station"
    assert alarm.raised_at == at(8 * 24 + 23), "judged at the end of the third departing day"
    assert alarm.status is AlarmStatus.CLEARED
    assert alarm.cleared_at == at(10 * 24 + 23), "the first normal day clears it"


def test_too_few_peers_judges_nothing(world: World) -> None:
    tenant = world.tenant("ville-air-2").id
    for urn in STATIONS[:3]:
        entity(world.database, tenant, urn)
    rule(world.database, tenant, "drift", {"kind": "peer_drift", "attributes": ["pm10"]})
    for day in range(10):
        readings = [
            Reading(urn, "pm10", at(h), _pm10(i, h, 3 * 24, 10 * 24))
            for h in range(day * 24, day * 24 + 24)
            for i, urn in enumerate(STATIONS[:3])
        ]
        send(world.database, tenant, readings)
        rules.run_timers(world.database, at(day * 24 + 23.5))
    assert alarms_of(world.database, tenant) == [], "two peers are not enough (default 3)"


@pytest.mark.parametrize(
    ("definition", "field"),
    [
        ({"kind": "peer_drift", "attributes": []}, "definition.attributes"),
        ({"kind": "peer_drift", "attributes": ["pm10"], "tolerance": 0}, "definition.tolerance"),
        ({"kind": "peer_drift", "attributes": ["pm10"], "min_peers": 1}, "definition.min_peers"),
    ],
)
def test_invalid_peer_drift_definitions_are_refused(
    definition: dict[str, object], field: str
) -> None:
    with pytest.raises(InvalidInput) as refused:
        parse_definition(definition)
    assert field in {problem.field for problem in refused.value.problems}
