"""Simulator services: put a territory in a tenant (registry + telemetry), and feed readings.

Entities go through the registry service (validated rows, bulk insert); devices and
readings through the telemetry service. Both steps add only what is missing, so seeding
twice changes nothing.
"""

from __future__ import annotations

import logging
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import orjson
from sqlalchemy.orm import Session

from territoire.db import Database
from territoire.registry import service as registry
from territoire.simulator.context import Frame
from territoire.simulator.devices import FIELDS, Message, message
from territoire.simulator.engine import DayResult
from territoire.simulator.territory import STORED_WASTE, TOWNS, USAGES, Asset, Stream, Territory
from territoire.telemetry import service as telemetry
from territoire.telemetry.records import MappingTarget, Reading

log = logging.getLogger("territoire.simulator")

DEVICE_CATEGORY = {
    "chirpstack": ["sensor"],
    "tts": ["sensor"],
    "senml": ["meter"],
    "json": ["meter"],
}
PROTOCOL = {
    "chirpstack": ["lora"],
    "tts": ["lora"],
    "senml": ["http", "mqtt"],
    "json": ["http", "mqtt"],
}


@dataclass
class SeedOutcome:
    entities_added: int
    devices_added: int


# --- entities --------------------------------------------------------------------------


def _point(asset: Asset) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [asset.lon, asset.lat]}


def _address(asset: Asset, street: str | None = None) -> dict[str, str]:
    locality = next(t.name for t in TOWNS if t.code == asset.town)
    address = {"addressLocality": locality, "addressCountry": "FR"}
    if street:
        address["streetAddress"] = street
    return address


def _draft(
    asset: Asset,
    entity_type: str,
    properties: dict[str, Any],
    relationships: dict[str, Any] | None = None,
) -> registry.EntityDraft:
    return registry.EntityDraft(
        type=entity_type,
        id=asset.urn,
        name=asset.name,
        properties=properties,
        relationships=relationships or {},
        location=_point(asset),
    )


def entity_drafts(territory: Territory) -> list[registry.EntityDraft]:
    """Every entity of the territory: streets, assets, then one Device per sensor."""
    devices = _devices_of_assets(territory)
    drafts = [_street(street) for street in territory.streets]
    drafts += _lighting_drafts(territory, devices)
    drafts += _water_drafts(territory, devices)
    drafts += _waste_drafts(territory, devices)
    drafts += _parking_drafts(territory, devices)
    drafts += _building_drafts(territory, devices)
    drafts += _environment_drafts(territory, devices)
    drafts += _device_drafts(territory)
    return drafts


def _street(street: Any) -> registry.EntityDraft:
    return registry.EntityDraft(
        type="RoadSegment",
        id=f"urn:ngsi-ld:RoadSegment:{street.key}",
        name=street.name,
        properties={
            "totalLaneNumber": 2,
            "roadClass": "primary" if street.key == "rd-42" else "residential",
        },
        location={"type": "LineString", "coordinates": [list(p) for p in street.points]},
    )


def _devices_of_assets(territory: Territory) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for stream in territory.streams.values():
        for entity, device in zip(stream.entities, stream.devices, strict=True):
            found.setdefault(entity, []).append(f"urn:ngsi-ld:Device:{device}")
    return found


