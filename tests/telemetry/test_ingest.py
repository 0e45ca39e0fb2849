"""Ingestion service, store, rollups and queries, on the real database of the run."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from territoire.db import Database
from territoire.errors import NotFound
from territoire.telemetry import service, store
from territoire.telemetry.records import Reading, StoredReading
from tests.conftest import World
from tests.telemetry.helpers import count_rows, entities, hour_ago, readings

FIVE_MIN = timedelta(minutes=5)


def test_ingest_stores_batch_and_last_value(database: Database, world: World) -> None:
    tenant = world.tenant("clairval")
    (urn,) = entities(database, tenant.id, 1)
    batch = readings(urn, hour_ago(), 24, FIVE_MIN)
    result = service.ingest(database, tenant.id, batch)
    assert (result.accepted, result.rejected, result.stored) == (24, 0, 24)
    with database.session() as session:
        (info,), total = service.list_series(session, tenant.id)
    assert total == 1 and info.unit == "WTT"
    assert info.last_value == 23.0 and info.last_ts == batch[-1].ts


def test_replay_is_idempotent_and_listeners_see_only_new_rows(
    database: Database, world: World
) -> None:
    tenant = world.tenant("replay")
    (urn,) = entities(database, tenant.id, 1)
    seen: list[StoredReading] = []

    def listener(_db: Database, tenant_id: int, stored: Sequence[StoredReading]) -> None:
        assert tenant_id == tenant.id
        seen.extend(stored)

    service.batch_listeners.append(listener)
    try:
        first = readings(urn, hour_ago(), 10, FIVE_MIN)
        service.ingest(database, tenant.id, first)
        overlap = readings(urn, hour_ago(25), 10, FIVE_MIN)  # 5 old + 5 new
        result = service.ingest(database, tenant.id, overlap)
    finally:
        service.batch_listeners.remove(listener)
    assert (result.accepted, result.stored) == (10, 5)
    assert count_rows(database) == 15
    assert len(seen) == 15 and len({(s.series_id, s.ts) for s in seen}) == 15
    assert seen[0].entity == urn and seen[0].attribute == "powerConsumption"


def test_bad_readings_are_refused_with_reasons(database: Database, world: World) -> None:
    tenant = world.tenant("strict")
    other = world.tenant("other")
    (urn,) = entities(database, tenant.id, 1)
    (foreign,) = entities(database, other.id, 1, "WasteContainer")
    now = datetime.now(UTC)
    batch = [
        Reading(urn, "powerConsumption", now, 1.0, "WTT"),
        Reading(urn, "powerConsumption", now - timedelta(seconds=1), math.nan, "WTT"),
        Reading(urn, "powerConsumption", now - timedelta(seconds=2), math.inf, "WTT"),
        Reading(urn, "powerConsumption", now + timedelta(days=1), 1.0, "WTT"),
        Reading(urn, "powerConsumption", now - timedelta(days=3000), 1.0, "WTT"),
        Reading(urn, "powerConsumption", now - timedelta(seconds=3), 1.0, "XYZ"),
        Reading(urn, "powerConsumption", now - timedelta(seconds=4), 1.0, "KWT"),
        Reading(foreign, "fillingLevel", now, 0.5),
        Reading("not-a-urn", "x", now, 1.0),
        Reading(urn, "bad name", now, 1.0),
        Reading("", "x", now, 1.0, series_id=999_999),
    ]
    result = service.ingest(database, tenant.id, batch, source="test")
    assert (result.accepted, result.stored, result.rejected) == (1, 1, 10)
    assert result.reasons == {
        "non_finite": 2,
        "future_timestamp": 1,
        "too_old": 1,
        "unknown_unit": 1,
        "unit_mismatch": 1,
        "unknown_entity": 1,
        "bad_entity": 1,
        "bad_attribute": 1,
        "unknown_series": 1,
    }
    with database.session() as session:
        letters = service.dead_letters(session, tenant.id)
        counts = {c.reason: c.count for c in service.rejection_counts(session, tenant.id)}
        assert service.dead_letters(session, other.id) == []
    assert len(letters) == 10 and counts == result.reasons
    assert count_rows(database, "telemetry_series") == 1  # nothing created for the other tenant


def test_dead_letters_are_bounded(
    database: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = world.tenant("bounded")
    monkeypatch.setattr(service, "DEAD_LETTER_LIMIT", 30)
    bad = [Reading("urn:ngsi-ld:Streetlight:none", "a", datetime.now(UTC), 1.0)] * 25
    for _ in range(3):
        service.ingest(database, tenant.id, bad)
    with database.session() as session:
        kept = service.dead_letters(session, tenant.id, limit=1000)
        counts = {c.reason: c.count for c in service.rejection_counts(session, tenant.id)}
    assert len(kept) == 30
    assert counts == {"unknown_entity": 75}


def test_series_are_scoped_by_tenant(database: Database, world: World) -> None:
    a, b = world.tenant("a-town"), world.tenant("b-town")
    (urn,) = entities(database, a.id, 1)
    service.ingest(database, a.id, readings(urn, hour_ago(), 2, FIVE_MIN))
    with database.session() as session:
        (info,), _ = service.list_series(session, a.id)
        with pytest.raises(NotFound):
            service.get_series(session, b.id, info.id)
    stolen = service.ingest(database, b.id, [Reading("", "x", hour_ago(), 9.0, series_id=info.id)])
    assert stolen.reasons == {"unknown_series": 1} and count_rows(database) == 2


def test_hourly_and_daily_rollups_follow_late_and_replayed_data(
    database: Database, world: World
) -> None:
    tenant = world.tenant("rollups")
    (urn,) = entities(database, tenant.id, 1)
    start = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=2)
    service.ingest(database, tenant.id, readings(urn, start, 48, FIVE_MIN))  # 4 hours
    late = [Reading(urn, "powerConsumption", start + timedelta(minutes=2), 100.0, "WTT")]
    service.ingest(database, tenant.id, late)
    service.ingest(database, tenant.id, readings(urn, start, 48, FIVE_MIN))  # replay: no change
    assert service.refresh_rollups(database, tenant_id=tenant.id) == 1
    with database.session() as session:
        hourly = session.execute(
            text("SELECT count, sum, min, max FROM observation_hourly ORDER BY bucket")
        ).all()
        daily = session.execute(text("SELECT count, sum, min, max FROM observation_daily")).all()
    assert [tuple(h) for h in hourly] == [
        (13, sum(range(12)) + 100.0, 0.0, 100.0),
        (12, float(sum(range(12, 24))), 12.0, 23.0),
        (12, float(sum(range(24, 36))), 24.0, 35.0),
        (12, float(sum(range(36, 48))), 36.0, 47.0),
    ]
    assert [tuple(d) for d in daily] == [(49, sum(range(48)) + 100.0, 0.0, 100.0)]


def test_aggregate_matches_raw_with_zones_and_unaligned_edges(
    database: Database, world: World
) -> None:
    tenant = world.tenant("aggregate")
    (urn,) = entities(database, tenant.id, 1)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=3)
    batch = readings(urn, start, 3 * 288, FIVE_MIN)
    service.ingest(database, tenant.id, batch)
    paris = ZoneInfo("Europe/Paris")
    first = start + timedelta(minutes=17)  # not aligned: the edges come from raw rows
    last = start + timedelta(days=2, hours=5, minutes=3)
    with database.session() as session:
        sid = service.list_series(session, tenant.id)[0][0].id
        hourly = service.aggregate(session, tenant.id, sid, first, last, "PT1H", paris)
        daily = service.aggregate(
            session, tenant.id, sid, first, last.astimezone(paris), "P1D", paris
        )
        utc_daily = service.aggregate(session, tenant.id, sid, first, last, "P1D", ZoneInfo("UTC"))
    inside = [r for r in batch if first <= r.ts < last]
    for buckets in (hourly, daily, utc_daily):
        assert sum(b.count for b in buckets) == len(inside)
        assert math.isclose(sum(b.sum for b in buckets), sum(r.value for r in inside))
    expected_hour = [
        r.value for r in inside if start + timedelta(hours=5) <= r.ts < start + timedelta(hours=6)
    ]
    bucket = next(b for b in hourly if b.start == start + timedelta(hours=5))
    assert (bucket.count, bucket.min, bucket.max) == (12, min(expected_hour), max(expected_hour))
    for b in daily:
        assert b.start.tzinfo is paris and (b.start.hour, b.start.minute) == (0, 0)
        local_day = [r.value for r in inside if r.ts.astimezone(paris).date() == b.start.date()]
        assert b.count == len(local_day) and b.max == max(local_day)


def test_observations_range_and_latest(database: Database, world: World) -> None:
    tenant = world.tenant("queries")
    urns = entities(database, tenant.id, 3)
    for urn in urns:
        service.ingest(database, tenant.id, readings(urn, hour_ago(), 12, FIVE_MIN))
    with database.session() as session:
        series, _ = service.list_series(session, tenant.id)
        rows = service.observations(
            session, tenant.id, series[0].id, hour_ago(10), hour_ago(30), 100
        )
        latest = service.latest_values(session, tenant.id, series_ids=[s.id for s in series[:2]])
    assert [store.from_ms(ms) for ms, _ in rows] == [hour_ago(m) for m in (10, 15, 20, 25)]
    assert [(r[0], r[5], r[4]) for r in latest] == [
        (s.id, 11.0, store.to_ms(hour_ago(55))) for s in series[:2]
    ]


def test_ensure_series_needs_an_existing_entity(database: Database, world: World) -> None:
    tenant = world.tenant("ensure")
    (urn,) = entities(database, tenant.id, 1)
    with database.session() as session:
        sid = service.ensure_series(session, tenant.id, urn, "flow", "MQH")
        assert service.ensure_series(session, tenant.id, urn, "flow", "MQH") == sid
        with pytest.raises(NotFound):
            service.ensure_series(session, tenant.id, "urn:ngsi-ld:Streetlight:ghost", "flow", None)
