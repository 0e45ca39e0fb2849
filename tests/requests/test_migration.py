"""The domain's migration (0004) goes down and up again on the test database's dialect."""

from __future__ import annotations

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from territoire.db import Database, migrate

TABLES = {
    "citizen_request",
    "request_category",
    "request_contact",
    "request_contact_access",
    "request_follower",
    "request_notification_outbox",
    "request_photo",
    "request_update",
    "open311_api_key",
}


def test_migration_0004_downgrades_and_upgrades(database: Database, database_url: str) -> None:
    config = migrate.alembic_config(database_url)
    below = ScriptDirectory.from_config(config).get_revision("0004").down_revision
    assert isinstance(below, str)
    database.engine.dispose()
    # Down to the revision under 0004 (later revisions of the chain go down with it).
    command.downgrade(config, below)
    names = set(inspect(database.engine).get_table_names())
    assert not TABLES & names
    assert {"tenant", "entity"} <= names  # the foundation is untouched
    migrate.upgrade(database_url)
    database.engine.dispose()
    assert set(inspect(database.engine).get_table_names()) >= TABLES
