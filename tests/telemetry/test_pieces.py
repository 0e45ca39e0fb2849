"""A batch decoded and stored piece by piece (decision 0216) gives exactly what the whole
batch gives: the same readings and refusals, SenML base fields carried over the cuts,
the same rows stored, and the careful path when a piece meets stored rows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import text

from territoire.db import Database
from territoire.telemetry import service
from territoire.telemetry.decoders import decode, decode_pieces
from territoire.telemetry.records import DecodeOutcome
from tests.conftest import World
from tests.telemetry.helpers import count_rows, entities, hour_ago

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


def _joined(pieces: list[DecodeOutcome]) -> tuple[list[tuple[object, ...]], list[str]]:
    readings = [(r.entity, r.attribute, r.ts, r.value, r.unit) for p in pieces for r in p.readings]
    return readings, [f"{j.reason}: {j.detail}" for p in pieces for j in p.rejections]


def _reasons(refusals: list[str]) -> list[str]:
    return [refusal.split(":")[0] for refusal in refusals]


def _whole(payload_format: str, body: bytes) -> tuple[list[tuple[object, ...]], list[str]]:
    return _joined([decode(payload_format, body, None, now=NOW)])


SENML_PACK = [
    {"bn": "urn:ngsi-ld:Streetlight:a/", "bt": 1.77e9, "bu": "W", "n": "power", "v": 1},
    {"n": "power", "t": 60, "v": 2},
    {"n": "power", "t": 120, "v": 3},  # a cut falls here with size 2: bn, bt, bu carry
    {"bn": "urn:ngsi-ld:Streetlight:b/", "n": "power", "v": 4, "u": "kW"},
    {"n": "power", "t": 60, "v": 5},
    {"bv": 10, "n": "power", "t": 120, "v": 6},
    {"n": "power", "t": 180, "v": 7},  # base value 10 carried: 17
    {"bt": 1.78e9, "n": "power", "v": 8},
    {"n": "power", "v": "x"},  # refused, in the last piece
]


@pytest.mark.parametrize("size", [1, 2, 3, 4, 100])
def test_senml_pieces_carry_the_base_fields(size: int) -> None:
    body = orjson.dumps(SENML_PACK)
    pieces = list(decode_pieces("senml", body, None, now=NOW, size=size))
    readings, refusals = _joined(pieces)
    assert (readings, refusals) == _whole("senml", body)
    values = [r[3] for r in readings]
    assert values == [1.0, 2.0, 3.0, 4.0, 5.0, 16.0, 17.0, 18.0]
    assert [r[4] for r in readings[2:5]] == ["WTT", "KWT", "WTT"]
    assert [refusal.split(":")[0] for refusal in refusals] == ["wrong_type"]
    assert readings[4][0] == "urn:ngsi-ld:Streetlight:b"
    assert readings[7][2] == datetime.fromtimestamp(1.78e9, UTC)
    assert (len(pieces) > 1) == (size < len(SENML_PACK))


def test_flat_senml_pieces_carry_base_name_unit_and_time() -> None:
    pack = [{"bn": "urn:ngsi-ld:Streetlight:c/", "bt": 1.77e9, "bu": "W", "n": "p", "v": 1}]
    pack += [{"n": "p", "t": float(i), "v": float(i)} for i in range(1, 9)]
    body = orjson.dumps(pack)
    pieces = list(decode_pieces("senml", body, None, now=NOW, size=4))
    assert len(pieces) == 3  # a short first piece, then pieces of 4
    readings, refusals = _joined(pieces)
    assert (readings, refusals) == _whole("senml", body)
    assert {r[0] for r in readings} == {"urn:ngsi-ld:Streetlight:c"}
    assert {r[4] for r in readings} == {"WTT"}
    assert readings[-1][2] == datetime.fromtimestamp(1.77e9 + 8, UTC)


def test_an_unsupported_version_refuses_the_rest_of_the_pack_as_a_whole_pack_does() -> None:
    pack = [{"bn": "urn:ngsi-ld:Streetlight:d/", "bt": 1.77e9, "n": "p", "v": i} for i in range(5)]
    pack[2]["bver"] = 99
    body = orjson.dumps(pack)
    pieces = list(decode_pieces("senml", body, None, now=NOW, size=1))
    assert _joined(pieces) == _whole("senml", body)
    readings, refusals = _joined(pieces)
    assert [r[3] for r in readings] == [0.0, 1.0]
    assert refusals == [
        "unsupported_version: SenML version 99 is not supported",
        "pack_cut_short: an earlier record of the pack could not be read",
        "pack_cut_short: an earlier record of the pack could not be read",
    ]


@pytest.mark.parametrize("size", [1, 2, 100])
def test_a_badly_typed_record_is_refused_alone_unless_it_sets_base_fields(size: int) -> None:
    pack: list[dict[str, object]] = [
        {"bn": "urn:ngsi-ld:Streetlight:f/", "bt": 1.77e9, "n": "p", "v": 0},
        {"n": "p", "t": 1, "v": "high"},
        {"n": "p", "t": 2, "v": 2},
        {"n": "p", "t": 3, "v": 7},
        {"bn": 12, "n": "p", "v": 8},  # names after this one would be guesses
        {"n": "p", "t": 4, "v": 9},
    ]
    body = orjson.dumps(pack)
    pieces = list(decode_pieces("senml", body, None, now=NOW, size=size))
    assert _joined(pieces) == _whole("senml", body)
    readings, refusals = _joined(pieces)
    assert [r[3] for r in readings] == [0.0, 2.0, 7.0]
    assert [refusal.split(":")[0] for refusal in refusals] == [
        "wrong_type",
        "wrong_type",
        "pack_cut_short",
    ]


def test_json_pieces_refuse_what_the_whole_batch_refuses() -> None:
    items: list[dict[str, object]] = [
        {
            "entity": f"urn:ngsi-ld:Streetlight:e{i}",
            "attribute": "power",
            "ts": "2026-03-01T10:00:00+01:00",
            "value": i,
        }
        for i in range(7)
    ]
    items[3]["value"] = "high"
    items[5]["ts"] = "2026-03-01T10:00:00"
    body = orjson.dumps(items)
    pieces = list(decode_pieces("json", body, None, now=NOW, size=2))
    assert len(pieces) == 4
    readings, refusals = _joined(pieces)
    whole_readings, whole_refusals = _whole("json", body)
    assert readings == whole_readings and len(readings) == 5
    # The same reasons; a piece without a badly typed value words one of them differently.
    assert _reasons(refusals) == _reasons(whole_refusals) == ["wrong_type", "naive_timestamp"]


@pytest.mark.parametrize("body", [b"[1, 2", b'{"entity": "x"}', b"not json", b"[]", b'[{"v": 1}]'])
def test_what_is_not_a_long_array_is_one_piece(body: bytes) -> None:
    for payload_format in ("json", "senml"):
        pieces = list(decode_pieces(payload_format, body, None, now=NOW, size=1))
        assert len(pieces) == 1
        assert _joined(pieces) == _whole(payload_format, body)


def _batch(urns: list[str], start: datetime, steps: int) -> list[dict[str, object]]:
    return [
        {
            "entity": urn,
            "attribute": "powerConsumption",
            "ts": (start + timedelta(minutes=5 * step)).isoformat(),
            "value": float(step),
            "unit": "WTT",
        }
        for step in range(steps)
        for urn in urns
    ]


def _ingest(database: Database, tenant_id: int, items: list[dict[str, object]], size: int):  # type: ignore[no-untyped-def]
    pieces = decode_pieces("json", orjson.dumps(items), None, size=size)
    return service.ingest_decoded(database, tenant_id, pieces, source="http")


def _stored(database: Database) -> list[tuple[object, ...]]:
    with database.engine.connect() as connection:
        rows = connection.execute(
            text(
                "SELECT s.entity, o.value FROM observation o "
                "JOIN telemetry_series s ON s.id = o.series_id ORDER BY s.entity, o.ts"
            )
        )
        return [tuple(row) for row in rows]


def test_pieces_store_what_the_whole_batch_stores(database: Database, world: World) -> None:
    tenant = world.tenant("pieces")
    urns = entities(database, tenant.id, 4)
    first = _ingest(database, tenant.id, _batch(urns[:2], hour_ago(), 3), size=2)
    assert (first.accepted, first.stored, first.rejected) == (6, 6, 0)
    # Known series in the first pieces, two new ones after: the COPY stops for their
    # creation and goes on.
    items = _batch(urns[:2], hour_ago(15), 3) + _batch(urns[2:], hour_ago(15), 3)
    items.append({"entity": "urn:ngsi-ld:Streetlight:nowhere", "attribute": "x", "value": 1})
    result = _ingest(database, tenant.id, items, size=3)
    assert (result.accepted, result.stored, result.rejected) == (12, 12, 1)
    assert count_rows(database) == 18
    with database.session() as session:
        latest = service.latest_values(session, tenant.id)
        reasons = {c.reason: c.count for c in service.rejection_counts(session, tenant.id)}
    assert {entity: value for _id, entity, _a, _u, _ms, value in latest} == dict.fromkeys(urns, 2.0)
    assert reasons == {"unknown_entity": 1}


def test_a_replayed_or_repeated_reading_across_pieces_is_stored_once_with_the_last_value(
    database: Database, world: World
) -> None:
    tenant = world.tenant("replays")
    urns = entities(database, tenant.id, 2)
    items = _batch(urns, hour_ago(), 4)
    assert _ingest(database, tenant.id, items, size=3).stored == 8
    replay = _ingest(database, tenant.id, items, size=3)
    assert (replay.accepted, replay.stored) == (8, 0)
    # The same series and time in the first and the last piece: the last one given wins.
    repeated = _batch(urns, hour_ago(60), 2)
    repeated.append({**repeated[0], "value": 99.0})
    result = _ingest(database, tenant.id, repeated, size=2)
    assert (result.accepted, result.stored) == (5, 4)
    assert count_rows(database) == 12
    stored = dict.fromkeys(urns, 0.0)
    for entity, value in _stored(database):
        stored[entity] = max(stored[entity], value)  # type: ignore[index, call-overload]
    assert stored[urns[0]] == 99.0
    with database.engine.connect() as connection:
        values = connection.execute(
            text(
                "SELECT count(*) FROM observation o JOIN telemetry_series s "
                "ON s.id = o.series_id WHERE s.entity = :e AND o.value = 99"
            ),
            {"e": urns[0]},
        ).scalar_one()
    assert values == 1
