"""Federation end to end: an enterprise → the province bureau daemon → the nation bureau daemon, once.

Real PostgreSQL (three databases: the enterprise's, the province's, the nation's) and two
private Mosquittos: the province's (the enterprise reports to it) and the nation's, with the
README's password file and ACL (each child writes only under ``hazmon/v1/fed/<its username>/``).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hazmon.bureau.config import (
    BrokerSettings,
    BureauConfig,
    ChildSettings,
    DatabaseSettings,
    HttpSettings,
    ParentSettings,
    RegionSettings,
)
from hazmon.bureau_daemon import BureauDaemon
from hazmon.plant import Plant, Quality
from hazmon.plant.link.federation import fed_topic
from hazmon.uplink import Sender, UplinkSettings, enqueue
from hazmon.uplink.build import aggregate, heartbeat
from testkit.mosquitto import PrivateMosquitto
from tests.bureau.helpers import Enterprise

pytestmark = pytest.mark.slow

GROUP = "hazmon-bureau"
PASSWORDS = {"nation": "n-secret", "js-province": "js-secret", "zj-province": "zj-secret"}
# the nation's broker, as bureau/README.md "Federation" tells its operator to set it up
NATION_ACL = f"""pattern write hazmon/v1/%u/up/#
pattern read hazmon/v1/%u/down/#
pattern write hazmon/v1/fed/%u/#

