"""Federation over three levels: an enterprise → the county → the city → the province, the same code at each.

The city is a child (of the province) and a parent (of the county): what the county forwards is
stored at the city and forwarded again, under the city's own username, to the province. Real
PostgreSQL (four databases: the enterprise's and the three bureaus') and three private
Mosquittos: the county's (the enterprise reports to it, anonymous), the city's and the
province's, the last two with bureau/README.md's password file and ACL lines for a child.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from hazmon.bureau.config import (
    BrokerSettings,
    BureauConfig,
    ChildSettings,
    DatabaseSettings,
    HttpSettings,
    ParentSettings,
    RegionSettings,
    TokenSettings,
)
from hazmon.bureau.subscriber import BULK_KINDS
from hazmon.bureau_daemon import BureauDaemon
from hazmon.uplink.build import heartbeat
from testkit.mosquitto import PrivateMosquitto
from tests.bureau.test_federation import CHECKSUM, EnterpriseSide, enterprise_side  # noqa: F401 - a fixture

pytestmark = pytest.mark.slow

GROUP = "hazmon-bureau"
PASSWORDS = {"bureau": "b-secret", "liuhe-county": "lh-secret", "nj-city": "nj-secret"}
TOKENS = {"province-viewer": "tok-js", "city-viewer": "tok-nj", "liuhe-viewer": "tok-lh"}


def acl(child_pattern: bool = True) -> str:
    """A parent bureau's broker (README "Federation"): enterprises and children each under their own prefix."""
    return f"""pattern write hazmon/v1/%u/up/#
pattern read hazmon/v1/%u/down/#
{"pattern write hazmon/v1/fed/%u/#" if child_pattern else ""}

user bureau
topic read hazmon/v1/+/up/#
topic read $share/{GROUP}/hazmon/v1/+/up/#
topic read hazmon/v1/fed/+/+/up/#
topic read $share/{GROUP}/hazmon/v1/fed/+/+/up/#
topic write hazmon/v1/+/down/#
"""


def parent_broker(workdir: Path) -> PrivateMosquitto:
    workdir.mkdir()
    (workdir / "acl").write_text(acl())
    passwd = workdir / "passwd"
    passwd.touch()
    for u, p in PASSWORDS.items():
        subprocess.run(["mosquitto_passwd", "-b", str(passwd), u, p], check=True, capture_output=True)
    return PrivateMosquitto(
        workdir, f"allow_anonymous false\npassword_file {passwd}\nacl_file {workdir / 'acl'}\n"
    )


def _token(name: str, code: str, level: str) -> TokenSettings:
    digest = hashlib.sha256(TOKENS[name].encode()).hexdigest()
    return TokenSettings(name=name, role="viewer", region=RegionSettings(code, level), sha256=digest)


def _bureau(
    bid: str,
    region: RegionSettings,
    dsn: str,
    broker_port: int,
    *,
    own_user: bool,
    parent: tuple[int, str] | None = None,
    children: tuple[ChildSettings, ...] = (),
    tokens: tuple[TokenSettings, ...] = (),
) -> BureauConfig:
    return BureauConfig(
        id=bid,
        name=bid,
        region=region,
        database=DatabaseSettings(dsn=dsn, migrate=False),
        broker=BrokerSettings(
            url=f"mqtt://127.0.0.1:{broker_port}",
            username="bureau" if own_user else None,
            password_env="HAZMON_TEST_BUREAU_PW" if own_user else None,
            group=GROUP, client_id=f"{bid}-{uuid.uuid4().hex[:6]}", retry_max_s=0.3,
        ),
        http=HttpSettings(port=0),
        parent=None if parent is None else ParentSettings(
            url=f"mqtt://127.0.0.1:{parent[0]}", username=parent[1], password_env=f"HAZMON_TEST_PW_{parent[1].split('-')[1].upper()}",
            ack_timeout_s=5.0, poll_interval_s=0.05, retry_max_s=0.3,
        ),
        children=children,
        tokens=tokens,
    )  # fmt: skip


