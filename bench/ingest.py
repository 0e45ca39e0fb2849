"""Ingestion benchmark: raw database/broker rates vs Territoire's paths, on the same rows.

    .venv/bin/python bench/ingest.py            # full sizes (a few minutes on 2 cores)
    .venv/bin/python bench/ingest.py --quick    # small sizes, under a minute

Prints, for SQLite and PostgreSQL: raw executemany/COPY rate, HTTP JSON and SenML batch
rates and their ratio; MQTT → PostgreSQL with one and two workers (QoS 1, published vs
stored) against the broker's own rate; aggregate and latest-values query times; bytes
per stored observation. Uses a throw-away SQLite file, a throw-away PostgreSQL database
on 127.0.0.1:5432 and a Mosquitto of its own on a free port.
"""

from __future__ import annotations

import argparse
import getpass
import os
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import orjson
import paho.mqtt.client as mqtt
import psycopg
import pyarrow.parquet as pq
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from sqlalchemy import create_engine, insert, text

from territoire.db import Database, migrate
from territoire.registry.models import Entity
from territoire.telemetry import lake, service, store
from territoire.telemetry.mqtt import MqttPublisher
from territoire.telemetry.records import Reading
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import Role, TenantKind

BIN = Path(sys.executable).parent
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
BATCH = 5000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_port(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"nothing listens on {port}")


def rate(count: int, seconds: float) -> str:
    return f"{count / seconds:>10,.0f}/s"


# --- fixtures --------------------------------------------------------------------------


def prepare(url: str, series: int) -> tuple[Database, int, list[str], str]:
    migrate.upgrade(url)
    database = Database(url)
    with database.session() as session:
        tenant = tenancy.create_tenant(
            session, slug="bench", name="Bench", siren="130025265", kind=TenantKind.COMMUNE
        )
        _token, raw = tenancy.create_api_token(session, tenant.id, name="bench", role=Role.OPERATOR)
        urns = [f"urn:ngsi-ld:Streetlight:b{i}" for i in range(series)]
        now = datetime.now(UTC)
        rows = [
            {
                "tenant_id": tenant.id,
                "urn": u,
                "type": "Streetlight",
                "properties": {},
                "relationships": {},
                "created_at": now,
                "modified_at": now,
            }
            for u in urns
        ]
        for start in range(0, len(rows), 5000):
            session.execute(insert(Entity), rows[start : start + 5000])
        tenant_id = tenant.id
    # One reading per series creates them all; then the observation table is emptied.
    first = datetime.now(UTC) - timedelta(days=3)
    for start in range(0, series, BATCH):
        service.ingest(
            database,
            tenant_id,
            [
                Reading(u, "powerConsumption", first, 0.0, "WTT")
                for u in urns[start : start + BATCH]
            ],
        )
    truncate(database)
    return database, tenant_id, urns, raw


def truncate(database: Database) -> None:
    with database.engine.begin() as connection:
        for table in ("observation", "observation_hourly", "observation_daily"):
            connection.execute(text(f"DELETE FROM {table}"))
        connection.execute(text("UPDATE telemetry_series SET dirty_since = NULL"))


def series_ids(database: Database, tenant_id: int) -> dict[str, int]:
    with database.session() as session:
        rows = session.execute(
            text("SELECT entity, id FROM telemetry_series WHERE tenant_id = :t"), {"t": tenant_id}
        )
        return {entity: sid for entity, sid in rows}


