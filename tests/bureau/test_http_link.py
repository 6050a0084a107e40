"""The link over HTTPS, end to end on real servers: the running bureau daemon's TLS listener (a CA
made here), real PostgreSQL databases for the bureau and the enterprise, the enterprise's
`HttpsSender` and `HttpsDownlink` on its outbox and handler."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import http.client
import json
import ssl
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as mqtt
import psycopg
import pytest
import pytest_asyncio
from paho.mqtt.enums import CallbackAPIVersion

from hazmon.bureau.config import BureauConfig, Limits
from hazmon.bureau.flood import FloodGuardedIngestor, FloodLimiter
from hazmon.bureau.https_link_config import HttpsEnterprise, HttpsLink
from hazmon.bureau_daemon import BureauDaemon
from hazmon.cli import main
from hazmon.plant import Plant
from hazmon.plant.link import Envelope
from hazmon.uplink import UplinkSettings, enqueue
from hazmon.uplink.build import heartbeat, registration
from hazmon.uplink.downlink import Refused
from hazmon.uplink.https_sender import HttpsDownlink, HttpsSender
from hazmon.uplink.service import UplinkService
from testkit.mosquitto import PrivateMosquitto
from testkit.net import free_port
from tests.bureau.helpers import T0, Enterprise
from tests.bureau.test_daemon import TOKENS, bureau_config
from tests.simulators.test_mqtt_tls import _make_pki

PASSWORD = "link-pa55"
OTHER = "E3201160002"  # a second enterprise of the same county, allowed on the link too
OTHER_PASSWORD = "other-pa55"


def _sha(s: str) -> str:
    return hashlib.sha256(s.encode()).hexdigest()


@dataclass
class Link:
    daemon: BureauDaemon
    bureau_dsn: str
    port: int
    ca: Path
    eid: str

    def settings(self, **kw: Any) -> UplinkSettings:
        base: dict[str, Any] = {
            "enabled": True,
            "transport": "https",
            "url": f"https://127.0.0.1:{self.port}",
            "password_env": "HAZMON_TEST_LINK_PW",
            "ca_file": str(self.ca),
            "retry_max_s": 0.3,
            "poll_interval_s": 0.05,
            "ack_timeout_s": 10.0,
            "down_poll_s": 0.05,
        }
        return UplinkSettings(**(base | kw))

    def call(
        self, method: str, path: str, body: bytes | None = None, user: str | None = None, pw: str = PASSWORD
    ) -> tuple[int, dict[str, str], dict[str, Any]]:
        ctx = ssl.create_default_context(cafile=str(self.ca))
        c = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30, context=ctx)
        token = base64.b64encode(f"{user or self.eid}:{pw}".encode()).decode()
        try:
            c.request(method, path, body=body, headers={"Authorization": f"Basic {token}"})
            r = c.getresponse()
            return r.status, dict(r.headers), json.loads(r.read() or b"{}")
        finally:
            c.close()

    def rows(self, sql: str, *args: object) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.bureau_dsn) as c:
            return c.execute(sql, args).fetchall()  # type: ignore[arg-type]

    def metric(self, name: str, **labels: str) -> float:
        v = self.daemon.metrics.registry.get_sample_value(name, labels)
        return 0.0 if v is None else v


def _link_config(
    dsn: str, mqtt_port: int, port: int, cert: Path, key: Path, eid: str, **limits: Any
) -> BureauConfig:
    cfg = bureau_config(dsn, mqtt_port)
    link = HttpsLink(
        enabled=True,
        host="127.0.0.1",
        port=port,
        cert_file=str(cert),
        key_file=str(key),
        enterprises=(
            HttpsEnterprise(id=eid, sha256=_sha(PASSWORD)),
            HttpsEnterprise(id=OTHER, sha256=_sha(OTHER_PASSWORD)),
        ),
    )
    return BureauConfig(
        id=cfg.id,
        name=cfg.name,
        region=cfg.region,
        database=cfg.database,
        broker=cfg.broker,
        http=cfg.http,
        tokens=cfg.tokens,
        limits=Limits(**limits),
        https_link=link,
    )


@pytest.fixture
def pki(tmp_path: Path) -> tuple[Path, Path, Path]:
    return _make_pki(tmp_path)


@pytest_asyncio.fixture
async def link(
    make_db: Callable[[], str],
    example_plant: Plant,
    private_mosquitto: PrivateMosquitto,
    pki: tuple[Path, Path, Path],
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> AsyncIterator[Link]:
    monkeypatch.setenv("HAZMON_TEST_LINK_PW", PASSWORD)
    ca, cert, key = pki
    dsn, port, eid = make_db(), free_port(), example_plant.enterprise.id
    limits = getattr(request, "param", {})
    daemon = BureauDaemon(_link_config(dsn, private_mosquitto.port, port, cert, key, eid, **limits))
    await daemon.start()
    try:
        yield Link(daemon, dsn, port, ca, eid)
    finally:
        await daemon.stop()


@pytest_asyncio.fixture
async def threads() -> AsyncIterator[list[tuple[threading.Event, threading.Thread]]]:
    started: list[tuple[threading.Event, threading.Thread]] = []
    yield started
    for stop, t in started:  # joined off the loop: the bureau (on the loop) answers their last call
        stop.set()
        await asyncio.to_thread(t.join, 30)


def _run(
    threads: list[tuple[threading.Event, threading.Thread]], fn: Callable[[threading.Event], None]
) -> None:
    stop = threading.Event()
    t = threading.Thread(target=fn, args=(stop,), daemon=True)
    t.start()
    threads.append((stop, t))


async def _until(cond: Callable[[], Any], what: str, within_s: float = 60.0) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        got = await asyncio.to_thread(cond)
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


def _enqueue_heartbeats(dsn: str, plant: Plant, n: int, first: int = 0) -> list[int]:
    e = plant.enterprise
    with psycopg.connect(dsn, autocommit=True) as c:
        out: list[int] = []
        for i in range(n):
            seq = enqueue(c, e.id, e.region.code, heartbeat(T0 + timedelta(minutes=first + i), []))
            assert seq is not None
            out.append(seq)
        return out


def _stopped_clock() -> float:
    """A clock that never moves: a flood bucket gives its burst and nothing more."""
    return 0.0


def _messages(ent: Enterprise, n_heartbeats: int) -> list[tuple[bytes, str]]:
    """A registration and ``n_heartbeats`` heartbeats as they go on the wire (body, topic)."""
    out = [ent.wire(ent.envelope(ent.registration()))]
    for i in range(n_heartbeats):
        out.append(ent.wire(ent.envelope(heartbeat(T0 + timedelta(minutes=i), []))))
    return out


def _pending(dsn: str) -> int:
    with psycopg.connect(dsn) as c:
        row = c.execute("SELECT count(*) FROM uplink_outbox WHERE sent_at IS NULL").fetchone()
        return int(row[0]) if row else -1


# ---------------------------------------------------------------- up


@pytest.mark.slow
async def test_https_uplink_stores_each_once_and_replays_in_order_after_a_bureau_outage(
    link: Link, db_dsn: str, example_plant: Plant, threads: list[tuple[threading.Event, threading.Thread]]
) -> None:
    e = example_plant.enterprise
    with psycopg.connect(db_dsn, autocommit=True) as c:
        enqueue(c, e.id, e.region.code, registration(example_plant))
    seqs = _enqueue_heartbeats(db_dsn, example_plant, 20)
    sender = HttpsSender(link.settings(), db_dsn, e.id)
    _run(threads, sender.run)
    await _until(lambda: _pending(db_dsn) == 0, "the first 21 messages sent")
    assert link.rows("SELECT count(*) FROM bureau_message")[0][0] == 21

    await link.daemon.link.stop()  # type: ignore[union-attr]  # the bureau's HTTPS listener is down
    more = _enqueue_heartbeats(db_dsn, example_plant, 30, first=20)
    await _until(lambda: sender.last_error != "", "the sender to see the outage")
    assert _pending(db_dsn) == 30 and not sender.connected
    await link.daemon.link.start()  # type: ignore[union-attr]  # back on the same port
    await _until(lambda: _pending(db_dsn) == 0, "the backlog replayed")

    got = link.rows("SELECT seq, message_id FROM bureau_message ORDER BY received_at, seq")
    assert len(got) == 51 and len({m for _, m in got}) == 51  # nothing lost, nothing doubled
    assert [s for s, _ in got] == sorted(s for s, _ in got)  # in order
    assert [s for s, _ in got][1:] == seqs + more
    assert sender.stats.acked == 51 and sender.stats.refused == 0 and sender.stats.connect_failures >= 1
    assert link.metric("hazmon_bureau_messages_total", kind="heartbeat") == 50


async def test_https_refusals_wrong_password_other_enterprise_bad_json_and_oversized(
    link: Link, db_dsn: str, example_plant: Plant, threads: list[tuple[threading.Event, threading.Thread]]
) -> None:
    eid = link.eid
    ent = Enterprise(example_plant)
    raw, _ = ent.wire(ent.envelope(ent.registration()))
    up = f"/api/v1/link/{eid}/up/registration"

    status, headers, body = await asyncio.to_thread(link.call, "POST", up, raw, None, "wrong")
    assert status == 401 and "Basic" in headers["WWW-Authenticate"]
    assert body["reason_code"] == "unauthorized" and "password" in body["error"]
    assert link.metric("hazmon_bureau_link_https_refused_total", status="401") == 1

    # an enterprise signed in as itself posting under another's id
    status, _, body = await asyncio.to_thread(
        link.call, "POST", f"/api/v1/link/{OTHER}/up/registration", raw, eid
    )
    assert status == 403 and body["reason_code"] == "topic_mismatch" and OTHER in body["error"]
    # ... or the other's envelope under its own path: the envelope names another enterprise
    other = Enterprise(example_plant, eid=OTHER)
    raw_other, _ = other.wire(other.envelope(other.registration()))
    status, _, body = await asyncio.to_thread(link.call, "POST", up, raw_other, eid)
    assert status == 400 and body["reason_code"] == "topic_mismatch" and "enterprise_id" in body["error"]

    status, _, body = await asyncio.to_thread(link.call, "POST", up, b'{"schema_version": 1, ', eid)
    assert status == 400 and body["reason_code"] == "invalid_schema" and body["error"]

    big = b"x" * (link.daemon.cfg.limits.max_message_bytes + 1)
    status, _, body = await asyncio.to_thread(link.call, "POST", up, big, eid)
    assert status == 413 and body["reason_code"] == "oversized"

    # a kind of a newer enterprise daemon: refused for good (the sender goes on), kept whole to replay
    newer = f"/api/v1/link/{eid}/up/leak_survey"
    status, _, body = await asyncio.to_thread(link.call, "POST", newer, raw, eid)
    assert status == 400 and body["reason_code"] == "unknown_kind" and "'leak_survey'" in body["error"]

    dead = link.rows("SELECT reason_code, enterprise_id, reason FROM bureau_dead_letter ORDER BY id")
    assert [(r, e) for r, e, _ in dead] == [
        ("topic_mismatch", eid),
        ("topic_mismatch", eid),
        ("invalid_schema", eid),
        ("oversized", eid),
        ("unknown_kind", eid),
    ]
    assert link.rows("SELECT payload FROM bureau_dead_letter WHERE reason_code = 'unknown_kind'") == [(raw,)]
    assert link.metric("hazmon_bureau_refused_total", reason_code="invalid_schema") == 1
    assert link.metric("hazmon_bureau_link_https_refused_total", status="403") == 1
    assert link.metric("hazmon_bureau_link_https_refused_total", status="413") == 1
    assert link.rows("SELECT count(*) FROM bureau_message")[0][0] == 0

    # the sender with a wrong password: refused and counted, the message kept for when it is fixed
    e = example_plant.enterprise
    with psycopg.connect(db_dsn, autocommit=True) as c:
        enqueue(c, e.id, e.region.code, registration(example_plant))
    sender = HttpsSender(link.settings(password_env="HAZMON_TEST_WRONG_PW"), db_dsn, e.id)
    _run(threads, sender.run)
    await _until(lambda: sender.stats.refused >= 2, "the sender's refusals counted")
    assert _pending(db_dsn) == 1 and sender.stats.acked == 0
    status, _, body = await asyncio.to_thread(link.call, "POST", up, raw, eid)  # the right one still works
    assert status == 200 and body == {"status": "stored"}
    status, _, body = await asyncio.to_thread(link.call, "POST", up, raw, eid)
    assert status == 200 and body == {"status": "duplicate"}


# ---------------------------------------------------------------- down


@pytest.mark.slow
async def test_a_bureau_step_reaches_the_enterprise_by_https_polling(
    link: Link, db_dsn: str, example_plant: Plant, threads: list[tuple[threading.Event, threading.Thread]]
) -> None:
    ent = Enterprise(example_plant)
    for payload in (ent.registration(), ent.alarm(7, 1)):
        raw, _ = ent.wire(ent.envelope(payload))
        status, _, body = await asyncio.to_thread(
            link.call, "POST", f"/api/v1/link/{link.eid}/up/{payload.kind}", raw
        )
        assert (status, body["status"]) == (200, "stored")

    got: list[Envelope] = []
    refused: list[tuple[str, str]] = []

    def on_step(env: Envelope) -> bool:
        if any(g.message_id == env.message_id for g in got):
            return False
        got.append(env)
        return True

    down = HttpsDownlink(link.settings(), link.eid, on_step, lambda t, r, d, p: refused.append((t, r)))
    _run(threads, down.run)
    await _until(down.subscribed.is_set, "the first poll answered")

    async with aiohttp.ClientSession() as s:
        r = await s.post(
            f"http://127.0.0.1:{link.daemon.http_port}/api/v1/alarms/{link.eid}:7/steps",
            json={"step": "received", "comment": "收到"},
            headers={"Authorization": f"Bearer {TOKENS['city-officer']}"},
        )
        assert r.status == 200, await r.text()
    await _until(lambda: got, "the step polled down")
    step = got[0]
    assert step.kind == "bureau_step" and step.payload.step == "received"  # type: ignore[union-attr]
    assert step.payload.alarm_id == f"{link.eid}:7"  # type: ignore[union-attr]
    await _until(
        lambda: (
            link.rows("SELECT delivered_seq FROM bureau_link_https_cursor WHERE enterprise_id = %s", link.eid)
            == [(step.seq,)]
        ),
        "the next poll to confirm the delivery",
    )
    assert len(got) == 1 and not refused and down.stats.applied == 1

    # another enterprise cannot read it
    status, _, body = await asyncio.to_thread(
        link.call, "GET", f"/api/v1/link/{link.eid}/down", None, OTHER, OTHER_PASSWORD
    )
    assert status == 403 and body["reason_code"] == "topic_mismatch"
    # a new poller (a restart) starts after the delivered one: nothing again
    again = HttpsDownlink(link.settings(), link.eid, on_step, lambda *_: None)
    assert await asyncio.to_thread(again.poll) == (0, False)

    # a message the plant refuses is dead-lettered there and the poll goes on
    def refuse(env: Envelope) -> bool:
        raise Refused("unknown_alarm", "payload.alarm_id: not here")

    fresh = HttpsDownlink(link.settings(), link.eid, refuse, lambda t, r, d, p: refused.append((t, r)))
    fresh.after = 0
    assert await asyncio.to_thread(fresh.poll) == (1, False)
    assert refused == [(f"hazmon/v1/{link.eid}/down/bureau_step", "unknown_alarm")]


# ---------------------------------------------------------------- the flood limit (hazmon.bureau.flood)


@pytest.mark.slow
async def test_mqtt_flood_dead_lettered_other_enterprise_stored_and_cli_replay_stores_once(
    link: Link, private_mosquitto: PrivateMosquitto, example_plant: Plant, tmp_path: Path
) -> None:
    d = link.daemon
    assert isinstance(d.ingestor, FloodGuardedIngestor)
    assert (d.ingestor.limiter.rate, d.ingestor.limiter.burst) == (5.0, 20_000)  # bureau.yaml's defaults
    d.ingestor.limiter = FloodLimiter(1.0, 5, _stopped_clock)
    a, b = Enterprise(example_plant), Enterprise(example_plant, eid=OTHER)
    flood, others = _messages(a, 9), _messages(b, 4)
    acked = threading.Semaphore(0)
    c = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"flood-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5
    )
    c.on_publish = lambda *_: acked.release()
    c.connect("127.0.0.1", private_mosquitto.port)
    c.loop_start()
    try:
        await _until(d.subscriber.connected.is_set, "the bureau subscribed")
        for raw, t in flood + others:
            c.publish(t, raw, qos=1)
        for _ in flood + others:
            assert await asyncio.to_thread(acked.acquire, True, 30)
    finally:
        c.loop_stop()
        c.disconnect()
    await _until(lambda: d.subscriber.stats.acked == 15, "all 15 handled")
    per_enterprise = link.rows("SELECT enterprise_id, count(*) FROM bureau_message GROUP BY 1")
    assert dict(per_enterprise) == {a.id: 5, OTHER: 5}  # the flooder its burst, the other all
    assert link.rows("SELECT reason_code, count(*) FROM bureau_dead_letter GROUP BY 1") == [("flood", 5)]
    assert link.metric("hazmon_bureau_refused_total", reason_code="flood") == 5
    assert link.metric("hazmon_bureau_flood_total", enterprise_id=a.id, transport="mqtt") == 5
    assert link.metric("hazmon_bureau_flood_total", enterprise_id=OTHER, transport="mqtt") == 0

    f = tmp_path / "bureau.yaml"
    f.write_text(
        f'id: nj-city\nname: 南京市应急管理局\nregion: {{code: "320100", level: city}}\n'
        f"database: {{dsn: '{link.bureau_dsn}'}}\n"
    )
    args = ["bureau", "dead-letters", "replay", "-c", str(f), "--reason", "flood"]
    assert await asyncio.to_thread(main, args) == 0
    assert link.rows(
        "SELECT count(*), count(DISTINCT message_id) FROM bureau_message WHERE enterprise_id = %s", a.id
    ) == [(10, 10)]
    assert await asyncio.to_thread(main, args) == 0  # nothing left: nothing stored twice
    assert link.rows("SELECT count(*) FROM bureau_message")[0][0] == 15
    assert link.rows("SELECT count(*) FROM bureau_dead_letter WHERE replayed_at IS NULL") == [(0,)]


@pytest.mark.slow
async def test_https_flood_is_answered_429_with_retry_after_and_the_sender_loses_nothing(
    link: Link, db_dsn: str, example_plant: Plant, threads: list[tuple[threading.Event, threading.Thread]]
) -> None:
    assert link.daemon.link is not None
    link.daemon.link.limiter = FloodLimiter(1.0, 2, _stopped_clock)
    e = example_plant.enterprise
    with psycopg.connect(db_dsn, autocommit=True) as c:
        enqueue(c, e.id, e.region.code, registration(example_plant))
        for i in range(5):
            enqueue(c, e.id, e.region.code, heartbeat(T0 + timedelta(minutes=i), []))
    sender = HttpsSender(link.settings(), db_dsn, e.id)
    _run(threads, sender.run)
    await _until(lambda: sender.stats.throttled >= 2, "the sender throttled and retrying")
    assert sender.stats.acked == 2 and _pending(db_dsn) == 4 and sender.stats.refused == 0
    status, headers, body = await asyncio.to_thread(link.call, "GET", f"/api/v1/link/{e.id}/down")
    assert status == 200  # polling the down messages is not limited
    ent = Enterprise(example_plant)
    raw, _ = ent.wire(ent.envelope(heartbeat(T0, [])))
    status, headers, body = await asyncio.to_thread(
        link.call, "POST", f"/api/v1/link/{e.id}/up/heartbeat", raw
    )
    assert status == 429 and int(headers["Retry-After"]) >= 1 and body["reason_code"] == "flood"
    assert link.rows("SELECT count(*) FROM bureau_dead_letter") == [(0,)]  # HTTPS: nothing dead-lettered
    assert link.metric("hazmon_bureau_flood_total", enterprise_id=e.id, transport="https") >= 3

    link.daemon.link.limiter = FloodLimiter(1.0, 1000)  # the flood is over
    await _until(lambda: _pending(db_dsn) == 0, "the rest sent after Retry-After")
    got = link.rows("SELECT seq FROM bureau_message ORDER BY received_at, seq")
    assert [s for (s,) in got] == sorted(s for (s,) in got) and len(got) == 6  # each once, in order


async def test_the_uplink_service_with_transport_https_sends_and_polls(
    link: Link, db_dsn: str, example_plant: Plant
) -> None:
    """The daemon's uplink task (`UplinkService`) picks the HTTPS sender and poller by `transport`."""
    settings = link.settings(heartbeat_interval_s=0.05)
    seen: list[Envelope] = []
    svc = UplinkService(
        settings,
        db_dsn,
        example_plant,
        lambda: [("dcs", "opcua", True, T0)],
        now=lambda: T0,
        on_step=lambda env: seen.append(env) is None,
    )
    assert isinstance(svc.sender, HttpsSender) and isinstance(svc.downlink, HttpsDownlink)
    t = asyncio.create_task(svc.run())
    try:
        await _until(
            lambda: link.rows("SELECT count(*) FROM bureau_message WHERE kind = 'heartbeat'")[0][0] >= 2,
            "heartbeats stored at the bureau",
        )
        await _until(lambda: svc.state()["downlink_subscribed"], "the down poll answered")
    finally:
        t.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await t
    kinds = link.rows("SELECT kind FROM bureau_message ORDER BY seq")
    assert kinds[0] == ("registration",) and svc.state()["connected"] is True
    assert link.rows("SELECT count(*) FROM bureau_dead_letter") == [(0,)]


