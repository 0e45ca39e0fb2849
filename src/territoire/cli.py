"""The `territoire` command: demo, serve, database, tenants, users, tokens and imports."""

from __future__ import annotations

import csv
import getpass
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from territoire.config import Settings, load_settings
from territoire.db import Database, migrate
from territoire.errors import DomainError
from territoire.interventions import cli as operations_cli
from territoire.requests import cli as requests_cli
from territoire.rules import cli as rules_cli
from territoire.simulator import cli as simulator_cli
from territoire.telemetry import cli as telemetry_cli
from territoire.tenancy.models import Role, Tenant, TenantKind

console = Console()
app = typer.Typer(help="Territoire: open platform for connected territories.", no_args_is_help=True)
db_app = typer.Typer(help="Database schema.", no_args_is_help=True)
tenant_app = typer.Typer(help="Tenants (local authorities).", no_args_is_help=True)
user_app = typer.Typer(help="Users and their roles.", no_args_is_help=True)
token_app = typer.Typer(help="API tokens.", no_args_is_help=True)
import_app = typer.Typer(help="Bulk imports.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(tenant_app, name="tenant")
app.add_typer(user_app, name="user")
app.add_typer(token_app, name="token")
app.add_typer(import_app, name="import")
app.add_typer(telemetry_cli.lake_app, name="lake")
app.add_typer(telemetry_cli.telemetry_app, name="telemetry")
app.add_typer(rules_cli.rules_app, name="rules")
app.add_typer(rules_cli.evaluate_app, name="evaluate")
app.add_typer(requests_cli.app, name="requests")
app.add_typer(operations_cli.app, name="operations")
app.command("worker")(telemetry_cli.worker)
import_app.command("telemetry")(telemetry_cli.import_telemetry)
app.command("simulate")(simulator_cli.simulate)


def _settings() -> Settings:
    settings = load_settings()
    settings.ensure_data_dir()
    return settings


def _database(settings: Settings) -> Database:
    return Database(settings.effective_database_url)


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]Erreur / error:[/] {message}")
    return typer.Exit(code=1)


def _tenant(database: Database, slug: str) -> Tenant:
    from territoire.tenancy import service as tenancy

    with database.session() as session:
        tenant = tenancy.find_tenant_by_slug(session, slug)
    if tenant is None:
        raise _fail(f"no tenant '{slug}' (territoire tenant list)")
    return tenant


@db_app.command("upgrade")
def db_upgrade(
    revision: Annotated[str, typer.Option(help="Target revision")] = "heads",
) -> None:
    """Apply the schema migrations (SQLite or PostgreSQL)."""
    settings = _settings()
    migrate.upgrade(settings.effective_database_url, revision)
    console.print(f"Schema at {revision} on {_redacted(settings.effective_database_url)}")


def _redacted(url: str) -> str:
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        return f"{scheme}://***@{rest.split('@', 1)[1]}"
    return url


@tenant_app.command("create")
def tenant_create(
    slug: Annotated[str, typer.Option(help="Short name used in URLs and topics")],
    name: Annotated[str, typer.Option(help="Official name")],
    siren: Annotated[str, typer.Option(help="SIREN number (9 digits)")],
    kind: Annotated[TenantKind, typer.Option(help="commune or intercommunality")] = (
        TenantKind.COMMUNE
    ),
) -> None:
    """Create a tenant: a commune or an intercommunality."""
    from territoire.tenancy import service as tenancy

    database = _database(_settings())
    try:
        with database.session() as session:
            tenant = tenancy.create_tenant(session, slug=slug, name=name, siren=siren, kind=kind)
            console.print(f"Tenant created: {tenant.slug} — {tenant.name}")
    except DomainError as error:
        raise _fail(error.message) from error


@tenant_app.command("list")
def tenant_list() -> None:
    """List the tenants."""
    from territoire.tenancy import service as tenancy

    database = _database(_settings())
    table = Table("slug", "name", "SIREN", "kind")
    with database.session() as session:
        for tenant in tenancy.list_tenants(session):
            table.add_row(tenant.slug, tenant.name, tenant.siren, tenant.kind.value)
    console.print(table)


@user_app.command("create")
def user_create(
    email: Annotated[str, typer.Option(help="E-mail address, used to sign in")],
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    role: Annotated[Role, typer.Option(help="Role in that tenant")],
    name: Annotated[str, typer.Option(help="Full name")] = "",
    password: Annotated[
        str | None, typer.Option(help="Password (asked for when omitted)", show_default=False)
    ] = None,
) -> None:
    """Create a user (or give an existing user a role in a tenant)."""
    from territoire.tenancy import service as tenancy

    database = _database(_settings())
    owner = _tenant(database, tenant)
    try:
        with database.session() as session:
            user = tenancy.find_user_by_email(session, email)
            if user is None:
                secret = password or getpass.getpass("Mot de passe / password: ")
                user = tenancy.create_user(
                    session, email=email, full_name=name or email, password=secret
                )
            tenancy.set_role(session, user_id=user.id, tenant_id=owner.id, role=role)
            console.print(f"{user.email} is {role.value} in {owner.slug}")
    except DomainError as error:
        raise _fail(error.message) from error


