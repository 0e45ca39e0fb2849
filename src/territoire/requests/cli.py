"""`territoire requests …`: retention purge, notification sending, Open311 keys, demo data."""

from __future__ import annotations

import time
from typing import Annotated

import typer
from rich.console import Console

from territoire.config import Settings, load_settings
from territoire.db import Database
from territoire.requests import catalogue, notifications, service
from territoire.tenancy import service as tenancy

console = Console()
app = typer.Typer(help="Citizen requests (signalements).", no_args_is_help=True)
key_app = typer.Typer(help="Open311 client keys (api_key).", no_args_is_help=True)
app.add_typer(key_app, name="api-key")


def _settings() -> Settings:
    settings = load_settings()
    settings.ensure_data_dir()
    return settings


def _tenant_ids(database: Database, slug: str | None) -> list[int]:
    with database.session() as session:
        if slug is None:
            return [t.id for t in tenancy.list_tenants(session)]
        tenant = tenancy.find_tenant_by_slug(session, slug)
        if tenant is None:
            console.print(f"[bold red]Erreur / error:[/] no tenant '{slug}'")
            raise typer.Exit(code=1)
        return [tenant.id]


@app.command("purge")
def purge(
    tenant: Annotated[str | None, typer.Option(help="Tenant slug (default: all)")] = None,
) -> None:
    """Erase the contacts and followers of requests closed longer ago than the retention
    period (per tenant, `contact_retention_days`, 365 by default)."""
    database = Database(_settings().effective_database_url)
    for tenant_id in _tenant_ids(database, tenant):
        with database.session() as session:
            report = service.purge_personal_data(session, tenant_id)
            name = tenancy.get_tenant(session, tenant_id).slug
        console.print(
            f"{name}: {report.requests} requests, {report.contacts} contacts and "
            f"{report.followers} followers erased"
        )
    database.dispose()


@app.command("notify")
def notify(
    loop: Annotated[bool, typer.Option("--loop/--once", help="Keep sending every poll")] = False,
) -> None:
    """Send the due notification digests through SMTP (TERRITOIRE_SMTP_HOST…)."""
    settings = _settings()
    if not settings.smtp_host:
        console.print("[bold red]Erreur / error:[/] TERRITOIRE_SMTP_HOST is not set")
        raise typer.Exit(code=1)
    database = Database(settings.effective_database_url)
    while True:
        with database.session() as session:
            report = notifications.deliver_due(session, settings)
        console.print(
            f"{report.messages} e-mails ({report.items} changes) sent, "
            f"{report.failed_messages} failed, {report.waiting} waiting for the digest window"
        )
        if not loop:
            break
        time.sleep(max(1, settings.notification_poll_seconds))
    database.dispose()


@key_app.command("create")
def key_create(
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    name: Annotated[str, typer.Option(help="Who the key is for")],
    trusted: Annotated[
        bool, typer.Option(help="May change statuses (the authority's own systems)")
    ] = False,
) -> None:
    """Create an Open311 api_key; it is printed once."""
    database = Database(_settings().effective_database_url)
    (tenant_id,) = _tenant_ids(database, tenant)
    with database.session() as session:
        key, raw = catalogue.create_open311_key(session, tenant_id, name=name, trusted=trusted)
        console.print(f"Open311 key {key.public_id} for {tenant}:")
        console.print(raw, markup=False, highlight=False)
    database.dispose()


@app.command("demo")
def demo(tenant: Annotated[str, typer.Option(help="Tenant slug")] = "demo") -> None:
    """Add the demo categories, routing and sample requests to a tenant (idempotent)."""
    from territoire.requests.demo import seed_demo_requests

    database = Database(_settings().effective_database_url)
    (tenant_id,) = _tenant_ids(database, tenant)
    with database.session() as session:
        added = seed_demo_requests(session, tenant_id)
    console.print(f"{added} sample requests added to {tenant}")
    database.dispose()
