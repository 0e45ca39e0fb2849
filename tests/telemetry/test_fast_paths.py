"""The columnar fast paths give the same answers as the plain ones, edge cases included."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import orjson
import pytest
from sqlalchemy import text

from territoire.db import Database
from territoire.telemetry import service, store
from territoire.telemetry.decoders import decode
from territoire.telemetry.records import Reading, ReadingColumns, StoredBatch, StoredReading
from territoire.tenancy.models import Role
from tests.conftest import World
from tests.telemetry.helpers import count_rows, entities, hour_ago, readings

FIVE_MIN = timedelta(minutes=5)


@pytest.mark.parametrize(
    "zone",
    ["UTC", "Europe/Paris", "America/St_Johns", "Asia/Kolkata", "Australia/Lord_Howe"],
)
def test_iso_times_match_isoformat_across_transitions(zone: str) -> None:
    tz = ZoneInfo(zone)
    start = store.to_ms(datetime(2024, 1, 1, tzinfo=UTC))
    hours = np.arange(start, start + 400 * 24 * store.HOUR_MS, store.HOUR_MS // 2)
    expected = [store.from_ms(ms).astimezone(tz).isoformat() for ms in hours.tolist()]
    assert service.iso_times(hours, tz) == expected


def test_within_batch_repeats_keep_the_last_value(database: Database, world: World) -> None:
    tenant = world.tenant("repeats")
    (urn,) = entities(database, tenant.id, 1)
    moment = hour_ago()
    batch = [
        Reading(urn, "powerConsumption", moment, 1.0, "WTT"),
        Reading(urn, "powerConsumption", moment + FIVE_MIN, 5.0, "WTT"),
        Reading(urn, "powerConsumption", moment, 2.0, "WTT"),
    ]
    result = service.ingest(database, tenant.id, batch)
    assert (result.accepted, result.stored) == (3, 2)
    with database.session() as session:
        sid = service.list_series(session, tenant.id)[0][0].id
        rows = service.observations(session, tenant.id, sid, moment, moment + 2 * FIVE_MIN, 10)
    assert [value for _ms, value in rows] == [2.0, 5.0]


def test_late_and_new_rows_in_one_batch(database: Database, world: World) -> None:
    """Rows older than the series' last time take the checked path, newer ones the fast
    one; both kinds in one batch, some of the old ones already stored."""
    tenant = world.tenant("late")
    urns = entities(database, tenant.id, 2)
    service.ingest(database, tenant.id, readings(urns[0], hour_ago(30), 6, FIVE_MIN))
    seen: list[StoredReading] = []

    def listener(_db: Database, _tenant: int, stored: Sequence[StoredReading]) -> None:
        seen.extend(stored)

    mixed = (
        readings(urns[0], hour_ago(0), 12, FIVE_MIN)  # 6 before, 6 already stored
        + readings(urns[0], hour_ago(60), 3, FIVE_MIN)  # after the last time
        + readings(urns[1], hour_ago(0), 4, FIVE_MIN)  # a series never written
    )
    service.batch_listeners.append(listener)
    try:
        result = service.ingest(database, tenant.id, mixed)
    finally:
        service.batch_listeners.remove(listener)
    assert (result.accepted, result.stored) == (19, 13)
    assert count_rows(database) == 6 + 13
    keys = [(s.series_id, s.ts) for s in seen]
    assert len(seen) == 13 and keys == sorted(set(keys))
    with database.session() as session:
        first = service.list_series(session, tenant.id, entity=urns[0])[0][0]
    assert first.last_ts == hour_ago(70) and first.last_value == 2.0


def test_rows_written_behind_ingest_are_still_found(database: Database, world: World) -> None:
    """A row stored without going through `ingest` (so the series' last time is behind)
    is detected, and the batch is redone row by row: nothing twice, nothing lost."""
    tenant = world.tenant("behind")
    (urn,) = entities(database, tenant.id, 1)
    service.ingest(database, tenant.id, readings(urn, hour_ago(0), 1, FIVE_MIN))
    with database.session() as session:
        sid = service.list_series(session, tenant.id)[0][0].id
        session.execute(
            text("INSERT INTO observation (series_id, ts, value) VALUES (:s, :t, 42.0)"),
            {"s": sid, "t": store.db_time(session, store.to_ms(hour_ago(10)))},
        )
    result = service.ingest(database, tenant.id, readings(urn, hour_ago(5), 3, FIVE_MIN))
    assert (result.accepted, result.stored) == (3, 2)
    with database.session() as session:
        rows = service.observations(session, tenant.id, sid, hour_ago(0), hour_ago(20), 10)
    assert [value for _ms, value in rows] == [0.0, 0.0, 42.0, 2.0]


def test_stored_batch_is_a_sequence_of_stored_readings() -> None:
    batch = StoredBatch(
        [3, 3, 4], [0, 1000, 0], [1.0, 2.0, 3.0], {3: ("urn:a", "x"), 4: ("urn:b", "y")}
    )
    assert len(batch) == 3
    assert batch[1] == StoredReading(
        3, "urn:a", "x", datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), 2.0
    )
    assert batch[-1].entity == "urn:b" and [r.value for r in batch[:2]] == [1.0, 2.0]
    assert list(batch) == [batch[0], batch[1], batch[2]]
    with pytest.raises(IndexError):
        batch[3]


def test_complete_and_general_json_paths_agree() -> None:
    urn = "urn:ngsi-ld:Streetlight:SL-1"
    items = [
        {"entity": urn, "attribute": "a", "ts": "2025-03-30T03:30:00+02:00", "value": 1},
        {
            "entity": urn,
            "attribute": "b",
            "ts": "2025-03-30T01:31:00Z",
            "value": 2.5,
            "unit": "WTT",
        },
    ]
    complete = decode("json", orjson.dumps(items), None).readings
    # One item without a time sends the whole batch down the general path.
    general = decode("json", orjson.dumps([*items, {"attribute": "c", "value": 3}]), None)
    assert complete == general.readings[:2]
    assert [r.ts for r in complete] == [
        datetime(2025, 3, 30, 1, 30, tzinfo=UTC),
        datetime(2025, 3, 30, 1, 31, tzinfo=UTC),
    ]
    # A series id present is honoured, not dropped by the fast path.
    with_series = decode("json", orjson.dumps([{**items[0], "series": 9}]), None).readings
    assert with_series[0].series_id == 9
    naive = decode("json", orjson.dumps([{**items[0], "ts": "2025-03-30T03:30:00"}]), None)
    assert naive.readings == [] and naive.rejections[0].reason == "naive_timestamp"
    # The general path (sent there by an item without a time) words it the same way.
    untimed = {key: value for key, value in items[1].items() if key != "ts"}
    slow = decode("json", orjson.dumps([{**items[0], "ts": "2025-03-30T03:30:00"}, untimed]), None)
    assert [r.reason for r in slow.rejections] == ["naive_timestamp"] and len(slow.readings) == 1
    assert slow.rejections[0].detail == naive.rejections[0].detail
    assert "2025-03-30T03:30:00" in naive.rejections[0].detail


def test_reading_columns_round_trip() -> None:
    columns = ReadingColumns()
    columns.append("urn:a", "x", 1000, 1.0, None)
    columns.append("", "y", 2000, 2.0, "WTT", series=7)
    assert columns.series == [None, 7]
    assert [r.series_id for r in columns.readings()] == [None, 7]
    assert len(columns.slice(1, 2)) == 1 and columns.slice(1, 2).entity == [""]


def test_aggregate_layouts_agree(database: Database, world: World) -> None:
    tenant = world.tenant("layouts")
    (urn,) = entities(database, tenant.id, 1)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=2)
    service.ingest(database, tenant.id, readings(urn, start, 2 * 288, FIVE_MIN))
    client = world.api(tenant, Role.OPERATOR)
    sid = client.get("/api/v1/series").json()["items"][0]["id"]
    params = {
        "from": (start + timedelta(minutes=7)).isoformat(),
        "to": (start + timedelta(days=1, hours=3, minutes=2)).isoformat(),
        "fn": "avg,count,min,max,sum",
        "tz": "Europe/Paris",
    }
    for period in ("PT1H", "P1D"):
        rows = client.get(
            f"/api/v1/series/{sid}/aggregate", params={**params, "period": period}
        ).json()
        columns = client.get(
            f"/api/v1/series/{sid}/aggregate",
            params={**params, "period": period, "layout": "columns"},
        ).json()
        buckets = rows["buckets"]
        assert [b["count"] for b in buckets] == columns["count"]
        assert [b["avg"] for b in buckets] == columns["avg"]
        starts = [datetime.fromisoformat(b["start"]) for b in buckets]
        assert [store.to_ms(s) for s in starts] == columns["t"]
        assert all(s.utcoffset() in {timedelta(hours=1), timedelta(hours=2)} for s in starts)
        assert sum(columns["count"]) == 24 * 12 + 3 * 12 + 1 - 2  # 7 min in, 2 min past
    response = client.get(f"/api/v1/series/{sid}/aggregate", params={"layout": "table"})
    assert response.status_code == 422 and response.json()["error"]["problems"]


def test_latest_values_filter_by_attribute_and_ids(database: Database, world: World) -> None:
    tenant = world.tenant("latest")
    urns = entities(database, tenant.id, 3)
    for index, urn in enumerate(urns):
        service.ingest(database, tenant.id, readings(urn, hour_ago(), index + 1, FIVE_MIN))
        service.ingest(
            database, tenant.id, readings(urn, hour_ago(), 1, FIVE_MIN, attribute="illuminance")
        )
    with database.session() as session:
        power = service.latest_columns(session, tenant.id, attribute="powerConsumption")
        some = service.latest_columns(session, tenant.id, series_ids=[power.id[2], power.id[0]])
    assert power.id == sorted(power.id) and power.value == [0.0, 1.0, 2.0]
    assert power.ts == [store.to_ms(hour_ago(5 * i)) for i in range(3)]
    assert some.id == [power.id[0], power.id[2]] and some.entity == [urns[0], urns[2]]


def test_reading_all_latest_values_leaves_the_planner_as_it_was(
    postgres_database: Database,
) -> None:
    """The read of all a tenant's series turns PostgreSQL's nested loops off and gives its
    sort more memory for itself only: the rest of the transaction plans as before (run on
    PostgreSQL whichever database the suite tests)."""
    database = postgres_database
    tenant = World(database, app=None).tenant("planner")
    urn = entities(database, tenant.id, 1)[0]
    service.ingest(database, tenant.id, readings(urn, hour_ago(), 2, FIVE_MIN))
    read = text("SELECT current_setting('enable_nestloop'), current_setting('work_mem')")
    with database.session() as session:
        before = tuple(session.execute(read).one())
        latest = service.latest_columns(session, tenant.id)
        assert tuple(session.execute(read).one()) == before and before[0] == "on"
    assert latest.entity == [urn] and latest.value == [1.0]


def test_senml_column_path_matches_record_by_record() -> None:
    urn, other = "urn:ngsi-ld:Streetlight:SL-1", "urn:ngsi-ld:Streetlight:SL-2"
    pack = [
        {"bn": f"{urn}/", "bt": 1743328800, "bu": "W", "bv": 10, "n": "powerConsumption", "v": 1},
        {"n": "powerConsumption", "t": 60, "v": 2},
        {"n": "illuminance", "u": "lx", "t": 120, "v": 3.5},
        {"bn": f"{other}/", "bt": -30, "bv": 0, "n": "powerConsumption", "v": 4},
        {"n": "powerConsumption", "v": 5, "t": -5},
    ]
    now = datetime(2025, 3, 30, 12, 0, tzinfo=UTC)
    fast = decode("senml", orjson.dumps(pack), None, now=now)
    # A record without `v` sends the whole pack record by record.
    slow = decode("senml", orjson.dumps([*pack, {"n": "dimmed", "vb": True}]), None, now=now)
    assert fast.rejections == [] and fast.readings == slow.readings[:5]
    base = datetime.fromtimestamp(1743328800, UTC)
    assert [(r.entity, r.attribute, r.ts, r.value, r.unit) for r in fast.readings] == [
        (urn, "powerConsumption", base, 11.0, "WTT"),
        (urn, "powerConsumption", base + timedelta(seconds=60), 12.0, "WTT"),
        (urn, "illuminance", base + timedelta(seconds=120), 13.5, "LUX"),
        (other, "powerConsumption", now - timedelta(seconds=30), 4.0, "WTT"),
        (other, "powerConsumption", now - timedelta(seconds=35), 5.0, "WTT"),
    ]