@token_app.command("create")
def token_create(
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    name: Annotated[str, typer.Option(help="What the token is for")],
    role: Annotated[Role, typer.Option(help="Role the token acts with")] = Role.VIEWER,
) -> None:
    """Create an API token; it is printed once."""
    from territoire.tenancy import service as tenancy

    database = _database(_settings())
    owner = _tenant(database, tenant)
    with database.session() as session:
        token, raw = tenancy.create_api_token(session, owner.id, name=name, role=role)
        console.print(f"Token {token.public_id} ({role.value}) for {owner.slug}:")
        console.print(raw, markup=False, highlight=False)


@import_app.command("entities")
def import_entities(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="GeoJSON or CSV")],
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    default_type: Annotated[
        str | None, typer.Option("--type", help="Type for rows that give none")
    ] = None,
    allow_partial: Annotated[
        bool, typer.Option(help="Import the valid rows even if some are rejected")
    ] = False,
    report: Annotated[
        Path | None, typer.Option(help="Write rejected rows to this CSV file")
    ] = None,
) -> None:
    """Import entities from a GeoJSON FeatureCollection or a CSV file, all or nothing."""
    from territoire.registry import importer

    database = _database(_settings())
    owner = _tenant(database, tenant)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=console) as progress, database.session() as session:
            task = progress.add_task(f"Import {file.name}", total=None)
            outcome = importer.import_entities(
                session,
                owner.id,
                importer.read_drafts(file, default_type),
                allow_partial=allow_partial,
                progress=lambda n: progress.advance(task, n),
            )
    except DomainError as error:
        raise _fail(error.message) from error
    _print_import_report(outcome, report)
    if outcome.rejected and not allow_partial:
        raise _fail(f"{len(outcome.rejected)} rows rejected: nothing was imported")


def _print_import_report(outcome: object, report_path: Path | None) -> None:
    from territoire.registry.importer import ImportReport

    assert isinstance(outcome, ImportReport)
    console.print(
        f"Read {outcome.read} rows, imported {outcome.imported}, rejected {len(outcome.rejected)}."
    )
    if outcome.rejected:
        table = Table("row", "id", "reason", title="Rejected rows")
        for rejection in outcome.rejected[:50]:
            table.add_row(str(rejection.row), rejection.entity_id or "", rejection.reason)
        console.print(table)
        if len(outcome.rejected) > 50:
            console.print(f"… and {len(outcome.rejected) - 50} more")
    if report_path is not None:
        with report_path.open("w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["row", "id", "reason"])
            for rejection in outcome.rejected:
                writer.writerow([rejection.row, rejection.entity_id or "", rejection.reason])


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    migrate_first: Annotated[
        bool, typer.Option("--migrate/--no-migrate", help="Apply migrations before serving")
    ] = True,
) -> None:
    """Serve the web application and the APIs."""
    settings = _settings()
    if migrate_first:
        migrate.upgrade(settings.effective_database_url)
    _run_server(settings, host, port)


def _run_server(settings: Settings, host: str | None, port: int | None) -> None:
    import uvicorn

    from territoire.app import create_app
    from territoire.telemetry.store import freeze_startup_objects

    application = create_app(settings)
    freeze_startup_objects()
    uvicorn.run(
        application,
        host=host or settings.host,
        port=port or settings.port,
        log_level=settings.log_level,
        proxy_headers=True,
    )


@app.command()
def demo(
    host: Annotated[str | None, typer.Option(help="Address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve once the territory is seeded")
    ] = True,
) -> None:
    """Create (idempotently) the demo intercommunality, print its accounts, then serve it."""
    from territoire.demo.seed import seed_demo

    settings = _settings()
    migrate.upgrade(settings.effective_database_url)
    database = _database(settings)
    with database.session() as session:
        report = seed_demo(session)
        table = Table(
            "rôle / role",
            "e-mail",
            "mot de passe / password",
            title=f"Comptes de démonstration — {report.tenant.name}",
        )
        for email, password, role in report.credentials:
            table.add_row(role.value, email, password)
        console.print(table)
        console.print(
            f"{report.entities_added} entities, {report.devices_added} devices, "
            f"{report.work_orders_added} work orders, {report.requests_added} requests added."
        )
    database.dispose()
    url = f"http://{host or settings.host}:{port or settings.port}"
    if serve_after:
        from territoire.demo.live import start_demo_life

        start_demo_life(settings)  # back-fills a few days, then keeps the territory alive
        console.print(f"Territoire demo on [bold]{url}[/] (Ctrl+C to stop)")
        _run_server(settings, host, port)


def main() -> None:
    app()
