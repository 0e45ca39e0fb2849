"""KPIs from alarms and work orders, over a period, against configurable targets."""

from __future__ import annotations

import csv
import io
from typing import Any

from territoire.alarms import service as alarms
from territoire.alarms.kpis import union_minutes
from territoire.alarms.models import Severity
from territoire.interventions import kpis, service
from territoire.interventions.models import Priority
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import Role
from tests.conftest import World
from tests.interventions.helpers import LAMPS, Territory, at, territory

DAY = 1440  # minutes
# 4 street lights, 1 cabinet, 1 waste container in the test territory.
STREETLIGHT_AVAILABILITY = round(100 * (1 - 260 / (4 * DAY)), 3)  # 95.486
OVERALL_AVAILABILITY = round(100 * (1 - 260 / (6 * DAY)), 3)  # 96.991


def raise_at(
    session: Any, place: Territory, urn: str, rule: str, severity: str, minute: float
) -> str:
    signal = alarms.AlarmSignal(rule, urn, severity, "défaut", at(minute))
    return alarms.raise_alarm(session, place.id, signal).public_id


def build_history(world: World, place: Territory) -> None:
    """One day of operations starting at at(0)."""
    with world.database.session() as session:
        # Lamp 1: two overlapping outages 0–144 and 100–200 → 200 minutes down.
        first = raise_at(session, place, LAMPS[0], "lamp_out", "major", 0)
        alarms.acknowledge(session, place.id, first, by_user=None, at=at(10))
        alarms.clear_alarm_condition(session, place.id, "lamp_out", LAMPS[0], at(144))
        raise_at(session, place, LAMPS[0], "lamp_dark", "critical", 100)
        alarms.clear_alarm_condition(session, place.id, "lamp_dark", LAMPS[0], at(200))
        # Lamp 2: a warning is not an outage.
        raise_at(session, place, LAMPS[1], "lamp_flicker", "warning", 300)
        # Lamp 3: down from 23:00 and still down → 60 minutes within the day.
        third = raise_at(session, place, LAMPS[2], "lamp_out", "critical", DAY - 60)
        alarms.acknowledge(session, place.id, third, by_user=None, at=at(DAY - 40))
        # Outside the period: must not count.
        raise_at(session, place, LAMPS[3], "lamp_out", "critical", DAY + 10)

        team = service.create_team(session, place.id, name="Éclairage")
        done_in_time = service.create_work_order(
            session,
            place.id,
            service.WorkOrderDraft("A", priority=Priority.URGENT),
            created_by=None,
            at=at(0),
        ).public_id
        service.dispatch(
            session,
            place.id,
            done_in_time,
            team_id=team.public_id,
            assignee_id=None,
            by_user=None,
            at=at(10),
        )
        service.transition(session, place.id, done_in_time, "start", by_user=None, at=at(30))
        service.transition(session, place.id, done_in_time, "done", by_user=None, at=at(200))
        service.create_work_order(
            session,
            place.id,
            service.WorkOrderDraft("B", priority=Priority.URGENT),
            created_by=None,
            at=at(100),
        )
        cancelled = service.create_work_order(
            session, place.id, service.WorkOrderDraft("C"), created_by=None, at=at(5)
        ).public_id
        service.transition(session, place.id, cancelled, "cancel", by_user=None, at=at(6))


def values(rows: list[kpis.KpiRow]) -> dict[tuple[str, str], kpis.KpiRow]:
    return {(row.definition.key, row.value.subject): row for row in rows}


