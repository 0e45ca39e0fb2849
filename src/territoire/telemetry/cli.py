"""Telemetry commands: the MQTT worker, file imports, the lake, rollups."""

from __future__ import annotations

import csv
import signal
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from territoire.config import load_settings
from territoire.db import Database
from territoire.errors import DomainError
from territoire.telemetry.records import Reading, Rejection

console = Console()
lake_app = typer.Typer(help="The Parquet lake of archived observations.", no_args_is_help=True)
telemetry_app = typer.Typer(help="Telemetry maintenance.", no_args_is_help=True)
IMPORT_BATCH = 5000


def _database() -> Database:
    settings = load_settings()
    settings.ensure_data_dir()
    return Database(settings.effective_database_url)


def worker(
    client_id: Annotated[
        str | None, typer.Option(help="Stable MQTT client id (default: territoire-<host>-1)")
    ] = None,
    share_group: Annotated[
        str, typer.Option(help="MQTT 5 shared subscription group")
    ] = "territoire",
    batch_size: Annotated[int, typer.Option(help="Messages per database transaction")] = 1000,
    topic: Annotated[
        list[str] | None, typer.Option(help="Topic filter (repeatable; default: all known)")
    ] = None,
    device_rate: Annotated[float, typer.Option(help="Messages per second per device")] = 20.0,
    tenant_rate: Annotated[float, typer.Option(help="Readings per second per tenant")] = 50_000.0,
    rollup_every: Annotated[float, typer.Option(help="Seconds between rollup refreshes")] = 30.0,
) -> None:
    """Consume telemetry from the MQTT broker (TERRITOIRE_MQTT_URL); run several to scale."""
    from territoire.telemetry import service, store
    from territoire.telemetry.bus import SUBSCRIPTIONS, Limits
    from territoire.telemetry.mqtt import MqttWorker, TlsFiles

    settings = load_settings()
    if not settings.mqtt_url:
        console.print(
            "[bold red]TERRITOIRE_MQTT_URL is not set[/]: the embedded default needs no worker."
        )
        raise typer.Exit(code=1)
    database = _database()
    try:
        consumer = MqttWorker(
            database,
            settings.mqtt_url,
            client_id=client_id or f"territoire-{socket.gethostname()}-1",
            share_group=share_group,
            batch_size=batch_size,
            limits=Limits(
                device_per_second=device_rate,
                device_burst=device_rate * 10,
                tenant_per_second=tenant_rate,
                tenant_burst=tenant_rate * 4,
            ),
            subscriptions=topic or list(SUBSCRIPTIONS),
            tls=TlsFiles(settings.mqtt_ca_file, settings.mqtt_cert_file, settings.mqtt_key_file),
        )
        consumer.start()
    except (OSError, ValueError) as error:  # bad URL or TLS files, broker unreachable
        console.print(f"[bold red]Cannot start the worker[/]: {error}")
        raise typer.Exit(code=1) from error
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    store.freeze_startup_objects()
    console.print(
        f"Worker {consumer.client_id} consuming from "
        f"{consumer.address.host}:{consumer.address.port}"
    )
    try:
        while not stop.wait(rollup_every):
            service.refresh_rollups(database)
    except KeyboardInterrupt:
        pass
    finally:
        consumer.stop()
        console.print(f"Stopped: {consumer.handled} messages, {consumer.stored} readings stored.")