user nation
topic read hazmon/v1/+/up/#
topic read $share/{GROUP}/hazmon/v1/+/up/#
topic read hazmon/v1/fed/+/+/up/#
topic read $share/{GROUP}/hazmon/v1/fed/+/+/up/#
topic write hazmon/v1/+/down/#
"""


def nation_broker(workdir: Path) -> PrivateMosquitto:
    workdir.mkdir()
    (workdir / "acl").write_text(NATION_ACL)
    passwd = workdir / "passwd"
    passwd.touch()
    for u, p in PASSWORDS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), u, p], check=True, capture_output=True)
    return PrivateMosquitto(
        workdir, f"allow_anonymous false\npassword_file {passwd}\nacl_file {workdir / 'acl'}\n"
    )


def province_config(dsn: str, port: int, nation_port: int, child: str = "js-province") -> BureauConfig:
    return BureauConfig(
        id=child,
        name="江苏省应急管理厅",
        region=RegionSettings("320000", "province"),
        database=DatabaseSettings(dsn=dsn, migrate=False),
        broker=BrokerSettings(
            url=f"mqtt://127.0.0.1:{port}", group=GROUP, client_id=f"prov-{uuid.uuid4().hex[:6]}",
            retry_max_s=0.3,
        ),
        http=HttpSettings(port=0),
        parent=ParentSettings(
            url=f"mqtt://127.0.0.1:{nation_port}", username=child, password_env="HAZMON_TEST_PARENT_PW",
            ack_timeout_s=5.0, poll_interval_s=0.05, retry_max_s=0.3,
        ),
    )  # fmt: skip


def nation_config(dsn: str, port: int, children: tuple[ChildSettings, ...]) -> BureauConfig:
    return BureauConfig(
        id="nation",
        name="应急管理部",
        region=RegionSettings("000000", "nation"),
        database=DatabaseSettings(dsn=dsn, migrate=False),
        broker=BrokerSettings(
            url=f"mqtt://127.0.0.1:{port}", username="nation", password_env="HAZMON_TEST_NATION_PW",
            group=GROUP, client_id="nation-1", retry_max_s=0.3,
        ),
        http=HttpSettings(port=0),
        children=children,
    )  # fmt: skip


JS = ChildSettings(id="js-province", region=RegionSettings("320000", "province"))


async def _until(cond: Callable[[], Any], what: str, within_s: float = 90.0) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        got = await asyncio.to_thread(cond)
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _get(port: int, path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession() as http, http.get(f"http://127.0.0.1:{port}{path}") as r:
        return r.status, await r.text()


def _one(dsn: str, sql: str) -> Any:
    with psycopg.connect(dsn) as c:
        row = c.execute(sql).fetchone()
        return None if row is None else row[0]


def _messages(dsn: str) -> int:
    return int(_one(dsn, "SELECT count(*) FROM bureau_message"))


# every stored message by id with its payload: equal at the province and the nation when the
# same messages were stored once each
CHECKSUM = (
    "SELECT md5(string_agg(message_id::text || ':' || seq || ':' || kind || ':' || payload::text,"
    " ',' ORDER BY message_id)) FROM bureau_message"
)


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HAZMON_TEST_PARENT_PW", PASSWORDS["js-province"])
    monkeypatch.setenv("HAZMON_TEST_NATION_PW", PASSWORDS["nation"])


class EnterpriseSide:
    """The example plant's daemon side of the link: its outbox and uplink Sender to the province's broker."""

    def __init__(self, plant: Plant, dsn: str, port: int) -> None:
        self.ent = Enterprise(plant)
        self.dsn = dsn
        self.tags = [s.tag for h in self.ent.registration().hazard_sources for s in h.sensors]  # type: ignore[union-attr]
        self.sender = Sender(
            UplinkSettings(enabled=True, url=f"mqtt://127.0.0.1:{port}", poll_interval_s=0.05),
            dsn,
            self.ent.id,
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.sender.run, args=(self.stop,), daemon=True)
        self.thread.start()

    def send(self, *payloads: Any) -> None:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            for p in payloads:
                enqueue(conn, self.ent.id, self.ent.region, p)

    def minute(self, n: int) -> Any:
        start = datetime(2026, 3, 1, 8, 0, tzinfo=UTC) + timedelta(minutes=n)
        return aggregate(start, {t: [(10.0 + n, Quality.GOOD)] for t in self.tags}, self.tags)

    def message_ids(self) -> set[str]:
        with psycopg.connect(self.dsn) as c:
            return {str(r[0]) for r in c.execute("SELECT message_id FROM uplink_outbox").fetchall()}

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)


@pytest.fixture
def enterprise_side(
    example_plant: Plant, make_db: Callable[[], str], private_mosquitto: PrivateMosquitto
) -> Iterator[EnterpriseSide]:
    side = EnterpriseSide(example_plant, make_db(), private_mosquitto.port)
    yield side
    side.close()


def _ids(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as c:
        return {str(r[0]) for r in c.execute("SELECT message_id FROM bureau_message").fetchall()}


async def test_province_forwards_to_the_nation_once_through_an_outage_of_the_nation_and_its_broker(
    env: None,
    tmp_path: Path,
    make_db: Callable[[], str],
    private_mosquitto: PrivateMosquitto,
    enterprise_side: EnterpriseSide,
) -> None:
    side, ent = enterprise_side, enterprise_side.ent
    nbroker = nation_broker(tmp_path / "nation-broker")
    nbroker.start()
    province_dsn, nation_dsn = make_db(), make_db()
    province = BureauDaemon(province_config(province_dsn, private_mosquitto.port, nbroker.port))
    ncfg = nation_config(nation_dsn, nbroker.port, (JS,))
    nation = BureauDaemon(ncfg)
    await nation.start()
    await province.start()
    try:
        await _until(nation.subscriber.connected.is_set, "the nation's subscription")
        await _until(province.subscriber.connected.is_set, "the province's subscription")
        assert province.forwarder is not None and nation.forwarder is None
        fwd = province.forwarder

        # 1. registration, a red alarm, a minute of aggregates: at the province, then the nation
        side.send(ent.registration(), ent.alarm(42, 100, "raised"), side.minute(1))
        await _until(lambda: _messages(nation_dsn) == 3, "three messages at the nation")
        assert _one(nation_dsn, f"SELECT state FROM bureau_alarm WHERE alarm_id = '{ent.id}:42'") == (
            "active_unacked"
        )
        assert _one(
            nation_dsn, f"SELECT region_code FROM bureau_enterprise WHERE enterprise_id = '{ent.id}'"
        ) == ("320116")

        # 2. the nation's daemon stops: what the province forwards waits in its broker session
        await nation.stop()
        side.send(ent.alarm(42, 101, "acked", state="active_acked"), side.minute(2))
        await _until(lambda: _messages(province_dsn) == 5, "five messages at the province")
        await _until(lambda: _one(province_dsn, "SELECT count(*) FROM bureau_forward WHERE sent_at IS NULL") == 0,
                     "the province's forward outbox drained into the nation's broker")  # fmt: skip

        # 3. the nation's broker stops too: the province keeps what it stores in its outbox
        nbroker.stop()
        side.send(
            ent.alarm(42, 102, "cleared", state="cleared"),
            side.minute(3),
            heartbeat(datetime(2026, 3, 1, 8, 4, tzinfo=UTC), [("opcua-main", "opcua", True, None)]),
        )
        await _until(lambda: _messages(province_dsn) == 8, "eight messages at the province")
        await _until(lambda: fwd.stats.failures >= 2, "the forwarder to meet the outage")
        assert _one(province_dsn, "SELECT count(*) FROM bureau_forward WHERE sent_at IS NULL") == 3
        status, body = await _get(province.http_port, "/readyz")
        ready = json.loads(body)
        assert status == 200, ready  # a parent outage is not the province's
        line = ready["checks"]["forwarder"]
        assert line["ok"] and line["connected"] is False and line["last_error"], line
        await _until(lambda: fwd.pending == 3, "the forwarder to count what waits")
        assert "hazmon_bureau_forward_pending 3.0" in (await _get(province.http_port, "/metrics"))[1]

        # 4. the broker comes back first. Mosquitto (2.0) does not restore a shared subscription of
        # an offline session from its persistence file: until the nation subscribes again it answers
        # the province's messages with PUBACK 0x10 "no matching subscribers", and the forwarder keeps
        # them (a plain PUBACK would have marked them sent and they would be lost)
        nbroker.start()
        await _until(
            lambda: fwd.stats.no_subscriber >= 1, "the forwarder to meet a broker without the nation"
        )
        assert _one(province_dsn, "SELECT count(*) FROM bureau_forward WHERE sent_at IS NULL") == 3
        nation = BureauDaemon(ncfg)
        await nation.start()
        await _until(lambda: _messages(nation_dsn) == 8, "all eight messages at the nation")
        await _until(lambda: fwd.pending == 0, "the province's outbox empty")
        sent = side.message_ids()
        assert len(sent) == 8
        assert _ids(province_dsn) == sent and _ids(nation_dsn) == sent
        assert _one(nation_dsn, CHECKSUM) == _one(province_dsn, CHECKSUM)
        assert _one(province_dsn, "SELECT count(*) FROM bureau_forward") == 8  # each stored once, queued once
        assert _one(nation_dsn, f"SELECT state FROM bureau_alarm WHERE alarm_id = '{ent.id}:42'") == "cleared"
        events = _one(nation_dsn, f"SELECT count(*) FROM bureau_alarm_event WHERE alarm_id = '{ent.id}:42'")
        assert events == 3
        assert _one(nation_dsn, "SELECT count(*) FROM bureau_aggregate") == 3 * len(side.tags)
        assert _one(nation_dsn, "SELECT count(*) FROM bureau_dead_letter") == 0
        assert fwd.stats.acked >= 8 and fwd.stats.replayed >= 1
        text = (await _get(province.http_port, "/metrics"))[1]
        assert 'hazmon_bureau_forward{what="forwarded"}' in text
        assert "hazmon_bureau_forward_pending 0.0" in text
    finally:
        await province.stop()
        await nation.stop()
        nbroker.stop()


def _publish_as(port: int, user: str, topic: str, raw: bytes) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"p-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
    c.username_pw_set(user, PASSWORDS[user])
    c.connect("127.0.0.1", port)
    c.loop_start()
    c.publish(topic, raw, qos=1).wait_for_publish(10)
    c.loop_stop()
    c.disconnect()


def _publish(port: int, wires: list[tuple[bytes, str]]) -> None:
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"e-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
    c.connect("127.0.0.1", port)
    c.loop_start()
    for raw, topic in wires:
        c.publish(topic, raw, qos=1).wait_for_publish(10)
    c.loop_stop()
    c.disconnect()


async def test_the_nation_refuses_an_enterprise_outside_the_forwarding_childs_region(
    env: None,
    tmp_path: Path,
    make_db: Callable[[], str],
    example_plant: Plant,
    private_mosquitto: PrivateMosquitto,
) -> None:
    """The nation lists js-province for Nanjing only (a mistake or a narrower mandate): Suzhou's are refused."""
    nbroker = nation_broker(tmp_path / "nation-broker")
    nbroker.start()
    province_dsn, nation_dsn = make_db(), make_db()
    province = BureauDaemon(province_config(province_dsn, private_mosquitto.port, nbroker.port))
    nanjing_only = ChildSettings(id="js-province", region=RegionSettings("320100", "city"))
    zj = ChildSettings(id="zj-province", region=RegionSettings("330000", "province"))
    nation = BureauDaemon(nation_config(nation_dsn, nbroker.port, (nanjing_only, zj)))
    await nation.start()
    await province.start()
    try:
        await _until(nation.subscriber.connected.is_set, "the nation's subscription")
        await _until(province.subscriber.connected.is_set, "the province's subscription")
        liuhe = Enterprise(example_plant)  # 320116, Nanjing
        suzhou = Enterprise(example_plant, "E3205001", "320505")
        wires = [e.wire(e.envelope(e.registration())) for e in (liuhe, suzhou)]
        wires += [e.wire(e.envelope(e.alarm(1, 1))) for e in (liuhe, suzhou)]
        _publish(private_mosquitto.port, wires)
        await _until(lambda: _messages(province_dsn) == 4, "both enterprises at the province")
        await _until(
            lambda: _one(nation_dsn, "SELECT count(*) FROM bureau_dead_letter") == 2, "Suzhou's two refused"
        )
        await _until(lambda: _messages(nation_dsn) == 2, "Nanjing's two at the nation")
        with psycopg.connect(nation_dsn) as c:
            stored = c.execute("SELECT DISTINCT enterprise_id FROM bureau_message").fetchall()
            dead = c.execute(
                "SELECT topic, enterprise_id, reason_code, reason FROM bureau_dead_letter ORDER BY id"
            ).fetchall()
        assert stored == [(liuhe.id,)]
        assert [d[:3] for d in dead] == [
            (fed_topic("js-province", suzhou.id, "registration"), suzhou.id, "outside_child_region"),
            (fed_topic("js-province", suzhou.id, "alarm_event"), suzhou.id, "outside_child_region"),
        ]
        assert dead[0][3] == "region_code: 320505 is outside child bureau 'js-province''s city 320100"

        # zj-province is a child, but the ACL keeps it out of js-province's prefix; under its own
        # prefix its Jiangsu enterprise is refused; an unlisted child is refused as such
        raw, _ = liuhe.wire(liuhe.envelope(liuhe.alarm(2, 2)))
        _publish_as(nbroker.port, "zj-province", fed_topic("js-province", liuhe.id, "alarm_event"), raw)
        _publish_as(nbroker.port, "zj-province", fed_topic("zj-province", liuhe.id, "alarm_event"), raw)
        await _until(
            lambda: _one(nation_dsn, "SELECT count(*) FROM bureau_dead_letter") == 3, "zj-province's refused"
        )
        assert _one(nation_dsn, "SELECT reason_code FROM bureau_dead_letter ORDER BY id DESC LIMIT 1") == (
            "outside_child_region"
        )
        assert _messages(nation_dsn) == 2  # the forgery under js-province's prefix never arrived
        text = (await _get(nation.http_port, "/metrics"))[1]
        assert 'hazmon_bureau_refused_total{reason_code="outside_child_region"} 3.0' in text
    finally:
        await province.stop()
        await nation.stop()
        nbroker.stop()
