"""The territory map at scale: /map/state (states, points, clusters, filters), search,
the entity side panel and its chart data. Alarms are raised through the alarms service
and readings ingested through the telemetry service, as in production."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from territoire.alarms import service as alarms
from territoire.alarms.models import Severity
from territoire.db.base import utcnow
from territoire.interventions import service as interventions
from territoire.registry import service as registry
from territoire.telemetry import service as telemetry
from territoire.telemetry import state as telemetry_state
from territoire.telemetry.records import Reading
from territoire.tenancy.models import Role, Tenant
from territoire.web import maplayers
from tests.conftest import World

from .conftest import add_commune, add_entities, lights, point, signed_in_client

BOX = "5.0,47.0,5.1,47.1"
WIDE = "4.9,46.9,5.4,47.2"
ALARMED = "urn:ngsi-ld:Streetlight:centre-000"
WARNED = "urn:ngsi-ld:Streetlight:centre-001"
QUIET = "urn:ngsi-ld:Streetlight:centre-002"
STREET = "urn:ngsi-ld:RoadSegment:grande-rue"
BIN = "urn:ngsi-ld:WasteContainer:bac-1"


def state_index(name: str) -> int:
    return maplayers.STATES.index(name)


def raise_alarm(world: World, tenant: Tenant, urn: str, severity: Severity, rule: str) -> str:
    with world.database.session() as session:
        signal = alarms.AlarmSignal(
            rule_key=rule,
            entity_urn=urn,
            severity=severity,
            message=f"{rule} on {urn}",
            observed_at=utcnow() - timedelta(minutes=1),
        )
        return alarms.raise_alarm(session, tenant.id, signal).public_id


def ingest(world: World, tenant: Tenant, readings: list[Reading]) -> None:
    result = telemetry.ingest(world.database, tenant.id, readings)
    assert result.accepted == len(readings), result.reasons


@pytest.fixture
def territory(world: World) -> Iterator[dict[str, Any]]:
    mine = world.tenant("ville-a")
    theirs = world.tenant("ville-b")
    add_commune(world, mine)
    add_entities(
        world,
        mine,
        [
            *lights(3, prefix="centre", lon=5.05),
            *lights(2, prefix="est", lon=5.30),  # outside the commune
            registry.EntityDraft(
                type="RoadSegment",
                id=STREET,
                name="Grande Rue",
                location={"type": "LineString", "coordinates": [[5.04, 47.02], [5.05, 47.02]]},
            ),
            registry.EntityDraft(type="WasteContainer", id=BIN, location=point(5.051, 47.011)),
        ],
    )
    add_entities(world, theirs, lights(4, prefix="voisin", lon=5.05))
    # Two alarms on one lamp: the map shows the worse; a cleared one counts for nothing.
    raise_alarm(world, mine, ALARMED, Severity.MINOR, "lighting.minor")
    raise_alarm(world, mine, ALARMED, Severity.MAJOR, "lighting.major")
    raise_alarm(world, mine, WARNED, Severity.WARNING, "lighting.warning")
    raise_alarm(world, mine, QUIET, Severity.CRITICAL, "lighting.cleared")
    with world.database.session() as session:
        alarms.clear_alarm_condition(session, mine.id, "lighting.cleared", QUIET, utcnow())
    # The other tenant's lamp in alarm must not colour anything of mine.
    raise_alarm(world, theirs, "urn:ngsi-ld:Streetlight:voisin-000", Severity.CRITICAL, "x")
    now = utcnow()
    late = now - 4 * telemetry_state.silent_after("Streetlight")
    ingest(
        world,
        mine,
        [
            Reading(QUIET, "powerConsumption", late, 12.0, "WTT"),
            Reading(WARNED, "powerConsumption", now - timedelta(minutes=2), 40.0, "WTT"),
        ],
    )
    client = signed_in_client(world, world.account(mine, Role.OPERATOR))
    yield {"client": client, "world": world, "mine": mine, "theirs": theirs}


def get_state(client: Any, **params: str) -> dict[str, Any]:
    response = client.get("/map/state", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    body: dict[str, Any] = response.json()
    return body


def points_by_urn(answer: dict[str, Any]) -> dict[str, list[Any]]:
    assert answer["mode"] == "points"
    return {p[0]: p for p in answer["points"]}


def test_points_carry_each_entitys_state(territory: dict[str, Any]) -> None:
    answer = get_state(territory["client"], bbox=BOX, zoom="17", layers="lighting,waste,mobility")
    points = points_by_urn(answer)
    assert set(points) == {ALARMED, WARNED, QUIET, STREET, BIN}  # theirs are invisible
    assert points[ALARMED][5] == state_index("major")
    assert points[WARNED][5] == state_index("warning")
    assert points[QUIET][5] == state_index("silent")  # its alarm was cleared
    assert points[BIN][5] == state_index("normal")
    types = answer["types"]
    assert types[points[BIN][2]][:2] == ["WasteContainer", "waste"]
    assert points[ALARMED][1] == "Lampe centre-000"
    assert points[ALARMED][3:5] == [5.05, 47.01]
    # A street stays a line: its geometry comes along; points carry none.
    assert points[STREET][6]["type"] == "LineString"
    assert len(points[BIN]) == 6
    assert answer["counts"] == {"lighting": 3, "waste": 1, "mobility": 1}
    assert answer["total"] == 5


def test_layers_commune_and_state_filters(territory: dict[str, Any]) -> None:
    client = territory["client"]
    only_lights = get_state(client, bbox=WIDE, zoom="14", layers="lighting")
    assert len(only_lights["points"]) == 5
    in_commune = get_state(client, bbox=WIDE, zoom="14", layers="lighting", commune="39001")
    assert set(points_by_urn(in_commune)) == {ALARMED, WARNED, QUIET}
    severe = get_state(
        client, bbox=WIDE, zoom="14", layers="lighting,waste", state="major,critical"
    )
    assert set(points_by_urn(severe)) == {ALARMED}
    silent = get_state(client, bbox=WIDE, zoom="14", layers="lighting,waste", state="silent")
    assert set(points_by_urn(silent)) == {QUIET}
    calm = get_state(client, bbox=WIDE, zoom="14", layers="lighting,waste", state="normal")
    normal_ones = set(points_by_urn(calm))
    assert BIN in normal_ones and ALARMED not in normal_ones and QUIET not in normal_ones


def test_clusters_count_everything_and_keep_the_worst_state(
    territory: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(maplayers, "MAX_POINTS", 2)
    client = territory["client"]
    answer = get_state(client, bbox=WIDE, zoom="12", layers="lighting,waste,mobility")
    assert answer["mode"] == "cells"
    assert sum(cell[2] for cell in answer["cells"]) == answer["total"] == 7
    # The town centre's lamps, bin and street share a cell; the eastern lamps are apart.
    worst = max(answer["cells"], key=lambda cell: cell[3])
    assert worst[3] == state_index("major")
    assert worst[4] == 3  # major, warning and silent members need attention
    assert len(answer["cells"]) == 2
    width, _height = answer["cell"]
    assert width == pytest.approx(360 / (256 * 2**12) * maplayers.CELL_PIXELS)
    # Nearer the ground a smaller cell: still everything, in at least as many cells.
    closer = get_state(client, bbox=WIDE, zoom="15", layers="lighting,waste,mobility")
    assert closer["mode"] == "cells"
    assert sum(cell[2] for cell in closer["cells"]) == 7
    assert len(closer["cells"]) >= len(answer["cells"])
    # At street level points come back, however many (up to the hard limit).
    street = get_state(client, bbox=WIDE, zoom=str(maplayers.POINTS_ZOOM), layers="lighting")
    assert street["mode"] == "points" and len(street["points"]) == 5


def test_live_change_shows_on_the_next_read(territory: dict[str, Any]) -> None:
    client, world, mine = territory["client"], territory["world"], territory["mine"]
    raise_alarm(world, mine, BIN, Severity.CRITICAL, "waste.overflow")
    points = points_by_urn(get_state(client, bbox=BOX, zoom="17", layers="waste"))
    assert points[BIN][5] == state_index("critical")


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"zoom": "12"}, "bbox"),
        ({"bbox": "5,47,4,48", "zoom": "12"}, "bbox"),
        ({"bbox": BOX}, "zoom"),
        ({"bbox": BOX, "zoom": "ten"}, "zoom"),
        ({"bbox": BOX, "zoom": "23"}, "zoom"),
        ({"bbox": BOX, "zoom": "12", "layers": "volcanoes"}, "layers"),
        ({"bbox": BOX, "zoom": "12", "state": "sleepy"}, "state"),
        ({"bbox": BOX, "zoom": "12", "commune": "99999"}, "commune"),
    ],
)
def test_bad_parameters_are_refused_by_name(
    territory: dict[str, Any], params: dict[str, str], field: str
) -> None:
    response = territory["client"].get(
        "/map/state", params=params, headers={"Accept": "application/json"}
    )
    assert response.status_code == 422
    assert field in response.text


def test_other_tenant_sees_only_its_own(territory: dict[str, Any]) -> None:
    world, theirs = territory["world"], territory["theirs"]
    client = signed_in_client(world, world.account(theirs, Role.VIEWER))
    points = points_by_urn(get_state(client, bbox=BOX, zoom="17", layers="lighting"))
    assert set(points) == {f"urn:ngsi-ld:Streetlight:voisin-{i:03d}" for i in range(4)}
    assert points["urn:ngsi-ld:Streetlight:voisin-000"][5] == state_index("critical")
    others = {p[5] for urn, p in points.items() if not urn.endswith("voisin-000")}
    assert others == {state_index("normal")}


def test_anonymous_gets_no_state(world: World) -> None:
    client = TestClient(world.app)  # type: ignore[arg-type]
    response = client.get(
        "/map/state", params={"bbox": BOX, "zoom": "12"}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 401


def test_search_finds_assets_by_name_and_streets_by_address(territory: dict[str, Any]) -> None:
    client = territory["client"]
    found = client.get("/map/search", params={"q": "centre-001"}).json()["results"]
    assert [r["urn"] for r in found if r["kind"] == "entity"] == [WARNED]
    assert found[0]["bbox"] == [5.05, 47.0105, 5.05, 47.0105]
    address = client.get("/map/search", params={"q": "12 grande rue"}).json()["results"]
    places = [r for r in address if r["kind"] == "address"]
    assert places and places[0]["label"] == "Grande Rue"
    lon, lat = places[0]["bbox"][:2]
    assert 5.04 <= lon <= 5.05 and lat == pytest.approx(47.02)
    assert client.get("/map/search", params={"q": "voisin"}).json()["results"] == []
    empty = client.get("/map/search", params={"q": "  "}, headers={"Accept": "application/json"})
    assert empty.status_code == 422 and "q" in empty.text


# --- entity panel and charts ------------------------------------------------------------


def test_panel_shows_values_alarms_and_work_orders(territory: dict[str, Any]) -> None:
    client, world, mine = territory["client"], territory["world"], territory["mine"]
    with world.database.session() as session:
        order = interventions.create_work_order(
            session,
            mine.id,
            interventions.WorkOrderDraft(title="Remplacer la lampe", entity_urn=WARNED),
            created_by=None,
        )
        order_id = order.public_id
        alarm_id = (
            alarms.list_alarms(session, mine.id, alarms.AlarmFilter(entity_urn=WARNED))
            .items[0]
            .public_id
        )
    response = client.get(f"/entities/{WARNED}/panel", headers={"HX-Request": "true"})
    assert response.status_code == 200
    html = response.text
    assert "<html" not in html  # a fragment for the side panel
    assert "Lampe centre-001" in html
    assert "powerConsumption" in html and "40" in html
    assert f'href="/alarms/{alarm_id}"' in html
    assert f'href="/work-orders/{order_id}"' in html and "Remplacer la lampe" in html
    assert 'data-series-url="/entities/urn:ngsi-ld:Streetlight:centre-001/series"' in html
    assert f"/entities/{WARNED}#history" in html
    # The full page shows the same sections, and the CSV history.
    page = client.get(f"/entities/{WARNED}").text
    assert f'href="/work-orders/{order_id}"' in page and "export.csv" in page


def test_panel_tells_silence(territory: dict[str, Any]) -> None:
    html = territory["client"].get(f"/entities/{QUIET}/panel").text
    assert "is-silent" in html
    calm = territory["client"].get(f"/entities/{WARNED}/panel").text
    assert "is-silent" not in calm


def test_other_tenants_panel_and_series_are_not_found(territory: dict[str, Any]) -> None:
    client = territory["client"]
    urn = "urn:ngsi-ld:Streetlight:voisin-000"
    assert client.get(f"/entities/{urn}/panel").status_code == 404
    series = client.get(f"/entities/{urn}/series", headers={"Accept": "application/json"})
    assert series.status_code == 404


def hourly_readings(urn: str, hours: int) -> list[Reading]:
    """Three readings in each of the last `hours` whole hours, values known per hour."""
    top = utcnow().replace(minute=0, second=0, microsecond=0)
    return [
        Reading(urn, "powerConsumption", top - timedelta(hours=h, minutes=m), float(h * 10 + k))
        for h in range(1, hours + 1)
        for k, m in enumerate((50, 30, 10))
    ]


def test_chart_data_comes_from_rollups_by_period(territory: dict[str, Any]) -> None:
    client, world, mine = territory["client"], territory["world"], territory["mine"]
    readings = hourly_readings(BIN, 30)
    ingest(world, mine, readings)
    day = client.get(f"/entities/{BIN}/series", params={"period": "day"}).json()
    assert day["bucket"] == "PT1H" and day["period"] == "day"
    (chart,) = day["series"]
    assert chart["attribute"] == "powerConsumption"
    # Every bucket is the hour's mean, min and max of what was ingested in it.
    by_hour: dict[int, list[float]] = {}
    for reading in readings:
        start = int(reading.ts.replace(minute=0, second=0, microsecond=0).timestamp())
        by_hour.setdefault(start, []).append(reading.value)
    since = datetime.fromisoformat(day["from"]).timestamp()
    assert datetime.fromisoformat(day["to"]) - datetime.fromisoformat(day["from"]) == timedelta(
        days=1
    )
    assert chart["t"] == sorted(t for t in by_hour if t >= since)
    for t, mean, low, high in zip(
        chart["t"], chart["avg"], chart["min"], chart["max"], strict=True
    ):
        values = by_hour[t]
        assert mean == pytest.approx(sum(values) / len(values))
        assert (low, high) == (min(values), max(values))
    week = client.get(f"/entities/{BIN}/series", params={"period": "week"}).json()
    assert len(week["series"][0]["t"]) == len(by_hour)
    month = client.get(f"/entities/{BIN}/series", params={"period": "month"}).json()
    assert month["bucket"] == "P1D"
    daily = month["series"][0]
    assert sum(daily["max"]) >= max(r.value for r in readings)  # the highest is in a day
    assert max(daily["max"]) == max(r.value for r in readings)
    assert min(daily["min"]) == min(r.value for r in readings)


def test_chart_period_is_checked(territory: dict[str, Any]) -> None:
    response = territory["client"].get(
        f"/entities/{BIN}/series", params={"period": "year"}, headers={"Accept": "application/json"}
    )
    assert response.status_code == 422
    assert "period" in response.text


def test_many_flagged_entities_are_filtered_after_reading(
    territory: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Past the limit of identifiers in one query the box is read whole, same answer."""
    client = territory["client"]
    params = {"bbox": WIDE, "zoom": "14", "layers": "lighting,waste", "state": "major,silent"}
    narrow = points_by_urn(get_state(client, **params))
    monkeypatch.setattr(maplayers, "MAX_URNS_IN_QUERY", 1)
    wide = points_by_urn(get_state(client, **params))
    assert set(wide) == set(narrow) == {ALARMED, QUIET}