def _lighting_drafts(
    territory: Territory, devices: dict[str, list[str]]
) -> list[registry.EntityDraft]:
    streets = {s.key: s.name for s in territory.streets}
    drafts = []
    for cabinet in territory.cabinets:
        lamps = [territory.lamps[i] for i in cabinet.extra["lamps"]]
        drafts.append(
            _draft(
                cabinet,
                "StreetlightControlCabinet",
                {
                    "workingMode": "automatic",
                    "dimmingProfile": cabinet.extra["profile"],
                    "maximumPowerAvailable": round(
                        sum(lamp.extra["nominal_w"] for lamp in lamps) / 1000 * 1.5, 1
                    ),
                    "address": _address(cabinet),
                },
                {"refDevice": devices[cabinet.urn]},
            )
        )
    for lamp in territory.lamps:
        drafts.append(
            _draft(
                lamp,
                "Streetlight",
                {
                    "status": "ok",
                    "lampTechnology": "LED" if lamp.extra["led"] else "HPS",
                    "nominalPower": lamp.extra["nominal_w"],
                    "laternHeight": 8 if lamp.extra["nominal_w"] >= 60 else 6,
                    "locationCategory": "road",
                    "controllingMethod": "group",
                    "address": _address(lamp, streets[lamp.extra["street"]]),
                },
                {
                    "refStreetlightControlCabinet": territory.cabinets[lamp.extra["cabinet"]].urn,
                    "refDevice": devices[lamp.urn],
                },
            )
        )
    return drafts


def _water_drafts(
    territory: Territory, devices: dict[str, list[str]]
) -> list[registry.EntityDraft]:
    drafts = []
    for tank in territory.tanks:
        drafts.append(
            _draft(
                tank,
                "Tank",
                {
                    "nominalDiameter": tank.extra["diameter"],
                    "minLevel": 0.0,
                    "maxLevel": tank.extra["max"],
                    "elevation": 412.0,
                    "pumpStartLevel": tank.extra["low"],
                    "pumpStopLevel": tank.extra["high"],
                },
                {"refDevice": devices[tank.urn]},
            )
        )
    for district in territory.districts:
        drafts.append(
            _draft(
                district,
                "WaterConsumptionObserved",
                {
                    "areaServed": district.name,
                    "connections": district.extra["households"],
                    "waterType": "serviceWater",
                },
                {
                    "refDevice": devices[district.urn],
                    "refTank": territory.tanks[district.extra["tank"]].urn,
                },
            )
        )
    return drafts


def _waste_drafts(
    territory: Territory, devices: dict[str, list[str]]
) -> list[registry.EntityDraft]:
    day_names = ("Mo", "Tu", "We", "Th", "Fr", "Sa", "Su")
    drafts = []
    for container in territory.containers:
        round_ = territory.rounds[container.extra["round"]]
        drafts.append(
            _draft(
                container,
                "WasteContainer",
                {
                    "status": "ok",
                    "storedWasteKind": STORED_WASTE[container.extra["waste"]],
                    "cargoVolume": container.extra["capacity"],
                    "collectionRound": round_.key,
                    "collectionDays": [day_names[d] for d in round_.weekdays],
                },
                {"refDevice": devices[container.urn]},
            )
        )
    return drafts


def _parking_drafts(
    territory: Territory, devices: dict[str, list[str]]
) -> list[registry.EntityDraft]:
    drafts = []
    for zone in territory.zones:
        drafts.append(
            _draft(
                zone,
                "OnStreetParking",
                {
                    "category": ["public", "shortTerm" if zone.extra["commercial"] else "free"],
                    "totalSpotNumber": len(zone.extra["spots"]),
                    "occupancyDetectionType": ["singleSpaceDetection"],
                },
                {"refParkingSpot": [territory.spots[i].urn for i in zone.extra["spots"]]},
            )
        )
    for spot in territory.spots:
        drafts.append(
            _draft(
                spot,
                "ParkingSpot",
                {"category": ["onStreet"], "status": "unknown"},
                {
                    "refParkingSite": territory.zones[spot.extra["zone"]].urn,
                    "refDevice": devices[spot.urn],
                },
            )
        )
    for car_park in territory.car_parks:
        drafts.append(
            _draft(
                car_park,
                "OffStreetParking",
                {
                    "category": [
                        "public",
                        "parkingGarage" if car_park.extra["kind"] == "centre" else "openSpace",
                    ],
                    "totalSpotNumber": car_park.extra["capacity"],
                    "usage": car_park.extra["kind"],
                },
                {"refDevice": devices[car_park.urn]},
            )
        )
    return drafts


