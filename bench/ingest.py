"""Ingestion benchmark: raw database/broker rates vs Territoire's paths, on the same rows.

    .venv/bin/python bench/ingest.py            # full sizes (a few minutes on 2 cores)
    .venv/bin/python bench/ingest.py --quick    # small sizes, about a minute
    .venv/bin/python bench/ingest.py --only sqlite,mqtt

Prints, for SQLite and PostgreSQL: raw insert rates (SQLite executemany in arrival order
and in key order; PostgreSQL binary COPY from tuples and from a pre-encoded buffer),
HTTP JSON and SenML batch rates and their ratios to each raw rate; aggregate and
latest-values query times; bytes per stored observation; then MQTT → PostgreSQL with one
and two workers (QoS 1, published vs stored) against the broker's own rate with the
same publishers and a minimal consumer. The machine is shared: every path runs in
`--rounds` interleaved rounds and the best round of each is kept, so that a burst of
someone else's load skews one round rather than one path. Uses a throw-away SQLite
file, a throw-away PostgreSQL database on 127.0.0.1:5432 and a Mosquitto of its own.
"""

from __future__ import annotations

import argparse
import getpass
import multiprocessing
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
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import mqttload
import orjson
import psycopg
import pyarrow.parquet as pq
from sqlalchemy import create_engine, insert, text

from territoire.db import Database, migrate
from territoire.registry.models import Entity
from territoire.telemetry import lake, service, store
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
        if database.dialect == "postgresql":
            # TRUNCATE, not DELETE: dead rows left behind would slow whichever path runs
            # next, and the paths take turns.
            connection.execute(text("TRUNCATE observation, observation_hourly, observation_daily"))
        for table in ("observation", "observation_hourly", "observation_daily"):
            connection.execute(text(f"DELETE FROM {table}"))
        # The series' last values went with their rows.
        connection.execute(
            text(
                "UPDATE telemetry_series_state "
                "SET dirty_since = NULL, last_ts = NULL, last_value = NULL"
            )
        )


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


def raw_sqlite(path: str, tuples: list[tuple[int, int, float]], *, ordered: bool) -> float:
    """Plain executemany of pre-built tuples, one transaction per batch; `ordered` sorts
    each batch by key first (as Territoire does) outside the timed part."""
    batches = [tuples[i : i + BATCH] for i in range(0, len(tuples), BATCH)]
    if ordered:
        batches = [sorted(batch) for batch in batches]
    connection = sqlite3.connect(path)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")
    began = time.perf_counter()
    for batch in batches:
        connection.executemany(
            "INSERT INTO observation (series_id, ts, value) VALUES (?,?,?)", batch
        )
        connection.commit()
    elapsed = time.perf_counter() - began
    connection.close()
    return elapsed


