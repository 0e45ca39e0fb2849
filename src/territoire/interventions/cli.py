"""`territoire operations …`: demo operations and indicators from the command line."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from territoire.config import load_settings
from territoire.db import Database
from territoire.errors import DomainError

console = Console()
app = typer.Typer(help="Alarms, work orders and their indicators.", no_args_is_help=True)


def _database() -> Database:
    settings = load_settings()
    settings.ensure_data_dir()
    return Database(settings.effective_database_url)


def _tenant_id(database: Database, slug: str) -> int:
    from territoire.tenancy import service as tenancy

    with database.session() as session:
        tenant = tenancy.find_tenant_by_slug(session, slug)
        if tenant is None:
            console.print(f"[bold red]Erreur / error:[/] no tenant '{slug}'")
            raise typer.Exit(code=1)
        return tenant.id


@app.command("seed-demo")
def seed_demo(
    tenant: Annotated[str, typer.Option(help="Tenant slug")] = "demo",
) -> None:
    """Add teams, alarms and work orders at every stage to a (demo) tenant; idempotent."""
    from territoire.interventions.demo import seed_operations

    database = _database()
    tenant_id = _tenant_id(database, tenant)
    with database.session() as session:
        report = seed_operations(session, tenant_id)
    console.print(
        f"{report.teams_added} teams, {report.alarms_added} alarms, "
        f"{report.work_orders_added} work orders added to {tenant}."
    )


@app.command("kpis")
def show_kpis(
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    start: Annotated[str | None, typer.Option("--from", help="Date or ISO time")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Exclusive end; default now")] = None,
    commune: Annotated[str | None, typer.Option(help="INSEE code")] = None,
    csv_file: Annotated[Path | None, typer.Option("--csv", help="Also write a CSV file")] = None,
) -> None:
    """Print the indicators of a period (last 30 days by default) against their targets."""
    from territoire.interventions import api

    database = _database()
    tenant_id = _tenant_id(database, tenant)
    try:
        with database.session() as session:
            report = api.kpi_report(session, tenant_id, start, end, commune)
    except DomainError as error:
        console.print(f"[bold red]Erreur / error:[/] {error.message}")
        raise typer.Exit(code=1) from error
    table = Table(
        "KPI", "subject", "value", "target", "met", title=f"{report.start} → {report.end}"
    )
    for item in report.items:
        table.add_row(
            item.key,
            item.subject,
            "" if item.value is None else f"{item.value:g} {item.unit}",
            "" if item.target is None else f"{item.target:g}",
            "" if item.met is None else ("yes" if item.met else "no"),
        )
    console.print(table)
    if csv_file is not None:
        csv_file.write_text(api.kpis_csv(report), encoding="utf-8")
        console.print(f"Written to {csv_file}")
