"""In-process domain events, delivered synchronously inside the publisher's transaction.

A domain announces something (a work order closed, a request created) without knowing
who listens; listeners act in the same transaction, so either both changes are stored
or neither is. That holds with several workers too: the process that makes the change
runs the listeners. Listeners must be quick and must not call back into the publisher
in a loop.
"""

from __future__ import annotations

import importlib
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session


@dataclass(frozen=True)
class Event:
    name: str
    tenant_id: int
    payload: dict[str, Any] = field(default_factory=dict)


Listener = Callable[[Session, Event], None]

_listeners: dict[str, list[Listener]] = defaultdict(list)

# Modules whose import subscribes their listeners; each domain with listeners adds one.
LISTENER_MODULES: list[str] = [
    "territoire.alarms.listeners",
    "territoire.requests.listeners",
    "territoire.rules.listeners",
]


def subscribe(name: str, listener: Listener) -> None:
    if listener not in _listeners[name]:
        _listeners[name].append(listener)


def publish(session: Session, event: Event) -> None:
    for listener in list(_listeners.get(event.name, ())):
        listener(session, event)


def install_listeners() -> None:
    """Import every listener module once (idempotent); called by the app and the CLI."""
    for module in LISTENER_MODULES:
        importlib.import_module(module)
