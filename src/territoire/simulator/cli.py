"""`territoire simulate`: generate the synthetic territory's readings and ground truth."""

from __future__ import annotations

import enum
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from territoire.db import Database
from territoire.simulator import truth as truth_file
from territoire.simulator.engine import DayResult, Simulation
from territoire.simulator.faults import FAULT_SPECS, FaultKind, parse_rate_overrides
from territoire.simulator.runner import RealTime, RunStats, run_batch, run_realtime
from territoire.simulator.service import HttpSink, IngestSink, MessageSink, Sink
from territoire.simulator.sizes import Size

console = Console()


class Output(enum.StrEnum):
    NONE = "none"
    INPROCESS = "inprocess"
    BUS = "bus"
    HTTP = "http"
    MQTT = "mqtt"


def _fail(message: str) -> typer.Exit:
    console.print(f"[bold red]Erreur / error:[/] {message}")
    return typer.Exit(code=1)


def _rates(rate: list[str], fault_scale: float) -> dict[FaultKind, float]:
    if not 0 <= fault_scale <= 100:
        raise _fail("--fault-scale must be between 0 and 100")
    try:
        overrides = parse_rate_overrides(rate)
    except ValueError as error:
        raise _fail(str(error)) from error
    return {
        kind: overrides.get(kind, spec.rate) * fault_scale for kind, spec in FAULT_SPECS.items()
    }


def _start(start: str | None, days: int) -> date:
    if start is None:
        return datetime.now(UTC).date() - timedelta(days=days)
    try:
        return date.fromisoformat(start)
    except ValueError as error:
        raise _fail(f"--start must be a date like 2026-10-01, not {start!r}") from error


def simulate(
    size: Annotated[
        Size, typer.Option(help="small, medium (the demo) or large (≥ 50,000 series)")
    ] = Size.MEDIUM,
    days: Annotated[int, typer.Option(min=0, max=3660, help="Days of history to generate")] = 7,
    seed: Annotated[int, typer.Option(help="Seed of weather, behaviour, noise and faults")] = 1,
    start: Annotated[
        str | None, typer.Option(help="First simulated day, UTC (default: today minus --days)")
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option(help="Write the ground truth here (.json or .csv)", dir_okay=False),
    ] = None,
    output: Annotated[Output, typer.Option(help="Where readings go")] = Output.INPROCESS,
    tenant: Annotated[
        str, typer.Option(help="Tenant slug (the demo one is created if missing)")
    ] = "demo",
    realtime: Annotated[
        bool, typer.Option(help="After the history, go on in real time until Ctrl+C")
    ] = False,
    speed: Annotated[
        float, typer.Option(min=1.0, max=3600.0, help="Real-time acceleration, up to the present")
    ] = 1.0,
    rate: Annotated[
        list[str] | None,
        typer.Option(help="Fault rate per asset-year, e.g. lamp_out=0.5 (repeatable)"),
    ] = None,
    fault_scale: Annotated[
        float, typer.Option(help="Multiply every fault rate (0 = no faults)")
    ] = 1.0,
    url: Annotated[
        str, typer.Option(help="Platform URL for --output http")
    ] = "http://127.0.0.1:8000",
    token: Annotated[
        str | None, typer.Option(help="API token for --output http (role operator)")
    ] = None,
    mqtt_url: Annotated[str | None, typer.Option(help="Broker for --output mqtt")] = None,
) -> None:
    """Generate the synthetic territory's readings, with labelled faults.

    Deterministic: the same size, seed, start date and rates give the same readings and
    the same truth, whatever the output.
    """
    rates = _rates(rate or [], fault_scale)
    simulation = Simulation(seed, size, _start(start, days), rates)
    territory = simulation.territory
    console.print(
        f"Territoire simulé / simulated territory: {size.value}, seed {seed}, "
        f"{territory.device_count:,} devices, {territory.series_count:,} series, "
        f"from {simulation.start_day.isoformat()}"
    )
    sink, finish = _sink(output, tenant, size, url, token, mqtt_url)
    until: int | None = None
    try:
        _run(simulation, days, sink)
        if realtime:
            until = _live(simulation, sink, speed, truth)
    finally:
        finish()
    if truth is not None:
        truth_file.write(simulation, truth, until)
        console.print(f"Vérité terrain / ground truth: {truth}")


Finish = Callable[[], None]


def _sink(
    output: Output, tenant: str, size: Size, url: str, token: str | None, mqtt_url: str | None
) -> tuple[Sink, Finish]:
    if output is Output.NONE:
        return Sink(), lambda: None
    if output is Output.HTTP:
        if not token:
            raise _fail(
                "--output http needs --token (territoire token create --tenant demo "
                "--name simulator --role operator)"
            )
        return HttpSink(url, token), lambda: None
    database, tenant_id = _prepare_tenant(tenant, size)
    if output is Output.INPROCESS:
        return IngestSink(database, tenant_id), database.dispose
    if output is Output.BUS:
        from territoire.telemetry.bus import in_process_bus

        bus = in_process_bus(database)

        def drain() -> None:
            bus.drain(timeout=600)
            database.dispose()

        return MessageSink("bus", bus.publish, tenant), drain
    return _mqtt_sink(mqtt_url, tenant, database)