def import_telemetry(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="CSV, JSON or SenML file")
    ],
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    payload_format: Annotated[
        str | None, typer.Option("--format", help="csv, json or senml (default: from the suffix)")
    ] = None,
) -> None:
    """Import readings: CSV (entity,attribute,ts,value[,unit]), a JSON batch or a SenML pack."""
    from territoire.telemetry import service
    from territoire.telemetry.decoders import decode
    from territoire.tenancy import service as tenancy

    database = _database()
    with database.session() as session:
        owner = tenancy.find_tenant_by_slug(session, tenant)
    if owner is None:
        console.print(f"[bold red]no tenant '{tenant}'[/]")
        raise typer.Exit(code=1)
    kind = payload_format or {".csv": "csv", ".senml": "senml"}.get(file.suffix.lower(), "json")
    total = service.IngestResult(0, 0, {})
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console) as progress:
        if kind == "csv":
            task = progress.add_task(f"Import {file.name}", total=None)
            for batch, refused in _csv_batches(file):
                result = service.ingest(
                    database, owner.id, batch, source="import", rejections=refused
                )
                total.merge(result)
                progress.advance(task, len(batch) + len(refused))
        else:
            task = progress.add_task(f"Import {file.name}", total=1)
            outcome = decode(kind, file.read_bytes(), None)
            for start in range(0, max(len(outcome.columns), 1), IMPORT_BATCH):
                chunk = outcome.columns.slice(start, start + IMPORT_BATCH)
                refused = outcome.rejections if start == 0 else []
                total.merge(
                    service.ingest_columns(
                        database, owner.id, chunk, source="import", rejections=refused
                    )
                )
            progress.advance(task)
    console.print(
        f"Accepted {total.accepted}, stored {total.stored}, rejected {total.rejected} "
        f"{dict(sorted(total.reasons.items())) if total.reasons else ''}"
    )
    if total.accepted == 0 and total.rejected:
        raise typer.Exit(code=1)


def _csv_batches(file: Path) -> Iterator[tuple[list[Reading], list[Rejection]]]:
    """Batches of readings (and refusals) from a CSV file with a header row."""
    batch: list[Reading] = []
    refused: list[Rejection] = []
    with file.open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=2):
            reading = _csv_reading(row)
            if isinstance(reading, Rejection):
                refused.append(
                    Rejection(reading.reason, f"line {number}: {reading.detail}", str(row))
                )
            else:
                batch.append(reading)
            if len(batch) + len(refused) >= IMPORT_BATCH:
                yield batch, refused
                batch, refused = [], []
    if batch or refused:
        yield batch, refused


def _csv_reading(row: dict[str, str]) -> Reading | Rejection:
    from territoire.telemetry.decoders import time_field
    from territoire.telemetry.records import DecodeOutcome

    try:
        value = float(row.get("value") or "")
    except ValueError:
        return Rejection("wrong_type", "value must be a number")
    outcome = DecodeOutcome()
    raw_ts = (row.get("ts") or "").strip()
    moment = time_field(float(raw_ts) if _is_number(raw_ts) else raw_ts, _now(), outcome)
    if moment is None:
        return outcome.rejections[0]
    unit = (row.get("unit") or "").strip() or None
    return Reading(
        (row.get("entity") or "").strip(), (row.get("attribute") or "").strip(), moment, value, unit
    )


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _now() -> datetime:
    return datetime.now(UTC)


@lake_app.command("export")
def lake_export(
    tenant: Annotated[str | None, typer.Option(help="Only this tenant (slug)")] = None,
) -> None:
    """Move raw observations past their retention period to the Parquet lake."""
    from territoire.telemetry import lake

    settings = load_settings()
    report = lake.export_expired(_database(), settings.data_dir / "lake", tenant_slug=tenant)
    console.print(f"{report.rows} observations archived in {len(report.files)} files.")


@telemetry_app.command("rollup")
def rollup() -> None:
    """Bring the hourly and daily rollups of every stale series up to date."""
    from territoire.telemetry import service

    console.print(f"{service.refresh_rollups(_database())} series refreshed.")


@telemetry_app.command("retention")
def retention(
    tenant: Annotated[str, typer.Option(help="Tenant slug")],
    days: Annotated[int, typer.Option(help="Days raw observations stay in the database")],
) -> None:
    """Set a tenant's raw-data retention period (older data goes to the lake)."""
    from territoire.telemetry import service
    from territoire.tenancy import service as tenancy

    database = _database()
    try:
        with database.session() as session:
            owner = tenancy.find_tenant_by_slug(session, tenant)
            if owner is None:
                raise DomainError(f"no tenant '{tenant}'")
            service.set_raw_retention(session, owner.id, days)
    except DomainError as error:
        console.print(f"[bold red]{error.message}[/]")
        raise typer.Exit(code=1) from error
    console.print(f"Raw observations of {tenant} are kept {days} days.")