async def _until(cond: Callable[[], Any], what: str, within_s: float = 90.0) -> Any:
    deadline = time.monotonic() + within_s
    while True:
        got = await asyncio.to_thread(cond)
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def _one(dsn: str, sql: str) -> Any:
    with psycopg.connect(dsn) as c:
        row = c.execute(sql).fetchone()
        return None if row is None else row[0]


def _n(dsn: str) -> int:
    return int(_one(dsn, "SELECT count(*) FROM bureau_message"))


def _ids(dsn: str) -> set[str]:
    with psycopg.connect(dsn) as c:
        return {str(r[0]) for r in c.execute("SELECT message_id FROM bureau_message").fetchall()}


def _seqs_as_received(dsn: str, bulk: bool) -> list[int]:
    """The seqs of one lane of the subscriber (`BULK_KINDS` or the rest) in the order stored.

    The two lanes are stored apart (an alarm is not held behind a minute of aggregates), so
    only within a lane is the order of arrival the enterprise's order."""
    with psycopg.connect(dsn) as c:
        rows = c.execute("SELECT seq, kind FROM bureau_message ORDER BY received_at").fetchall()
    return [int(seq) for seq, kind in rows if (kind in BULK_KINDS) == bulk]


async def _children(port: int, token: str) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{port}/api/v1/children", headers=headers) as r,
    ):
        assert r.status == 200, await r.text()
        body: dict[str, Any] = json.loads(await r.text())
        return body


