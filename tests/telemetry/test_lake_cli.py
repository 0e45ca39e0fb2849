"""Retention to the Parquet lake, the import command, and the migration both ways."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text
from typer.testing import CliRunner

from territoire.cli import app as cli
from territoire.db import Database, migrate
from territoire.telemetry import lake, service
from tests.conftest import TEST_DB, World
from tests.telemetry.helpers import count_rows, entities, readings


def test_expired_raw_data_moves_to_the_lake_and_rollups_stay(
    database: Database, world: World, tmp_path: Path
) -> None:
    tenant = world.tenant("lake")
    (urn,) = entities(database, tenant.id, 1)
    now = datetime.now(UTC)
    old_start = (now - timedelta(days=12)).replace(hour=0, minute=0, second=0, microsecond=0)
    service.ingest(database, tenant.id, readings(urn, old_start, 3 * 288, timedelta(minutes=5)))
    recent = readings(urn, now - timedelta(hours=2), 10, timedelta(minutes=5))
    service.ingest(database, tenant.id, recent)
    with database.session() as session:
        service.set_raw_retention(session, tenant.id, 7)
    report = lake.export_expired(database, tmp_path, now=now)
    assert report.rows == 3 * 288 and len(report.files) == 3
    assert count_rows(database) == 10
    archived = lake.read_lake(tmp_path, "lake")
    assert archived.num_rows == 3 * 288
    assert archived.column("value").to_pylist()[:3] == [0.0, 1.0, 2.0]
    assert set(archived.column("entity").to_pylist()) == {urn}
    assert sorted(p.parent.name for p in report.files) == [
        f"date={(old_start + timedelta(days=d)).date()}" for d in range(3)
    ]
    with database.engine.connect() as connection:
        kept = connection.execute(text("SELECT sum(count) FROM observation_daily")).scalar_one()
    assert kept == 3 * 288 + 10  # rollups outlive the raw rows
    again = lake.export_expired(database, tmp_path, now=now)
    assert again.rows == 0 and lake.read_lake(tmp_path, "lake").num_rows == 3 * 288
    late = service.ingest(database, tenant.id, readings(urn, old_start, 1, timedelta(minutes=5)))
    assert late.reasons == {"too_old": 1}


def test_import_command_reads_csv_and_senml(
    database: Database, world: World, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tenant = world.tenant("importer")
    (urn,) = entities(database, tenant.id, 1)
    monkeypatch.setenv("TERRITOIRE_DATABASE_URL", database.url)
    monkeypatch.setenv("TERRITOIRE_DATA_DIR", str(tmp_path / "data"))
    moment = datetime.now(UTC) - timedelta(hours=1)
    rows = [
        f"{urn},powerConsumption,{(moment + timedelta(minutes=i)).isoformat()},{i},WTT"
        for i in range(7)
    ]
    rows.append(f"{urn},powerConsumption,{moment.isoformat()},lots,WTT")
    csv_file = tmp_path / "readings.csv"
    csv_file.write_text("entity,attribute,ts,value,unit\n" + "\n".join(rows) + "\n")
    result = CliRunner().invoke(cli, ["import", "telemetry", str(csv_file), "--tenant", "importer"])
    assert result.exit_code == 0, result.output
    assert "Accepted 7, stored 7, rejected 1" in result.output
    senml = tmp_path / "pack.senml"
    senml.write_text(
        f'[{{"bn": "{urn}/", "bt": {moment.timestamp()}, "n": "illuminance", "u": "lx", "v": 3}}]'
    )
    result = CliRunner().invoke(cli, ["import", "telemetry", str(senml), "--tenant", "importer"])
    assert result.exit_code == 0 and "stored 1" in result.output
    assert count_rows(database) == 8
    missing = CliRunner().invoke(cli, ["import", "telemetry", str(csv_file), "--tenant", "nobody"])
    assert missing.exit_code == 1


def test_migration_upgrades_and_downgrades(tmp_path: Path) -> None:
    if TEST_DB == "postgresql":
        admin = create_engine(
            "postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT"
        )
        name = f"territoire_mig_{uuid.uuid4().hex[:8]}"
        with admin.connect() as connection:
            connection.execute(text(f'CREATE DATABASE "{name}"'))
        url = f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"
    else:
        url = f"sqlite:///{tmp_path / 'migrations.db'}"
    try:
        migrate.upgrade(url, "0002")
        engine = create_engine(url)
        assert {"observation", "telemetry_series", "observation_hourly"} <= set(
            inspect(engine).get_table_names()
        )
        migrate.downgrade(url, "0001")
        assert "observation" not in inspect(engine).get_table_names()
        migrate.upgrade(url, "0002")
        assert "observation" in inspect(engine).get_table_names()
        engine.dispose()
    finally:
        if TEST_DB == "postgresql":
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
