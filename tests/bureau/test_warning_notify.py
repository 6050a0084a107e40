"""New bureau warnings told to the bureau's staff (``notify:``): a real webhook receiver, a running bureau.

Each raise reaches each recipient of its region and colour once — red before orange, a failing
receiver retried and counted — and a restarted bureau sends nothing again.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from hazmon.bureau.config import (
    Channel,
    Notify,
    NotifyRecipient,
    NotifyRetry,
    RegionSettings,
    load_config,
)
from hazmon.bureau.warning_repository import get_warning
from hazmon.bureau_daemon import BureauDaemon
from hazmon.plant import ConfigError
from tests.alarms.receivers import HttpReceiver, SmtpServer
from tests.bureau.test_daemon import bureau_config
from tests.bureau.warnings_rows import add_alarm, add_enterprise, add_source

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
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


async def test_each_raise_reaches_its_region_once_red_first_retried_and_not_again_after_a_restart(
    db_dsn: str, mqtt_broker: tuple[str, int], hook: HttpReceiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUREAU_HOOK_SECRET", SECRET)
    with psycopg.connect(db_dsn, autocommit=True) as c:
        add_enterprise(c, "E1", "320116", T0 - timedelta(days=1))  # Liuhe: silent (orange), a red unacked
        add_source(c, "E1", "T1")
        add_alarm(c, "E1:1", "E1", "T1", T0 + timedelta(minutes=30))
        add_enterprise(c, "E2", "320115", T0 - timedelta(days=1))  # Jiangning: silent (orange) only
    url = f"http://127.0.0.1:{hook.port}/duty"
    notify = Notify(
        channels=(Channel(name="duty", kind="webhook", url=url, secret_env="BUREAU_HOOK_SECRET"),),
        recipients=(
            NotifyRecipient(name="liuhe", channel="duty", region=RegionSettings("320116", "county")),
            NotifyRecipient(
                name="jiangning", channel="duty", region=RegionSettings("320115", "county"), colours=("red",)
            ),
        ),
        retry=NotifyRetry(attempts=6, backoff_s=0.0),
        every_s=0.1,
    )
    cfg = replace(bureau_config(db_dsn, mqtt_broker[1]), notify=notify)
    hook.status = 503  # the duty system is down at first: retried, counted
    d = BureauDaemon(cfg, clock=lambda: T0 + timedelta(hours=2))
    await d.start()
    try:
        raised = {c.cause_key: c.warning_id for c in d.tick_warnings() if c.action == "raise"}
        assert set(raised) == {"silent:E1", "silent:E2", "red_unacked:E1:1"}
        await _until(lambda: d.notices.stats["failed"] >= 4, "failed attempts")
        hook.status = 200
        await _until(lambda: d.notices.stats["sent"] == 2, "both of Liuhe's notices")
    finally:
        await d.stop()
    assert d.notices.stats["sent"] == 2  # one accepted notice per warning and recipient, no more
    ok = [r["json"] for r in hook.requests]
    delivered = {p["delivery_id"] for p in ok}
    assert delivered == {
        f"bureau-warning-{raised['red_unacked:E1:1']}-liuhe",
        f"bureau-warning-{raised['silent:E1']}-liuhe",
    }  # Jiangning takes red only: its orange silent warning is not sent there
    assert ok[0]["colour"] == "red" and ok[0]["recipient"] == "liuhe"  # red goes first, every attempt
    assert hook.bad_signatures == 0
    with psycopg.connect(db_dsn) as c:
        rows = c.execute(
            "SELECT recipient, attempts, notified_at IS NOT NULL FROM bureau_warning_notice ORDER BY warning_id"
        ).fetchall()
    assert len(rows) == 2 and all(r[0] == "liuhe" and r[1] >= 2 and r[2] for r in rows)
    with psycopg.connect(db_dsn) as c:
        w = get_warning(c, raised["silent:E1"], None)
    assert w is not None and [
        (n["recipient"], n["notified_at"] == T0 + timedelta(hours=2)) for n in w["notices"]
    ] == [("liuhe", True)]  # the warning shows who was told, and when

    # a restart: the same warnings, nothing sent again
    before = len(hook.requests)
    d2 = BureauDaemon(cfg, clock=lambda: T0 + timedelta(hours=2, minutes=1))
    await d2.start()
    try:
        assert [c.action for c in d2.tick_warnings()] == []
        assert await d2.notices.once() == 0
    finally:
        await d2.stop()
    assert len(hook.requests) == before
    assert d2.notices.stats["sent"] == 0


async def test_email_one_mail_per_raise_across_a_restart(
    db_dsn: str, mqtt_broker: tuple[str, int], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same through a real SMTP server (STARTTLS, login): one mail per raise, none after a restart."""
    smtp = SmtpServer(tmp_path)
    smtp.start()
    monkeypatch.setenv("BUREAU_SMTP_PASSWORD", SmtpServer.PASSWORD)
    with psycopg.connect(db_dsn, autocommit=True) as c:
        add_enterprise(c, "E1", "320116", T0 - timedelta(days=1), name="华兴化工")
    mail = Channel(
        name="mail", kind="email", host="127.0.0.1", port=smtp.port, **{"from": "hazmon@bureau.example.gov.cn"},
        username=SmtpServer.USER, password_env="BUREAU_SMTP_PASSWORD", ca_file=str(smtp.cert),
    )  # fmt: skip
    duty = NotifyRecipient(
        name="liuhe-duty",
        channel="mail",
        region=RegionSettings("320116", "county"),
        address="duty@liuhe.example.cn",
    )
    cfg = replace(bureau_config(db_dsn, mqtt_broker[1]), notify=Notify(channels=(mail,), recipients=(duty,)))
    try:
        for minutes in (0, 1):  # a second run of the bureau on the same database
            d = BureauDaemon(cfg, clock=lambda m=minutes: T0 + timedelta(hours=2, minutes=m))
            await d.start()
            try:
                d.tick_warnings()
                await _until(lambda: len(smtp.box) >= 1, "the mail")
                assert await d.notices.once() == 0  # nothing due any more
            finally:
                await d.stop()
    finally:
        smtp.stop()
    assert len(smtp.box) == 1
    m = smtp.box[0]
    assert m.to == ["duty@liuhe.example.cn"] and "橙色预警" in m.subject and "华兴化工" in m.body


def test_notify_section_errors_name_file_line_and_field(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NO_SUCH_SECRET", raising=False)
    p = tmp_path / "bureau.yaml"
    p.write_text(
        'id: nj\nname: 南京市应急管理局\nregion: {code: "320100", level: city}\n'
        "notify:\n"
        "  channels:\n"
        '    - {name: hook, kind: webhook, url: "ftp://x", secret_env: NO_SUCH_SECRET}\n'
        "  recipients:\n"
        '    - {name: a, channel: hook, region: {code: "320116", level: county}, colours: [purple]}\n',
        encoding="utf-8",
    )
    with pytest.raises(ConfigError) as e:
        load_config(p)
    text = str(e.value)
    assert "bureau.yaml:6: notify.channels[0]" in text and "is not a http:// or https:// URL" in text
    assert "NO_SUCH_SECRET is not set" in text
    assert "bureau.yaml:8: notify.recipients[0].colours[0]: 'purple' is not one of" in text