async def test_county_city_province_once_each_and_a_city_outage_replays_in_order(
    tmp_path: Path,
    make_db: Callable[[], str],
    private_mosquitto: PrivateMosquitto,
    enterprise_side: EnterpriseSide,  # noqa: F811 - the fixture imported above
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # each daemon runs its subscriber, downlink and forwarder in the loop's default executor
    # (asyncio.to_thread): three daemons need more threads than its default (cores + 4)
    asyncio.get_running_loop().set_default_executor(ThreadPoolExecutor(max_workers=32))
    monkeypatch.setenv("HAZMON_TEST_BUREAU_PW", PASSWORDS["bureau"])
    monkeypatch.setenv("HAZMON_TEST_PW_COUNTY", PASSWORDS["liuhe-county"])
    monkeypatch.setenv("HAZMON_TEST_PW_CITY", PASSWORDS["nj-city"])
    side, ent = enterprise_side, enterprise_side.ent
    city_broker, prov_broker = (
        parent_broker(tmp_path / "city-broker"),
        parent_broker(tmp_path / "prov-broker"),
    )
    city_broker.start()
    prov_broker.start()
    county_dsn, city_dsn, prov_dsn = make_db(), make_db(), make_db()
    county = BureauDaemon(
        _bureau("liuhe-county", RegionSettings("320116", "county"), county_dsn, private_mosquitto.port,
                own_user=False, parent=(city_broker.port, "liuhe-county"))
    )  # fmt: skip
    city_cfg = _bureau(
        "nj-city", RegionSettings("320100", "city"), city_dsn, city_broker.port, own_user=True,
        parent=(prov_broker.port, "nj-city"),
        children=(ChildSettings(id="liuhe-county", region=RegionSettings("320116", "county")),),
        tokens=(_token("city-viewer", "320100", "city"),),
    )  # fmt: skip
    city = BureauDaemon(city_cfg)
    province = BureauDaemon(
        _bureau("js-province", RegionSettings("320000", "province"), prov_dsn, prov_broker.port, own_user=True,
                children=(ChildSettings(id="nj-city", region=RegionSettings("320100", "city")),),
                tokens=(_token("province-viewer", "320000", "province"), _token("liuhe-viewer", "320116", "county")))
    )  # fmt: skip
    for d in (province, city, county):
        await d.start()
    try:
        for d in (province, city, county):
            await _until(d.subscriber.connected.is_set, f"{d.cfg.id}'s subscription")
        assert county.forwarder is not None and city.forwarder is not None and province.forwarder is None
        county_fwd = county.forwarder

        # 1. registration, a red alarm, a minute of aggregates: the county, the city, the province
        side.send(ent.registration(), ent.alarm(42, 100, "raised"), side.minute(1))
        await _until(lambda: _n(prov_dsn) == 3, "three messages at the province")
        assert _one(city_dsn, "SELECT array_agg(DISTINCT via_child) FROM bureau_message") == ["liuhe-county"]
        assert _one(prov_dsn, "SELECT array_agg(DISTINCT via_child) FROM bureau_message") == ["nj-city"]
        assert _one(county_dsn, "SELECT count(*) FROM bureau_message WHERE via_child IS NOT NULL") == 0

        # 2. the city's daemon stops: what the county forwards waits in the city's broker session
        await city.stop()
        side.send(ent.alarm(42, 101, "acked", state="active_acked"), side.minute(2))
        await _until(lambda: _n(county_dsn) == 5, "five messages at the county")
        await _until(lambda: _one(county_dsn, "SELECT count(*) FROM bureau_forward WHERE sent_at IS NULL") == 0,
                     "the county's forward outbox drained into the city's broker")  # fmt: skip

        # 3. the city's broker stops too: the county keeps what it stores in its outbox
        city_broker.stop()
        side.send(
            ent.alarm(42, 102, "cleared", state="cleared"),
            side.minute(3),
            heartbeat(datetime(2026, 3, 1, 8, 4, tzinfo=UTC), [("opcua-main", "opcua", True, None)]),
        )
        await _until(lambda: _n(county_dsn) == 8, "eight messages at the county")
        await _until(lambda: county_fwd.stats.failures >= 2, "the county's forwarder to meet the outage")
        assert _one(county_dsn, "SELECT count(*) FROM bureau_forward WHERE sent_at IS NULL") == 3
        assert _n(prov_dsn) == 3  # nothing reached the province around the city

        # 4. the city's broker, then its daemon, come back: everything reaches the province once
        city_broker.start()
        city = BureauDaemon(city_cfg)
        await city.start()
        await _until(lambda: _n(prov_dsn) == 8, "all eight messages at the province")
        await _until(lambda: county_fwd.pending == 0, "the county's outbox empty")
        await _until(
            lambda: city.forwarder is not None and city.forwarder.pending == 0, "the city's outbox empty"
        )
        sent = side.message_ids()
        assert len(sent) == 8
        assert _ids(county_dsn) == sent and _ids(city_dsn) == sent and _ids(prov_dsn) == sent
        assert _one(prov_dsn, CHECKSUM) == _one(city_dsn, CHECKSUM) == _one(county_dsn, CHECKSUM)
        for dsn in (county_dsn, city_dsn):  # each stored once, queued once, at each child
            assert _one(dsn, "SELECT count(*) FROM bureau_forward") == 8
        for dsn in (county_dsn, city_dsn, prov_dsn):
            assert _one(dsn, "SELECT count(*) FROM bureau_dead_letter") == 0
            for bulk in (True, False):  # in order within each lane, the replay too
                assert _seqs_as_received(dsn, bulk) == sorted(_seqs_as_received(dsn, bulk))
        assert _one(prov_dsn, f"SELECT state FROM bureau_alarm WHERE alarm_id = '{ent.id}:42'") == "cleared"
        assert _one(prov_dsn, "SELECT count(*) FROM bureau_aggregate") == 3 * len(side.tags)

        # 5. each parent's view of its child; a county token at the province sees no city child
        got = await _children(province.http_port, TOKENS["province-viewer"])
        assert got["count"] == 1
        nj = got["children"][0]
        assert (nj["id"], nj["region"]) == ("nj-city", {"code": "320100", "level": "city"})
        assert nj["messages_last_24h"] == 8 and nj["enterprises_via_child_24h"] == 1
        assert [e["id"] for e in nj["enterprises"]] == [ent.id]
        assert nj["last_message"]["enterprise_id"] == ent.id and nj["dead_letters"] == {}
        lh = (await _children(city.http_port, TOKENS["city-viewer"]))["children"]
        assert [(c["id"], c["messages_last_24h"]) for c in lh] == [("liuhe-county", 8)]
        assert (await _children(province.http_port, TOKENS["liuhe-viewer"])) | {"at": None} == {
            "children": [],
            "count": 0,
            "at": None,
        }
    finally:
        for d in (county, city, province):
            await d.stop()
        city_broker.stop()
        prov_broker.stop()
