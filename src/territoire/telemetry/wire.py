"""A lean MQTT 5 consumer session: the subset of the protocol the telemetry worker needs.

Why not a general-purpose client for this one job: on this project's 2-core machine a
general client spent about 80 µs of Python per QoS 1 message (a `select` and three
`recv` calls per packet, property objects, one socket write per acknowledgement), which
capped a consumer at about 12,000 messages/s before any database work (decision 0210).
This session reads the socket in large chunks, splits every whole packet out of the
buffer in one pass, and sends a batch's acknowledgements in one write.

What it does (MQTT 5.0): CONNECT with a client id, clean start off, a session expiry
and a receive maximum (plus user name and password when given); SUBSCRIBE with QoS 1;
PUBLISH received at QoS 0 or 1 (the subscription caps QoS at 1, so QoS 2 never comes);
PUBACK; PINGREQ for keep-alive; DISCONNECT, optionally ending the broker-side session.
It never advertises a topic alias maximum, so every PUBLISH carries its topic name.
Over TLS (`mqtts://`) the socket is wrapped by the standard library's `ssl` module.
Publishing stays with paho-mqtt (`territoire.telemetry.mqtt.MqttPublisher`).
"""

from __future__ import annotations

import contextlib
import select
import socket
import ssl
import struct
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass

CONNECT, CONNACK, PUBLISH, PUBACK, SUBSCRIBE, SUBACK = 1, 2, 3, 4, 8, 9
PINGREQ, PINGRESP, DISCONNECT = 12, 13, 14
PROTOCOL_LEVEL = 5
_SESSION_EXPIRY, _RECEIVE_MAXIMUM = 0x11, 0x21


class ProtocolError(ConnectionError):
    """The broker refused us, or sent something this session does not understand."""