def _building_drafts(
    territory: Territory, devices: dict[str, list[str]]
) -> list[registry.EntityDraft]:
    drafts = []
    for building in territory.buildings:
        usage = USAGES[building.extra["usage"]]
        drafts.append(
            _draft(
                building,
                "Building",
                {
                    "category": [usage.category],
                    "usage": usage.key,
                    "openingHours": [usage.opening_hours],
                    "floorArea": building.extra["area"],
                    "address": _address(building),
                },
                {"refDevice": devices[building.urn]},
            )
        )
    return drafts


def _environment_drafts(
    territory: Territory, devices: dict[str, list[str]]
) -> list[registry.EntityDraft]:
    drafts = []
    for station in territory.air_stations:
        kind = "traffic" if station.extra["traffic"] >= 0.6 else "background"
        drafts.append(
            _draft(
                station,
                "AirQualityObserved",
                {
                    "typeofLocation": "urban",
                    "stationType": kind,
                    "measuredPollutants": ["NO2", "PM10", "PM2.5", "O3"],
                },
                {"refDevice": devices[station.urn]},
            )
        )
    for station in territory.weather_stations:
        drafts.append(
            _draft(
                station,
                "WeatherObserved",
                {"dataProvider": "territoire-simulator"},
                {"refDevice": devices[station.urn]},
            )
        )
    return drafts


def _assets_by_urn(territory: Territory) -> dict[str, Asset]:
    groups = (
        territory.lamps,
        territory.cabinets,
        territory.districts,
        territory.tanks,
        territory.containers,
        territory.spots,
        territory.car_parks,
        territory.buildings,
        territory.air_stations,
        territory.weather_stations,
    )
    return {asset.urn: asset for group in groups for asset in group}


def _device_drafts(territory: Territory) -> list[registry.EntityDraft]:
    assets = _assets_by_urn(territory)
    drafts = []
    for stream in territory.streams.values():
        for entity, device in zip(stream.entities, stream.devices, strict=True):
            asset = assets[entity]
            drafts.append(
                registry.EntityDraft(
                    type="Device",
                    id=f"urn:ngsi-ld:Device:{device}",
                    name=f"Capteur {device}",
                    properties={
                        "serialNumber": device,
                        "controlledProperty": [a.name for a in stream.attributes],
                        "deviceCategory": DEVICE_CATEGORY[stream.payload_format],
                        "supportedProtocol": PROTOCOL[stream.payload_format],
                        "payloadFormat": stream.payload_format,
                        "reportingPeriod": stream.cadence,
                    },
                    relationships={"controlledAsset": entity},
                    location=_point(asset),
                )
            )
    return drafts


# --- seeding ---------------------------------------------------------------------------


def seed_territory(session: Session, tenant_id: int, territory: Territory) -> SeedOutcome:
    """Add the territory's missing entities, then its missing devices (idempotent)."""
    drafts = entity_drafts(territory)
    present = registry.existing_urns(session, tenant_id, [d.id for d in drafts if d.id])
    locator = registry.commune_locator(session, tenant_id)
    rows = [registry.validated_row(d, tenant_id, locator) for d in drafts if d.id not in present]
    added = registry.insert_entities(session, rows)
    session.flush()
    return SeedOutcome(added, register_devices(session, tenant_id, territory))


def register_devices(session: Session, tenant_id: int, territory: Territory) -> int:
    """Register each sensor with telemetry (format and field mapping); the tokens are not
    kept: the simulator sends in-process, or over MQTT/HTTP as a trusted gateway."""
    known = {device.device_id for device in telemetry.list_devices(session, tenant_id)}
    added = 0
    for stream in territory.streams.values():
        targets = _mapping(stream)
        for entity, device in zip(stream.entities, stream.devices, strict=True):
            if device in known:
                continue
            telemetry.register_device(
                session,
                tenant_id,
                device_id=device,
                entity=entity,
                payload_format=stream.payload_format,
                mapping=targets,
            )
            added += 1
    return added


