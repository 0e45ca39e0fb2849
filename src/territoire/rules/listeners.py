"""Rules listen to telemetry: every stored batch goes through the tenant's rules.

Imported through `territoire.events.LISTENER_MODULES`, so every process that installs
the listeners (web app, CLI, workers) evaluates what it ingests.
"""

from __future__ import annotations

from collections.abc import Sequence

from territoire.db import Database
from territoire.rules import engine
from territoire.telemetry import service as telemetry
from territoire.telemetry.records import StoredReading


def evaluate_stored(database: Database, tenant_id: int, readings: Sequence[StoredReading]) -> None:
    engine.evaluate_batch(database, tenant_id, readings)


if evaluate_stored not in telemetry.batch_listeners:
    telemetry.batch_listeners.append(evaluate_stored)
