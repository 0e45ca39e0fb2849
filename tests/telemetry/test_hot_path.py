"""The per-batch fixed costs stay cut without changing what is stored or evaluated: the
narrow series state table, the rules listener's skip for tenants without rules, the
pool's liveness check of idle PostgreSQL connections, the plain ASGI headers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy import create_engine, event, inspect, text
from sqlalchemy.exc import OperationalError

from territoire.db import Database, engine, migrate
from territoire.registry import service as registry
from territoire.rules import listeners
from territoire.telemetry import service, store
from territoire.telemetry.records import Reading
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import Role, TenantKind
from tests.conftest import TEST_DB, World, luhn_siren
from tests.rules.helpers import alarms_of, rule
from tests.telemetry.helpers import entities, hour_ago, readings

FIVE_MIN = timedelta(minutes=5)
PG_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
HOT = {"kind": "threshold", "attribute": "powerConsumption", "value": 100}


@pytest.fixture(autouse=True)
def _no_remembered_answers() -> None:
    # Earlier tests' tables were emptied behind the cache's back and tenant ids reused.
    listeners.forget_answers()


def _statements(database: Database) -> tuple[list[str], Any]:
    seen: list[str] = []

    def record(*args: object) -> None:
        seen.append(str(args[2]))

    event.listen(database.engine, "before_cursor_execute", record)
    return seen, record


def test_a_tenant_without_rules_costs_the_listener_no_query(
    database: Database, world: World
) -> None:
    tenant = world.tenant("norules")
    (urn,) = entities(database, tenant.id, 1)
    service.ingest(database, tenant.id, readings(urn, hour_ago(), 3, FIVE_MIN))
    seen, record = _statements(database)
    try:
        result = service.ingest(database, tenant.id, readings(urn, hour_ago(30), 3, FIVE_MIN))
    finally:
        event.remove(database.engine, "before_cursor_execute", record)
    assert result.stored == 3
    assert seen, "the ingest itself ran"
    assert not [sql for sql in seen if " rule" in sql.lower()], seen


def test_a_rule_saved_in_this_process_applies_to_the_next_batch(
    database: Database, world: World
) -> None:
    tenant = world.tenant("newrule")
    (urn,) = entities(database, tenant.id, 1)
    service.ingest(database, tenant.id, readings(urn, hour_ago(), 2, FIVE_MIN))
    assert not listeners.has_active_rules(database, tenant.id)
    rule(database, tenant.id, "hot", HOT)
    batch = [Reading(urn, "powerConsumption", hour_ago(60) + i * FIVE_MIN, 150.0) for i in range(2)]
    service.ingest(database, tenant.id, batch)
    (alarm,) = alarms_of(database, tenant.id)
    assert alarm.rule_key == "hot" and alarm.entity_urn == urn


def test_a_rule_saved_elsewhere_applies_once_the_answer_expires(
    database: Database, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process's rule is not announced here: the remembered answer runs out."""
    tenant = world.tenant("elsewhere")
    (urn,) = entities(database, tenant.id, 1)
    assert not listeners.has_active_rules(database, tenant.id)
    rule(database, tenant.id, "hot", HOT)
    # What another process would see: the answer given before the rule, still fresh.
    listeners._answers[(database.url, tenant.id)] = (False, listeners._generation, 1e18)
    assert not listeners.has_active_rules(database, tenant.id)
    monkeypatch.setattr(listeners, "ANSWER_SECONDS", 0.0)
    listeners._answers[(database.url, tenant.id)] = (False, listeners._generation, 0.0)
    assert listeners.has_active_rules(database, tenant.id)
    service.ingest(database, tenant.id, readings(urn, hour_ago(), 1, FIVE_MIN))
    service.ingest(database, tenant.id, [Reading(urn, "powerConsumption", hour_ago(10), 150.0)])
    assert len(alarms_of(database, tenant.id)) == 1


def test_last_values_live_in_the_state_table_and_follow_late_data(
    database: Database, world: World
) -> None:
    tenant = world.tenant("state")
    (urn,) = entities(database, tenant.id, 1)
    service.ingest(database, tenant.id, readings(urn, hour_ago(60), 4, FIVE_MIN))
    service.ingest(database, tenant.id, readings(urn, hour_ago(), 2, FIVE_MIN))  # late data
    with database.session() as session:
        (info,), _total = service.list_series(session, tenant.id)
        latest = service.latest_values(session, tenant.id)
    assert info.last_ts == hour_ago(60) + 3 * FIVE_MIN and info.last_value == 3.0
    assert latest[0][4:] == (store.to_ms(info.last_ts), 3.0)
    with database.engine.connect() as connection:
        columns = {c["name"] for c in inspect(connection).get_columns("telemetry_series")}
        state = connection.execute(
            text("SELECT series_id, last_value FROM telemetry_series_state")
        ).all()
    assert "last_value" not in columns
    assert state == [(info.id, 3.0)]


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    if TEST_DB != "postgresql":
        yield f"sqlite:///{tmp_path / 'fresh.db'}"
        return
    name = f"territoire_hot_{uuid.uuid4().hex[:8]}"
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _last_values(url: str, table: str, key: str) -> list[tuple[Any, ...]]:
    probe = create_engine(url)
    try:
        with probe.connect() as connection:
            return list(
                connection.execute(
                    text(f"SELECT {key}, last_value, dirty_generation FROM {table} ORDER BY 1")
                ).all()
            )
    finally:
        probe.dispose()