def _mapping(stream: Stream) -> dict[str, MappingTarget]:
    return {
        field.name: MappingTarget(
            field.attribute, stream.attribute(field.attribute).unit, field.scale
        )
        for field in FIELDS[stream.key]
    }


# --- readings out ----------------------------------------------------------------------


def _in_window(frame: Frame, first: int, last: int) -> np.ndarray:
    return np.asarray((frame.times >= first) & (frame.times < last), dtype=np.bool_)


def count_readings(day: DayResult, first: int, last: int) -> int:
    total = 0
    for frame in day.frames.values():
        window = _in_window(frame, first, last)
        total += sum(int(np.count_nonzero(window & ~np.isnan(v))) for v in frame.values.values())
    return total


class _Clock:
    """datetime objects for epoch seconds, made once each (there are few distinct ones)."""

    def __init__(self) -> None:
        self.cache: dict[int, datetime] = {}

    def __call__(self, epoch: int) -> datetime:
        moment = self.cache.get(epoch)
        if moment is None:
            if len(self.cache) > 100_000:
                self.cache.clear()
            moment = self.cache[epoch] = datetime.fromtimestamp(epoch, UTC)
        return moment


def readings(
    day: DayResult, first: int, last: int, clock: _Clock | None = None
) -> Iterator[Reading]:
    """The day's readings with first ≤ ts < last, as telemetry `Reading`s."""
    clock = clock or _Clock()
    for frame in day.frames.values():
        stream = frame.stream
        window = _in_window(frame, first, last)
        for attribute in stream.attributes:
            values = frame.values[attribute.name]
            rows, steps = np.nonzero(window & ~np.isnan(values))
            entities = stream.entities
            times = frame.times[rows, steps].tolist()
            picked = values[rows, steps].tolist()
            for row, ts, value in zip(rows.tolist(), times, picked, strict=True):
                yield Reading(entities[row], attribute.name, clock(ts), value, attribute.unit)


def messages(day: DayResult, first: int, last: int, tenant_slug: str) -> list[Message]:
    """The uplinks devices send with first ≤ ts < last, in time order."""
    found: list[Message] = []
    for frame in day.frames.values():
        stream = frame.stream
        window = _in_window(frame, first, last)
        present = {a.name: ~np.isnan(frame.values[a.name]) for a in stream.attributes}
        any_value = np.logical_or.reduce(list(present.values())) & window
        rows, steps = np.nonzero(any_value)
        for row, step in zip(rows.tolist(), steps.tolist(), strict=True):
            values = {
                name: float(frame.values[name][row, step])
                for name, mask in present.items()
                if mask[row, step]
            }
            found.append(message(stream, row, int(frame.times[row, step]), values, tenant_slug))
    found.sort(key=lambda m: m.ts)
    return found


class Sink:
    """Where generated readings go. `send` returns how many readings left the simulator."""

    name = "none"

    def send(self, day: DayResult, first: int, last: int) -> int:
        return count_readings(day, first, last)

    def close(self) -> None:
        return None


class IngestSink(Sink):
    """Straight into `telemetry.ingest`, in large batches (back-fill, benchmarks)."""

    name = "inprocess"

    def __init__(self, database: Database, tenant_id: int, batch: int = 50_000) -> None:
        self.database = database
        self.tenant_id = tenant_id
        self.batch = batch
        self.clock = _Clock()
        self.accepted = 0
        self.rejected: dict[str, int] = {}

    def send(self, day: DayResult, first: int, last: int) -> int:
        pending: list[Reading] = []
        sent = 0
        for reading in readings(day, first, last, self.clock):
            pending.append(reading)
            if len(pending) >= self.batch:
                sent += self._flush(pending)
                pending = []
        return sent + self._flush(pending)

    def _flush(self, pending: list[Reading]) -> int:
        if not pending:
            return 0
        result = telemetry.ingest(self.database, self.tenant_id, pending, source="simulator")
        self.accepted += result.accepted
        for reason, count in result.reasons.items():
            self.rejected[reason] = self.rejected.get(reason, 0) + count
        return len(pending)


