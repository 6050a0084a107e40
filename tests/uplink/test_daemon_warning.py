"""A bureau warning end to end: a running bureau daemon raises it, a running enterprise daemon shows it.

Both daemons real, on PostgreSQL (one database each) and a private Mosquitto as the bureau's
broker. The bureau's clock is moved two hours ahead so the enterprise looks silent: the bureau
raises an orange ``silent`` warning, sends it down as ``bureau_warning``, and the plant shows it
as an advisory alarm (tier orange) in its own API. The clock back: the cause clears; the
officer verifies, records the feedback and closes (消警) through the bureau's API — each step
a comment on the plant's alarm, and the closing clears it.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import paho.mqtt.client as mqtt
import psycopg
from paho.mqtt.enums import CallbackAPIVersion

from hazmon.bureau.downlink import DownlinkSender
from hazmon.bureau.warning_config import Warnings
from hazmon.bureau_daemon import BureauDaemon
from hazmon.daemon import Daemon
from hazmon.plant import Plant
from hazmon.plant.link import topic
from hazmon.uplink import UplinkSettings
from testkit.mosquitto import PrivateMosquitto
from tests.alarms.helpers import bearer, webhook_settings
from tests.bureau.test_daemon import TOKENS, bureau_config
from tests.daemon.helpers import daemon_config, mqtt_only, wait_for


def _q(dsn: str, sql: str, *args: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute(sql, args).fetchall()


def _publish_again(bureau_dsn: str, port: int, wid: int) -> None:
    """The bureau's ``raised`` message of ``wid`` once more, and a ``verified`` of warning 999999."""
    (row,) = _q(
        bureau_dsn,
        "SELECT seq, message_id, enterprise_id, region_code, kind, payload FROM bureau_downlink"
        " WHERE (payload->>'warning_id')::bigint = %s AND payload->>'action' = 'raised'",
        wid,
    )
    raised = DownlinkSender._envelope(row)
    stranger = raised.model_copy(
        update={"message_id": uuid.uuid4(), "payload": raised.payload.model_copy(
            update={"warning_id": 999999, "action": "verified"})}
    )  # fmt: skip
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bureau-{uuid.uuid4().hex[:6]}")
    c.connect("127.0.0.1", port)
    c.loop_start()
    try:
        for env in (raised, stranger):
            c.publish(
                topic(env.enterprise_id, env.kind), env.model_dump_json().encode(), qos=1
            ).wait_for_publish(10)
    finally:
        c.disconnect()
        c.loop_stop()


