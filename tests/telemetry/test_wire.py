"""The worker's MQTT 5 consumer: packet framing, and a session against a real broker."""

from __future__ import annotations

import struct
import uuid

import pytest

from territoire.telemetry.mqtt import MqttPublisher
from territoire.telemetry.wire import (
    ConsumerSession,
    ProtocolError,
    parse_publish,
    split_packets,
)
from tests.conftest import service_missing
from tests.telemetry.test_mqtt import SHARED, wait_for


def _publish(topic: str, payload: bytes, packet_id: int, properties: bytes = b"") -> bytes:
    body = struct.pack(">H", len(topic)) + topic.encode() + struct.pack(">H", packet_id)
    body += bytes([len(properties)]) + properties + payload
    length, remaining = bytearray(), len(body)
    while True:
        remaining, byte = divmod(remaining, 128)
        length.append(byte | 0x80 if remaining else byte)
        if not remaining:
            break
    return bytes([0x32]) + bytes(length) + body


def test_split_packets_keeps_partial_packets_for_later() -> None:
    big = _publish("a/b", b"x" * 300, 7, properties=b"\x01\x01")  # length over 127
    small = _publish("c", b"{}", 8)
    data = big + small + b"\xd0\x00"  # + PINGRESP
    buffer = bytearray(data[:150])
    assert split_packets(buffer) == [] and len(buffer) == 150
    buffer.extend(data[150 : len(big) + 3])
    packets = split_packets(buffer)
    assert [p[0] for p in packets] == [3] and len(buffer) == 3
    first = parse_publish(packets[0][1], packets[0][2])
    assert (first.packet_id, first.topic, first.payload) == (7, "a/b", b"x" * 300)
    buffer.extend(data[len(big) + 3 :])
    rest = split_packets(buffer)
    assert [p[0] for p in rest] == [3, 13] and buffer == bytearray()
    assert parse_publish(rest[0][1], rest[0][2]).payload == b"{}"


def test_malformed_length_is_refused() -> None:
    with pytest.raises(ProtocolError):
        split_packets(bytearray(b"\x30\xff\xff\xff\xff\x01"))


def test_session_receives_acknowledges_and_resumes() -> None:
    service_missing("Mosquitto", "127.0.0.1", 1883, "start it with: mosquitto -d")
    client_id, topic = f"wire-{uuid.uuid4().hex}", f"wiretest/{uuid.uuid4().hex}"
    session = ConsumerSession("127.0.0.1", 1883, client_id, session_expiry=60, receive_maximum=10)
    session.open([topic])
    publisher = MqttPublisher(SHARED)
    try:
        for i in range(5):
            publisher.publish(topic, f"m{i}".encode())
        got = []
        assert wait_for(lambda: bool(got.extend(session.read(0.2))) or len(got) == 5, 10)
        assert [d.payload for d in got] == [f"m{i}".encode() for i in range(5)]
        session.ack([d.packet_id for d in got[:3]])  # the last two stay unacknowledged
        session.close()  # a crash: no DISCONNECT
        publisher.publish(topic, b"m5")
        assert session.open([topic]) is True  # the broker kept the session
        again = []
        assert wait_for(lambda: bool(again.extend(session.read(0.2))) or len(again) >= 3, 10)
        assert sorted(d.payload for d in again) == [b"m3", b"m4", b"m5"]
        session.ack([d.packet_id for d in again])
        session.disconnect(end_session=True)
        assert session.open([topic]) is False  # ended: a new session
    finally:
        publisher.close()
        session.disconnect(end_session=True)