def _mqtt_sink(mqtt_url: str | None, tenant: str, database: Database) -> tuple[Sink, Finish]:
    from territoire.config import load_settings
    from territoire.telemetry.mqtt import MqttPublisher, TlsFiles

    settings = load_settings()
    broker = mqtt_url or settings.mqtt_url or "mqtt://127.0.0.1:1883"
    tls = TlsFiles(settings.mqtt_ca_file, settings.mqtt_cert_file, settings.mqtt_key_file)
    try:
        publisher = MqttPublisher(
            broker, client_id=f"territoire-simulator-{int(time.time())}", tls=tls
        )
    except (OSError, ValueError) as error:
        raise _fail(f"cannot reach the MQTT broker {broker}: {error}") from error

    def publish(topic: str, payload: bytes) -> None:
        publisher.publish(topic, payload, wait=False)

    def finish() -> None:
        publisher.close()
        database.dispose()

    return MessageSink("mqtt", publish, tenant), finish


def _prepare_tenant(slug: str, size: Size) -> tuple[Database, int]:
    from territoire.config import load_settings
    from territoire.db import migrate
    from territoire.demo.seed import DEMO_SLUG, seed_demo
    from territoire.simulator.service import seed_territory
    from territoire.simulator.territory import build_territory
    from territoire.tenancy import service as tenancy

    settings = load_settings()
    settings.ensure_data_dir()
    migrate.upgrade(settings.effective_database_url)
    database = Database(settings.effective_database_url)
    with database.session() as session:
        if slug == DEMO_SLUG:
            report = seed_demo(session, size=size)
            tenant_id, added = report.tenant.id, report.entities_added
        else:
            found = tenancy.find_tenant_by_slug(session, slug)
            if found is None:
                raise _fail(f"no tenant '{slug}' (territoire tenant list)")
            tenant_id = found.id
            added = seed_territory(session, tenant_id, build_territory(1, size)).entities_added
    console.print(f"{added} entities added to tenant {slug}.")
    return database, tenant_id


def _progress() -> Progress:
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
    )


def _run(simulation: Simulation, days: int, sink: Sink) -> None:
    if days == 0:
        return
    started = time.perf_counter()
    with _progress() as progress:
        task = progress.add_task(f"Jours / days → {sink.name}", total=days, rate="")
        sent = 0

        def advance(_day: DayResult, count: int) -> None:
            nonlocal sent
            sent += count
            rate = sent / max(time.perf_counter() - started, 1e-9)
            progress.update(task, advance=1, rate=f"{sent:,} readings, {rate:,.0f}/s")

        stats = run_batch(simulation, days, sink, advance)
    _summary(simulation, stats, sink)


def _summary(simulation: Simulation, stats: RunStats, sink: Sink) -> None:
    generation = stats.generated / max(stats.generation_seconds, 1e-9)
    output = stats.sent / max(stats.output_seconds, 1e-9)
    console.print(
        f"{stats.generated:,} readings generated in {stats.generation_seconds:.1f} s "
        f"({generation:,.0f}/s); sent {stats.sent:,} in {stats.output_seconds:.1f} s "
        f"({output:,.0f}/s)."
    )
    rejected = getattr(sink, "rejected", None)
    if rejected:
        console.print(f"Refusés par la plateforme / rejected by the platform: {rejected}")
    counts = Counter(fault.kind.value for fault in simulation.truth())
    table = Table(
        "fault kind", "count", "rate / asset-year", title="Pannes injectées / injected faults"
    )
    for kind in FaultKind:
        table.add_row(
            kind.value, str(counts.get(kind.value, 0)), f"{simulation.planner.rates[kind]:g}"
        )
    console.print(table)


def _live(simulation: Simulation, sink: Sink, speed: float, truth: Path | None) -> int:
    """Real time until Ctrl+C; returns the simulated instant reached."""
    stop = threading.Event()
    clock = RealTime.following(simulation, speed)
    console.print(f"Temps réel / real time ×{speed:g} (Ctrl+C to stop)")

    def after_day(sim: Simulation) -> None:
        if truth is not None:
            truth_file.write(sim, truth, clock.now())

    def report(_day: DayResult, count: int) -> None:
        moment = datetime.fromtimestamp(clock.now(), UTC).strftime("%Y-%m-%d %H:%M")
        console.print(f"{moment} UTC: {count:,} readings", highlight=False)

    try:
        run_realtime(simulation, sink, clock, stop, progress=report, after_day=after_day)
    except KeyboardInterrupt:
        stop.set()
    return min(clock.now(), simulation.now)
