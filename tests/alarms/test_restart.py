"""kill -9 between an alarm and its escalation: after restart the escalation happens once, on time.

The service runs in a subprocess; the test sends it findings and ticks of simulated time
over stdin, kills it with SIGKILL, starts a new one on the same database, and checks what
a real webhook receiver got.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from hazmon.plant import Plant
from tests.alarms.helpers import T0, S, assess_all, gas, rows, who_when
from tests.alarms.receivers import HttpReceiver
from tests.conftest import EXAMPLE_PLANT, ROOT

pytestmark = pytest.mark.slow


class ServiceProcess:
    def __init__(self, dsn: str, url: str) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.p = subprocess.Popen(
            [
                sys.executable,
                str(Path(__file__).with_name("service_process.py")),
                dsn,
                str(EXAMPLE_PLANT),
                url,
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=env,
            cwd=ROOT,
        )
        assert self._line() == "ready"

    def _line(self) -> str:
        assert self.p.stdout is not None
        while True:
            line = self.p.stdout.readline()
            if not line:
                raise RuntimeError(f"service process ended (rc {self.p.poll()})")
            if line.strip() in ("ready", "ok"):
                return line.strip()

    async def send(self, cmd: dict[str, object]) -> None:
        assert self.p.stdin is not None
        self.p.stdin.write(json.dumps(cmd) + "\n")
        self.p.stdin.flush()
        assert await asyncio.to_thread(self._line) == "ok"

    async def tick(self, t_s: int) -> None:
        await self.send({"tick": T0 + t_s * S})

    def kill9(self) -> None:
        self.p.send_signal(signal.SIGKILL)
        self.p.wait(10)

    def stop(self) -> None:
        if self.p.poll() is None:
            assert self.p.stdin is not None
            self.p.stdin.close()
            self.p.wait(20)


def _finding_cmd(t_s: int) -> dict[str, object]:
    f = dataclasses.asdict(gas(T0 + t_s * S))
    f["condition"], f["level"] = str(f["condition"]), str(f["level"])
    return {"finding": f, "now": T0 + t_s * S}


async def test_kill9_between_alarm_and_escalation(
    example_plant: Plant, db_dsn: str, hook: HttpReceiver
) -> None:
    assess_all(example_plant, db_dsn)
    url = f"http://127.0.0.1:{hook.port}/hook"
    first = ServiceProcess(db_dsn, url)
    try:
        await first.send(_finding_cmd(0))
        await first.tick(120)
        first.kill9()
    finally:
        first.stop()
    assert who_when(hook.payloads(), "AT-101") == [
        ("control_room", 0, "escalation"),
        ("operational", 0, "escalation"),
    ]
    second = ServiceProcess(db_dsn, url)
    try:
        await second.tick(299)
        assert len(hook.payloads()) == 2  # nothing early, nothing resent
        await second.tick(300)
        await second.tick(301)
        second.kill9()  # again, after the 5-minute step went out
    finally:
        second.stop()
    third = ServiceProcess(db_dsn, url)
    try:
        for t in (599, 600, 601, 1800, 1801):
            await third.tick(t)
    finally:
        third.stop()
    assert who_when(hook.payloads(), "AT-101") == [
        ("control_room", 0, "escalation"),
        ("operational", 0, "escalation"),
        ("principal", 300, "escalation"),
        ("technical", 300, "escalation"),
        ("bureau_county", 600, "escalation"),
        ("bureau_city", 1800, "escalation"),
    ]
    deliveries = [r["headers"]["X-Hazmon-Delivery"] for r in hook.requests]
    assert len(deliveries) == len(set(deliveries))  # every notification exactly once
    assert rows(db_dsn, "SELECT count(*) FROM alarm WHERE sensor = 'AT-101'") == [(1,)]
    assert rows(db_dsn, "SELECT status, count(*) FROM alarm_notification GROUP BY 1") == [("sent", 6)]


async def test_kill9_with_notification_claimed_but_not_marked_resends_same_delivery(
    example_plant: Plant, db_dsn: str, hook: HttpReceiver
) -> None:
    """A crash after claiming ('sending') and before marking 'sent' resends with the same delivery id."""
    assess_all(example_plant, db_dsn)
    hook.status = 503  # the first attempt fails: the rows go back to pending with a backoff
    url = f"http://127.0.0.1:{hook.port}/hook"
    p = ServiceProcess(db_dsn, url)
    try:
        await p.send(_finding_cmd(0))
        p.kill9()
    finally:
        p.stop()
    # simulate the worst moment: claimed, and the process died before the result was recorded
    with __import__("psycopg").connect(db_dsn, autocommit=True) as c:
        c.execute("UPDATE alarm_notification SET status = 'sending' WHERE status = 'pending'")
    hook.status = 200
    p = ServiceProcess(db_dsn, url)
    try:
        await p.tick(10)
    finally:
        p.stop()
    ok = [r for r in hook.requests if r["json"]["recipient"] in ("control_room", "operational")]
    ids = [r["headers"]["X-Hazmon-Delivery"] for r in ok]
    assert len(ids) == 4 and len(set(ids)) == 2  # failed attempt + resend, same delivery ids
    assert rows(db_dsn, "SELECT status, count(*) FROM alarm_notification GROUP BY 1 ORDER BY 1") == [
        ("pending", 4),
        ("sent", 2),
    ]
