"""MQTT ingestion against real Mosquitto brokers and the real database.

The shared broker (127.0.0.1:1883) serves the ordinary cases; a broker of our own, on a
free port with persistence in a temporary folder, is restarted and flooded without
disturbing anyone else. Counts stay small to keep the run short.
"""

from __future__ import annotations

import getpass
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import text

from territoire.db import Database
from territoire.telemetry import service
from territoire.telemetry.bus import Limits, in_process_bus
from territoire.telemetry.mqtt import MqttPublisher, MqttWorker
from territoire.tenancy.models import Tenant
from tests.conftest import World, service_missing
from tests.telemetry.helpers import count_rows, entities, hour_ago

SHARED = "mqtt://127.0.0.1:1883"


def wait_for(condition: Callable[[], bool], timeout: float = 20.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Broker:
    """A Mosquitto of our own, with persistence, that a test may restart."""

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        (folder / "data").mkdir()
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
            f"persistence_location {folder / 'data'}/\nmax_queued_messages 0\n"
            f"log_dest file {folder / 'mosquitto.log'}\n"
            # Mosquitto started as root switches to its own user unless told to stay.
            f"user {getpass.getuser()}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.process = subprocess.Popen(["mosquitto", "-c", str(self.config)])
        assert wait_for(self._listening, 10), "mosquitto did not start"

    def stop(self) -> None:
        if self.process is not None:
            self.process.send_signal(signal.SIGTERM)  # a clean stop saves the persistence file
            self.process.wait(timeout=10)
            self.process = None

    def _listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                return True
        except OSError:
            return False


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if subprocess.run(["which", "mosquitto"], capture_output=True).returncode != 0:
        pytest.skip("mosquitto is not installed")
    (tmp_path / "mqtt").mkdir()
    own = Broker(tmp_path / "mqtt")
    own.start()
    yield own
    own.stop()


@pytest.fixture
def shared_broker() -> None:
    service_missing(
        "Mosquitto",
        "127.0.0.1",
        1883,
        "start it with: mosquitto -d -c /etc/mosquitto/mosquitto.conf",
    )


def setup_devices(database: Database, world: World, count: int = 1) -> tuple[Tenant, list[str]]:
    tenant = world.tenant(f"t{uuid.uuid4().hex[:8]}")
    urns = entities(database, tenant.id, count)
    with database.session() as session:
        for i, urn in enumerate(urns):
            service.register_device(
                session,
                tenant.id,
                device_id=f"dev{i}",
                entity=urn,
                payload_format="json",
                mapping={"p": service.MappingTarget("powerConsumption", "WTT")},
            )
    return tenant, urns


def message(minutes: int, value: float) -> bytes:
    return orjson.dumps({"ts": hour_ago(minutes).isoformat(), "p": value})


def worker_for(
    database: Database, url: str, tenant: Tenant, client_id: str, group: str, **options: object
) -> MqttWorker:
    return MqttWorker(
        database,
        url,
        client_id=client_id,
        share_group=group,
        subscriptions=[f"territoire/{tenant.slug}/+/up", "application/+/device/+/event/up"],
        **options,  # type: ignore[arg-type]
    )


def test_worker_stores_messages_and_network_server_topics(
    database: Database, world: World, shared_broker: None
) -> None:
    tenant, (urn,) = setup_devices(database, world)
    with database.session() as session:
        service.register_device(
            session,
            tenant.id,
            device_id="70B3D57ED0000001",
            entity=urn,
            payload_format="chirpstack",
            mapping=None,
        )
    worker = worker_for(database, SHARED, tenant, f"test-{uuid.uuid4().hex}", uuid.uuid4().hex)
    worker.start()
    publisher = MqttPublisher(SHARED)
    try:
        for i in range(20):
            publisher.publish(f"territoire/{tenant.slug}/dev0/up", message(i, i))
        event = {
            "deviceInfo": {"devEui": "70b3d57ed0000001"},
            "time": hour_ago(200).isoformat(),
            "object": {"illuminance": 12},
        }
        publisher.publish("application/app-1/device/70B3D57ED0000001/event/up", orjson.dumps(event))
        publisher.publish(f"territoire/{tenant.slug}/ghost/up", message(0, 1))
        publisher.publish(f"territoire/{tenant.slug}/dev0/up", b"{broken")
        assert wait_for(lambda: count_rows(database) == 21), count_rows(database)
        assert wait_for(lambda: worker.handled == 23)
    finally:
        publisher.close()
        worker.stop(clear_session=True)
    with database.session() as session:
        attributes = {s.attribute for s in service.list_series(session, tenant.id)[0]}
        counts = {c.reason: c.count for c in service.rejection_counts(session, tenant.id)}
        unknown = {c.reason: c.count for c in service.rejection_counts(session, 0)}
    assert attributes == {"powerConsumption", "illuminance"}
    assert counts == {"malformed_json": 1} and unknown.get("unknown_device", 0) >= 1


def test_messages_published_while_the_worker_is_down_arrive_after_restart(
    database: Database, world: World, shared_broker: None
) -> None:
    tenant, _ = setup_devices(database, world)
    client_id, group = f"test-{uuid.uuid4().hex}", uuid.uuid4().hex
    first = worker_for(database, SHARED, tenant, client_id, group)
    first.start()
    first.stop()  # the session (and its subscription) stays on the broker
    publisher = MqttPublisher(SHARED)
    for i in range(30):
        publisher.publish(f"territoire/{tenant.slug}/dev0/up", message(i, i))
    publisher.close()
    time.sleep(0.3)
    assert count_rows(database) == 0
    second = worker_for(database, SHARED, tenant, client_id, group)
    second.start()
    try:
        assert wait_for(lambda: count_rows(database) == 30), count_rows(database)
    finally:
        second.stop(clear_session=True)


def test_broker_restart_loses_no_acknowledged_reading(
    database: Database, world: World, broker: Broker
) -> None:
    tenant, _ = setup_devices(database, world)
    client_id, group = f"test-{uuid.uuid4().hex}", uuid.uuid4().hex
    worker = worker_for(database, broker.url, tenant, client_id, group)
    worker.start()
    publisher = MqttPublisher(broker.url)
    for i in range(20):
        publisher.publish(f"territoire/{tenant.slug}/dev0/up", message(i, i))
    assert wait_for(lambda: count_rows(database) == 20)
    worker.stop()  # offline: the next messages wait in the broker only
    for i in range(20, 50):
        publisher.publish(f"territoire/{tenant.slug}/dev0/up", message(i, i))  # acknowledged
    publisher.close()
    broker.stop()
    broker.start()
    worker = worker_for(database, broker.url, tenant, client_id, group)
    worker.start()
    try:
        assert wait_for(lambda: count_rows(database) == 50), count_rows(database)
    finally:
        worker.stop(clear_session=True)


def test_crash_mid_batch_leaves_no_partial_batch_and_no_duplicate(
    database: Database, world: World, broker: Broker
) -> None:
    tenant, _urns = setup_devices(database, world, count=3)
    client_id, group = f"test-{uuid.uuid4().hex}", uuid.uuid4().hex
    probe = worker_for(database, broker.url, tenant, client_id, group)
    probe.start()
    probe.stop()  # create the persistent session, then leave
    publisher = MqttPublisher(broker.url)
    messages = 2000
    infos = [
        publisher.publish(
            f"territoire/{tenant.slug}/dev{i % 3}/up",
            orjson.dumps({"ts": hour_ago(i - 2400).isoformat(), "p": i, "q": i}),
            wait=False,
        )
        for i in range(messages)
    ]
    for info in infos:
        info.wait_for_publish(timeout=30)
    publisher.close()
    with database.session() as session:
        for i in range(3):
            device = service.get_device(session, tenant.id, f"dev{i}")
            device.mapping = {
                "p": {"attribute": "powerConsumption", "unit": "WTT"},
                "q": {"attribute": "illuminance"},
            }
    env = {
        **os.environ,
        "TERRITOIRE_DATABASE_URL": database.url,
        "TERRITOIRE_MQTT_URL": broker.url,
        "TERRITOIRE_DATA_DIR": str(Path(broker.config).parent / "data-dir"),
    }
    command = [
        str(Path(sys.executable).parent / "territoire"),
        "worker",
        "--client-id",
        client_id,
        "--share-group",
        group,
        "--batch-size",
        "20",
        "--topic",
        f"territoire/{tenant.slug}/+/up",
        "--device-rate",
        "100000",
    ]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    assert wait_for(lambda: count_rows(database) > 0, 30)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=10)
    stored_at_crash = count_rows(database)
    with database.engine.connect() as connection:
        per_time = connection.execute(
            text("SELECT ts, count(*) FROM observation GROUP BY ts")
        ).all()
    assert all(n == 2 for _ts, n in per_time), "a message was stored in part"
    log_file = (Path(broker.config).parent / "worker.log").open("wb")
    restarted = subprocess.Popen(command, env=env, stdout=log_file, stderr=log_file)
    try:
        assert wait_for(lambda: count_rows(database) == 2 * messages, 60), count_rows(database)
    finally:
        restarted.send_signal(signal.SIGTERM)
        restarted.wait(timeout=30)
    assert stored_at_crash <= 2 * messages
    service.refresh_rollups(database)
    with database.engine.connect() as connection:
        rolled = connection.execute(text("SELECT sum(count) FROM observation_hourly")).scalar_one()
        last = connection.execute(
            text("SELECT max(last_value) FROM telemetry_series_state")
        ).scalar_one()
    assert rolled == 2 * messages  # no reading counted twice after the replay
    assert last == float(messages - 1)


