"""Telemetry-based KPIs: lighting saving, water network efficiency, overflows, waste."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from territoire.interventions import kpis as kpi_module
from territoire.interventions.kpis import KpiQuery
from territoire.rules import kpis
from territoire.telemetry.records import Reading
from tests.conftest import World
from tests.rules.helpers import entity, send

CABINET = "urn:ngsi-ld:StreetlightControlCabinet:c1"
DISTRICT = "urn:ngsi-ld:WaterConsumptionObserved:s1"
BINS = ["urn:ngsi-ld:WasteContainer:b1", "urn:ngsi-ld:WasteContainer:b2"]
SCHOOL = "urn:ngsi-ld:Building:school"
DAY = datetime(2026, 1, 12, tzinfo=UTC) - timedelta(hours=1)  # Monday 00:00 in Paris


def _hourly(urn: str, attribute: str, start: datetime, hours: int, value) -> list[Reading]:  # type: ignore[no-untyped-def]
    return [
        Reading(urn, attribute, start + timedelta(hours=h), float(value(h))) for h in range(hours)
    ]


def _query(tenant_id: int, start: datetime, days: int) -> KpiQuery:
    return KpiQuery(tenant_id, start, start + timedelta(days=days), now=start + timedelta(days=60))


def test_the_kpis_join_the_kpi_module() -> None:
    keys = set(kpi_module.definitions())
    assert {"lighting.energy_saving", "water.network_efficiency"} <= keys
    assert "waste.containers_overflowed" in keys


def test_lighting_saving_against_the_same_dates_a_year_before(world: World) -> None:
    tenant = world.tenant("ville-a").id
    entity(world.database, tenant, CABINET)
    before = DAY.replace(year=2025)
    send(world.database, tenant, _hourly(CABINET, "activePower", before, 48, lambda h: 2.0))
    send(world.database, tenant, _hourly(CABINET, "activePower", DAY, 48, lambda h: 0.7))
    with world.database.session() as session:
        value = kpis.lighting_saving(session, _query(tenant, DAY, 2))
    assert value.value == pytest.approx(65.0) and value.sample == 1
    with world.database.session() as session:
        nothing = kpis.lighting_saving(session, _query(tenant, DAY + timedelta(days=5), 2))
    assert nothing.value is None, "no data in either year: no saving to show"


def test_water_efficiency_per_district_and_overall(world: World) -> None:
    tenant = world.tenant("ville-a").id
    entity(world.database, tenant, DISTRICT, {"connections": 100})

    def flow(hour: int) -> float:
        return 4.0 if hour % 24 in (2, 3) else 10.0

    send(world.database, tenant, _hourly(DISTRICT, "flow", DAY, 48, flow))
    with world.database.session() as session:
        overall, district = kpis.water_efficiency(session, _query(tenant, DAY, 2))
    mean = (22 * 10 + 2 * 4) / 24
    expected = 100 * (1 - (4.0 - 0.2) / mean)  # 100 connections × 2 l/h of night use
    assert district.subject == DISTRICT and district.value == pytest.approx(expected, abs=0.01)
    assert overall.subject == "" and overall.value == pytest.approx(expected, abs=0.01)


def test_containers_overflowed_counts_containers_that_read_full(world: World) -> None:
    tenant = world.tenant("ville-a").id
    for urn in BINS:
        entity(world.database, tenant, urn)
    send(
        world.database, tenant, _hourly(BINS[0], "fillingLevel", DAY, 30, lambda h: min(1, h / 20))
    )
    send(world.database, tenant, _hourly(BINS[1], "fillingLevel", DAY, 30, lambda h: h / 40))
    with world.database.session() as session:
        value = kpis.containers_overflowed(session, _query(tenant, DAY, 2))
    assert (value.value, value.sample) == (1, 2)


def test_unoccupied_waste_in_kwh(world: World) -> None:
    tenant = world.tenant("ville-a").id
    entity(world.database, tenant, SCHOOL, {"openingHours": ["Mo-Fr 08:00-18:00"]})

    def power(hour: int) -> float:
        local = hour % 24
        if 8 <= local < 18:
            return 50.0
        return 30.0 if hour >= 24 + 20 else 10.0  # left lit from Tuesday 20:00

    send(world.database, tenant, _hourly(SCHOOL, "activePower", DAY, 48, power))
    with world.database.session() as session:
        value = kpis.unoccupied_waste(session, _query(tenant, DAY, 2))
    # Quiet hours with an hour's margin: 00-06 and 20-23 each day; Tuesday 20:00-23:00 is
    # 4 hours at 30 kW against a baseline of 10 kW × 1.1.
    assert value.value == pytest.approx(4 * (30 - 11.0)) and value.sample == 1
