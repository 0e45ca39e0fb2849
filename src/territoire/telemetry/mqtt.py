"""MQTT transport: the scale-out worker and a QoS 1 publisher.

The worker holds a persistent MQTT 5 session (clean start off, a session expiry) with
a stable client id, so the broker keeps what is published while it is down. It reads
with manual acknowledgement: a message is acknowledged only after the transaction that
stores it has committed. A crash before that leaves the message unacknowledged, and the
broker delivers it again; storing is idempotent, so the replay adds nothing twice.
Several workers share the load through a shared subscription (`$share/<group>/…`).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from territoire.db import Database
from territoire.telemetry.bus import SUBSCRIPTIONS, Limits, TelemetryHandler

log = logging.getLogger("territoire.telemetry")


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None


def parse_mqtt_url(url: str) -> BrokerAddress:
    parsed = urlparse(url)
    if parsed.scheme not in {"mqtt", "tcp"} or not parsed.hostname:
        raise ValueError(f"an MQTT URL looks like mqtt://host:1883, not {url!r}")
    return BrokerAddress(parsed.hostname, parsed.port or 1883, parsed.username, parsed.password)


@dataclass(frozen=True)
class _Received:
    generation: int
    mid: int
    qos: int
    topic: str
    payload: bytes


class MqttWorker:
    """Consume telemetry topics into the database; `start()` returns, `stop()` ends."""

    def __init__(
        self,
        database: Database,
        url: str,
        *,
        client_id: str,
        share_group: str = "territoire",
        batch_size: int = 1000,
        batch_wait: float = 0.05,
        session_expiry: int = 7 * 24 * 3600,
        limits: Limits | None = None,
        subscriptions: Sequence[str] = SUBSCRIPTIONS,
    ) -> None:
        self.address = parse_mqtt_url(url)
        self.handler = TelemetryHandler(database, limits, source="mqtt")
        self.client_id = client_id
        self.share_group = share_group
        self.batch_size = batch_size
        self.batch_wait = batch_wait
        self.session_expiry = session_expiry
        self.subscriptions = list(subscriptions)
        self.stored = 0
        self.handled = 0
        self.failures = 0
        self._inbox: queue.Queue[_Received] = queue.Queue()
        self._generation = 0
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._thread: threading.Thread | None = None
        self._client = self._new_client()

    # --- connection --------------------------------------------------------------------

    def _new_client(self) -> mqtt.Client:
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=MQTTProtocolVersion.MQTTv5,
            manual_ack=True,
        )
        if self.address.username:
            client.username_pw_set(self.address.username, self.address.password)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        client.on_disconnect = self._on_disconnect
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        return client

    def _connect_properties(self) -> Properties:
        properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        properties.SessionExpiryInterval = self.session_expiry
        properties.ReceiveMaximum = min(65535, max(self.batch_size * 2, 20))
        return properties

    def _on_connect(self, client: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        if reason.is_failure:
            log.warning("MQTT connection refused: %s", reason)
            return
        self._generation += 1
        options = SubscribeOptions(qos=1)
        topics = [(f"$share/{self.share_group}/{topic}", options) for topic in self.subscriptions]
        client.subscribe(topics)
        self._subscribed.set()

    def _on_disconnect(self, _c: mqtt.Client, _u: Any, _f: Any, reason: Any, _p: Any) -> None:
        self._subscribed.clear()
        if not self._stop.is_set():
            log.warning("MQTT connection lost (%s); reconnecting", reason)

    def _on_message(self, _c: mqtt.Client, _u: Any, message: mqtt.MQTTMessage) -> None:
        self._inbox.put(
            _Received(
                self._generation, message.mid, message.qos, message.topic, bytes(message.payload)
            )
        )

    # --- life cycle --------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        self._stop.clear()
        self._client.connect(
            self.address.host,
            self.address.port,
            keepalive=30,
            clean_start=False,
            properties=self._connect_properties(),
        )
        self._client.loop_start()
        if not self._subscribed.wait(timeout):
            raise TimeoutError(f"no MQTT session with {self.address.host}:{self.address.port}")
        self._thread = threading.Thread(target=self._run, name="telemetry-worker", daemon=True)
        self._thread.start()

    def stop(self, *, clear_session: bool = False) -> None:
        """Stop after the batch in hand; what was not stored stays unacknowledged.

        `clear_session` also ends the broker-side session, for a worker that is retired
        for good: otherwise the broker keeps queueing its share of the messages.
        """
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        self._client.disconnect()
        self._client.loop_stop()
        if clear_session:
            closer = mqtt.Client(
                CallbackAPIVersion.VERSION2,
                client_id=self.client_id,
                protocol=MQTTProtocolVersion.MQTTv5,
            )
            if self.address.username:
                closer.username_pw_set(self.address.username, self.address.password)
            closer.connect(self.address.host, self.address.port, clean_start=True)
            closer.loop_start()
            time.sleep(0.2)
            closer.disconnect()
            closer.loop_stop()

    def wait_subscribed(self, timeout: float) -> bool:
        return self._subscribed.wait(timeout)

    # --- consuming ---------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stop.is_set():
            batch = self._collect()
            if batch:
                self._process(batch)

    def _collect(self) -> list[_Received]:
        try:
            batch = [self._inbox.get(timeout=0.2)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.batch_wait
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            try:
                batch.append(self._inbox.get(timeout=max(remaining, 0.0)))
            except queue.Empty:
                break
        return batch

    def _process(self, batch: list[_Received]) -> None:
        try:
            result = self.handler.handle([(m.topic, m.payload) for m in batch])
        except Exception:
            # Nothing is acknowledged: the broker will deliver the batch again once the
            # session is resumed, which a fresh connection forces.
            self.failures += 1
            log.exception("telemetry batch of %d messages failed; will be redelivered", len(batch))
            self._reconnect()
            return
        self.stored += result.stored
        self.handled += len(batch)
        for message in batch:
            if message.qos > 0 and message.generation == self._generation:
                self._client.ack(message.mid, message.qos)

    def _reconnect(self) -> None:
        time.sleep(1.0)
        self._client.disconnect()
        self._client.loop_stop()
        while not self._inbox.empty():  # these will come again, from the broker
            self._inbox.get_nowait()
        self._client = self._new_client()
        while not self._stop.is_set():
            try:
                self._client.connect(
                    self.address.host,
                    self.address.port,
                    keepalive=30,
                    clean_start=False,
                    properties=self._connect_properties(),
                )
                self._client.loop_start()
                return
            except OSError:
                time.sleep(1.0)


class MqttPublisher:
    """QoS 1 publisher: `publish` returns once the broker has acknowledged the message."""

    def __init__(self, url: str, client_id: str = "") -> None:
        address = parse_mqtt_url(url)
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        if address.username:
            self._client.username_pw_set(address.username, address.password)
        self._client.max_inflight_messages_set(1000)
        self._client.connect(address.host, address.port, keepalive=30)
        self._client.loop_start()

    def publish(self, topic: str, payload: bytes, *, wait: bool = True) -> mqtt.MQTTMessageInfo:
        info = self._client.publish(topic, payload, qos=1)
        if wait:
            info.wait_for_publish(timeout=30)
        return info

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()
