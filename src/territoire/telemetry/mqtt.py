"""MQTT transport: the scale-out worker and a QoS 1 publisher.

The worker holds a persistent MQTT 5 session (clean start off, a session expiry) with
a stable client id, so the broker keeps what is published while it is down, through
the lean consumer of `territoire.telemetry.wire` (decision 0210). A message is
acknowledged only after the transaction that stores it has committed. A crash before
that leaves the message unacknowledged, and the broker delivers it again; storing is
idempotent, so the replay adds nothing twice.
Several workers share the load through a shared subscription (`$share/<group>/…`).
`mqtts://` URLs connect over TLS: the broker's certificate is checked against the
system's trusted authorities or a given CA file, and a client certificate is sent when
one is configured (brokers that authenticate devices and services by certificate).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import ssl
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from territoire.db import Database
from territoire.telemetry.bus import SUBSCRIPTIONS, Limits, TelemetryHandler
from territoire.telemetry.wire import ConsumerSession, Delivery, ProtocolError

log = logging.getLogger("territoire.telemetry")


PLAIN_SCHEMES, TLS_SCHEMES = {"mqtt", "tcp"}, {"mqtts", "ssl"}


@dataclass(frozen=True)
class BrokerAddress:
    host: str
    port: int
    username: str | None
    password: str | None
    tls: bool = False


@dataclass(frozen=True)
class TlsFiles:
    """TLS material for `mqtts://`: the CA file that signed the broker's certificate
    (empty: the system's trusted authorities) and the client's own certificate and key
    (PEM) when the broker asks for one."""

    ca_file: str = ""
    cert_file: str = ""
    key_file: str = ""

    @property
    def given(self) -> bool:
        return bool(self.ca_file or self.cert_file or self.key_file)

    def context(self) -> ssl.SSLContext:
        """A client context that verifies the broker (certificate and host name)."""
        if self.key_file and not self.cert_file:
            raise ValueError("an MQTT client key needs its certificate (mqtt_cert_file)")
        context = ssl.create_default_context(cafile=self.ca_file or None)
        if self.cert_file:
            context.load_cert_chain(self.cert_file, self.key_file or None)
        return context


def parse_mqtt_url(url: str) -> BrokerAddress:
    parsed = urlparse(url)
    if parsed.scheme not in PLAIN_SCHEMES | TLS_SCHEMES or not parsed.hostname:
        raise ValueError(
            f"an MQTT URL looks like mqtt://host:1883 or mqtts://host:8883, not {url!r}"
        )
    tls = parsed.scheme in TLS_SCHEMES
    port = parsed.port or (8883 if tls else 1883)
    return BrokerAddress(parsed.hostname, port, parsed.username, parsed.password, tls)


def tls_context(address: BrokerAddress, tls: TlsFiles | None) -> ssl.SSLContext | None:
    """The TLS context of a connection to `address`, None for a plain one. TLS files
    with a plain URL are refused: the operator meant the traffic to be encrypted."""
    if not address.tls:
        if tls is not None and tls.given:
            raise ValueError("TLS files are set but the MQTT URL is not mqtts://")
        return None
    return (tls or TlsFiles()).context()


class MqttWorker:
    """Consume telemetry topics into the database; `start()` returns, `stop()` ends.

    Two threads: the reader keeps the connection (reconnecting when it drops) and hands
    deliveries over; the consumer stores them in batches and acknowledges each batch in
    one write after its commit. Reading the next batch while one is being stored keeps
    both the socket and the database busy.
    """

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
        tls: TlsFiles | None = None,
    ) -> None:
        self.address = parse_mqtt_url(url)
        self._ssl_context = tls_context(self.address, tls)
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
        # Lists of (generation, delivery), one list per socket read.
        self._inbox: queue.Queue[list[tuple[int, Delivery]]] = queue.Queue()
        self._generation = 0
        self._ack_lock = threading.Lock()
        self._stop = threading.Event()
        self._subscribed = threading.Event()
        self._drop = threading.Event()  # the consumer asks for a fresh connection
        self._threads: list[threading.Thread] = []
        self._session = self._new_session()

    def _new_session(self) -> ConsumerSession:
        return ConsumerSession(
            self.address.host,
            self.address.port,
            self.client_id,
            session_expiry=self.session_expiry,
            # The broker sends at most this many unacknowledged messages: two batches,
            # one being stored while the next arrives.
            receive_maximum=max(self.batch_size * 2, 20),
            username=self.address.username,
            password=self.address.password,
            ssl_context=self._ssl_context,
        )

    @property
    def _topics(self) -> list[str]:
        return [f"$share/{self.share_group}/{topic}" for topic in self.subscriptions]

    # --- life cycle --------------------------------------------------------------------

    def start(self, timeout: float = 10.0) -> None:
        self._stop.clear()
        try:
            self._session.open(self._topics, timeout)
        except ssl.SSLError as error:  # not a matter of waiting: the TLS setup is wrong
            raise ConnectionError(
                f"no TLS session with {self.address.host}:{self.address.port}: {error}"
            ) from error
        except OSError as error:
            raise TimeoutError(
                f"no MQTT session with {self.address.host}:{self.address.port}: {error}"
            ) from error
        self._generation += 1
        self._subscribed.set()
        self._threads = [
            threading.Thread(target=self._read, name="telemetry-mqtt-reader", daemon=True),
            threading.Thread(target=self._run, name="telemetry-worker", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self, *, clear_session: bool = False) -> None:
        """Stop after the batch in hand; what was not stored stays unacknowledged.

        `clear_session` also ends the broker-side session, for a worker that is retired
        for good: otherwise the broker keeps queueing its share of the messages.
        """
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
        self._subscribed.clear()
        if clear_session and not self._session.connected:
            with contextlib.suppress(OSError):
                self._session.open(self._topics)
        self._session.disconnect(end_session=clear_session)

    def wait_subscribed(self, timeout: float) -> bool:
        return self._subscribed.wait(timeout)

    # --- reading -----------------------------------------------------------------------

    def _read(self) -> None:
        while not self._stop.is_set():
            if self._drop.is_set() or not self._session.connected:
                self._reconnect()
                continue
            try:
                deliveries = self._session.read(0.2)
            except (OSError, ProtocolError) as error:
                if not self._stop.is_set():
                    log.warning("MQTT connection lost (%s); reconnecting", error)
                self._session.close()
                continue
            if deliveries:
                generation = self._generation
                self._inbox.put([(generation, delivery) for delivery in deliveries])

    def _reconnect(self) -> None:
        with self._ack_lock:
            # From here on, acknowledgements of what was read so far are not sent: the
            # next connection may give their packet ids to other messages.
            self._generation += 1
        self._subscribed.clear()
        self._session.close()
        while not self._inbox.empty():  # these come again, from the broker
            self._inbox.get_nowait()
        self._drop.clear()
        while not self._stop.is_set():
            try:
                self._session.open(self._topics)
            except OSError as error:
                log.warning("MQTT broker unreachable (%s); retrying", error)
                self._stop.wait(1.0)
                continue
            self._subscribed.set()
            return

    # --- consuming ---------------------------------------------------------------------

    def _run(self) -> None:
        pending: list[tuple[int, Delivery]] = []
        while not self._stop.is_set():
            batch, pending = self._collect(pending)
            if batch:
                self._process(batch)

    def _collect(
        self, pending: list[tuple[int, Delivery]]
    ) -> tuple[list[tuple[int, Delivery]], list[tuple[int, Delivery]]]:
        batch = pending
        if not batch:
            try:
                batch = self._inbox.get(timeout=0.2)
            except queue.Empty:
                return [], []
        deadline = time.monotonic() + self.batch_wait
        while len(batch) < self.batch_size:
            remaining = deadline - time.monotonic()
            try:
                batch = batch + self._inbox.get(timeout=max(remaining, 0.0))
            except queue.Empty:
                break
        return batch[: self.batch_size], batch[self.batch_size :]

    def _process(self, batch: list[tuple[int, Delivery]]) -> None:
        try:
            result = self.handler.handle([(d.topic, d.payload) for _g, d in batch])
        except Exception:
            # Nothing is acknowledged: the broker will deliver the batch again once the
            # session is resumed, which a fresh connection forces.
            self.failures += 1
            log.exception("telemetry batch of %d messages failed; will be redelivered", len(batch))
            time.sleep(1.0)
            self._drop.set()
            return
        self.stored += result.stored
        self.handled += len(batch)
        # Acknowledgements of an older connection would name packet ids the broker may
        # have given to other messages since: those messages come again and are stored
        # idempotently. The lock keeps a reconnection from slipping in between.
        with self._ack_lock:
            ids = [d.packet_id for g, d in batch if d.packet_id and g == self._generation]
            try:
                self._session.ack(ids)
            except OSError:
                self._drop.set()


class MqttPublisher:
    """QoS 1 publisher: `publish` returns once the broker has acknowledged the message."""

    def __init__(self, url: str, client_id: str = "", tls: TlsFiles | None = None) -> None:
        address = parse_mqtt_url(url)
        context = tls_context(address, tls)
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=client_id, protocol=MQTTProtocolVersion.MQTTv5
        )
        if context is not None:
            self._client.tls_set_context(context)
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
