"""Payload decoders: plain JSON batch, SenML (RFC 8428 JSON), ChirpStack v4 uplink events
and The Things Stack v3 uplinks.

Each turns bytes into `Reading`s plus `Rejection`s with a reason. The common case is
decoded in one msgspec pass into typed structs; only when that fails is the payload
walked item by item, so one bad reading is refused without refusing its neighbours.
Checks that apply to every path (finite value, time window, unit, names) live in
`service.ingest`, so readings given directly to `ingest` get them too.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec

from territoire.telemetry import units
from territoire.telemetry.records import (
    ATTRIBUTE_PATTERN,
    DecodeOutcome,
    DeviceLike,
    MappingTarget,
    Reading,
)

SENML_RELATIVE_LIMIT = 2**28  # RFC 8428: smaller times are relative to "now"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class BatchItem(msgspec.Struct, forbid_unknown_fields=False):
    value: float
    attribute: str | None = None
    entity: str | None = None
    series: int | None = None
    ts: datetime | None = None
    unit: str | None = None


class SenMLRecord(msgspec.Struct, forbid_unknown_fields=False):
    bn: str | None = None
    bt: float | None = None
    bu: str | None = None
    bv: float | None = None
    bs: float | None = None
    bver: int | None = None
    n: str | None = None
    u: str | None = None
    v: float | None = None
    vs: str | None = None
    vb: bool | None = None
    vd: str | None = None
    s: float | None = None
    t: float | None = None
    ut: float | None = None


_batch_decoder = msgspec.json.Decoder(list[BatchItem])
_senml_decoder = msgspec.json.Decoder(list[SenMLRecord])
_any_decoder = msgspec.json.Decoder()


def decode(
    payload_format: str,
    body: bytes,
    device: DeviceLike | None,
    *,
    now: datetime | None = None,
) -> DecodeOutcome:
    """Decode one payload. `device` gives the default entity and the field mapping."""
    decoder = DECODERS.get(payload_format)
    outcome = DecodeOutcome()
    if decoder is None:
        outcome.reject(
            "unsupported_format",
            f"unknown payload format {payload_format!r}; use one of {', '.join(DECODERS)}",
        )
        return outcome
    decoder(body, device, now or datetime.now(UTC), outcome)
    return outcome


# --- plain JSON ----------------------------------------------------------------------


def decode_json(body: bytes, device: DeviceLike | None, now: datetime, out: DecodeOutcome) -> None:
    """`[{entity|series, attribute, ts, value, unit?}]`; with a device, entity may be left
    out, and a single object `{"ts": …, "<field>": <number>, …}` is read through its mapping."""
    if body.lstrip()[:1] == b"[":
        try:
            items = _batch_decoder.decode(body)
        except msgspec.ValidationError:
            _decode_json_slowly(body, device, now, out)
            return
        except msgspec.DecodeError as error:
            out.reject("malformed_json", f"not valid JSON: {error}", body[:200])
            return
        default_entity = device.entity if device is not None else ""
        for item in items:
            _append_batch_item(item, default_entity, now, out)
        return
    parsed = _parse_any(body, out)
    if parsed is None:
        return
    if isinstance(parsed, dict) and device is not None:
        ts = time_field(parsed.pop("ts", None), now, out)
        if ts is not None:
            fields_to_readings(parsed, ts, device, out)
        return
    out.reject(
        "bad_structure",
        "a JSON batch is an array of {entity, attribute, ts, value} objects",
        body[:200],
    )


def _append_batch_item(
    item: BatchItem, default_entity: str, now: datetime, out: DecodeOutcome
) -> None:
    if item.attribute is None:
        out.reject("bad_structure", "a reading needs an 'attribute'", item)
        return
    if item.ts is None:
        ts = now
    elif item.ts.tzinfo is None:
        out.reject("naive_timestamp", "ts needs a UTC offset, e.g. 2025-01-31T10:00:00+01:00", item)
        return
    else:
        ts = item.ts
    entity = item.entity or default_entity
    if not entity and item.series is None:
        out.reject("bad_structure", "a reading needs an 'entity' or a 'series' id", item)
        return
    out.readings.append(Reading(entity, item.attribute, ts, item.value, item.unit, item.series))


def _decode_json_slowly(
    body: bytes, device: DeviceLike | None, now: datetime, out: DecodeOutcome
) -> None:
    parsed = _parse_any(body, out)
    if not isinstance(parsed, list):
        return
    default_entity = device.entity if device is not None else ""
    for raw in parsed:
        if not isinstance(raw, dict):
            out.reject("bad_structure", "each reading must be a JSON object", raw)
            continue
        value = _number(raw.get("value"))
        if value is None:
            out.reject("wrong_type", "value must be a number", raw)
            continue
        series = raw.get("series")
        if series is not None and (not isinstance(series, int) or isinstance(series, bool)):
            out.reject("wrong_type", "series must be an integer id", raw)
            continue
        attribute, entity, unit = raw.get("attribute"), raw.get("entity"), raw.get("unit")
        if not isinstance(attribute, str) or not isinstance(entity or "", str):
            out.reject("wrong_type", "attribute and entity must be strings", raw)
            continue
        if unit is not None and not isinstance(unit, str):
            out.reject("wrong_type", "unit must be a string code", raw)
            continue
        ts = time_field(raw.get("ts"), now, out, raw)
        if ts is None:
            continue
        entity = entity or default_entity
        if not entity and series is None:
            out.reject("bad_structure", "a reading needs an 'entity' or a 'series' id", raw)
            continue
        out.readings.append(Reading(entity, attribute, ts, value, unit, series))


# --- SenML ---------------------------------------------------------------------------


def decode_senml(body: bytes, device: DeviceLike | None, now: datetime, out: DecodeOutcome) -> None:
    try:
        records = _senml_decoder.decode(body)
    except msgspec.ValidationError as error:
        out.reject("wrong_type", f"not a SenML pack: {error}", body[:200])
        return
    except msgspec.DecodeError as error:
        out.reject("malformed_json", f"not valid JSON: {error}", body[:200])
        return
    base_name, base_unit, base_time, base_value, base_sum = "", None, 0.0, 0.0, 0.0
    for record in records:
        if record.bver is not None and record.bver > 10:
            out.reject("unsupported_version", f"SenML version {record.bver} is not supported")
            return
        base_name = record.bn if record.bn is not None else base_name
        base_unit = record.bu if record.bu is not None else base_unit
        base_time = record.bt if record.bt is not None else base_time
        base_value = record.bv if record.bv is not None else base_value
        base_sum = record.bs if record.bs is not None else base_sum
        _append_senml(
            record, (base_name, base_unit, base_time, base_value, base_sum), device, now, out
        )


def _append_senml(
    record: SenMLRecord,
    base: tuple[str, str | None, float, float, float],
    device: DeviceLike | None,
    now: datetime,
    out: DecodeOutcome,
) -> None:
    base_name, base_unit, base_time, base_value, base_sum = base
    name = base_name + (record.n or "")
    if record.v is not None:
        value = base_value + record.v
    elif record.vb is not None:
        value = 1.0 if record.vb else 0.0
    elif record.s is not None:
        value = base_sum + record.s
    elif record.vs is not None or record.vd is not None:
        out.reject("non_numeric", f"{name}: string and data values are not stored", record)
        return
    else:
        out.reject("missing_value", f"{name}: the record has no value", record)
        return
    symbol = record.u if record.u is not None else base_unit
    unit = units.from_senml(symbol) if symbol is not None else None
    if symbol is not None and unit is None:
        out.reject("unknown_unit", f"{name}: unknown SenML unit {symbol!r}", record)
        return
    moment = base_time + (record.t or 0.0)
    if not math.isfinite(moment):
        out.reject("bad_timestamp", f"{name}: time is not finite", record)
        return
    if moment < -SENML_RELATIVE_LIMIT:
        out.reject("bad_timestamp", f"{name}: relative time too far in the past", record)
        return
    ts = now + timedelta(seconds=moment) if moment < SENML_RELATIVE_LIMIT else _epoch(moment)
    target = _senml_target(name, device, out, record)
    if target is None:
        return
    entity, attribute, mapped_unit, scale = target
    out.readings.append(Reading(entity, attribute, ts, value * scale, mapped_unit or unit))


def _senml_target(
    name: str, device: DeviceLike | None, out: DecodeOutcome, record: SenMLRecord
) -> tuple[str, str, str | None, float] | None:
    """Entity and attribute of a resolved SenML name.

    Without a device the name is `<entity URN>/<attribute>` (or `<URN>:<attribute>`);
    with one, the last segment of the name is a field looked up in the device mapping.
    """
    if device is None:
        cut = name.rfind("/")
        cut = cut if cut >= 0 else name.rfind(":")
        if cut <= 0:
            out.reject("bad_entity", f"{name!r} is not <entity URN>/<attribute>", record)
            return None
        return name[:cut], name[cut + 1 :], None, 1.0
    cut = max(name.rfind("/"), name.rfind(":"))
    target = resolve_field(name[cut + 1 :], device, out, record, quiet=bool(device.mapping))
    if target is None:
        return None
    return target.entity or device.entity, target.attribute, target.unit, target.scale


# --- LoRaWAN network servers ---------------------------------------------------------


def decode_chirpstack(
    body: bytes, device: DeviceLike | None, now: datetime, out: DecodeOutcome
) -> None:
    """ChirpStack v4 `up` event: the codec's decoded `object`, timed by `time`."""
    event = _parse_any(body, out)
    if event is None:
        return
    if not isinstance(event, dict) or not isinstance(event.get("deviceInfo"), dict):
        out.reject("bad_structure", "not a ChirpStack v4 uplink event (no deviceInfo)", body[:200])
        return
    fields = event.get("object")
    if not isinstance(fields, dict):
        out.reject(
            "no_decoded_payload", "the uplink has no decoded 'object' (no codec?)", body[:200]
        )
        return
    if device is None:
        out.reject("unknown_device", "ChirpStack uplinks need a registered device")
        return
    ts = time_field(event.get("time"), now, out, event.get("time"))
    if ts is not None:
        fields_to_readings(fields, ts, device, out)