async def test_a_bureau_warning_shows_at_the_plant_and_clears_when_the_bureau_closes_it(
    example_plant: Plant,
    db_dsn: str,
    make_db: Any,
    topic_prefix: str,
    private_mosquitto: PrivateMosquitto,
    tmp_path: Path,
) -> None:
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    e = plant.enterprise.id
    cfg = replace(
        daemon_config(tmp_path, db_dsn, plant),
        alarms=webhook_settings("http://127.0.0.1:9/unused", repeat_s=0),
        uplink=UplinkSettings(
            enabled=True,
            url=f"mqtt://127.0.0.1:{private_mosquitto.port}",
            heartbeat_interval_s=1.0,
            poll_interval_s=0.05,
        ),
    )
    bureau_dsn = make_db()
    ahead = [timedelta(0)]
    bcfg = bureau_config(bureau_dsn, private_mosquitto.port)
    bcfg = replace(bcfg, warnings=Warnings(tick_interval_s=3600))  # the test ticks, at the clocks it sets
    bureau = BureauDaemon(bcfg, clock=lambda: datetime.now(UTC) + ahead[0])
    bureau.downlink.poll_interval_s = 0.05
    await bureau.start()
    try:
        async with Daemon(cfg, plant) as d:
            assert d.w is not None and d.w.uplink is not None and d.w.uplink.downlink is not None
            down = d.w.uplink.downlink
            await wait_for(down.subscribed.is_set, "the plant's downlink subscription")

            def registered() -> bool:
                with psycopg.connect(bureau_dsn) as c:
                    return bool(
                        c.execute("SELECT 1 FROM bureau_enterprise WHERE enterprise_id = %s", (e,)).fetchone()
                    )

            await wait_for(registered, "the plant's registration at the bureau")
            ahead[0] = timedelta(hours=2)  # nothing heard for two hours, as the bureau sees it
            changes = bureau.tick_warnings()
            silent = next(c for c in changes if c.cause_key == f"silent:{e}" and c.action == "raise")
            wid = silent.warning_id
            assert wid is not None

            plant_api = f"http://127.0.0.1:{d.http_port}/api/v1/alarms"
            op = {"Authorization": f"Bearer {bearer('op1')}"}
            async with aiohttp.ClientSession() as http:

                async def advisory() -> dict[str, Any] | None:
                    async with http.get(plant_api, params={"condition": "bureau_warning"}, headers=op) as r:
                        assert r.status == 200, await r.text()
                        got = [a for a in (await r.json())["alarms"] if a["sensor"] == f"bureau/{wid}"]
                    assert len(got) <= 1  # one alarm per warning
                    return got[0] if got else None

                async def shown(active: bool) -> dict[str, Any]:
                    deadline = time.monotonic() + 60  # against hanging, not a timing assertion
                    while time.monotonic() < deadline:
                        a = await advisory()
                        if a is not None and a["active"] is active:
                            return a
                        await asyncio.sleep(0.1)
                    raise AssertionError(f"the advisory alarm of warning {wid} never became active={active}")

                a = await shown(True)
                assert a["tier"] == "orange" and a["hazard_source"] == e  # the whole enterprise
                assert silent.cause is not None and silent.cause.text_zh in a["message_zh"]

                # the cause clears (the clock back), then the officer's steps through the bureau's API,
                # after the warning's last event (the clock forward again)
                ahead[0] = timedelta(0)
                assert [c.action for c in bureau.tick_warnings() if c.warning_id == wid] == ["cause_cleared"]
                ahead[0] = timedelta(hours=2, minutes=1)
                officer = {"Authorization": f"Bearer {TOKENS['city-officer']}"}
                steps = f"http://127.0.0.1:{bureau.http_port}/api/v1/warnings/{wid}/steps"
                for step, comment in (
                    ("verify", "电话核查"),
                    ("feedback", "交换机重启"),
                    ("close", "已恢复"),
                ):
                    async with http.post(
                        steps, headers=officer, json={"step": step, "comment": comment}
                    ) as r:
                        assert r.status == 200, await r.text()
                a = await shown(False)

                # the raise delivered again (same message), and a change of a warning never raised here
                seen = down.stats.duplicates, down.stats.refused
                _publish_again(bureau_dsn, private_mosquitto.port, wid)
                await wait_for(
                    lambda: (down.stats.duplicates, down.stats.refused) == (seen[0] + 1, seen[1] + 1),
                    "the redelivery and the stranger handled",
                )
                assert (await advisory() or {}).get("active") is False  # still cleared
                async with http.get(f"{plant_api}/{a['id']}", headers=op) as r:
                    detail = await r.json()
            comments = [(ev["actor"], ev["comment"]) for ev in detail["events"] if ev["kind"] == "comment"]
            assert comments == [
                ("bureau", f"cause_cleared: {silent.cause.text_zh}"),
                ("city-officer", "verified: 电话核查"),
                ("city-officer", "fed_back: 交换机重启"),
            ]
            kinds = [ev["kind"] for ev in detail["events"]]
            assert kinds.count("raised") == 1 and kinds.count("cleared") == 1
            assert down.stats.refused == 1
        reasons = [
            r[0] for r in _q(db_dsn, "SELECT reason FROM collector_dead_letter WHERE source = 'uplink'")
        ]
        assert reasons == ["unknown_warning"]
        with psycopg.connect(bureau_dsn) as c:
            sent = c.execute(
                "SELECT count(*) FILTER (WHERE sent_at IS NOT NULL), count(*) FROM bureau_downlink"
                " WHERE kind = 'bureau_warning' AND (payload->>'warning_id')::bigint = %s",
                (wid,),
            ).fetchone()
        assert sent == (5, 5)  # raised, cause_cleared, verified, fed_back, closed
    finally:
        await bureau.stop()
