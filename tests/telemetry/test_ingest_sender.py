"""The HTTP ingest path looks its sender up in the batch's own transaction, from one
lightweight query: revocation, expiry and last-use bookkeeping behave as before, a replay
(which loses the transaction on PostgreSQL) still answers, and a steady request costs one
transaction and no separate tenant read."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Connection, event, select, text

from territoire.db import Database
from territoire.db.base import utcnow
from territoire.telemetry import service
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import ApiToken, Role, Tenant
from tests.conftest import World
from tests.telemetry.helpers import count_rows, entities, hour_ago, readings


def _batch(urn: str, count: int, start: datetime) -> bytes:
    return orjson.dumps(
        [
            {
                "entity": urn,
                "attribute": "powerConsumption",
                "ts": (start + timedelta(minutes=5 * i)).isoformat(),
                "value": i,
                "unit": "WTT",
            }
            for i in range(count)
        ]
    )


def _token(world: World, tenant: Tenant, expires_at: datetime | None = None) -> tuple[str, str]:
    """(public id, raw token) of a new operator token."""
    with world.database.session() as session:
        token, raw = tenancy.create_api_token(
            session, tenant.id, name="sender", role=Role.OPERATOR, expires_at=expires_at
        )
        return token.public_id, raw


def _client(world: World, raw: str) -> TestClient:
    client = TestClient(world.app)  # type: ignore[arg-type]
    client.headers["Authorization"] = f"Bearer {raw}"
    return client


def test_a_revoked_token_is_refused_at_the_next_request(database: Database, world: World) -> None:
    tenant = world.tenant("revoque")
    (urn,) = entities(database, tenant.id, 1)
    public_id, raw = _token(world, tenant)
    client = _client(world, raw)
    first = client.post("/api/v1/telemetry", content=_batch(urn, 3, hour_ago()))
    assert first.status_code == 200 and first.json()["stored"] == 3
    with database.session() as session:
        tenancy.revoke_api_token(session, tenant.id, public_id)
    refused = client.post("/api/v1/telemetry", content=_batch(urn, 3, hour_ago(60)))
    assert refused.status_code == 401
    assert "revoked" in refused.json()["error"]["message"]
    assert count_rows(database) == 3


def test_an_expired_token_stores_nothing(database: Database, world: World) -> None:
    tenant = world.tenant("expire")
    (urn,) = entities(database, tenant.id, 1)
    _public, raw = _token(world, tenant, utcnow() - timedelta(seconds=1))
    response = _client(world, raw).post("/api/v1/telemetry", content=_batch(urn, 3, hour_ago()))
    assert response.status_code == 401
    assert count_rows(database) == 0


def test_ingest_records_when_the_token_was_last_used(database: Database, world: World) -> None:
    tenant = world.tenant("dernier")
    (urn,) = entities(database, tenant.id, 1)
    public_id, raw = _token(world, tenant)
    before = utcnow()
    response = _client(world, raw).post("/api/v1/telemetry", content=_batch(urn, 2, hour_ago()))
    assert response.status_code == 200
    with database.session() as session:
        used = session.scalar(select(ApiToken.last_used_at).where(ApiToken.public_id == public_id))
    assert used is not None and used >= before - timedelta(seconds=1)


def test_a_payload_refused_after_authentication_leaves_the_database_usable(
    database: Database, world: World
) -> None:
    tenant = world.tenant("mauvais")
    (urn,) = entities(database, tenant.id, 1)
    _public, raw = _token(world, tenant)
    client = _client(world, raw)
    bad = client.post("/api/v1/telemetry", content=b"[{not json")
    assert 400 <= bad.status_code < 500
    good = client.post("/api/v1/telemetry", content=_batch(urn, 4, hour_ago()))
    assert good.status_code == 200 and good.json()["stored"] == 4
    assert count_rows(database) == 4


def test_an_http_replay_is_answered_and_the_next_batch_stored(
    database: Database, world: World
) -> None:
    """On PostgreSQL the replay's COPY fails inside the sender's transaction: that one is
    rolled back and the batch runs again in a fresh one."""
    tenant = world.tenant("rejeu")
    (urn,) = entities(database, tenant.id, 1)
    _public, raw = _token(world, tenant)
    client = _client(world, raw)
    body = _batch(urn, 5, hour_ago())
    assert client.post("/api/v1/telemetry", content=body).json()["stored"] == 5
    replay = client.post("/api/v1/telemetry", content=body)
    assert replay.status_code == 200
    assert (replay.json()["accepted"], replay.json()["stored"]) == (5, 0)
    following = client.post("/api/v1/telemetry", content=_batch(urn, 5, hour_ago(25)))
    assert following.json()["stored"] == 5
    assert count_rows(database) == 10


@pytest.fixture()
def transactions(database: Database) -> Iterator[list[str]]:
    """Every transaction begun on the engine, and every statement run."""
    seen: list[str] = []

    def began(_connection: object) -> None:
        seen.append("BEGIN")

    def statement(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(database.engine, "begin", began)
    event.listen(database.engine, "before_cursor_execute", statement)
    yield seen
    event.remove(database.engine, "begin", began)
    event.remove(database.engine, "before_cursor_execute", statement)


def test_a_steady_request_is_one_transaction_without_a_tenant_read(
    database: Database, world: World, transactions: list[str]
) -> None:
    tenant = world.tenant("sobre")
    (urn,) = entities(database, tenant.id, 1)
    _public, raw = _token(world, tenant)
    client = _client(world, raw)
    assert client.post("/api/v1/telemetry", content=_batch(urn, 3, hour_ago())).status_code == 200
    transactions.clear()
    response = client.post("/api/v1/telemetry", content=_batch(urn, 3, hour_ago(60)))
    assert response.status_code == 200 and response.json()["stored"] == 3
    assert transactions.count("BEGIN") == 1
    statements = [s for s in transactions if s != "BEGIN"]
    tenant_reads = [s for s in statements if "FROM tenant" in s]
    assert tenant_reads == []
    assert sum("api_token" in s for s in statements) == 1


def test_a_device_token_sender_carries_its_device(database: Database, world: World) -> None:
    tenant = world.tenant("capteur")
    (urn,) = entities(database, tenant.id, 1)
    with database.session() as session:
        device, raw = service.register_device(
            session,
            tenant.id,
            device_id="lamp-1",
            entity=urn,
            payload_format="json",
            mapping={"p": service.MappingTarget("powerConsumption", "WTT", 1.0, None)},
        )
        found = service.device_sender(session, raw)
        created_at = tenancy.get_tenant(session, tenant.id).created_at
        assert found is not None
        info, fingerprint = found
        assert (info.id, info.tenant_id, info.entity) == (device.id, tenant.id, urn)
        assert "p" in info.mapping and fingerprint == created_at
        assert service.device_sender(session, raw + "x") is None
        # An API token is not a device token, even with the same secret part.
        assert service.device_sender(session, tenancy.TOKEN_PREFIX + raw[4:]) is None


def test_a_batch_that_loses_a_deadlock_runs_again(postgres_database: Database) -> None:
    """Another transaction holds one series' state row and then asks for the other's,
    which the batch holds: PostgreSQL aborts the batch, which runs again once the other
    transaction ends, instead of failing. (PostgreSQL's deadlock detection: run on a
    PostgreSQL database whichever database the suite tests.)"""
    database = postgres_database
    tenant = World(database, app=None).tenant("verrou")
    first, second = entities(database, tenant.id, 2)
    service.ingest(database, tenant.id, readings(first, hour_ago(), 1, timedelta(minutes=5)))
    service.ingest(database, tenant.id, readings(second, hour_ago(), 1, timedelta(minutes=5)))
    with database.session() as session:
        ids = sorted(info.id for info in service.list_series(session, tenant.id)[0])
    batch = readings(first, hour_ago(60), 3, timedelta(minutes=5))
    batch += readings(second, hour_ago(60), 3, timedelta(minutes=5))
    lock = (
        "UPDATE telemetry_series_state SET dirty_generation = dirty_generation WHERE series_id = :i"
    )
    outcome: list[object] = []
    with database.engine.connect() as other:
        deadlocks_before = _deadlocks(other)
        other.execute(text(lock), {"i": ids[1]})
        worker = threading.Thread(
            target=lambda: outcome.append(service.ingest(database, tenant.id, batch))
        )
        worker.start()
        time.sleep(0.3)  # the batch now holds the first row and waits for the second
        assert worker.is_alive()
        other.execute(text(lock), {"i": ids[0]})  # the cycle: one of the two is aborted
        other.commit()
        worker.join(timeout=30)
        # Backends report their statistics shortly after the fact.
        deadline = time.monotonic() + 5
        while _deadlocks(other) == deadlocks_before and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _deadlocks(other) > deadlocks_before
    (result,) = outcome
    assert isinstance(result, service.IngestResult)
    assert (result.accepted, result.stored) == (6, 6)
    assert count_rows(database) == 8


def _deadlocks(connection: Connection) -> int:
    connection.commit()  # statistics are read as of the transaction's start
    return int(
        connection.execute(
            text("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        ).scalar_one()
    )