def test_availability_delays_and_compliance_over_one_day(world: World) -> None:
    place = territory(world, "ville-a")
    build_history(world, place)
    with world.database.session() as session:
        rows = values(kpis.compute(session, kpis.KpiQuery(place.id, at(0), at(DAY))))
    assert rows[("availability", "Streetlight")].value.value == STREETLIGHT_AVAILABILITY
    assert rows[("availability", "")].value.value == OVERALL_AVAILABILITY
    assert rows[("availability", "WasteContainer")].value.value == 100.0
    assert rows[("availability", "Streetlight")].value.sample == 4
    assert rows[("alarms.raised", "")].value.value == 4
    assert rows[("alarms.mean_time_to_acknowledge", "")].value.value == 15.0  # (10 + 20) / 2
    assert rows[("alarms.mean_time_to_resolve", "")].value.value == 122.0  # (144 + 100) / 2
    assert rows[("work_orders.created", "")].value.value == 2, "the cancelled one is left out"
    assert rows[("work_orders.mean_time_to_acknowledge", "")].value.value == 10.0
    assert rows[("work_orders.mean_time_to_resolve", "")].value.value == 200.0
    for clock in ("acknowledge", "start", "resolve"):
        assert rows[(f"sla.{clock}_compliance", "")].value.value == 50.0, clock


def test_per_commune_and_the_part_of_the_period_still_to_come(world: World) -> None:
    place = territory(world, "ville-a")
    build_history(world, place)
    with world.database.session() as session:
        east = next(c for c in tenancy.list_communes(session, place.id) if c.insee_code == "21002")
        rows = values(kpis.compute(session, kpis.KpiQuery(place.id, at(0), at(DAY), east.id)))
        assert set(key for key, subject in rows if key == "availability") == {"availability"}
        assert rows[("availability", "WasteContainer")].value.value == 100.0
        assert ("availability", "Streetlight") not in rows, "no street light in the east"
        assert rows[("alarms.raised", "")].value.value == 0
        assert rows[("alarms.mean_time_to_acknowledge", "")].value.value is None
        # A period that ends in the future counts only up to now.
        now = at(DAY)
        ahead = kpis.KpiQuery(place.id, at(0), at(2 * DAY), now=now)
        streetlights = values(kpis.compute(session, ahead))[("availability", "Streetlight")]
        assert streetlights.value.value == STREETLIGHT_AVAILABILITY


def test_targets_most_specific_wins_and_met_follows_direction(world: World) -> None:
    place = territory(world, "ville-a")
    build_history(world, place)
    with world.database.session() as session:
        kpis.set_target(session, place.id, kpi_key="availability", target=95)
        kpis.set_target(session, place.id, kpi_key="availability", subject="Streetlight", target=99)
        kpis.set_target(session, place.id, kpi_key="work_orders.mean_time_to_resolve", target=240)
        kpis.set_target(
            session,
            place.id,
            kpi_key="alarms.mean_time_to_acknowledge",
            target=10,
            commune_code="21001",
        )
        rows = values(kpis.compute(session, kpis.KpiQuery(place.id, at(0), at(DAY))))
        assert (rows[("availability", "")].target, rows[("availability", "")].met) == (95, True)
        streetlights = rows[("availability", "Streetlight")]
        assert (streetlights.target, streetlights.met) == (99, False), "95.5 % < 99 %"
        assert rows[("availability", "WasteContainer")].target == 95, "falls back to the tenant's"
        resolve = rows[("work_orders.mean_time_to_resolve", "")]
        assert (resolve.target, resolve.met) == (240, True), "lower is better: 200 ≤ 240"
        assert rows[("alarms.mean_time_to_acknowledge", "")].target is None, "commune-only target"
        west = next(c for c in tenancy.list_communes(session, place.id) if c.insee_code == "21001")
        local = values(kpis.compute(session, kpis.KpiQuery(place.id, at(0), at(DAY), west.id)))
        assert local[("alarms.mean_time_to_acknowledge", "")].met is False, "15 > 10 minutes"


BAD_TARGETS: list[tuple[dict[str, Any], str]] = [
    ({"kpi": "happiness", "target": 1}, "kpi"),
    ({"kpi": "availability", "target": 120}, "target"),
    ({"kpi": "work_orders.created", "target": -1}, "target"),
    ({"kpi": "availability", "target": 90, "commune": "99999"}, "commune"),
    ({"kpi": "availability", "target": "high"}, "target"),
]


