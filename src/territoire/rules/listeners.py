"""Rules listen to telemetry: every stored batch goes through the tenant's rules.

Imported through `territoire.events.LISTENER_MODULES`, so every process that installs
the listeners (web app, CLI, workers) evaluates what it ingests.

Most batches belong to tenants without a rule; for them the listener must not cost a
database session per batch. Whether a tenant has an active rule is remembered for
`ANSWER_SECONDS`: a change made in this process is seen at once (the Rule mapper events
below), one made by another process (the web app, while a worker ingests) within that
delay (decision 0212).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import event, select
from sqlalchemy.orm import Session, object_session

from territoire.db import Database
from territoire.rules import engine
from territoire.rules.models import Rule
from territoire.telemetry import service as telemetry
from territoire.telemetry.records import StoredReading

ANSWER_SECONDS = 5.0

# (database url, tenant id) -> (has an active rule, generation, monotonic time of the answer)
_answers: dict[tuple[str, int], tuple[bool, int, float]] = {}
_generation = 0
_lock = threading.Lock()


def evaluate_stored(database: Database, tenant_id: int, readings: Sequence[StoredReading]) -> None:
    if readings and has_active_rules(database, tenant_id):
        engine.evaluate_batch(database, tenant_id, readings)


def has_active_rules(database: Database, tenant_id: int) -> bool:
    key = (database.url, tenant_id)
    with _lock:
        generation = _generation
        answer = _answers.get(key)
    if answer is not None:
        active, seen_generation, answered_at = answer
        if seen_generation == generation and time.monotonic() - answered_at < ANSWER_SECONDS:
            return active
    with database.session() as session:
        found = session.scalar(
            select(Rule.id)
            .where(Rule.tenant_id == tenant_id, Rule.enabled, Rule.archived_at.is_(None))
            .limit(1)
        )
    with _lock:
        # Stored under the generation read before the query: a rule saved meanwhile has
        # moved the generation on, so this answer is never used.
        _answers[key] = (found is not None, generation, time.monotonic())
    return found is not None


def forget_answers() -> None:
    global _generation
    with _lock:
        _generation += 1
        _answers.clear()


def _rule_written(_mapper: Any, _connection: Any, target: Rule) -> None:
    forget_answers()
    session = object_session(target)
    if session is not None:
        session.info["territoire_rules_written"] = True


def _after_commit(session: Session) -> None:
    # Again once committed: a batch may have read the rules between flush and commit.
    if session.info.pop("territoire_rules_written", False):
        forget_answers()


if evaluate_stored not in telemetry.batch_listeners:
    telemetry.batch_listeners.append(evaluate_stored)
    for name in ("after_insert", "after_update", "after_delete"):
        event.listen(Rule, name, _rule_written)
    event.listen(Session, "after_commit", _after_commit)