def decode_tts(body: bytes, device: DeviceLike | None, now: datetime, out: DecodeOutcome) -> None:
    """The Things Stack v3 uplink: `uplink_message.decoded_payload`, timed by `received_at`."""
    event = _parse_any(body, out)
    if event is None:
        return
    message = event.get("uplink_message") if isinstance(event, dict) else None
    if not isinstance(event, dict) or not isinstance(message, dict):
        out.reject("bad_structure", "not a The Things Stack uplink (no uplink_message)", body[:200])
        return
    fields = message.get("decoded_payload")
    if not isinstance(fields, dict):
        out.reject(
            "no_decoded_payload", "the uplink has no decoded_payload (no formatter?)", body[:200]
        )
        return
    if device is None:
        out.reject("unknown_device", "The Things Stack uplinks need a registered device")
        return
    stamp = event.get("received_at") or message.get("received_at")
    ts = time_field(stamp, now, out, stamp)
    if ts is not None:
        fields_to_readings(fields, ts, device, out)


def lorawan_device_ids(payload_format: str, body: bytes) -> list[str]:
    """Identifiers a network-server uplink gives for its device, most specific first."""
    try:
        event = _any_decoder.decode(body)
    except msgspec.DecodeError:
        return []
    if not isinstance(event, dict):
        return []
    ids: list[Any] = []
    if payload_format == "chirpstack":
        info = event.get("deviceInfo")
        if isinstance(info, dict):
            ids = [info.get("devEui")]
    elif payload_format == "tts":
        ends = event.get("end_device_ids")
        if isinstance(ends, dict):
            ids = [ends.get("dev_eui"), ends.get("device_id")]
    return [normalise_device_id(i) for i in ids if isinstance(i, str) and i]


