"""Commands: `territoire rules …` (list, install the defaults, run timers) and
`territoire evaluate detection` (detection quality against the simulator's truth)."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from territoire.config import load_settings
from territoire.db import Database
from territoire.simulator.sizes import Size

console = Console()
rules_app = typer.Typer(help="Detection rules.", no_args_is_help=True)
evaluate_app = typer.Typer(help="Measure the platform's quality.", no_args_is_help=True)


def _database() -> Database:
    settings = load_settings()
    settings.ensure_data_dir()
    return Database(settings.effective_database_url)


def _tenant_id(database: Database, slug: str) -> int:
    from territoire.tenancy import service as tenancy

    with database.session() as session:
        tenant = tenancy.find_tenant_by_slug(session, slug)
    if tenant is None:
        console.print(f"[bold red]no tenant '{slug}'[/]")
        raise typer.Exit(code=1)
    return tenant.id


@rules_app.command("list")
def list_rules(tenant: Annotated[str, typer.Option(help="Tenant slug")]) -> None:
    """The tenant's rules, with their last error if any."""
    from territoire.rules import service

    database = _database()
    tenant_id = _tenant_id(database, tenant)
    table = Table("key", "kind", "version", "severity", "enabled", "errors")
    with database.session() as session:
        for rule in service.list_rules(session, tenant_id):
            table.add_row(
                rule.key,
                rule.kind,
                str(rule.version),
                rule.severity.value,
                "yes" if rule.enabled else "no",
                str(rule.error_count) + (f" — {rule.last_error[:60]}" if rule.last_error else ""),
            )
    console.print(table)


@rules_app.command("install-defaults")
def install_defaults(tenant: Annotated[str, typer.Option(help="Tenant slug")]) -> None:
    """Install the default rule set (existing keys are left alone)."""
    from territoire.rules import defaults, service

    database = _database()
    tenant_id = _tenant_id(database, tenant)
    with database.session() as session:
        created = service.install_rules(
            session, tenant_id, defaults.default_rules(session, tenant_id)
        )
        console.print(f"{len(created)} rules installed: {', '.join(r.key for r in created)}")


@rules_app.command("timers")
def timers() -> None:
    """Run the rule timers once, as of now (silence, night windows, daily checks)."""
    from territoire.rules import service

    outcome = service.run_timers(_database())
    console.print(
        f"{outcome.subjects} subjects, {outcome.raised} raised, {outcome.cleared} cleared, "
        f"{outcome.errors} errors"
    )


@evaluate_app.command("detection")
def detection(
    size: Annotated[Size, typer.Option(help="Simulated territory")] = Size.MEDIUM,
    days: Annotated[int, typer.Option(min=1, max=366, help="Scored days")] = 30,
    seed: Annotated[int, typer.Option(help="Simulation seed")] = 101,
    warmup: Annotated[int, typer.Option(min=0, max=60, help="Days learnt, not scored")] = 7,
    tail: Annotated[int, typer.Option(min=0, max=14, help="Days after, for late alarms")] = 2,
    start: Annotated[str, typer.Option(help="First simulated day (YYYY-MM-DD)")] = "2025-11-03",
    database_url: Annotated[
        str | None, typer.Option(help="Run in this database (default: a temporary SQLite file)")
    ] = None,
    output: Annotated[Path | None, typer.Option(help="Write the full report as JSON")] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option(help="Measure only this fault kind, ingesting only its streams (repeatable)"),
    ] = None,
) -> None:
    """Simulate faults, ingest, run the rules, and score alarms against the truth."""
    from territoire.rules import detection as measure
    from territoire.simulator.faults import FaultKind

    try:
        kinds = tuple(FaultKind(name) for name in kind or [])
    except ValueError as error:
        known = ", ".join(k.value for k in FaultKind)
        console.print(f"[bold red]--kind: {error}; known kinds: {known}[/]")
        raise typer.Exit(code=2) from error

    try:
        first = date.fromisoformat(start)
    except ValueError as error:
        console.print(f"[bold red]--start: {error}[/]")
        raise typer.Exit(code=2) from error
    config = measure.Config(
        size=size,
        days=days,
        seed=seed,
        warmup_days=warmup,
        tail_days=tail,
        start=first,
        database_url=database_url,
        kinds=kinds,
    )
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn(), console=console) as progress:
        task = progress.add_task("simulated days", total=warmup + days + tail)

        def advance(done: int, _total: int, readings: int) -> None:
            progress.update(task, completed=done, description=f"{readings:,} readings")

        report = measure.run(config, advance)
    table = Table(
        title=f"Detection, {size.value}, seed {seed}, {days} days (after {warmup} warm-up)"
    )
    table.add_column("fault kind", no_wrap=True)
    for name in ("injected", "detected", "precision", "recall", "median TTD", "p90 TTD"):
        table.add_column(name, justify="right", no_wrap=True)
    for row in measure.table(report):
        table.add_row(*row)
    console.print(table)
    console.print(
        f"{report.readings:,} readings in {report.seconds:.0f} s "
        f"({report.readings / max(report.seconds, 1e-9):,.0f} readings/s through ingestion "
        f"and rules; timers {report.evaluate_seconds:.0f} s)"
    )
    if output is not None:
        output.write_text(json.dumps(report.as_json(), indent=1, ensure_ascii=False))
        console.print(f"Report written to {output}")
