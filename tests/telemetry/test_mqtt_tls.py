"""MQTT over TLS (`mqtts://`) against a real Mosquitto with certificates made for the test.

A test certificate authority signs the broker's certificate (for 127.0.0.1) and a client
certificate; the broker listens with TLS only and asks every client for a certificate.
"""

from __future__ import annotations

import getpass
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from territoire.db import Database
from territoire.telemetry.mqtt import MqttPublisher, TlsFiles, parse_mqtt_url
from tests.conftest import World
from tests.telemetry.test_mqtt import Broker, message, setup_devices, wait_for, worker_for


def stored(database: Database, tenant_id: int) -> int:
    with database.engine.connect() as connection:
        found = connection.execute(
            text(
                "SELECT count(*) FROM observation AS o JOIN telemetry_series AS s "
                "ON s.id = o.series_id WHERE s.tenant_id = :t"
            ),
            {"t": tenant_id},
        )
        return int(found.scalar_one())


@dataclass(frozen=True)
class Certificates:
    ca: Path
    client_cert: Path
    client_key: Path
    server_cert: Path
    server_key: Path
    other_ca: Path  # an authority that signed nothing here

    @property
    def client(self) -> TlsFiles:
        return TlsFiles(str(self.ca), str(self.client_cert), str(self.client_key))


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


def _authority(folder: Path, name: str) -> tuple[Path, Path]:
    key, cert = folder / f"{name}.key", folder / f"{name}.pem"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", f"/CN={name}",
        "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign",
    )  # fmt: skip
    return key, cert


def _signed(folder: Path, name: str, ca: tuple[Path, Path], extensions: str) -> tuple[Path, Path]:
    key, request, cert = folder / f"{name}.key", folder / f"{name}.csr", folder / f"{name}.pem"
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-keyout", str(key), "-out", str(request), "-subj", f"/CN={name}",
    )  # fmt: skip
    (folder / f"{name}.ext").write_text(extensions)
    _openssl(
        "x509", "-req", "-in", str(request), "-CA", str(ca[1]), "-CAkey", str(ca[0]),
        "-CAcreateserial", "-out", str(cert), "-days", "2", "-extfile", str(folder / f"{name}.ext"),
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    folder = tmp_path_factory.mktemp("tls")
    ca = _authority(folder, "territoire-test-ca")
    server = _signed(folder, "broker", ca, "subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    client = _signed(folder, "worker", ca, "extendedKeyUsage=clientAuth\n")
    _other_key, other = _authority(folder, "unrelated-ca")
    return Certificates(ca[1], client[0], client[1], server[0], server[1], other)


class TlsBroker(Broker):
    """A Mosquitto of our own that speaks TLS only and wants a client certificate."""

    def __init__(self, folder: Path, certificates: Certificates) -> None:
        super().__init__(folder)
        self.config.write_text(
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"cafile {certificates.ca}\ncertfile {certificates.server_cert}\n"
            f"keyfile {certificates.server_key}\nrequire_certificate true\n"
            f"log_dest file {folder / 'mosquitto.log'}\nuser {getpass.getuser()}\n"
        )

    @property
    def url(self) -> str:
        return f"mqtts://127.0.0.1:{self.port}"


@pytest.fixture
def tls_broker(tmp_path: Path, certificates: Certificates) -> Iterator[TlsBroker]:
    (tmp_path / "mqtt").mkdir()
    own = TlsBroker(tmp_path / "mqtt", certificates)
    own.start()
    yield own
    own.stop()


def test_worker_and_publisher_over_tls_store_every_reading(
    database: Database, world: World, tls_broker: TlsBroker, certificates: Certificates
) -> None:
    tenant, urns = setup_devices(database, world)
    worker = worker_for(
        database, tls_broker.url, tenant, f"tls-{uuid.uuid4().hex[:6]}", "tls",
        tls=certificates.client,
    )  # fmt: skip
    worker.start()
    publisher = MqttPublisher(tls_broker.url, tls=certificates.client)
    try:
        for minute in range(30):
            publisher.publish(f"territoire/{tenant.slug}/dev0/up", message(60 - minute, minute))
        assert wait_for(lambda: stored(database, tenant.id) == 30)
    finally:
        publisher.close()
        worker.stop(clear_session=True)
    assert worker.stored == 30 and worker.failures == 0
    assert stored(database, tenant.id) == 30 and len(urns) == 1


def test_a_broker_signed_by_an_unknown_authority_is_refused(
    database: Database, world: World, tls_broker: TlsBroker, certificates: Certificates
) -> None:
    tenant, _urns = setup_devices(database, world)
    distrustful = TlsFiles(
        str(certificates.other_ca), str(certificates.client_cert), str(certificates.client_key)
    )
    worker = worker_for(database, tls_broker.url, tenant, "tls-wrong-ca", "tls", tls=distrustful)
    with pytest.raises(ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        worker.start()
    assert not worker._session.connected


def test_a_worker_without_a_client_certificate_gets_no_session(
    database: Database, world: World, tls_broker: TlsBroker, certificates: Certificates
) -> None:
    tenant, _urns = setup_devices(database, world)
    anonymous = TlsFiles(str(certificates.ca))
    worker = worker_for(database, tls_broker.url, tenant, "tls-no-cert", "tls", tls=anonymous)
    began = time.monotonic()
    # The broker sends an alert or just closes, depending on timing: a TLS error either way.
    with pytest.raises(ConnectionError, match="no TLS session"):
        worker.start(timeout=5)
    assert time.monotonic() - began < 5  # refused by the broker, not timed out
    assert not worker._session.connected


def test_tls_urls_and_files_are_checked_before_connecting(certificates: Certificates) -> None:
    address = parse_mqtt_url("mqtts://broker.example.org")
    assert (address.host, address.port, address.tls) == ("broker.example.org", 8883, True)
    plain = parse_mqtt_url("mqtt://broker.example.org")
    assert (plain.port, plain.tls) == (1883, False)
    with pytest.raises(ValueError, match="not mqtts://"):
        MqttPublisher("mqtt://127.0.0.1:1883", tls=certificates.client)
    with pytest.raises(ValueError, match="needs its certificate"):
        TlsFiles(str(certificates.ca), key_file=str(certificates.client_key)).context()
    with pytest.raises(FileNotFoundError):
        TlsFiles("/nonexistent/ca.pem").context()