def normalise_device_id(device_id: str) -> str:
    """DevEUIs arrive in either case; other identifiers keep their spelling."""
    if len(device_id) == 16 and all(c in "0123456789abcdefABCDEF" for c in device_id):
        return device_id.lower()
    return device_id


# --- shared helpers ------------------------------------------------------------------


def fields_to_readings(
    fields: dict[str, Any], ts: datetime, device: DeviceLike, out: DecodeOutcome
) -> None:
    for path, raw in _flatten(fields):
        target = resolve_field(path, device, out, {path: raw}, quiet=bool(device.mapping))
        if target is None:
            continue
        value = _number(raw)
        if value is None:
            out.reject("non_numeric", f"field {path!r} is not a number", {path: raw})
            continue
        entity = target.entity or device.entity
        out.readings.append(
            Reading(entity, target.attribute, ts, value * target.scale, target.unit)
        )


def resolve_field(
    path: str, device: DeviceLike, out: DecodeOutcome, excerpt: Any, *, quiet: bool = False
) -> MappingTarget | None:
    """The mapping's target for a field; with no mapping, the field name is the attribute.

    With a mapping, unmapped fields are ignored (`quiet`): decoders emit diagnostics
    (battery, RSSI…) that nobody asked to store.
    """
    mapping = device.mapping
    if mapping:
        spec = mapping.get(path)
        if spec is None:
            if not quiet:
                out.reject("no_mapping", f"field {path!r} is not in the device mapping", excerpt)
            return None
        return mapping_target(spec)
    if not ATTRIBUTE_PATTERN.match(path):
        out.reject("no_mapping", f"field {path!r} is not an attribute name; map it", excerpt)
        return None
    return MappingTarget(attribute=path)