class MessageSink(Sink):
    """Device uplinks, one message each, to a publisher (in-process bus or MQTT broker)."""

    def __init__(
        self, name: str, publish: Callable[[str, bytes], object], tenant_slug: str
    ) -> None:
        self.name = name
        self.publish = publish
        self.tenant_slug = tenant_slug

    def send(self, day: DayResult, first: int, last: int) -> int:
        sent = 0
        for item in messages(day, first, last, self.tenant_slug):
            self.publish(item.topic, item.payload)
            sent += item.readings
        return sent


class HttpSink(Sink):
    """POST /api/v1/telemetry with an API token, as a gateway or an ETL job would: JSON
    batches for the JSON devices, SenML packs for the others (entities named in full)."""

    name = "http"

    def __init__(self, base_url: str, token: str, batch: int = 2000, timeout: float = 60.0) -> None:
        self.url = base_url.rstrip("/") + "/api/v1/telemetry"
        self.token = token
        self.batch = batch
        self.timeout = timeout
        self.accepted = 0
        self.rejected: dict[str, int] = {}

    def send(self, day: DayResult, first: int, last: int) -> int:
        json_items: list[dict[str, Any]] = []
        senml_items: list[dict[str, Any]] = []
        sent = 0
        for frame in day.frames.values():
            into = json_items if frame.stream.payload_format == "json" else senml_items
            sub = DayResult(day.index, day.start, {frame.stream.key: frame}, [])
            for reading in readings(sub, first, last):
                into.append(_wire_item(reading, senml=into is senml_items))
                if len(into) >= self.batch:
                    sent += self._post(into, senml=into is senml_items)
                    into.clear()
        return sent + self._post(json_items, senml=False) + self._post(senml_items, senml=True)

    def _post(self, items: list[dict[str, Any]], *, senml: bool) -> int:
        if not items:
            return 0
        request = urllib.request.Request(  # noqa: S310  (the operator's own platform)
            self.url,
            data=orjson.dumps(items),
            method="POST",
            headers={
                "Authorization": f"Bearer {self.token}",
                "Content-Type": "application/senml+json" if senml else "application/json",
            },
        )
        for attempt in range(5):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    self._count(orjson.loads(response.read()))
                    return len(items)
            except urllib.error.HTTPError as error:
                if error.code == 429:  # the platform asks senders to slow down
                    time.sleep(0.5 * (attempt + 1))
                    continue
                if error.code == 422:  # nothing accepted: the answer says why
                    self._count(orjson.loads(error.read()))
                    return len(items)
                raise
        raise RuntimeError(f"{self.url} kept answering 429 (rate limited)")

    def _count(self, answer: dict[str, Any]) -> None:
        self.accepted += int(answer.get("accepted", 0))
        for reason, count in answer.get("reasons", {}).items():
            self.rejected[reason] = self.rejected.get(reason, 0) + int(count)


def _wire_item(reading: Reading, *, senml: bool) -> dict[str, Any]:
    if senml:
        record: dict[str, Any] = {
            "n": f"{reading.entity}/{reading.attribute}",
            "t": reading.ts.timestamp(),
            "v": reading.value,
        }
        if reading.unit is not None:
            record["u"] = reading.unit
        return record
    item: dict[str, Any] = {
        "entity": reading.entity,
        "attribute": reading.attribute,
        "ts": reading.ts.isoformat(),
        "value": reading.value,
    }
    if reading.unit is not None:
        item["unit"] = reading.unit
    return item
