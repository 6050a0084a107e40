"""Real receivers the alarm tests deliver to: an HTTP webhook / SMS gateway (aiohttp),
an SMTP server with STARTTLS and login (aiosmtpd), an MQTT subscriber (paho)."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import json
import queue
import ssl
import threading
import uuid
from dataclasses import dataclass, field
from email import message_from_bytes
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from paho.mqtt.enums import CallbackAPIVersion

from hazmon.alarms.notify_webhook import sign
from tests.conftest import free_port, wait_port


@dataclass
class HttpReceiver:
    """Records every POST; answers with ``status`` (settable, e.g. 503 to force retries)."""

    secret: bytes = b""
    status: int = 200
    requests: list[dict[str, Any]] = field(default_factory=list)
    bad_signatures: int = 0
    port: int = 0
    runner: web.AppRunner | None = None
    arrived: asyncio.Event = field(default_factory=asyncio.Event)

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.secret and request.headers.get("X-Hazmon-Signature") != sign(self.secret, body):
            self.bad_signatures += 1
            return web.Response(status=401)
        try:
            payload = json.loads(body)
        except json.JSONDecodeError:
            payload = {"raw": body.decode()}
        self.requests.append(
            {
                "path": request.path,
                "headers": dict(request.headers),
                "json": payload,
                "query": dict(request.query),
            }
        )
        self.arrived.set()
        return web.Response(status=self.status)

    async def start(self) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        self.port = free_port()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return f"http://127.0.0.1:{self.port}"

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    def payloads(self) -> list[dict[str, Any]]:
        return [r["json"] for r in self.requests]


def self_signed(dirpath: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    c, k = dirpath / "smtp.crt", dirpath / "smtp.key"
    c.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    k.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return c, k


@dataclass
class Mail:
    sender: str
    to: list[str]
    subject: str
    body: str
    headers: dict[str, str]


class _MailHandler:
    def __init__(self, box: list[Mail]) -> None:
        self.box = box

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd hook
        m = message_from_bytes(envelope.original_content or envelope.content)
        body = m.get_payload(decode=True)
        self.box.append(
            Mail(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                str(make_header(decode_header(m["Subject"]))),
                body.decode() if isinstance(body, bytes) else str(body),
                {k: str(v) for k, v in m.items()},
            )
        )
        return "250 OK"


class SmtpServer:
    """aiosmtpd with STARTTLS required and LOGIN/PLAIN auth (user hazmon / password s3cret)."""

    USER, PASSWORD = "hazmon", "s3cret"

    def __init__(self, workdir: Path) -> None:
        self.cert, key = self_signed(workdir)
        ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ctx.load_cert_chain(self.cert, key)
        self.box: list[Mail] = []
        self.port = free_port()
        self.logins: list[str] = []

        def auth(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
            ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
                self.USER.encode(),
                self.PASSWORD.encode(),
            )
            if ok:
                self.logins.append(mechanism)
            return AuthResult(success=ok, handled=False)

        self.controller = Controller(
            _MailHandler(self.box),
            hostname="127.0.0.1",
            port=self.port,
            tls_context=ctx,
            require_starttls=True,
            authenticator=auth,
            auth_required=True,
        )

    def start(self) -> None:
        self.controller.start()
        wait_port(self.port)

    def stop(self) -> None:
        self.controller.stop()


class MqttListener:
    """Subscribes to ``topic`` on the broker and queues (topic, json) messages."""

    def __init__(self, host: str, port: int, topic: str) -> None:
        self.messages: queue.Queue[tuple[str, dict[str, Any]]] = queue.Queue()
        self.ready = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rc, p: self.ready.set()
        self.client.on_message = lambda c, u, m: self.messages.put((m.topic, json.loads(m.payload)))
        self.client.connect(host, port)
        self.client.loop_start()
        assert self.ready.wait(10), "MQTT subscription not confirmed"

    def get(self, timeout: float = 10.0) -> tuple[str, dict[str, Any]]:
        return self.messages.get(timeout=timeout)

    def drain(self) -> list[tuple[str, dict[str, Any]]]:
        out = []
        while True:
            try:
                out.append(self.messages.get_nowait())
            except queue.Empty:
                return out

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()
