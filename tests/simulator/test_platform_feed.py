"""The territory in a tenant: registry entities, telemetry devices, and readings fed through
in-process ingestion, the device bus, HTTP and MQTT, on SQLite and PostgreSQL."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson
import pytest
from sqlalchemy import func, select, text
from typer.testing import CliRunner

from territoire.cli import app as cli
from territoire.config import Settings
from territoire.db import Database
from territoire.demo.live import start_demo_life
from territoire.demo.seed import DEMO_SEED, DEMO_SLUG, seed_demo
from territoire.registry.models import Entity
from territoire.simulator.clock import DAY
from territoire.simulator.engine import DayResult, Simulation
from territoire.simulator.service import HttpSink, IngestSink, MessageSink, readings
from territoire.simulator.sizes import Size
from territoire.telemetry import service as telemetry
from territoire.telemetry.bus import in_process_bus
from territoire.tenancy.models import Role
from tests.browser.live import serve
from tests.conftest import World, service_missing


def _recent_simulation(rates: dict | None = None) -> Simulation:  # type: ignore[type-arg]
    # Recent days: the platform refuses readings older than its retention period.
    start = datetime.now(UTC).date() - timedelta(days=3)
    return Simulation(5, Size.SMALL, start, rates)


def _stored(database: Database, tenant_id: int) -> dict[tuple[str, str, int], float]:
    query = text(
        "SELECT s.entity, s.attribute, o.ts, o.value FROM observation o "
        "JOIN telemetry_series s ON s.id = o.series_id WHERE s.tenant_id = :t"
    )
    with database.session() as session:
        rows = session.execute(query, {"t": tenant_id}).all()
    found: dict[tuple[str, str, int], float] = {}
    for entity, attribute, ts, value in rows:
        moment = ts if isinstance(ts, int) else int(ts.timestamp() * 1000)
        found[(entity, attribute, moment // 1000)] = value
    return found


def _expected(day: DayResult, first: int, last: int) -> dict[tuple[str, str, int], float]:
    return {
        (r.entity, r.attribute, int(r.ts.timestamp())): r.value for r in readings(day, first, last)
    }


def _matches(stored: dict, expected: dict) -> bool:  # type: ignore[type-arg]
    return stored.keys() == expected.keys() and all(
        abs(stored[key] - value) <= 1e-9 * max(1.0, abs(value)) for key, value in expected.items()
    )


def test_demo_seeding_puts_the_territory_in_the_registry_and_telemetry(world: World) -> None:
    with world.database.session() as session:
        first = seed_demo(session, size=Size.SMALL)
    territory = Simulation(1, Size.SMALL, datetime.now(UTC).date()).territory
    assert first.devices_added == territory.device_count == 374
    assert first.entities_added > 700
    with world.database.session() as session:
        second = seed_demo(session, size=Size.SMALL)
        placed = session.scalar(
            select(func.count()).select_from(Entity).where(Entity.commune_id.is_not(None))
        )
        total = session.scalar(select(func.count()).select_from(Entity))
        devices = telemetry.list_devices(session, first.tenant.id)
        lamp = session.scalar(select(Entity).where(Entity.urn == territory.lamps[0].urn))
    assert (second.entities_added, second.devices_added) == (0, 0)
    assert placed == total == first.entities_added, "every asset lies in one of the communes"
    assert {d.device_id for d in devices} == {
        d for s in territory.streams.values() for d in s.devices
    }
    assert lamp is not None and lamp.relationships["refStreetlightControlCabinet"].startswith(
        "urn:ngsi-ld:StreetlightControlCabinet:"
    )
    spot = next(
        d for d in devices if d.payload_format == "chirpstack" and "ParkingSpot" in d.entity
    )
    assert spot.mapping == {"occupied": {"attribute": "occupancy", "unit": "C62"}}


def test_a_day_through_in_process_ingestion_is_stored_as_generated(world: World) -> None:
    with world.database.session() as session:
        tenant = seed_demo(session, size=Size.SMALL).tenant
    simulation = _recent_simulation()
    day = simulation.next_day()
    sink = IngestSink(world.database, tenant.id, batch=10_000)
    sent = sink.send(day, day.start, day.start + DAY)
    assert sent == day.count == sink.accepted and sink.rejected == {}
    assert _matches(_stored(world.database, tenant.id), _expected(day, day.start, day.start + DAY))


def test_device_uplinks_through_the_bus_are_decoded_to_the_same_values(world: World) -> None:
    with world.database.session() as session:
        tenant = seed_demo(session, size=Size.SMALL).tenant
    simulation = _recent_simulation()
    day = simulation.next_day()
    first, last = day.start + 6 * 3600, day.start + 9 * 3600
    bus = in_process_bus(world.database)
    sent = MessageSink("bus", bus.publish, DEMO_SLUG).send(day, first, last)
    assert bus.drain(timeout=120)
    expected = _expected(day, first, last)
    assert sent == len(expected) > 1000
    assert _matches(_stored(world.database, tenant.id), expected)
    formats = {s.payload_format for s in simulation.territory.streams.values()}
    assert formats == {"json", "senml", "chirpstack", "tts"}


def test_the_http_output_posts_batches_to_the_ingest_api(world: World) -> None:
    with world.database.session() as session:
        tenant = seed_demo(session, size=Size.SMALL).tenant
    api = world.api(tenant, Role.OPERATOR)
    token = api.headers["Authorization"].split(" ", 1)[1]
    simulation = _recent_simulation()
    day = simulation.next_day()
    first, last = day.start + 12 * 3600, day.start + 14 * 3600
    with serve(world.app) as base_url:
        sink = HttpSink(base_url, token, batch=1500)
        sent = sink.send(day, first, last)
    expected = _expected(day, first, last)
    assert sent == sink.accepted == len(expected) and sink.rejected == {}
    assert _matches(_stored(world.database, tenant.id), expected)


def test_the_mqtt_output_reaches_the_worker_through_the_broker(world: World) -> None:
    service_missing("Mosquitto", "127.0.0.1", 1883, "start it with: mosquitto -d")
    from territoire.telemetry.mqtt import MqttPublisher, MqttWorker

    with world.database.session() as session:
        tenant = seed_demo(session, size=Size.SMALL).tenant
    simulation = _recent_simulation()
    day = simulation.next_day()
    first, last = day.start + 18 * 3600, day.start + 19 * 3600
    expected = _expected(day, first, last)
    worker = MqttWorker(
        world.database,
        "mqtt://127.0.0.1:1883",
        client_id=f"sim-test-{uuid.uuid4().hex}",
        share_group=uuid.uuid4().hex,
        subscriptions=[
            f"territoire/{DEMO_SLUG}/+/up",
            "application/+/device/+/event/up",
            "v3/+/devices/+/up",
        ],
    )
    worker.start()
    publisher = MqttPublisher("mqtt://127.0.0.1:1883")
    try:
        sink = MessageSink("mqtt", lambda t, p: publisher.publish(t, p, wait=False), DEMO_SLUG)
        assert sink.send(day, first, last) == len(expected)
        deadline = time.monotonic() + 60
        while (
            len(_stored(world.database, tenant.id)) < len(expected) and time.monotonic() < deadline
        ):
            time.sleep(0.2)
    finally:
        publisher.close()
        worker.stop()
    assert _matches(_stored(world.database, tenant.id), expected)


def test_simulate_command_writes_the_truth_and_refuses_bad_rates(
    settings: Settings, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERRITOIRE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TERRITOIRE_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    truth_csv = tmp_path / "truth.csv"
    generated = runner.invoke(
        cli,
        [
            "simulate",
            "--size",
            "small",
            "--days",
            "3",
            "--output",
            "none",
            "--truth",
            str(truth_csv),
            "--rate",
            "lamp_out=40",
        ],
    )
    assert generated.exit_code == 0, generated.output
    lines = truth_csv.read_text().splitlines()
    assert lines[0].startswith("id,kind,entity,group,device,attributes,start,end")
    assert any(",lamp_out," in line for line in lines[1:])
    refused = runner.invoke(
        cli, ["simulate", "--size", "small", "--output", "none", "--rate", "lamp_off=1"]
    )
    assert refused.exit_code == 1 and "unknown fault kind 'lamp_off'" in refused.output
    stored = runner.invoke(
        cli,
        [
            "simulate",
            "--size",
            "small",
            "--days",
            "1",
            "--fault-scale",
            "0",
            "--truth",
            str(tmp_path / "t.json"),
        ],
    )
    assert stored.exit_code == 0, stored.output
    with world.database.session() as session:
        tenant = seed_demo(session, size=Size.SMALL).tenant
    assert len(_stored(world.database, tenant.id)) == 34_944
    assert orjson.loads((tmp_path / "t.json").read_bytes())["faults"] == []


def test_the_demo_back_fills_history_then_keeps_going(world: World, settings: Settings) -> None:
    with world.database.session() as session:
        tenant = seed_demo(session, size=Size.SMALL).tenant
    life = start_demo_life(settings, history_days=1, size=Size.SMALL)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            stored = _stored(world.database, tenant.id)
            today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
            recent = [ts for _, _, ts in stored if ts >= time.time() - 1200]
            if recent and life.truth_path.exists():
                break
            time.sleep(0.5)
    finally:
        life.stop.set()
        life.thread.join(timeout=30)
    history = Simulation(DEMO_SEED, Size.SMALL, datetime.now(UTC).date() - timedelta(days=1))
    assert len([1 for _, _, ts in stored if ts < today]) == history.next_day().count
    assert any(ts >= time.time() - 1200 for _, _, ts in stored), "caught up with the present"
    assert all(ts <= time.time() + 300 for _, _, ts in stored), "nothing from the future"
    assert "faults" in orjson.loads(life.truth_path.read_bytes())