def raw_postgres(url: str, tuples: list[tuple[int, int, float]], *, encoded: bool) -> float:
    """Binary COPY, one transaction per batch: from tuples written row by row by the driver,
    or (`encoded`) from a buffer encoded before timing starts (the server's own limit)."""
    batches = [tuples[i : i + BATCH] for i in range(0, len(tuples), BATCH)]
    if encoded:
        payloads: list[object] = [store.copy_payload(store.Rows.of(b)) for b in batches]
    else:
        payloads = [[(sid, store.from_ms(ms), v) for sid, ms, v in b] for b in batches]
    with psycopg.connect(url.replace("postgresql+psycopg", "postgresql")) as connection:
        began = time.perf_counter()
        for payload in payloads:
            with (
                connection.cursor() as cursor,
                cursor.copy(
                    "COPY observation (series_id, ts, value) FROM STDIN (FORMAT BINARY)"
                ) as copy,
            ):
                if isinstance(payload, bytes):
                    copy.write(payload)
                else:
                    copy.set_types(["int4", "timestamptz", "float8"])
                    for row in payload:  # type: ignore[attr-defined]
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
    server: Server, token: str, bodies: list[bytes], content_type: str, clients: int = 1
) -> tuple[float, int]:
    """POST every body, from `clients` connections at once (each sends its share in
    turn); (seconds, readings stored)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": content_type}
    stored = [0] * clients
    errors: list[BaseException] = []

    def send(index: int, client: httpx.Client) -> None:
        try:
            for body in bodies[index::clients]:
                response = client.post("/api/v1/telemetry", content=body)
                response.raise_for_status()
                stored[index] += response.json()["stored"]
        except BaseException as error:  # reported by the caller
            errors.append(error)

    connections = [
        httpx.Client(base_url=server.base, headers=headers, timeout=120) for _ in range(clients)
    ]
    threads = [
        threading.Thread(target=send, args=(i, client)) for i, client in enumerate(connections)
    ]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    for client in connections:
        client.close()
    if errors:
        raise errors[0]
    return elapsed, sum(stored)


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
        f"rows, batches of {BATCH}, best of {args.rounds} interleaved rounds   [{load()}]"
    )
    database, tenant_id, urns, token = prepare(url, args.series)
    ids = series_ids(database, tenant_id)
    rows = workload(urns, args.steps)
    tuples = [(ids[u], store.to_ms(ts), v) for u, ts, v in rows]
    sqlite_path = url.removeprefix("sqlite:///")
    raws: dict[str, Callable[[], float]] = (
        {
            "raw executemany, arrival order": lambda: raw_sqlite(
                sqlite_path, tuples, ordered=False
            ),
            "raw executemany, key order": lambda: raw_sqlite(sqlite_path, tuples, ordered=True),
        }
        if name == "SQLite"
        else {
            "raw binary COPY from tuples": lambda: raw_postgres(url, tuples, encoded=False),
            "raw binary COPY, pre-encoded": lambda: raw_postgres(url, tuples, encoded=True),
        }
    )
    bodies = {
        "HTTP JSON batch": (json_bodies(rows), "application/json", 1),
        "HTTP SenML batch": (senml_bodies(rows), "application/senml+json", 1),
        "HTTP JSON batch, 2 clients": (json_bodies(rows), "application/json", 2),
    }
    best: dict[str, float] = {}
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
        for _round in range(args.rounds):
            for label, run in raws.items():
                truncate(database)
                best[label] = min(best.get(label, 1e9), run())
            for label, (payloads, content_type, clients) in bodies.items():
                truncate(database)
                elapsed, stored = post_all(server, token, payloads, content_type, clients)
                assert stored == len(rows), (stored, len(rows))
                best[label] = min(best.get(label, 1e9), elapsed)
        for label, elapsed in best.items():
            line = f"{label:34s} {rate(len(rows), elapsed)}"
            if label in bodies:
                ratios = [f"{best[raw] / elapsed:.2f} x {raw.removeprefix('raw ')}" for raw in raws]
                results[f"{name} {label}"] = best[next(iter(raws))] / elapsed
                line += "   ratio " + ", ".join(ratios)
            print(line)
        print("(goal: HTTP >= 0.6 x raw)")
        query_times(name, database, tenant_id, urns, server, token, args)
    finally:
        server.close()
    if name == "SQLite":
        bytes_per_row(database, work, len(rows))
    database.dispose()


def load() -> str:
    one, five, _fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f}"


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
        "tz": "Europe/Paris",
    }
    for layout in ("rows", "columns"):
        median, size = timed_get(
            server, token, f"/api/v1/series/{sid}/aggregate", {**params, "layout": layout}
        )
        print(
            f"aggregate, {args.year_points:,} points, hourly, layout={layout:7s} "
            f"{median * 1000:6.1f} ms (goal <= 50 ms, {size:,} bytes)"
        )
    latest_series = ensure_many_series(database, tenant_id, args.latest)
    for label, params in (("", {}), (", ts and value", {"fields": "ts,value"})):
        median, size = timed_get(server, token, "/api/v1/series/latest", params)
        print(
            f"{f'latest values of {latest_series:,} series{label}:':43s} {median * 1000:6.1f} ms "
            f"(goal <= 200 ms, {size:,} bytes)"
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


def bytes_per_row(database: Database, work: Path, count: int) -> None:
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
        # No limit on queued messages: a consumer that falls behind must not lose any.
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


def publish_and_wait(
    broker: Broker, messages: list[tuple[str, bytes]], publishers: int, done: Callable[[], int]
) -> tuple[float, float, int]:
    """Publish from `publishers` processes at once; (seconds to publish, seconds until
    `done()` counts every message, final count)."""
    context = multiprocessing.get_context("fork")
    start = context.Event()
    processes = [
        context.Process(target=mqttload.publish, args=(broker.port, messages[k::publishers], start))
        for k in range(publishers)
    ]
    for process in processes:
        process.start()
    time.sleep(1.0)  # connected, packets encoded
    began = time.perf_counter()
    start.set()
    for process in processes:
        process.join()
    published = time.perf_counter() - began
    deadline = began + 300
    count = done()
    while count < len(messages) and time.perf_counter() < deadline:
        time.sleep(0.05)
        count = done()
    return published, time.perf_counter() - began, count


def raw_broker(
    broker: Broker, messages: list[tuple[str, bytes]], publishers: int, consumers: int
) -> tuple[float, float, int]:
    """The broker with the same publishers and minimal consumers that only acknowledge."""
    context = multiprocessing.get_context("fork")
    counter = context.Value("q", 0)
    stop = context.Event()
    topic = "rawbench/#" if consumers == 1 else f"$share/raw{uuid.uuid4().hex[:6]}/rawbench/#"
    readies = [context.Event() for _ in range(consumers)]
    processes = [
        context.Process(target=mqttload.subscribe, args=(broker.port, topic, counter, ready, stop))
        for ready in readies
    ]
    for process in processes:
        process.start()
    for ready in readies:
        ready.wait(10)
    try:
        return publish_and_wait(
            broker, [("rawbench/" + t, p) for t, p in messages], publishers, lambda: counter.value
        )
    finally:
        stop.set()
        for process in processes:
            process.join(timeout=10)


def bench_mqtt(url: str, args: argparse.Namespace, work: Path, results: dict[str, float]) -> None:
    print(
        f"\n== MQTT -> PostgreSQL, QoS 1, {args.messages:,} messages of one reading from "
        f"{args.publishers} publisher processes   [{load()}]"
    )
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
        for consumers in (1, 2):
            published, elapsed, received = raw_broker(broker, messages, args.publishers, consumers)
            results[f"broker {consumers}"] = received / elapsed
            print(
                f"broker alone, {consumers} minimal consumer(s): publish "
                f"{rate(len(messages), published)}, received {received:,}/{len(messages):,} "
                f"{rate(received, elapsed)}"
            )
        for workers in (1, 2):
            truncate(database)
            published, elapsed, stored = run_workers(
                database, broker, url, workers, messages, work, args
            )
            achieved = len(messages) / elapsed
            results[f"MQTT {workers} worker(s)"] = achieved
            print(
                f"{workers} worker(s): published {len(messages):,} "
                f"({rate(len(messages), published)}), stored {stored:,}, "
                f"lost {len(messages) - stored}   {rate(stored, elapsed)} "
                f"end to end, {achieved / results[f'broker {workers}']:.2f} x broker alone "
                "(goal >= 10,000/s, zero loss)"
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
    args: argparse.Namespace,
) -> tuple[float, float, int]:
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
                str(args.mqtt_batch),
            ],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for n in range(workers)
    ]
    for process in processes:  # the worker prints its first line once subscribed
        assert process.stdout is not None
        process.stdout.readline()

    def stored() -> int:
        with database.engine.connect() as connection:
            return int(connection.execute(text("SELECT count(*) FROM observation")).scalar_one())

    try:
        return publish_and_wait(broker, messages, args.publishers, stored)
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
    parser.add_argument(
        "--only", default="sqlite,postgresql,mqtt", help="among sqlite, postgresql, mqtt"
    )
    parser.add_argument("--rounds", type=int, help="interleaved rounds (default 3, quick 1)")
    parser.add_argument("--publishers", type=int, default=2, help="MQTT publisher processes")
    parser.add_argument("--mqtt-batch", type=int, default=2000, help="worker batch size")
    parser.add_argument("--skip-mqtt", action="store_true", help="same as leaving mqtt out")
    args = parser.parse_args()
    only = set(args.only.split(","))
    if args.skip_mqtt:
        only.discard("mqtt")
    args.series, args.steps = (200, 50) if args.quick else (1000, 200)
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.year_points = 5_000 if args.quick else 105_120
    args.latest = 5_000 if args.quick else 50_000
    args.messages = 10_000 if args.quick else 100_000
    print(
        f"Territoire ingestion benchmark — {os.cpu_count()} cores, Python "
        f"{sys.version.split()[0]}, SQLite {sqlite3.sqlite_version}, {load()}"
    )
    results: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="territoire-bench-") as folder:
        work = Path(folder)
        if "sqlite" in only:
            bench_database("SQLite", f"sqlite:///{work / 'bench.db'}", args, work, results)
        if not only & {"postgresql", "mqtt"}:
            return
        name = f"territoire_bench_{uuid.uuid4().hex[:8]}"
        admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
        try:
            if "postgresql" in only:
                bench_database("PostgreSQL", url, args, work, results)
            else:
                prepare(url, args.series)[0].dispose()
            if "mqtt" in only:
                bench_mqtt(url, args, work, results)
        finally:
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    print(f"\nDone   [{load()}]")


if __name__ == "__main__":
    main()