def workload(urns: list[str], steps: int) -> list[tuple[str, datetime, float]]:
    """Every series reports every 5 minutes; batches follow time, as live traffic does."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    return [
        (u, start + timedelta(minutes=5 * t), float(t % 97)) for t in range(steps) for u in urns
    ]


def json_bodies(rows: list[tuple[str, datetime, float]]) -> list[bytes]:
    return [
        orjson.dumps(
            [
                {
                    "entity": u,
                    "attribute": "powerConsumption",
                    "ts": ts.isoformat(),
                    "value": v,
                    "unit": "WTT",
                }
                for u, ts, v in rows[i : i + BATCH]
            ]
        )
        for i in range(0, len(rows), BATCH)
    ]


def senml_bodies(rows: list[tuple[str, datetime, float]]) -> list[bytes]:
    return [
        orjson.dumps(
            [
                {"bn": f"{u}/", "n": "powerConsumption", "u": "W", "t": ts.timestamp(), "v": v}
                for u, ts, v in rows[i : i + BATCH]
            ]
        )
        for i in range(0, len(rows), BATCH)
    ]


# --- raw baselines ---------------------------------------------------------------------


def raw_sqlite(path: str, tuples: list[tuple[int, int, float]]) -> float:
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    began = time.perf_counter()
    for i in range(0, len(tuples), BATCH):
        connection.executemany(
            "INSERT INTO observation (series_id, ts, value) VALUES (?,?,?)", tuples[i : i + BATCH]
        )
        connection.commit()
    elapsed = time.perf_counter() - began
    connection.close()
    return elapsed


def raw_postgres(url: str, tuples: list[tuple[int, datetime, float]]) -> float:
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
        began = time.perf_counter()
        for i in range(0, len(tuples), BATCH):
            with (
                connection.cursor() as cursor,
                cursor.copy(
                    "COPY observation (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
                ) as copy,
            ):
                copy.set_types(["int4", "timestamptz", "float8"])
                for row in tuples[i : i + BATCH]:
                    copy.write_row(row)
            connection.commit()
        return time.perf_counter() - began


# --- HTTP ------------------------------------------------------------------------------


class Server:
    def __init__(self, url: str, data_dir: Path) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "TERRITOIRE_DATABASE_URL": url,
            "TERRITOIRE_DATA_DIR": str(data_dir),
            "TERRITOIRE_MAX_BODY_BYTES": str(20 * 1024 * 1024),
            "TERRITOIRE_LOG_LEVEL": "warning",
        }
        self.process = subprocess.Popen(
            [str(BIN / "territoire"), "serve", "--no-migrate", "--port", str(self.port)], env=env
        )
        wait_port(self.port)
        self.base = f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=20)


def post_all(
    server: Server, token: str, bodies: list[bytes], content_type: str
) -> tuple[float, int]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    stored = 0
    with httpx.Client(base_url=server.base, headers=headers, timeout=120) as client:
        began = time.perf_counter()
        for body in bodies:
            response = client.post("/api/v1/telemetry", content=body)
            response.raise_for_status()
            stored += response.json()["stored"]
        return time.perf_counter() - began, stored


def timed_get(
    server: Server, token: str, path: str, params: dict[str, str], runs: int = 7
) -> tuple[float, int]:
    with httpx.Client(
        base_url=server.base, headers={"Authorization": f"Bearer {token}"}, timeout=120
    ) as client:
        times, size = [], 0
        for _ in range(runs):
            began = time.perf_counter()
            response = client.get(path, params=params)
            response.raise_for_status()
            times.append(time.perf_counter() - began)
            size = len(response.content)
        return statistics.median(times[1:]), size


# --- one database --------------------------------------------------------------------


def bench_database(
    name: str, url: str, args: argparse.Namespace, work: Path, results: dict[str, float]
) -> None:
    print(
        f"\n== {name}: {args.series} series x {args.steps} steps = {args.series * args.steps:,} "
        f"rows, batches of {BATCH}"
    )
    database, tenant_id, urns, token = prepare(url, args.series)
    ids = series_ids(database, tenant_id)
    rows = workload(urns, args.steps)
    if name == "SQLite":
        tuples_ms = [(ids[u], store.to_ms(ts), v) for u, ts, v in rows]
        raw = raw_sqlite(url.removeprefix("sqlite:///"), tuples_ms)
    else:
        raw = raw_postgres(url, [(ids[u], ts, v) for u, ts, v in rows])
    print(f"raw {'executemany' if name == 'SQLite' else 'binary COPY'}      {rate(len(rows), raw)}")
    server = Server(url, work / f"data-{name}")
    try:
        warm_up = [
            {
                "entity": urns[0],
                "attribute": "powerConsumption",
                "value": 1.0,
                "ts": (rows[0][1] - timedelta(days=1)).isoformat(),
            }
        ]
        post_all(server, token, [orjson.dumps(warm_up)], "application/json")
        for label, bodies, content_type in (
            ("HTTP JSON batch ", json_bodies(rows), "application/json"),
            ("HTTP SenML batch", senml_bodies(rows), "application/senml+json"),
        ):
            truncate(database)
            elapsed, stored = post_all(server, token, bodies, content_type)
            assert stored == len(rows), (stored, len(rows))
            ratio = raw / elapsed
            results[f"{name} {label.strip()}"] = ratio
            print(
                f"{label}         {rate(len(rows), elapsed)}   ratio {ratio:.2f} x raw (goal >= "
                "0.6)"
            )
        query_times(name, database, tenant_id, urns, server, token, args)
    finally:
        server.close()
    if name == "SQLite":
        bytes_per_row(database, url, work, len(rows))
    database.dispose()


def query_times(
    name: str,
    database: Database,
    tenant_id: int,
    urns: list[str],
    server: Server,
    token: str,
    args: argparse.Namespace,
) -> None:
    truncate(database)
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(days=366)
    year = [
        Reading(
            urns[0], "powerConsumption", start + timedelta(minutes=5 * i), float(i % 500), "WTT"
        )
        for i in range(args.year_points)
    ]
    for i in range(0, len(year), 20_000):
        service.ingest(database, tenant_id, year[i : i + 20_000])
    service.refresh_rollups(database)
    sid = series_ids(database, tenant_id)[urns[0]]
    params = {
        "period": "PT1H",
        "fn": "avg,min,max,sum,count",
        "from": start.isoformat(),
        "to": (start + timedelta(minutes=5 * args.year_points)).isoformat(),
        "tz": "UTC",
    }
    median, size = timed_get(server, token, f"/api/v1/series/{sid}/aggregate", params)
    print(
        f"aggregate, {args.year_points:,} points, hourly buckets: {median * 1000:6.1f} ms (goal "
        f"<= 50 ms, {size:,} bytes)"
    )
    latest_series = ensure_many_series(database, tenant_id, args.latest)
    median, size = timed_get(server, token, "/api/v1/series/latest", {})
    print(
        f"latest values of {latest_series:,} series:          {median * 1000:6.1f} ms (goal <= "
        f"200 ms, {size:,} bytes)"
    )


def ensure_many_series(database: Database, tenant_id: int, wanted: int) -> int:
    with database.session() as session:
        have = session.execute(
            text("SELECT count(*) FROM telemetry_series WHERE tenant_id = :t"), {"t": tenant_id}
        ).scalar_one()
        missing = wanted - have
        now = datetime.now(UTC)
        if missing > 0:
            extra = [f"urn:ngsi-ld:ParkingSpot:p{i}" for i in range(missing)]
            rows = [
                {
                    "tenant_id": tenant_id,
                    "urn": u,
                    "type": "ParkingSpot",
                    "properties": {},
                    "relationships": {},
                    "created_at": now,
                    "modified_at": now,
                }
                for u in extra
            ]
            for i in range(0, len(rows), 5000):
                session.execute(insert(Entity), rows[i : i + 5000])
    if missing > 0:
        for i in range(0, len(extra), BATCH):
            service.ingest(
                database,
                tenant_id,
                [
                    Reading(u, "occupancy", now - timedelta(minutes=1), 1.0)
                    for u in extra[i : i + BATCH]
                ],
            )
    return max(wanted, have)


def bytes_per_row(database: Database, url: str, work: Path, count: int) -> None:
    with database.engine.connect() as connection:
        rows = connection.execute(
            text("SELECT series_id, ts, value FROM observation ORDER BY series_id, ts LIMIT :n"),
            {"n": count},
        ).all()
    probe = work / "bytes.db"
    connection = sqlite3.connect(probe)
    connection.execute(
        "CREATE TABLE observation (series_id INTEGER NOT NULL, ts BIGINT NOT NULL, value FLOAT "
        "NOT NULL, PRIMARY KEY (series_id, ts)) WITHOUT ROWID"
    )
    empty = probe.stat().st_size
    connection.executemany("INSERT INTO observation VALUES (?,?,?)", [tuple(r) for r in rows])
    connection.commit()
    connection.execute("VACUUM")
    connection.close()
    size = probe.stat().st_size - empty
    info = {
        sid: (sid, "urn:ngsi-ld:Streetlight:x", "powerConsumption", "WTT")
        for sid in {r[0] for r in rows}
    }
    parquet = work / "bytes.parquet"
    pq.write_table(lake._table(info, [tuple(r) for r in rows]), parquet, compression="zstd")
    print(
        f"bytes per observation: SQLite {size / len(rows):.1f} B ({len(rows):,} rows), "
        f"Parquet/zstd {parquet.stat().st_size / len(rows):.1f} B"
    )


# --- MQTT ----------------------------------------------------------------------------


class Broker:
    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        config = folder / "mosquitto.conf"
        config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\npersistence "
            f"false\nmax_queued_messages 0\nuser {getpass.getuser()}\n"
        )
        self.process = subprocess.Popen(["mosquitto", "-c", str(config)], stderr=subprocess.DEVNULL)
        wait_port(self.port)
        self.url = f"mqtt://127.0.0.1:{self.port}"

    def close(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def raw_broker(broker: Broker, messages: list[tuple[str, bytes]]) -> float:
    received = threading.Event()
    count = [0]

    def on_message(_c: object, _u: object, _m: object) -> None:
        count[0] += 1
        if count[0] == len(messages):
            received.set()

    subscriber = mqtt.Client(CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv5)
    subscriber.on_message = on_message
    subscriber.connect("127.0.0.1", broker.port)
    subscriber.subscribe("rawbench/#", qos=1)
    subscriber.loop_start()
    time.sleep(0.3)
    elapsed = publish_all(broker, [("rawbench/" + t, p) for t, p in messages], received.wait)
    subscriber.disconnect()
    subscriber.loop_stop()
    return elapsed


def publish_all(broker: Broker, messages: list[tuple[str, bytes]], done: object) -> float:
    publisher = MqttPublisher(broker.url)
    began = time.perf_counter()
    infos = [publisher.publish(topic, payload, wait=False) for topic, payload in messages]
    for info in infos:
        info.wait_for_publish(timeout=120)
    assert callable(done)
    done(300)
    elapsed = time.perf_counter() - began
    publisher.close()
    return elapsed


def bench_mqtt(url: str, args: argparse.Namespace, work: Path, results: dict[str, float]) -> None:
    print(f"\n== MQTT -> PostgreSQL, QoS 1, {args.messages:,} messages of one reading")
    database = Database(url)
    with database.session() as session:
        tenant = tenancy.find_tenant_by_slug(session, "bench")
        assert tenant is not None
        devices = min(1000, args.series)
        for i in range(devices):
            service.register_device(
                session,
                tenant.id,
                device_id=f"dev{i}",
                entity=f"urn:ngsi-ld:Streetlight:b{i}",
                payload_format="json",
                mapping={"p": service.MappingTarget("powerConsumption", "WTT")},
            )
    broker = Broker(work)
    try:
        start = datetime.now(UTC) - timedelta(days=1)
        messages = [
            (
                f"territoire/bench/dev{i % devices}/up",
                orjson.dumps(
                    {"ts": (start + timedelta(seconds=i // devices)).isoformat(), "p": i % 100}
                ),
            )
            for i in range(args.messages)
        ]
        raw = raw_broker(broker, [(t.replace("territoire/", ""), p) for t, p in messages])
        print(f"raw broker publish->subscribe    {rate(len(messages), raw)}")
        for workers in (1, 2):
            truncate(database)
            elapsed, stored = run_workers(database, broker, url, workers, messages, work)
            ratio = raw / elapsed
            results[f"MQTT {workers} worker(s)"] = len(messages) / elapsed
            print(
                f"{workers} worker(s): published {len(messages):,}, stored {stored:,}, lost "
                f"{len(messages) - stored}   {rate(len(messages), elapsed)}   ratio {ratio:.2f} "
                "x broker (goal >= 10,000/s, zero loss)"
            )
    finally:
        broker.close()
        database.dispose()


def run_workers(
    database: Database,
    broker: Broker,
    url: str,
    workers: int,
    messages: list[tuple[str, bytes]],
    work: Path,
) -> tuple[float, int]:
    env = {
        **os.environ,
        "TERRITOIRE_DATABASE_URL": url,
        "TERRITOIRE_MQTT_URL": broker.url,
        "TERRITOIRE_DATA_DIR": str(work / "worker-data"),
    }
    group = uuid.uuid4().hex[:8]
    processes = [
        subprocess.Popen(
            [
                str(BIN / "territoire"),
                "worker",
                "--client-id",
                f"bench-{group}-{n}",
                "--share-group",
                group,
                "--device-rate",
                "1000000",
                "--tenant-rate",
                "10000000",
                "--topic",
                "territoire/+/+/up",
                "--batch-size",
                "2000",
            ],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        for n in range(workers)
    ]
    time.sleep(3)  # connected and subscribed

    def stored() -> int:
        with database.engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM observation")).scalar_one())

    def done(timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while stored() < len(messages) and time.monotonic() < deadline:
            time.sleep(0.02)

    try:
        elapsed = publish_all(broker, messages, done)
        return elapsed, stored()
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)


# --- main ----------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    parser.add_argument("--skip-mqtt", action="store_true")
    args = parser.parse_args()
    args.series, args.steps = (200, 50) if args.quick else (1000, 200)
    args.year_points = 5_000 if args.quick else 105_120
    args.latest = 5_000 if args.quick else 50_000
    args.messages = 5_000 if args.quick else 40_000
    print(
        f"Territoire ingestion benchmark — {os.cpu_count()} cores, Python "
        f"{sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}"
    )
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="territoire-bench-") as folder:
        work = Path(folder)
        bench_database("SQLite", f"sqlite:///{work / 'bench.db'}", args, work, results)
        name = f"territoire_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        try:
            bench_database("PostgreSQL", url, args, work, results)
            if not args.skip_mqtt:
                bench_mqtt(url, args, work, results)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
