"""A supervision overdue by one day, in the running bureau daemon: escalated once, its staff told once.

The daemon's clock is passed in; its warnings tick escalates, the notices go to a real webhook
receiver through the ``notify:`` channels the warnings use; a second tick and a restarted daemon
change and send nothing more.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest

from hazmon.bureau import supervision_repository as repo
from hazmon.bureau.config import Channel, Notify, NotifyRecipient, NotifyRetry, RegionSettings
from hazmon.bureau_daemon import BureauDaemon
from hazmon.plant.regions import Scope
from tests.alarms.receivers import HttpReceiver
from tests.bureau.test_daemon import bureau_config
from tests.bureau.warnings_rows import add_enterprise

SH = ZoneInfo("Asia/Shanghai")
T0 = datetime(2027, 3, 1, 2, 0, tzinfo=UTC)
DEADLINE = date(2027, 3, 10)
DAY_LATE = datetime(2027, 3, 12, 0, 0, tzinfo=SH)  # one day after the midnight following the deadline
SECRET = "s3cret-bureau-hook"


@pytest.fixture
async def hook() -> AsyncIterator[HttpReceiver]:
    r = HttpReceiver(secret=SECRET.encode())
    await r.start()
    yield r
    await r.stop()


async def _until(cond: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + 60  # against hanging, not a timing assertion
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_overdue_supervision_escalates_once_and_the_region_is_told_once(
    db_dsn: str, mqtt_broker: tuple[str, int], hook: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUREAU_HOOK_SECRET", SECRET)
    with psycopg.connect(db_dsn, autocommit=True) as c:
        add_enterprise(c, "E1", "320116", T0 - timedelta(days=30), last_message=T0)
        sv = repo.open_supervision(
            c, Scope("320116", "county"), actor="陈科长", danger_id=None, enterprise_id="E1",
            deadline=DEADLINE, bureau_person="陈科长", comment="", now=T0, tz=SH,
        )  # fmt: skip
    assert isinstance(sv, dict)
    url = f"http://127.0.0.1:{hook.port}/duty"
    notify = Notify(
        channels=(Channel(name="duty", kind="webhook", url=url, secret_env="BUREAU_HOOK_SECRET"),),
        recipients=(
            NotifyRecipient(name="city-duty", channel="duty", region=RegionSettings("320100", "city")),
            NotifyRecipient(name="jiangning", channel="duty", region=RegionSettings("320115", "county")),
        ),
        retry=NotifyRetry(attempts=3, backoff_s=0.0),
        every_s=0.1,
    )
    cfg = replace(bureau_config(db_dsn, mqtt_broker[1]), notify=notify)
    clock = [DAY_LATE - timedelta(days=1, seconds=1)]  # not yet overdue
    d = BureauDaemon(cfg, clock=lambda: clock[0])
    await d.start()
    try:
        d.tick_warnings()
        assert d.supervisions_escalated == 0
        clock[0] = DAY_LATE
        d.tick_warnings()
        d.tick_warnings()  # the next tick: nothing more
        assert d.supervisions_escalated == 1
        await _until(
            lambda: any("supervision" in r["json"]["delivery_id"] for r in hook.requests),
            "the escalation's notice",
        )
    finally:
        await d.stop()
    told = [r["json"] for r in hook.requests if r["json"]["delivery_id"].startswith("bureau-supervision-")]
    assert [t["delivery_id"] for t in told] == [
        f"bureau-supervision-{_escalation(db_dsn)}-city-duty"
    ]  # the city's duty office, once; another county is not told (the silent warning goes its own way)
    body = told[0]
    assert (body["supervision_id"], body["level"], body["enterprise_id"]) == (sv["id"], "city", "E1")
    with psycopg.connect(db_dsn) as c:
        assert c.execute("SELECT level, escalated_at FROM bureau_supervision").fetchall() == [
            ("city", DAY_LATE)
        ]
        down = c.execute(
            "SELECT payload->>'action' FROM bureau_downlink WHERE kind = 'supervision' ORDER BY seq"
        ).fetchall()
    assert down == [("opened",), ("escalated",)]

    # a restarted daemon, a week later: nothing escalated or told again
    before = sum("supervision" in r["json"]["delivery_id"] for r in hook.requests)
    d2 = BureauDaemon(cfg, clock=lambda: DAY_LATE + timedelta(days=7))
    await d2.start()
    try:
        d2.tick_warnings()
        assert d2.supervisions_escalated == 0
        assert await d2.notices.supervision_once() == 0
    finally:
        await d2.stop()
    assert sum("supervision" in r["json"]["delivery_id"] for r in hook.requests) == before


def _escalation(dsn: str) -> int:
    with psycopg.connect(dsn) as c:
        row = c.execute("SELECT id FROM bureau_supervision_event WHERE step = 'escalated'").fetchone()
    assert row is not None
    return int(row[0])
