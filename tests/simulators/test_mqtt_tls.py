"""The simulator over MQTT with TLS (mqtts://) and a username/password, on a Mosquitto of the test's own.

The certificates are made here: a CA, and a broker certificate it signs for
127.0.0.1 / localhost. The publisher trusts the CA through the broker's
``ca_file`` (hostname checked), logs in with the password from the environment
variable named by ``password_env``, and a paho subscriber on the same TLS
listener receives exactly the readings of the in-process simulation.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import math
import shutil
import ssl
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from hazmon.plant import MqttBinding, Plant, Quality, Reading
from hazmon.simulators import Simulation
from hazmon.simulators.mqtt_publisher import MqttPublisher, MqttPublishError
from hazmon.simulators.serving import run_stream
from tests.conftest import PrivateMosquitto
from tests.simulators.test_serving import _ts

START = 1_780_000_000_000_000
USER, PASSWORD = "gds-sim", "tls-pa55"


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _make_pki(d: Path) -> tuple[Path, Path, Path]:
    """(ca.pem, broker.pem, broker-key.pem): a CA and a broker certificate for 127.0.0.1 and localhost."""
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("hazmon test CA"))
        .issuer_name(_name("hazmon test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_pem, cert_pem, key_pem = d / "ca.pem", d / "broker.pem", d / "broker-key.pem"
    ca_pem.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_key(key, key_pem)
    return ca_pem, cert_pem, key_pem


@pytest.fixture
def tls_broker(tmp_path: Path) -> Iterator[tuple[PrivateMosquitto, Path]]:
    """A Mosquitto whose only listener is TLS with a password file; yields it and the CA file."""
    # mosquitto started as root reads these as user mosquitto: a world-readable directory of its own
    shared = Path(tempfile.mkdtemp(prefix="hazmon-mqtt-tls-"))
    shared.chmod(0o755)
    try:
        ca, cert, key = _make_pki(shared)
        pwfile = shared / "passwd"
        subprocess.run(["mosquitto_passwd", "-b", "-c", str(pwfile), USER, PASSWORD], check=True)
        for f in (ca, cert, key, pwfile):
            f.chmod(0o644)
        broker = PrivateMosquitto(
            tmp_path,
            extra_conf=(
                f"cafile {ca}\ncertfile {cert}\nkeyfile {key}\ntls_version tlsv1.2\npassword_file {pwfile}\n"
            ),
        )
        broker.conf.write_text(
            broker.conf.read_text().replace("allow_anonymous true", "allow_anonymous false")
        )
        broker.start()
        try:
            yield broker, ca
        finally:
            broker.stop()
    finally:
        shutil.rmtree(shared, ignore_errors=True)


class TlsSubscriber:
    """A paho subscriber over TLS with a login, collecting (topic, payload)."""

    def __init__(self, port: int, ca: Path, topic: str) -> None:
        self.messages: list[tuple[str, bytes]] = []
        self.refused: str | None = None
        subscribed = threading.Event()
        self.c = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv311
        )
        self.c.username_pw_set(USER, PASSWORD)
        self.c.tls_set_context(ssl.create_default_context(cafile=str(ca)))
        self.c.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.c.on_subscribe = lambda c, u, mid, rcs, p: subscribed.set()
        self.c.on_message = lambda c, u, m: self.messages.append((m.topic, m.payload))
        self.c.connect("127.0.0.1", port)
        self.c.loop_start()
        assert subscribed.wait(10), "the TLS subscriber got no SUBACK"

    def wait_for(self, n: int, timeout_s: float = 30.0) -> list[tuple[str, bytes]]:
        deadline = time.monotonic() + timeout_s
        while len(self.messages) < n and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.messages)

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()


@pytest.mark.slow
async def test_simulator_publishes_over_tls_with_username_and_password(
    example_plant: Plant,
    tls_broker: tuple[PrivateMosquitto, Path],
    topic_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    broker, ca = tls_broker
    plant = example_plant.retarget(
        mqtt_urls={"gds": f"mqtts://127.0.0.1:{broker.port}"}, topic_prefix=topic_prefix
    )
    ep = replace(plant.mqtt[0], username=USER, password_env="HAZMON_TEST_MQTTS_PW", ca_file=str(ca))
    plant = replace(plant, mqtt=(ep,))
    bound = {s.tag: s.binding for s in plant.sensors() if isinstance(s.binding, MqttBinding)}
    expected = [r for r in Simulation(plant, "chlorine-leak", 4, START).readings(120) if r.tag in bound]

    # a wrong password is refused by the broker, over TLS as well
    monkeypatch.setenv("HAZMON_TEST_MQTTS_PW", "wrong")
    with pytest.raises(MqttPublishError, match="not connected after 3"):
        await MqttPublisher(ep, plant, client_id="sim-tls-refused").start(timeout_s=3.0)

    monkeypatch.setenv("HAZMON_TEST_MQTTS_PW", PASSWORD)
    sub = TlsSubscriber(broker.port, ca, f"{topic_prefix}/#")
    try:
        pub = MqttPublisher(ep, plant, client_id="sim-tls")
        assert pub.tls
        counters = await run_stream(
            Simulation(plant, "chlorine-leak", 4, START).steps(120),
            plant,
            [pub],
            start_us=START,
            speed=math.inf,
        )
        got = sub.wait_for(len(expected))
    finally:
        sub.close()
    assert counters["readings"] == len(expected) > 0
    assert pub.counters["connects"] == 1
    assert pub.counters["queue_full"] == pub.counters["no_conn_dropped"] == pub.counters["errors"] == 0
    by_topic = {b.topic: tag for tag, b in bound.items()}
    decoded = []
    for topic, payload in got:
        body = json.loads(payload)
        decoded.append(Reading(by_topic[topic], _ts(body["ts"]), body["v"], Quality(body["q"])))
    assert sorted(decoded) == sorted(expected)


def test_plain_connection_to_the_tls_listener_is_refused(tls_broker: tuple[PrivateMosquitto, Path]) -> None:
    """The listener really is TLS: a plaintext MQTT client gets no CONNACK."""
    broker, _ = tls_broker
    connected = threading.Event()
    c = mqtt.Client(callback_api_version=CallbackAPIVersion.VERSION2, protocol=MQTTProtocolVersion.MQTTv311)
    c.username_pw_set(USER, PASSWORD)
    c.on_connect = lambda c, u, f, rc, p: connected.set() if not rc.is_failure else None
    c.connect("127.0.0.1", broker.port)
    c.loop_start()
    try:
        assert not connected.wait(3)
    finally:
        c.disconnect()
        c.loop_stop()