def test_migration_0007_moves_last_values_both_ways(fresh_url: str) -> None:
    migrate.upgrade(fresh_url)
    database = Database(fresh_url)
    try:
        with database.session() as session:
            tenant = tenancy.create_tenant(
                session,
                slug="mig",
                name="Mig",
                siren=luhn_siren(200_054_78),
                kind=TenantKind.COMMUNE,
            )
            for i in range(2):
                urn = f"urn:ngsi-ld:Streetlight:m{i}"
                registry.create_entity(
                    session, tenant.id, registry.EntityDraft(type="Streetlight", id=urn)
                )
        for i in range(2):
            batch = readings(f"urn:ngsi-ld:Streetlight:m{i}", hour_ago(), 3 + i, FIVE_MIN)
            service.ingest(database, tenant.id, batch)
    finally:
        database.dispose()
        service.forget_caches()
    before = _last_values(fresh_url, "telemetry_series_state", "series_id")
    assert [value for _sid, value, _generation in before] == [2.0, 3.0]
    migrate.downgrade(fresh_url, "0006")
    assert _last_values(fresh_url, "telemetry_series", "id") == before
    migrate.upgrade(fresh_url, "0007")
    assert _last_values(fresh_url, "telemetry_series_state", "series_id") == before


def test_an_idle_connection_killed_by_the_server_is_replaced(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a PostgreSQL restart does to the pool: every pooled connection is gone. One
    idle for longer than the threshold is checked and replaced before use."""
    database = Database(postgres_url)
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with database.session() as session:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        monkeypatch.setattr(engine, "IDLE_PING_SECONDS", 0.0)
        with database.session() as session:
            assert session.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        admin.dispose()
        database.dispose()


def test_a_busy_connection_is_not_pinged_and_a_dead_one_fails_once(
    postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the threshold there is no round trip before use; a connection killed in
    that window fails the one session that gets it, and the pool then starts afresh."""
    monkeypatch.setattr(engine, "IDLE_PING_SECONDS", 3600.0)
    database = Database(postgres_url)
    admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
    try:
        with database.session() as session:
            pid = session.execute(text("SELECT pg_backend_pid()")).scalar_one()
        seen, record = _statements(database)
        with database.session() as session:
            session.execute(text("SELECT 41"))
        event.remove(database.engine, "before_cursor_execute", record)
        assert seen == ["SELECT 41"]
        with admin.connect() as connection:
            connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        with pytest.raises(OperationalError), database.session() as session:
            session.execute(text("SELECT 1"))
        with database.session() as session:
            assert session.execute(text("SELECT pg_backend_pid()")).scalar_one() != pid
    finally:
        admin.dispose()
        database.dispose()


def test_security_headers_on_ingest_and_errors(database: Database, world: World) -> None:
    tenant = world.tenant("headers")
    (urn,) = entities(database, tenant.id, 1)
    client = world.api(tenant, Role.OPERATOR)
    body = [{"entity": urn, "attribute": "powerConsumption", "value": 1, "ts": "2020-01-01"}]
    for response in (
        client.post("/api/v1/telemetry", content=orjson.dumps(body)),
        client.get("/api/v1/series/999999"),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert response.headers["Referrer-Policy"] == "same-origin"


def test_a_replay_that_also_creates_a_series_keeps_both(database: Database, world: World) -> None:
    """On PostgreSQL the plain COPY fails on the replayed rows and the whole batch runs
    again (series creation included); on SQLite the late rows take the checked path."""
    tenant = world.tenant("replaynew")
    old, new = entities(database, tenant.id, 2)
    service.ingest(database, tenant.id, readings(old, hour_ago(), 4, FIVE_MIN))
    batch = readings(old, hour_ago(), 4, FIVE_MIN) + readings(new, hour_ago(), 3, FIVE_MIN)
    result = service.ingest(database, tenant.id, batch)
    assert (result.accepted, result.stored, result.rejected) == (7, 3, 0)
    with database.session() as session:
        infos = {info.entity: info for info in service.list_series(session, tenant.id)[0]}
    assert infos[new].last_value == 2.0 and infos[new].last_ts == hour_ago() + 2 * FIVE_MIN
    assert infos[old].last_value == 3.0
    with database.engine.connect() as connection:
        per_series = connection.execute(
            text("SELECT series_id, count(*) FROM observation GROUP BY series_id ORDER BY 1")
        ).all()
    assert [count for _sid, count in per_series] == [4, 3]