def mapping_target(spec: Any) -> MappingTarget:
    if isinstance(spec, MappingTarget):
        return spec
    if isinstance(spec, str):
        return MappingTarget(attribute=spec)
    return MappingTarget(
        attribute=spec["attribute"],
        unit=spec.get("unit"),
        scale=float(spec.get("scale", 1.0)),
        entity=spec.get("entity"),
    )


def _flatten(fields: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    flat: list[tuple[str, Any]] = []
    for key, value in fields.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.extend(_flatten(value, path + "."))
        else:
            flat.append((path, value))
    return flat


def _parse_any(body: bytes, out: DecodeOutcome) -> Any:
    try:
        return _any_decoder.decode(body)
    except msgspec.DecodeError as error:
        out.reject("malformed_json", f"not valid JSON: {error}", body[:200])
        return None


def _number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return 1.0 if raw else 0.0
    if isinstance(raw, int | float):
        return float(raw)
    return None


def time_field(raw: Any, now: datetime, out: DecodeOutcome, excerpt: Any = "") -> datetime | None:
    """A time given as ISO 8601 text with an offset, or as Unix seconds; absent means now."""
    if raw is None:
        return now
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        if not math.isfinite(raw):
            out.reject("bad_timestamp", "time is not finite", excerpt)
            return None
        return _epoch(float(raw))
    if isinstance(raw, str):
        parsed = _parse_iso(raw)
        if parsed is None:
            out.reject("bad_timestamp", f"{raw!r} is not an ISO 8601 date-time", excerpt)
        elif parsed.tzinfo is None:
            out.reject("naive_timestamp", f"{raw!r} has no UTC offset", excerpt)
            return None
        return parsed
    out.reject("wrong_type", "time must be ISO 8601 text or Unix seconds", excerpt)
    return None


def _parse_iso(text: str) -> datetime | None:
    try:
        return msgspec.json.decode(msgspec.json.encode(text), type=datetime)
    except msgspec.ValidationError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None


def _epoch(seconds: float) -> datetime:
    # Out-of-range times land on the epoch, which the retention check then refuses.
    try:
        return EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        return EPOCH


Decoder = Callable[[bytes, DeviceLike | None, datetime, DecodeOutcome], None]

DECODERS: dict[str, Decoder] = {
    "json": decode_json,
    "senml": decode_senml,
    "chirpstack": decode_chirpstack,
    "tts": decode_tts,
}
