"""Shared fixtures: a real database (SQLite or PostgreSQL), the app, and signed-in clients.

Choose the database with TERRITOIRE_TEST_DB=sqlite (default) or postgresql. PostgreSQL
tests use a throw-away database created for the run on TERRITOIRE_TEST_PG_URL
(default postgresql://postgres@127.0.0.1:5432/postgres) and dropped at the end.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from territoire.app import create_app
from territoire.config import Settings, normalise_database_url
from territoire.db import Database, migrate
from territoire.models import metadata
from territoire.tenancy import service as tenancy
from territoire.tenancy.models import Role, Tenant, TenantKind

# Browser fixtures (one Chromium for the whole run) are shared by every test folder.
pytest_plugins = ["tests.browser.fixtures"]

TEST_DB = os.environ.get("TERRITOIRE_TEST_DB", "sqlite")
PG_ADMIN_URL = normalise_database_url(
    os.environ.get("TERRITOIRE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
)
ON_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
PASSWORD = "correct-horse-battery"


def service_missing(name: str, host: str, port: int, hint: str) -> None:
    """Skip (on a workstation) or fail (on CI) with a clear message when a service is down."""
    try:
        with socket.create_connection((host, port), timeout=2):
            return
    except OSError:
        message = f"{name} is not reachable on {host}:{port}; {hint}"
        if ON_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


def _postgres_database() -> Iterator[str]:
    service_missing(
        "PostgreSQL",
        "127.0.0.1",
        5432,
        "start it with: pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start",
    )
    name = f"territoire_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    """A throw-away PostgreSQL database, whichever database the run tests: for what only
    PostgreSQL has (connection pools against a real server)."""
    yield from _postgres_database()


@pytest.fixture(scope="module")
def postgres_database(postgres_url: str) -> Iterator[Database]:
    """The schema on a throw-away PostgreSQL database, in the SQLite run as well."""
    migrate.upgrade(postgres_url)
    db = Database(postgres_url)
    yield db
    db.dispose()


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if TEST_DB == "postgresql":
        yield from _postgres_database()
    elif TEST_DB == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('db') / 'territoire.db'}"
    else:
        raise pytest.UsageError("TERRITOIRE_TEST_DB must be sqlite or postgresql")


@pytest.fixture(scope="session")
def database(database_url: str) -> Iterator[Database]:
    migrate.upgrade(database_url)
    db = Database(database_url)
    yield db
    db.dispose()


def _empty_all_tables(db: Database) -> None:
    tables = [table.name for table in metadata.sorted_tables]
    with db.engine.begin() as connection:
        if db.dialect == "postgresql":
            quoted = ", ".join(f'"{name}"' for name in tables)
            connection.execute(text(f"TRUNCATE {quoted} RESTART IDENTITY CASCADE"))
        else:
            for name in reversed(tables):
                connection.execute(text(f'DELETE FROM "{name}"'))


@pytest.fixture(autouse=True)
def _clean_database(request: pytest.FixtureRequest) -> Iterator[None]:
    """Every test starts from empty tables (only when it uses the database)."""
    yield
    if "database" in request.fixturenames:
        _empty_all_tables(request.getfixturevalue("database"))


@pytest.fixture
def session(database: Database) -> Iterator[Session]:
    with database.session() as db_session:
        yield db_session


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        database_url=database_url,
        secret_key="test-secret-key-not-for-production",
        max_body_bytes=256 * 1024,
    )


@pytest.fixture
def app(settings: Settings, database: Database):  # type: ignore[no-untyped-def]
    return create_app(settings, database)


@pytest.fixture
def client(app) -> Iterator[TestClient]:  # type: ignore[no-untyped-def]
    with TestClient(app) as test_client:
        yield test_client


@dataclass
class Account:
    tenant: Tenant
    email: str
    password: str
    role: Role


@dataclass
class World:
    """Creates tenants, users and signed-in clients for a test."""

    database: Database
    app: object
    _counter: int = 0

    def tenant(self, slug: str, *, siren: str | None = None) -> Tenant:
        with self.database.session() as db_session:
            self._counter += 1
            return tenancy.create_tenant(
                db_session,
                slug=slug,
                name=f"Collectivité {slug}",
                siren=siren or luhn_siren(100_000_00 + self._counter * 7919),
                kind=TenantKind.COMMUNE,
            )

    def account(self, tenant: Tenant, role: Role, email: str | None = None) -> Account:
        email = email or f"{role.value}.{tenant.slug}@example.test"
        with self.database.session() as db_session:
            user = tenancy.find_user_by_email(db_session, email) or tenancy.create_user(
                db_session, email=email, full_name=email, password=PASSWORD
            )
            tenancy.set_role(db_session, user_id=user.id, tenant_id=tenant.id, role=role)
        return Account(tenant, email, PASSWORD, role)

    def browser(self, account: Account) -> SignedIn:
        """A client signed in with a session cookie, sending the CSRF header."""
        client = TestClient(self.app)  # type: ignore[arg-type]
        response = client.post(
            "/api/v1/auth/login",
            json={
                "email": account.email,
                "password": account.password,
                "tenant": account.tenant.slug,
            },
        )
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf_token"]
        return SignedIn(client, account)

    def api(self, tenant: Tenant, role: Role) -> TestClient:
        """A client authenticated with a bearer API token."""
        with self.database.session() as db_session:
            _token, raw = tenancy.create_api_token(db_session, tenant.id, name="test", role=role)
        client = TestClient(self.app)  # type: ignore[arg-type]
        client.headers["Authorization"] = f"Bearer {raw}"
        return client


@dataclass
class SignedIn:
    client: TestClient
    account: Account


def luhn_siren(base: int) -> str:
    """The first valid SIREN at or after `base` (8-digit prefix + Luhn digit)."""
    candidate = base
    while not tenancy.is_valid_siren(f"{candidate:09d}"):
        candidate += 1
    return f"{candidate:09d}"


@pytest.fixture
def world(database: Database, app) -> World:  # type: ignore[no-untyped-def]
    return World(database, app)
