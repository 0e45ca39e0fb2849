"""Keeps the demo territory alive while `territoire demo` serves it.

A background thread back-fills a few days of history straight into telemetry (fast),
then follows the clock: today's readings up to now in one go, then each device's
uplink at its own cadence through the in-process bus, decoded like a real device's.
The ground truth of the faults so far is kept in `<data dir>/simulator/demo-truth.json`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from territoire.config import Settings
from territoire.db import Database
from territoire.demo.seed import DEMO_SEED, DEMO_SIZE, DEMO_SLUG
from territoire.simulator import truth
from territoire.simulator.engine import DayResult, Simulation
from territoire.simulator.runner import RealTime, run_batch, run_realtime
from territoire.simulator.service import IngestSink, MessageSink, Sink
from territoire.simulator.sizes import Size
from territoire.telemetry.bus import in_process_bus
from territoire.tenancy import service as tenancy

log = logging.getLogger("territoire.demo")

HISTORY_DAYS = 3
CATCH_UP_SECONDS = 3600  # longer gaps go straight to ingestion, not message by message


class DemoSink(Sink):
    """Catch-up windows to ingestion in bulk, the live trickle through the device bus."""

    name = "demo"

    def __init__(self, database: Database, tenant_id: int) -> None:
        self.bulk = IngestSink(database, tenant_id)
        self.live = MessageSink("bus", in_process_bus(database).publish, DEMO_SLUG)

    def send(self, day: DayResult, first: int, last: int) -> int:
        target = self.bulk if last - first > CATCH_UP_SECONDS else self.live
        return target.send(day, first, last)


@dataclass
class DemoLife:
    thread: threading.Thread
    stop: threading.Event
    truth_path: Path


def start_demo_life(
    settings: Settings,
    *,
    history_days: int = HISTORY_DAYS,
    size: Size = DEMO_SIZE,
    speed: float = 1.0,
) -> DemoLife:
    """Start the thread (a daemon: it ends with the process)."""
    stop = threading.Event()
    path = settings.data_dir / "simulator" / "demo-truth.json"
    thread = threading.Thread(
        target=_live,
        args=(settings.effective_database_url, history_days, size, speed, stop, path),
        name="territoire-demo-life",
        daemon=True,
    )
    thread.start()
    return DemoLife(thread, stop, path)


def _live(
    url: str, history_days: int, size: Size, speed: float, stop: threading.Event, path: Path
) -> None:
    database = Database(url)
    try:
        with database.session() as session:
            tenant = tenancy.find_tenant_by_slug(session, DEMO_SLUG)
        if tenant is None:
            log.error("demo life: no tenant %r; seed it first", DEMO_SLUG)
            return
        start = datetime.now(UTC).date() - timedelta(days=history_days)
        simulation = Simulation(DEMO_SEED, size, start)
        sink = DemoSink(database, tenant.id)
        began = time.perf_counter()
        stats = run_batch(
            simulation, history_days, sink.bulk, after_day=lambda s: truth.write(s, path)
        )
        log.info(
            "demo life: %d days of history (%d readings) in %.1f s",
            history_days,
            stats.sent,
            time.perf_counter() - began,
        )
        clock = RealTime.following(simulation, speed)
        run_realtime(
            simulation,
            sink,
            clock,
            stop,
            tick=5.0,
            after_day=lambda s: truth.write(s, path, clock.now()),
        )
    except Exception:  # the web server goes on without a living territory
        log.exception("demo life stopped")
    finally:
        database.dispose()