async def test_a_message_refused_for_good_is_counted_and_the_rest_goes_on(
    link: Link, db_dsn: str, example_plant: Plant, threads: list[tuple[threading.Event, threading.Thread]]
) -> None:
    """An alarm event before any registration: 409 unknown_enterprise, a dead letter at the bureau;
    the sender counts it refused and sends the registration after it (the outbox is not stuck)."""
    e, ent = example_plant.enterprise, Enterprise(example_plant)
    with psycopg.connect(db_dsn, autocommit=True) as c:
        enqueue(c, e.id, e.region.code, ent.alarm(3, 1))
        enqueue(c, e.id, e.region.code, registration(example_plant))
    sender = HttpsSender(link.settings(), db_dsn, e.id)
    _run(threads, sender.run)
    await _until(lambda: _pending(db_dsn) == 0, "both answered")
    assert (sender.stats.refused, sender.stats.acked, sender.stats.throttled) == (1, 1, 0)
    assert link.rows("SELECT kind FROM bureau_message") == [("registration",)]
    assert link.rows("SELECT reason_code, enterprise_id FROM bureau_dead_letter") == [
        ("unknown_enterprise", e.id)
    ]
    assert link.metric("hazmon_bureau_link_https_refused_total", status="409") == 1


async def test_readyz_has_an_https_link_line_ready_while_the_listener_is_open(link: Link) -> None:
    """/readyz's ``https_link``: ready while the listener is bound; the listener stopped, not ready (503)."""

    async def readyz() -> tuple[int, dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"http://127.0.0.1:{link.daemon.http_port}/readyz") as r,
        ):
            return r.status, await r.json()

    async def line_ok(want: bool) -> dict[str, Any]:
        deadline = time.monotonic() + 60
        while True:
            status, body = await readyz()
            line = body["checks"]["https_link"]
            if line["ok"] is want:
                return {"status": status, **line}
            assert time.monotonic() < deadline, body
            await asyncio.sleep(0.1)

    up = await line_ok(True)
    assert up["listening"] is True and up["port"] == link.port and up["tls"] is True
    await link.daemon.link.stop()  # type: ignore[union-attr]
    down = await line_ok(False)
    assert down["status"] == 503 and down["listening"] is False
    await link.daemon.link.start()  # type: ignore[union-attr]
    again = await line_ok(True)
    assert again["listening"] is True
