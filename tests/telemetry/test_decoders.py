"""Decoders: plain JSON batch, SenML, ChirpStack v4 and The Things Stack v3."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import orjson

from territoire.telemetry.decoders import decode
from territoire.telemetry.records import DeviceInfo

NOW = datetime(2025, 3, 30, 12, 0, tzinfo=UTC)
URN = "urn:ngsi-ld:Streetlight:SL-1"


def device(mapping: dict | None = None) -> DeviceInfo:
    return DeviceInfo(1, 1, "0004a30b001c0530", URN, "chirpstack", mapping or {})


def test_json_batch_keeps_offsets_and_units() -> None:
    body = orjson.dumps(
        [
            {
                "entity": URN,
                "attribute": "powerConsumption",
                "ts": "2025-03-30T03:30:00+02:00",
                "value": 12,
                "unit": "WTT",
            },
            {"series": 7, "attribute": "x", "ts": 1743300000, "value": 1.5},
        ]
    )
    outcome = decode("json", body, None, now=NOW)
    assert outcome.rejections == []
    first, second = outcome.readings
    assert first.ts == datetime(2025, 3, 30, 1, 30, tzinfo=UTC)
    assert first.value == 12.0 and first.unit == "WTT"
    assert second.series_id == 7 and second.ts == datetime.fromtimestamp(1743300000, UTC)


def test_json_batch_refuses_bad_items_one_by_one() -> None:
    body = orjson.dumps(
        [
            {"entity": URN, "attribute": "a", "ts": "2025-03-30T10:00:00Z", "value": 1},
            {"entity": URN, "attribute": "a", "ts": "2025-03-30T10:05:00Z", "value": "high"},
            {"entity": URN, "attribute": "a", "ts": "2025-03-30T10:10:00", "value": 3},
            {"entity": URN, "attribute": "a", "ts": "yesterday", "value": 3},
            "not an object",
        ]
    )
    outcome = decode("json", body, None, now=NOW)
    assert [r.value for r in outcome.readings] == [1.0]
    assert sorted(r.reason for r in outcome.rejections) == [
        "bad_structure",
        "bad_timestamp",
        "naive_timestamp",
        "wrong_type",
    ]


def test_malformed_json_and_nan_literal_are_refused() -> None:
    for body in (b"[{", b'[{"entity": "x", "attribute": "a", "value": NaN}]', b"[1e999]"):
        outcome = decode("json", body, None, now=NOW)
        assert outcome.readings == []
        assert outcome.rejections[0].reason in {"malformed_json", "wrong_type", "bad_structure"}


def test_senml_resolves_base_fields_and_units() -> None:
    pack = [
        {"bn": f"{URN}/", "bt": 1743328800, "bu": "W", "n": "powerConsumption", "v": 50},
        {"n": "powerConsumption", "t": 60, "v": 55},
        {"n": "illuminance", "u": "lx", "t": 120, "v": 3.5},
        {"n": "status", "vs": "on"},
        {"n": "temperature", "u": "furlong", "v": 2},
        {"n": "dimmed", "vb": True},
    ]
    outcome = decode("senml", orjson.dumps(pack), None, now=NOW)
    got = [(r.entity, r.attribute, r.ts, r.value, r.unit) for r in outcome.readings]
    base = datetime.fromtimestamp(1743328800, UTC)
    assert got == [
        (URN, "powerConsumption", base, 50.0, "WTT"),
        (URN, "powerConsumption", base + timedelta(seconds=60), 55.0, "WTT"),
        (URN, "illuminance", base + timedelta(seconds=120), 3.5, "LUX"),
        (URN, "dimmed", base, 1.0, "WTT"),
    ]
    assert sorted(r.reason for r in outcome.rejections) == ["non_numeric", "unknown_unit"]


def test_senml_relative_time_and_device_mapping() -> None:
    mapped = device({"temp": {"attribute": "temperature", "unit": "CEL"}})
    pack = [
        {"bn": "urn:dev:mac:0024befffe804ff1:", "n": "temp", "v": 21.5, "t": -30},
        {"n": "rssi", "v": -80},
    ]
    outcome = decode("senml", orjson.dumps(pack), mapped, now=NOW)
    assert [(r.entity, r.attribute, r.unit, r.ts) for r in outcome.readings] == [
        (URN, "temperature", "CEL", NOW - timedelta(seconds=30))
    ]
    assert outcome.rejections == []  # unmapped fields of a mapped device are ignored


def test_chirpstack_v4_uplink() -> None:
    event = {
        "deduplicationId": "3ac7e3c4-4401-4b8d-9386-a5c902f9202d",
        "time": "2025-03-30T09:00:00.123+00:00",
        "deviceInfo": {"tenantId": "52f14cd4", "devEui": "0004A30B001C0530", "deviceName": "sl-1"},
        "fCnt": 10,
        "fPort": 1,
        "data": "AQID",
        "object": {"power": 42, "nested": {"lux": 3}, "label": "ok"},
    }
    mapping = {
        "power": {"attribute": "powerConsumption", "unit": "WTT"},
        "nested.lux": {"attribute": "illuminance", "scale": 10},
    }
    outcome = decode("chirpstack", orjson.dumps(event), device(mapping), now=NOW)
    got = {(r.attribute, r.value, r.unit) for r in outcome.readings}
    assert got == {("powerConsumption", 42.0, "WTT"), ("illuminance", 30.0, None)}
    assert outcome.readings[0].ts == datetime(2025, 3, 30, 9, 0, 0, 123000, tzinfo=UTC)


def test_chirpstack_without_decoded_object_is_refused() -> None:
    event = {"deviceInfo": {"devEui": "0004a30b001c0530"}, "data": "AQID"}
    outcome = decode("chirpstack", orjson.dumps(event), device(), now=NOW)
    assert outcome.readings == [] and outcome.rejections[0].reason == "no_decoded_payload"


def test_tts_v3_uplink_without_mapping_uses_field_names() -> None:
    event = {
        "end_device_ids": {
            "device_id": "dev1",
            "application_ids": {"application_id": "app1"},
            "dev_eui": "0004A30B001C0530",
        },
        "received_at": "2025-03-30T10:00:00Z",
        "uplink_message": {
            "f_port": 1,
            "frm_payload": "AQID",
            "decoded_payload": {"fillingLevel": 0.8, "battery volts": 3.1},
        },
    }
    outcome = decode("tts", orjson.dumps(event), device(), now=NOW)
    assert [(r.attribute, r.value, r.ts) for r in outcome.readings] == [
        ("fillingLevel", 0.8, datetime(2025, 3, 30, 10, tzinfo=UTC))
    ]
    assert [r.reason for r in outcome.rejections] == ["no_mapping"]


def test_unknown_format() -> None:
    outcome = decode("xml", b"<a/>", None, now=NOW)
    assert outcome.rejections[0].reason == "unsupported_format"


def _columns(payload: list[dict[str, object]]) -> list[tuple[object, ...]]:
    out = decode("senml", orjson.dumps(payload), None, now=NOW)
    c = out.columns
    return list(zip(c.entity, c.attribute, c.ms, c.value, c.unit, strict=True))


def test_senml_packs_decode_alike_in_columns_and_record_by_record() -> None:
    """The column paths' shortcuts (one name per base name, units only from base fields,
    times only from `t` or only from `bt`) against the record-by-record path, which a
    string value anywhere in the pack sends the pack to. Packs of flat records take their
    own column path; a field beyond those (a version, or one SenML does not define, which
    is ignored) sends them to the general one."""
    t0 = NOW.timestamp() - 3600
    packs: list[list[dict[str, object]]] = [
        # Many entities, one attribute, own times: the bench's and gateways' shape.
        [
            {"bn": f"urn:ngsi-ld:Streetlight:s{i}/", "n": "powerConsumption", "u": "W", "t": t0}
            | {"v": float(i)}
            for i in range(6)
        ],
        # One entity, several attributes, base time and unit, some own units.
        [
            {"bn": "urn:ngsi-ld:Sensor:a/", "bt": t0, "bu": "Cel", "n": "temperature", "v": 20},
            {"n": "humidity", "u": "%RH", "v": 40, "t": 60},
            {"n": "temperature", "v": 21, "t": 120},
            {"bn": "urn:ngsi-ld:Sensor:b/", "n": "temperature", "v": 19},
        ],
        # Base names only, without a suffix.
        [{"bn": f"urn:ngsi-ld:Sensor:c{i}/temperature", "u": "Cel", "v": i} for i in range(3)],
    ]
    for pack in packs:
        fast = _columns(pack)
        slow = _columns([*pack, {"n": "label", "vs": "text"}])
        versioned = _columns([{**pack[0], "bver": 10}, *pack[1:]])
        extended = _columns([*pack[:-1], {**pack[-1], "site": "depot"}])
        assert len(fast) == len(pack)
        assert fast == slow == versioned == extended


def test_an_empty_senml_pack_is_nothing_refused() -> None:
    out = decode("senml", b"[]", None, now=NOW)
    assert len(out.columns) == 0 and out.rejections == []