def test_bad_targets_are_refused(world: World) -> None:
    place = territory(world, "ville-a")
    admin = world.api(place.tenant, Role.ADMIN)
    for target, field in BAD_TARGETS:
        response = admin.put("/api/v1/kpis/targets", json=target)
        assert response.status_code == 422, response.text
        assert any(field in p["field"] for p in response.json()["error"]["problems"]), target
    assert admin.get("/api/v1/kpis/targets").json() == []


def test_kpi_api_json_csv_targets_and_bad_periods(world: World) -> None:
    place = territory(world, "ville-a")
    build_history(world, place)
    admin = world.api(place.tenant, Role.ADMIN)
    viewer = world.api(place.tenant, Role.VIEWER)
    target = {"kpi": "availability", "subject": "Streetlight", "target": 99}
    assert viewer.put("/api/v1/kpis/targets", json=target).status_code == 403
    assert admin.put("/api/v1/kpis/targets", json=target).status_code == 200
    period = {"from": at(0).isoformat(), "to": at(DAY).isoformat()}
    report = viewer.get("/api/v1/kpis", params=period)
    assert report.status_code == 200, report.text
    items = {(i["key"], i["subject"]): i for i in report.json()["items"]}
    assert items[("availability", "Streetlight")]["value"] == STREETLIGHT_AVAILABILITY
    assert items[("availability", "Streetlight")]["met"] is False
    as_csv = viewer.get("/api/v1/kpis", params={**period, "format": "csv"})
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in as_csv.headers["content-disposition"]
    table = list(csv.DictReader(io.StringIO(as_csv.text)))
    lights = next(r for r in table if r["key"] == "availability" and r["subject"] == "Streetlight")
    assert (float(lights["value"]), float(lights["target"]), lights["met"]) == (
        STREETLIGHT_AVAILABILITY,
        99.0,
        "false",
    )
    assert len(table) == len(report.json()["items"])
    for bad in (
        {"from": "2026-13-01"},
        {"from": "2026-01-01T10:00:00"},
        {"from": "2026-02-01", "to": "2026-01-01"},
        {"format": "xml"},
        {"commune": "00000"},
    ):
        refused = viewer.get("/api/v1/kpis", params=bad)
        assert refused.status_code == 422, (bad, refused.text)
    definitions = {d["key"] for d in viewer.get("/api/v1/kpis/definitions").json()}
    assert {
        "availability",
        "sla.resolve_compliance",
        "alarms.mean_time_to_acknowledge",
    } <= definitions
    assert (
        admin.delete(
            "/api/v1/kpis/targets", params={"kpi": "availability", "subject": "Streetlight"}
        ).status_code
        == 204
    )
    assert admin.delete("/api/v1/kpis/targets", params={"kpi": "availability"}).status_code == 404
    other = world.api(territory(world, "ville-b").tenant, Role.VIEWER)
    elsewhere = {
        (i["key"], i["subject"]): i
        for i in other.get("/api/v1/kpis", params=period).json()["items"]
    }
    assert elsewhere[("alarms.raised", "")]["value"] == 0, "another tenant's alarms never count"


def test_dates_are_paris_days() -> None:
    start, end = kpis.period("2026-01-01", "2026-07-01")
    assert start.isoformat() == "2025-12-31T23:00:00+00:00", "midnight in winter is UTC+1"
    assert end.isoformat() == "2026-06-30T22:00:00+00:00", "and UTC+2 in summer"
    moment = kpis.parse_moment("2026-03-01T08:00:00 01:00", "from")
    assert moment.isoformat() == "2026-03-01T07:00:00+00:00", "an unencoded + is understood"


def test_union_counts_overlaps_once() -> None:
    assert union_minutes([(at(0), at(10)), (at(5), at(20)), (at(30), at(40))]) == 30
    assert union_minutes([]) == 0


def test_severity_of_outages_is_critical_or_major() -> None:
    from territoire.alarms.kpis import OUTAGE_SEVERITIES

    assert set(OUTAGE_SEVERITIES) == {Severity.CRITICAL, Severity.MAJOR}
