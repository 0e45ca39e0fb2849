"""Settings, migrations, the CLI and the demo seeding."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, inspect, select
from typer.testing import CliRunner

from territoire.cli import app as cli
from territoire.config import Settings, load_settings, normalise_database_url
from territoire.db import Database, migrate
from territoire.demo.seed import COMMUNES, DEMO_SLUG, DEMO_USERS, demo_password, seed_demo
from territoire.models import metadata
from territoire.registry.models import Entity
from territoire.simulator.sizes import Size
from territoire.tenancy import service as tenancy

from .conftest import World


def test_settings_from_environment_and_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "territoire.toml"
    config.write_text('port = 9001\ntile_url = "https://tiles.example/{z}/{x}/{y}.png"\n')
    monkeypatch.setenv("TERRITOIRE_CONFIG", str(config))
    monkeypatch.setenv("TERRITOIRE_PORT", "9002")
    settings = load_settings(data_dir=tmp_path)
    assert settings.port == 9002, "the environment wins over the file"
    assert settings.tile_url.startswith("https://tiles.example")
    assert settings.effective_database_url == f"sqlite:///{(tmp_path / 'territoire.db').resolve()}"
    assert normalise_database_url("postgresql://u@h/db") == "postgresql+psycopg://u@h/db"


def test_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = Settings(data_dir=tmp_path).effective_secret_key()
    assert len(first) >= 40
    assert Settings(data_dir=tmp_path).effective_secret_key() == first
    assert oct((tmp_path / "secret_key").stat().st_mode & 0o777) == "0o600"


def test_one_migration_head_and_schema_matches_models(database: Database) -> None:
    assert len(migrate.heads()) == 1
    tables = set(inspect(database.engine).get_table_names())
    assert {table.name for table in metadata.sorted_tables} <= tables


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    migrate.upgrade(url)
    db = Database(url)
    with db.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    db.dispose()
    migrate.downgrade(url, "base")
    db = Database(url)
    assert "entity" not in inspect(db.engine).get_table_names()
    db.dispose()


def test_demo_seeding_is_idempotent(world: World) -> None:
    with world.database.session() as session:
        first = seed_demo(session, size=Size.SMALL)
    with world.database.session() as session:
        second = seed_demo(session, size=Size.SMALL)
    assert first.entities_added >= 200
    assert second.entities_added == 0
    assert second.created_users == []
    assert first.work_orders_added > 0 and first.requests_added > 0
    assert second.work_orders_added == 0 and second.requests_added == 0
    with world.database.session() as session:
        tenant = tenancy.find_tenant_by_slug(session, DEMO_SLUG)
        assert tenant is not None
        assert len(tenancy.list_communes(session, tenant.id)) == len(COMMUNES)
        total = session.scalar(select(func.count()).select_from(Entity))
        placed = session.scalar(
            select(func.count()).select_from(Entity).where(Entity.commune_id.is_not(None))
        )
        assert total == first.entities_added
        assert placed == total, "every demo asset falls in one of the three communes"
    for role, email, _name in DEMO_USERS:
        with world.database.session() as session:
            user = tenancy.authenticate(session, email, demo_password(role))
            assert user is not None
            assert tenancy.role_in(session, user.id, tenant.id) == role


def test_cli_tenant_and_user_creation(
    settings: Settings, world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TERRITOIRE_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("TERRITOIRE_DATA_DIR", str(settings.data_dir))
    runner = CliRunner()
    created = runner.invoke(
        cli,
        [
            "tenant",
            "create",
            "--slug",
            "dijon",
            "--name",
            "Dijon Métropole",
            "--siren",
            "242100410",
            "--kind",
            "intercommunality",
        ],
    )
    assert created.exit_code == 0, created.output
    refused = runner.invoke(
        cli, ["tenant", "create", "--slug", "autre", "--name", "X", "--siren", "123456789"]
    )
    assert refused.exit_code == 1 and "SIREN" in refused.output
    user = runner.invoke(
        cli,
        [
            "user",
            "create",
            "--email",
            "ops@dijon.test",
            "--tenant",
            "dijon",
            "--role",
            "operator",
            "--password",
            "un-long-mot-de-passe",
        ],
    )
    assert user.exit_code == 0, user.output
    with world.database.session() as session:
        account = tenancy.authenticate(session, "ops@dijon.test", "un-long-mot-de-passe")
        assert account is not None
    listing = runner.invoke(cli, ["tenant", "list"])
    assert "Dijon Métropole" in listing.output


def test_every_command_has_help() -> None:
    runner = CliRunner()
    for command in (
        ["--help"],
        ["demo", "--help"],
        ["serve", "--help"],
        ["db", "upgrade", "--help"],
        ["tenant", "create", "--help"],
        ["user", "create", "--help"],
        ["import", "entities", "--help"],
        ["token", "create", "--help"],
    ):
        result = runner.invoke(cli, command)
        assert result.exit_code == 0, (command, result.output)
        assert "Usage" in result.output