@dataclass(frozen=True, slots=True)
class Delivery:
    packet_id: int  # 0 for QoS 0
    topic: str
    payload: bytes


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        value, byte = divmod(value, 128)
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def _utf8(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


def _packet(kind: int, flags: int, body: bytes) -> bytes:
    return bytes([kind << 4 | flags]) + _varint(len(body)) + body


def connect_packet(
    client_id: str,
    *,
    clean_start: bool,
    session_expiry: int,
    receive_maximum: int,
    keepalive: int,
    username: str | None = None,
    password: str | None = None,
) -> bytes:
    flags = (0x02 if clean_start else 0) | (0x80 if username else 0) | (0x40 if password else 0)
    properties = bytes([_SESSION_EXPIRY]) + struct.pack(">I", session_expiry)
    properties += bytes([_RECEIVE_MAXIMUM]) + struct.pack(">H", receive_maximum)
    body = _utf8("MQTT") + bytes([PROTOCOL_LEVEL, flags]) + struct.pack(">H", keepalive)
    body += _varint(len(properties)) + properties + _utf8(client_id)
    if username:
        body += _utf8(username)
    if password:
        body += _utf8(password)
    return _packet(CONNECT, 0, body)


def subscribe_packet(packet_id: int, topics: Sequence[str]) -> bytes:
    body = struct.pack(">H", packet_id) + _varint(0)
    for topic in topics:
        body += _utf8(topic) + b"\x01"  # maximum QoS 1, no other option
    return _packet(SUBSCRIBE, 0x02, body)


def puback_packets(packet_ids: Sequence[int]) -> bytes:
    # Reason "success" with no properties may be left out: two bytes of packet id.
    return b"".join(b"\x40\x02" + struct.pack(">H", pid) for pid in packet_ids)


def disconnect_packet(session_expiry: int | None = None) -> bytes:
    if session_expiry is None:
        return _packet(DISCONNECT, 0, b"")
    properties = bytes([_SESSION_EXPIRY]) + struct.pack(">I", session_expiry)
    return _packet(DISCONNECT, 0, b"\x00" + _varint(len(properties)) + properties)


def split_packets(buffer: bytearray) -> list[tuple[int, int, bytes]]:
    """Take every whole packet off the front of `buffer`: (type, flags, body)."""
    packets: list[tuple[int, int, bytes]] = []
    size, start = len(buffer), 0
    while start < size:
        index, length, shift, complete = start + 1, 0, 0, False
        while index < size:
            byte = buffer[index]
            index += 1
            length |= (byte & 0x7F) << shift
            if not byte & 0x80:
                complete = True
                break
            shift += 7
            if shift > 21:
                raise ProtocolError("malformed remaining length")
        if not complete or index + length > size:
            break  # the rest of this packet has not arrived yet
        header = buffer[start]
        packets.append((header >> 4, header & 0x0F, bytes(buffer[index : index + length])))
        start = index + length
    del buffer[:start]
    return packets


def _rebuild(packet: tuple[int, int, bytes]) -> bytes:
    kind, flags, body = packet
    return _packet(kind, flags, body)


def read_varint(data: bytes, offset: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[offset]
        value |= (byte & 0x7F) << shift
        offset += 1
        if not byte & 0x80:
            return value, offset
        shift += 7
        if shift > 21:
            raise ProtocolError("malformed variable byte integer")


def parse_publish(flags: int, body: bytes) -> Delivery:
    qos = (flags >> 1) & 0x03
    if qos == 3:
        raise ProtocolError("PUBLISH with QoS 3")
    topic_length = body[0] << 8 | body[1]
    topic = body[2 : 2 + topic_length].decode()
    offset = 2 + topic_length
    packet_id = 0
    if qos:
        packet_id = body[offset] << 8 | body[offset + 1]
        offset += 2
    properties, offset = read_varint(body, offset)
    return Delivery(packet_id, topic, body[offset + properties :])


class ConsumerSession:
    """One connection to the broker. `read` may be called from one thread while `ack`
    is called from another: writes are serialised by a lock."""

    def __init__(
        self,
        host: str,
        port: int,
        client_id: str,
        *,
        session_expiry: int,
        receive_maximum: int,
        keepalive: int = 30,
        username: str | None = None,
        password: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.client_id = host, port, client_id
        self.ssl_context = ssl_context
        self.session_expiry = session_expiry
        self.receive_maximum = max(1, min(65535, receive_maximum))
        self.keepalive = keepalive
        self.username, self.password = username, password
        self._sock: socket.socket | None = None
        self._buffer = bytearray()
        self._early: list[Delivery] = []
        self._send_lock = threading.Lock()
        self._last_sent = self._last_received = time.monotonic()
        self._next_id = 0

    @property
    def connected(self) -> bool:
        return self._sock is not None

    def open(self, topics: Sequence[str], timeout: float = 10.0) -> bool:
        """Connect and subscribe; True if the broker still had our session."""
        sock = socket.create_connection((self.host, self.port), timeout=timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.ssl_context is not None:
            try:  # the handshake checks the broker's certificate against the host name
                sock = self.ssl_context.wrap_socket(sock, server_hostname=self.host)
            except BaseException:
                sock.close()
                raise
        self._sock, self._buffer, self._early = sock, bytearray(), []
        try:
            self._send(
                connect_packet(
                    self.client_id,
                    clean_start=False,
                    session_expiry=self.session_expiry,
                    receive_maximum=self.receive_maximum,
                    keepalive=self.keepalive,
                    username=self.username,
                    password=self.password,
                )
            )
            _kind, _flags, body = self._expect({CONNACK}, timeout)
            if body[1] >= 0x80:
                raise ProtocolError(f"connection refused by the broker (reason {body[1]:#x})")
            present = bool(body[0] & 0x01)
            self._send(subscribe_packet(self._packet_id(), topics))
            _kind, _flags, body = self._expect({SUBACK}, timeout)
            skip, offset = read_varint(body, 2)
            refused = [code for code in body[offset + skip :] if code >= 0x80]
            if refused:
                raise ProtocolError(f"subscription refused by the broker (reasons {refused})")
        except BaseException:
            self.close()
            raise
        sock.settimeout(None)
        return present

    def _expect(self, kinds: set[int], timeout: float) -> tuple[int, int, bytes]:
        """Wait for a control packet during the handshake; deliveries of a resumed
        session may come first, and are kept; packets after it go back to the buffer."""
        deadline = time.monotonic() + timeout
        sock = self._sock
        assert sock is not None
        pending: list[tuple[int, int, bytes]] = []
        while True:
            for index, packet in enumerate(pending):
                if packet[0] == PUBLISH:  # a resumed session's queue: keep it for `read`
                    self._early.append(parse_publish(packet[1], packet[2]))
                elif packet[0] in kinds:
                    self._buffer[:0] = b"".join(_rebuild(p) for p in pending[index + 1 :])
                    return packet
                elif packet[0] == DISCONNECT:
                    raise ProtocolError("the broker closed the session")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"no answer from the broker {self.host}:{self.port}")
            sock.settimeout(remaining)
            chunk = sock.recv(65536)
            if not chunk:
                raise ConnectionError("the broker closed the connection")
            self._buffer.extend(chunk)
            pending = split_packets(self._buffer)

    def read(self, timeout: float) -> list[Delivery]:
        """Deliveries that arrived within `timeout` (possibly none); keeps the session
        alive. Raises ConnectionError when the connection is lost."""
        sock = self._sock
        if sock is None:
            raise ConnectionError("not connected")
        if self._early or self._buffer:
            early, self._early = self._early, []
            early += self._deliveries()
            if early:
                return early
        now = time.monotonic()
        if now - self._last_received > 2 * self.keepalive:
            raise ConnectionError("the broker stopped answering")
        if now - self._last_sent > self.keepalive / 2:
            self._send(_packet(PINGREQ, 0, b""))
        # TLS may hold decrypted bytes that the socket itself no longer signals.
        if not (isinstance(sock, ssl.SSLSocket) and sock.pending()):
            readable, _w, _x = select.select([sock], [], [], timeout)
            if not readable:
                return []
        chunk = sock.recv(1 << 20)
        if not chunk:
            raise ConnectionError("the broker closed the connection")
        self._last_received = time.monotonic()
        self._buffer.extend(chunk)
        return self._deliveries()

    def _deliveries(self) -> list[Delivery]:
        deliveries = []
        for kind, flags, body in split_packets(self._buffer):
            if kind == PUBLISH:
                deliveries.append(parse_publish(flags, body))
            elif kind == DISCONNECT:
                raise ConnectionError("the broker ended the connection")
        return deliveries

    def ack(self, packet_ids: Sequence[int]) -> None:
        if packet_ids:
            self._send(puback_packets(packet_ids))

    def disconnect(self, *, end_session: bool = False, timeout: float = 2.0) -> None:
        """Leave cleanly; `end_session` also makes the broker drop the session. Returns
        once the broker has closed its side (it has then handled the DISCONNECT), so that
        a client reconnecting at once with the same id finds the session gone."""
        sock = self._sock
        if sock is not None:
            with contextlib.suppress(OSError):
                self._send(disconnect_packet(0 if end_session else None))
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(timeout)
                while sock.recv(65536):
                    pass
        self.close()

    def close(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    def _send(self, data: bytes) -> None:
        sock = self._sock
        if sock is None:
            raise ConnectionError("not connected")
        with self._send_lock:
            sock.sendall(data)
            self._last_sent = time.monotonic()

    def _packet_id(self) -> int:
        self._next_id = self._next_id % 65535 + 1
        return self._next_id
