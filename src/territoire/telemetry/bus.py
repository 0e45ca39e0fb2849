"""From topic + payload to stored readings: the handler every message path shares.

The MQTT worker and the in-process bus (embedded default, no broker) both hand batches
of `(topic, payload)` to `TelemetryHandler.handle`, so everything downstream of the
transport is the same code. Topics understood:

- `territoire/<tenant slug>/<device id>/up` — payload in the device's registered format;
- `application/<application id>/device/<DevEUI>/event/up` — ChirpStack v4 integration;
- `v3/<application id>[@<ns tenant>]/devices/<device id>/up` — The Things Stack v3.

A flood from one device or one tenant is cut by token buckets before any decoding or
database work, so it cannot starve the others; every drop is counted with its reason.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from territoire.db import Database
from territoire.telemetry import service
from territoire.telemetry.decoders import decode, lorawan_device_ids, normalise_device_id
from territoire.telemetry.records import DeviceInfo, ReadingColumns, Rejection
from territoire.telemetry.service import IngestResult

log = logging.getLogger("territoire.telemetry")

UNKNOWN_TENANT = 0
DEVICE_CACHE_SECONDS = 30.0
SUBSCRIPTIONS = (
    "territoire/+/+/up",
    "application/+/device/+/event/up",
    "v3/+/devices/+/up",
)


@dataclass(frozen=True)
class Limits:
    """Token-bucket rates, per process: messages per device, readings per tenant."""

    device_per_second: float = 20.0
    device_burst: float = 200.0
    tenant_per_second: float = 50_000.0
    tenant_burst: float = 200_000.0
    max_payload_bytes: int = 256 * 1024


class RateLimiter:
    """Token buckets keyed by source: `allow` spends `cost` tokens if there are enough."""

    def __init__(self, rate: float, burst: float) -> None:
        self.rate = rate
        self.burst = burst
        self._buckets: dict[object, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, key: object, cost: float = 1.0) -> bool:
        now = time.monotonic()
        with self._lock:
            tokens, last = self._buckets.get(key, (self.burst, now))
            tokens = min(self.burst, tokens + (now - last) * self.rate)
            allowed = tokens >= cost
            self._buckets[key] = (tokens - cost if allowed else tokens, now)
            return allowed


@dataclass(frozen=True)
class Route:
    tenant_slug: str | None
    device_id: str
    payload_format: str | None  # None: the device's registered format


def parse_topic(topic: str) -> Route | None:
    parts = topic.split("/")
    if len(parts) == 4 and parts[0] == "territoire" and parts[3] == "up" and all(parts[1:3]):
        return Route(parts[1], parts[2], None)
    if (
        len(parts) == 6
        and parts[0] == "application"
        and parts[2] == "device"
        and parts[4:] == ["event", "up"]
    ):
        return Route(None, parts[3], "chirpstack")
    if len(parts) == 5 and parts[0] == "v3" and parts[2] == "devices" and parts[4] == "up":
        return Route(None, parts[3], "tts")
    return None


@dataclass
class _Pending:
    columns: ReadingColumns = field(default_factory=ReadingColumns)
    rejections: list[Rejection] = field(default_factory=list)


class TelemetryHandler:
    def __init__(self, database: Database, limits: Limits | None = None, source: str = "mqtt"):
        self.database = database
        self.limits = limits or Limits()
        self.source = source
        self._devices = RateLimiter(self.limits.device_per_second, self.limits.device_burst)
        self._tenants = RateLimiter(self.limits.tenant_per_second, self.limits.tenant_burst)
        self._cache: dict[tuple[str | None, str], tuple[list[DeviceInfo], float]] = {}
        self._by_tenant: dict[str, tuple[dict[str, DeviceInfo], float]] = {}

    def handle(self, messages: Sequence[tuple[str, bytes]]) -> IngestResult:
        """Decode and store a batch of messages: one transaction per tenant present."""
        pending: dict[int, _Pending] = {}
        for topic, payload in messages:
            self._take(topic, payload, pending)
        total = IngestResult(0, 0, {})
        for tenant_id, batch in pending.items():
            if tenant_id == UNKNOWN_TENANT:
                service.reject_payload(self.database, UNKNOWN_TENANT, self.source, batch.rejections)
                total.merge(_refused(batch.rejections))
            else:
                total.merge(
                    service.ingest_columns(
                        self.database,
                        tenant_id,
                        batch.columns,
                        source=self.source,
                        rejections=batch.rejections,
                    )
                )
        return total

    def _take(self, topic: str, payload: bytes, pending: dict[int, _Pending]) -> None:
        excerpt = topic
        if len(payload) > self.limits.max_payload_bytes:
            self._refuse(
                pending, UNKNOWN_TENANT, "too_large", "payload over the size limit", excerpt
            )
            return
        route = parse_topic(topic)
        if route is None:
            self._refuse(pending, UNKNOWN_TENANT, "unknown_topic", "topic not understood", excerpt)
            return
        device, reason = self._device(route, payload)
        if device is None:
            self._refuse(pending, UNKNOWN_TENANT, reason, f"no single device for {topic}", excerpt)
            return
        tenant = device.tenant_id
        if not self._devices.allow((tenant, device.device_id)):
            self._refuse(pending, tenant, "rate_limited_device", "device over its rate", excerpt)
            return
        payload_format = route.payload_format or device.payload_format
        outcome = decode(payload_format, payload, device)
        if not self._tenants.allow(tenant, max(1, len(outcome.columns))):
            self._refuse(pending, tenant, "rate_limited_tenant", "tenant over its rate", excerpt)
            return
        batch = pending.setdefault(tenant, _Pending())
        batch.columns.extend(outcome.columns)
        batch.rejections.extend(outcome.rejections)

    def _refuse(
        self, pending: dict[int, _Pending], tenant: int, reason: str, detail: str, excerpt: str
    ) -> None:
        pending.setdefault(tenant, _Pending()).rejections.append(Rejection(reason, detail, excerpt))

    def _device(self, route: Route, payload: bytes) -> tuple[DeviceInfo | None, str]:
        candidates = [route.device_id]
        if route.payload_format is not None:
            candidates += lorawan_device_ids(route.payload_format, payload)
        for device_id in candidates:
            found = self._lookup(route.tenant_slug, device_id)
            if len(found) > 1:
                return None, "ambiguous_device"
            if found:
                return found[0], ""
        return None, "unknown_device"

    def _lookup(self, tenant_slug: str | None, device_id: str) -> list[DeviceInfo]:
        if tenant_slug is not None:
            one = self._tenant_devices(tenant_slug).get(normalise_device_id(device_id))
            return [one] if one is not None else []
        key = (tenant_slug, device_id)
        cached = self._cache.get(key)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        with self.database.session() as session:
            found = service.devices_anywhere(session, device_id)
        self._cache[key] = (found, time.monotonic() + DEVICE_CACHE_SECONDS)
        return found

    def _tenant_devices(self, tenant_slug: str) -> dict[str, DeviceInfo]:
        """All devices of a tenant, loaded in one query and kept for a while: a worker
        hears from thousands of devices, one query each would cost more than the rest."""
        cached = self._by_tenant.get(tenant_slug)
        if cached is not None and cached[1] > time.monotonic():
            return cached[0]
        with self.database.session() as session:
            devices = service.tenant_devices(session, tenant_slug)
        self._by_tenant[tenant_slug] = (devices, time.monotonic() + DEVICE_CACHE_SECONDS)
        return devices


def _refused(rejections: Sequence[Rejection]) -> IngestResult:
    reasons: dict[str, int] = {}
    for rejection in rejections:
        reasons[rejection.reason] = reasons.get(rejection.reason, 0) + 1
    return IngestResult(0, len(rejections), reasons, rejections=list(rejections))


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes) -> None: ...


class InProcessBus:
    """The embedded default's bus: a queue drained by one thread into the handler.

    It lives and dies with the process (no durability: nothing is acknowledged to a
    device over it); the MQTT broker is the durable path.
    """

    def __init__(self, handler: TelemetryHandler, batch_size: int = 1000, wait: float = 0.05):
        self.handler = handler
        self.batch_size = batch_size
        self.wait = wait
        self._queue: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.results = IngestResult(0, 0, {})

    def publish(self, topic: str, payload: bytes) -> None:
        self._ensure_thread()
        self._queue.put((topic, payload))

    def drain(self, timeout: float = 30.0) -> bool:
        """Wait until every published message has been handled."""
        deadline = time.monotonic() + timeout
        while self._queue.unfinished_tasks:
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)
        return True

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="telemetry-bus", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            deadline = time.monotonic() + self.wait
            while len(batch) < self.batch_size:
                remaining = deadline - time.monotonic()
                try:
                    batch.append(self._queue.get(timeout=max(remaining, 0.0)))
                except queue.Empty:
                    break
            self._handle(batch)
            for _ in batch:
                self._queue.task_done()

    def _handle(self, batch: list[tuple[str, bytes]]) -> None:
        for attempt in range(3):
            try:
                self.results.merge(self.handler.handle(batch))
                self.results.rejections.clear()
                return
            except Exception:
                log.exception("in-process bus: batch failed (attempt %d)", attempt + 1)
                time.sleep(0.5 * (attempt + 1))


_buses: dict[str, InProcessBus] = {}


def in_process_bus(database: Database, limits: Limits | None = None) -> InProcessBus:
    """One bus per database for the whole process (the simulator and the app share it)."""
    bus = _buses.get(database.url)
    if bus is None:
        bus = InProcessBus(TelemetryHandler(database, limits, source="bus"))
        _buses[database.url] = bus
    return bus
