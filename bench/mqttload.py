"""A load generator for MQTT benchmarks: publishers and a counting subscriber that speak the
protocol over a plain socket, with pre-encoded packets and pipelined acknowledgements.

A general-purpose client spends tens of microseconds of Python per message, which on a
small machine caps the measured rate well below what the broker (or the Territoire
worker) can take; these do the minimum so that the figure is the broker's and the
consumer's, not the load generator's. Used by `bench/ingest.py`, each in its own process.

Publishers speak MQTT 3.1.1 (no receive-maximum window from the broker: QoS 1 messages
are pipelined, at most `WINDOW` unacknowledged); the subscriber speaks MQTT 5 with a
receive maximum of 65,535, like the worker.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Sequence
from multiprocessing.sharedctypes import Synchronized
from multiprocessing.synchronize import Event

WINDOW = 20_000  # unacknowledged QoS 1 messages per publisher (packet ids are 16 bits)


def _length(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value % 128, value // 128
        out.append(byte | 0x80 if value else byte)
        if not value:
            return bytes(out)


def _text(value: str) -> bytes:
    raw = value.encode()
    return struct.pack(">H", len(raw)) + raw


def _packet(kind: int, body: bytes) -> bytes:
    return bytes([kind]) + _length(len(body)) + body


def connect_packet(client_id: str, *, version: int, clean: bool = True) -> bytes:
    flags = 0x02 if clean else 0x00
    head = _text("MQTT") + bytes([version, flags]) + struct.pack(">H", 60)
    if version == 5:
        head += _length(3) + b"\x21" + struct.pack(">H", 65535)  # receive maximum
    return _packet(0x10, head + _text(client_id))


def publish_packet(topic: str, payload: bytes, packet_id: int) -> bytes:
    return _packet(0x32, _text(topic) + struct.pack(">H", packet_id) + payload)  # QoS 1


def _read_packet(sock: socket.socket, buffer: bytearray) -> tuple[int, bytes]:
    while True:
        parsed = _split(buffer)
        if parsed is not None:
            return parsed
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buffer.extend(chunk)


def _split(buffer: bytearray) -> tuple[int, bytes] | None:
    """Take one whole packet off the front of `buffer`, if it holds one."""
    if len(buffer) < 2:
        return None
    length, multiplier, index = 0, 1, 1
    while True:
        if index >= len(buffer):
            return None
        byte = buffer[index]
        length += (byte & 0x7F) * multiplier
        multiplier *= 128
        index += 1
        if not byte & 0x80:
            break
    if len(buffer) < index + length:
        return None
    kind, body = buffer[0], bytes(buffer[index : index + length])
    del buffer[: index + length]
    return kind, body


def open_session(port: int, client_id: str, *, version: int) -> tuple[socket.socket, bytearray]:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.sendall(connect_packet(client_id, version=version))
    buffer = bytearray()
    kind, body = _read_packet(sock, buffer)
    if kind >> 4 != 2 or body[1] != 0:
        raise ConnectionError(f"connection refused: {body!r}")
    return sock, buffer


def publish(port: int, messages: Sequence[tuple[str, bytes]], start: Event) -> None:
    """Publish every message with QoS 1; return once the broker acknowledged them all."""
    sock, buffer = open_session(port, f"load-{id(messages)}-{time.monotonic_ns()}", version=4)
    packets = [
        publish_packet(topic, payload, index % 65535 + 1)
        for index, (topic, payload) in enumerate(messages)
    ]
    start.wait()
    sent = acked = 0
    while acked < len(packets):
        if sent < len(packets) and sent - acked < WINDOW:
            upto = min(len(packets), acked + WINDOW, sent + 2000)
            sock.sendall(b"".join(packets[sent:upto]))
            sent = upto
            sock.setblocking(False)
        else:
            sock.setblocking(True)
        try:
            chunk = sock.recv(65536)
        except BlockingIOError:
            continue
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buffer.extend(chunk)
        while (packet := _split(buffer)) is not None:
            if packet[0] >> 4 == 4:  # PUBACK
                acked += 1
    sock.setblocking(True)
    sock.sendall(b"\xe0\x00")  # DISCONNECT
    sock.close()


def subscribe(port: int, topic: str, counter: Synchronized[int], ready: Event, stop: Event) -> None:
    """Receive QoS 1 messages on `topic`, acknowledging each and adding them to `counter`,
    until `stop` is set."""
    sock, buffer = open_session(port, f"count-{time.monotonic_ns()}", version=5)
    body = struct.pack(">H", 1) + _length(0) + _text(topic) + b"\x01"
    sock.sendall(_packet(0x82, body))
    while _read_packet(sock, buffer)[0] >> 4 != 9:  # SUBACK
        pass
    ready.set()
    sock.settimeout(0.2)
    while not stop.is_set():
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            continue
        if not chunk:
            raise ConnectionError("broker closed the connection")
        buffer.extend(chunk)
        acks = []
        while (packet := _split(buffer)) is not None:
            kind, payload = packet
            if kind >> 4 != 3:
                continue
            if (kind >> 1) & 0x03:
                topic_length = struct.unpack_from(">H", payload)[0]
                packet_id = payload[2 + topic_length : 4 + topic_length]
                acks.append(b"\x40\x02" + packet_id)
        if acks:
            sock.sendall(b"".join(acks))
            with counter.get_lock():
                counter.value += len(acks)
    sock.sendall(b"\xe0\x00")
    sock.close()