def test_a_flooding_device_cannot_starve_the_others(
    database: Database, world: World, broker: Broker
) -> None:
    tenant, _ = setup_devices(database, world, count=2)
    limits = Limits(device_per_second=5, device_burst=20)
    worker = worker_for(
        database, broker.url, tenant, f"test-{uuid.uuid4().hex}", uuid.uuid4().hex, limits=limits
    )
    worker.start()
    publisher = MqttPublisher(broker.url)
    try:
        flood = [
            publisher.publish(f"territoire/{tenant.slug}/dev0/up", message(i % 600, i), wait=False)
            for i in range(300)
        ]
        for i in range(10):
            publisher.publish(f"territoire/{tenant.slug}/dev1/up", message(i, i))
        for info in flood:
            info.wait_for_publish(timeout=30)
        assert wait_for(lambda: worker.handled == 310)
    finally:
        publisher.close()
        worker.stop(clear_session=True)
    with database.session() as session:
        by_device = {s.entity: s for s in service.list_series(session, tenant.id)[0]}
        dropped = {c.reason: c.count for c in service.rejection_counts(session, tenant.id)}
        sid = {s.entity[-1]: s.id for s in by_device.values()}
        quiet = service.observations(
            session, tenant.id, sid["1"], hour_ago(-60), hour_ago(600), 1000
        )
        loud = service.observations(
            session, tenant.id, sid["0"], hour_ago(-60), hour_ago(600), 1000
        )
    assert len(quiet) == 10
    assert 20 <= len(loud) < 100
    assert dropped["rate_limited_device"] == 300 - len(loud)


def test_in_process_bus_uses_the_same_handler(database: Database, world: World) -> None:
    tenant, _ = setup_devices(database, world)
    bus = in_process_bus(database)
    for i in range(12):
        bus.publish(f"territoire/{tenant.slug}/dev0/up", message(i * 5, i))
    bus.publish(f"territoire/{tenant.slug}/dev0/up", orjson.dumps({"ts": "nope", "p": 1}))
    assert bus.drain(20)
    assert count_rows(database) == 12
    with database.session() as session:
        counts = {c.reason: c.count for c in service.rejection_counts(session, tenant.id)}
    assert counts == {"bad_timestamp": 1}
