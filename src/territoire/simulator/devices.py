"""What each simulated device sends on the wire: its fields, its format, its topic.

IP devices (lamp nodes, cabinets, district meters, stations) speak SenML or a plain JSON
object on `territoire/<tenant>/<device>/up`; LoRaWAN sensors reach the platform through a
network server, as ChirpStack v4 or The Things Stack v3 uplink events on those servers'
own topics. Payload fields are in the device's own units (a fill sensor says percent);
the mapping registered with the device turns them into the platform's attributes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson

from territoire.simulator.territory import Stream

APPLICATION = "territoire-demo"
UPLINK_NAMESPACE = uuid.UUID("6f1d7c52-4b8e-4d0b-9a57-3c2f1b0e9a11")


@dataclass(frozen=True)
class Field:
    name: str  # key in the payload
    attribute: str
    scale: float = 1.0  # payload value × scale = attribute value
    boolean: bool = False


FIELDS: dict[str, tuple[Field, ...]] = {
    "streetlight": (Field("power", "powerConsumption"),),
    "cabinet": (Field("p", "activePower"), Field("dim", "illuminanceLevel")),
    "district": (Field("q", "flow"),),
    "tank": (Field("h", "level"),),
    "container": (Field("fill_pct", "fillingLevel", 0.01),),
    "spot": (Field("occupied", "occupancy", boolean=True),),
    "car_park": (Field("occupied", "occupiedSpotNumber"),),
    "building_power": (Field("p_kw", "activePower"),),
    "building_gas": (Field("energy_wh", "gasConsumption", 0.001),),
    "building_water": (Field("volume_l", "waterConsumption"),),
    "building_ambient": (Field("temp", "temperature"), Field("occ", "occupancy")),
    "air": (Field("no2", "no2"), Field("pm10", "pm10"), Field("pm25", "pm25"), Field("o3", "o3")),
    "weather": (
        Field("temperature", "temperature"),
        Field("relativeHumidity", "relativeHumidity"),
        Field("windSpeed", "windSpeed"),
        Field("atmosphericPressure", "atmosphericPressure"),
        Field("precipitation", "precipitation"),
        Field("solarRadiation", "solarRadiation"),
    ),
}


def mapping(stream: Stream) -> dict[str, dict[str, object]]:
    """The field mapping registered with each device of a stream."""
    result: dict[str, dict[str, object]] = {}
    for field in FIELDS[stream.key]:
        target: dict[str, object] = {"attribute": field.attribute}
        unit = stream.attribute(field.attribute).unit
        if unit is not None:
            target["unit"] = unit
        if field.scale != 1.0:
            target["scale"] = field.scale
        result[field.name] = target
    return result


def _iso(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def _wire_value(field: Field, value: float) -> float | int | bool:
    if field.boolean:
        return value >= 0.5
    raw = value / field.scale
    return round(raw) if field.scale != 1.0 or float(raw).is_integer() else raw


@dataclass(frozen=True)
class Message:
    topic: str
    payload: bytes
    ts: int
    readings: int


def message(
    stream: Stream, index: int, ts: int, values: dict[str, float], tenant_slug: str
) -> Message:
    """The uplink device `index` of `stream` sends at `ts` with these attribute values."""
    fields = {
        f.name: _wire_value(f, values[f.attribute])
        for f in FIELDS[stream.key]
        if f.attribute in values
    }
    device = stream.devices[index]
    if stream.payload_format == "senml":
        pack: list[dict[str, object]] = []
        for n, (name, value) in enumerate(fields.items()):
            record: dict[str, object] = {"n": name, "v": value}
            if n == 0:
                record = {"bn": f"urn:dev:{device}:", "bt": ts, **record}
            pack.append(record)
        body = orjson.dumps(pack)
        topic = f"territoire/{tenant_slug}/{device}/up"
    elif stream.payload_format == "json":
        body = orjson.dumps({"ts": _iso(ts), **fields})
        topic = f"territoire/{tenant_slug}/{device}/up"
    elif stream.payload_format == "chirpstack":
        body = orjson.dumps(_chirpstack(device, ts, fields))
        topic = f"application/{APPLICATION}/device/{device}/event/up"
    else:
        body = orjson.dumps(_tts(device, ts, fields, tenant_slug))
        topic = f"v3/{APPLICATION}@{tenant_slug}/devices/eui-{device}/up"
    return Message(topic, body, ts, len(fields))


def _frame_counter(ts: int, cadence: int = 900) -> int:
    return (ts // cadence) % 65536


def _chirpstack(device: str, ts: int, fields: Mapping[str, object]) -> dict[str, object]:
    return {
        "deduplicationId": str(uuid.uuid5(UPLINK_NAMESPACE, f"{device}/{ts}")),
        "time": _iso(ts),
        "deviceInfo": {
            "tenantName": "Territoire",
            "applicationName": APPLICATION,
            "deviceName": device,
            "devEui": device,
        },
        "devAddr": device[-8:],
        "fCnt": _frame_counter(ts),
        "fPort": 2,
        "object": fields,
    }


def _tts(device: str, ts: int, fields: Mapping[str, object], tenant_slug: str) -> dict[str, object]:
    return {
        "end_device_ids": {
            "device_id": f"eui-{device}",
            "application_ids": {"application_id": f"{APPLICATION}-{tenant_slug}"},
            "dev_eui": device.upper(),
        },
        "received_at": _iso(ts),
        "uplink_message": {
            "f_port": 2,
            "f_cnt": _frame_counter(ts),
            "decoded_payload": fields,
            "received_at": _iso(ts),
        },
    }
