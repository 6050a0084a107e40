"""The uplink service: registration once per content, heartbeats, the sender running beside them."""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import replace
from datetime import UTC, datetime

import psycopg

from hazmon.plant import Plant
from hazmon.uplink import UplinkSettings
from hazmon.uplink.service import UplinkService
from testkit.mosquitto import PrivateMosquitto

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _kinds(dsn: str) -> list[tuple[str, bool]]:
    with psycopg.connect(dsn) as conn:
        return [
            (str(k), s is not None)
            for k, s in conn.execute("SELECT kind, sent_at FROM uplink_outbox ORDER BY seq").fetchall()
        ]


def _done(dsn: str, heartbeats: int) -> bool:
    kinds = _kinds(dsn)
    return sum(k == "heartbeat" for k, _ in kinds) >= heartbeats and all(s for _, s in kinds)


async def _run_until(svc: UplinkService, dsn: str, new_heartbeats: int) -> None:
    """Run `svc` until it has added `new_heartbeats` heartbeats of its own and all are sent.

    Counted from what the outbox held before: an earlier run may have left more heartbeats than
    it waited for, and an absolute count would end this run before it enqueued anything.
    """
    heartbeats = sum(k == "heartbeat" for k, _ in _kinds(dsn)) + new_heartbeats
    t = asyncio.create_task(svc.run())
    async with asyncio.timeout(60):
        while not _done(dsn, heartbeats):  # noqa: ASYNC110 - polls the database, no event to wait on
            await asyncio.sleep(0.05)
    t.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await t


async def test_registration_once_per_content_then_heartbeats(
    db_dsn: str, example_plant: Plant, private_mosquitto: PrivateMosquitto
) -> None:
    settings = UplinkSettings(
        enabled=True,
        url=f"mqtt://127.0.0.1:{private_mosquitto.port}",
        heartbeat_interval_s=0.05,
        poll_interval_s=0.02,
        # no bureau subscribes here: the broker's PUBACK 0x10 counts as sent, as it did before
        # require_subscriber (whose holding back is test_sender's)
        require_subscriber=False,
    )
    endpoints = [("dcs", "opcua", True, T0)]
    svc = UplinkService(settings, db_dsn, example_plant, lambda: endpoints, now=lambda: T0)
    await _run_until(svc, db_dsn, 2)
    kinds = _kinds(db_dsn)
    assert kinds[0] == ("registration", True)
    assert [k for k, _ in kinds].count("registration") == 1

    # a restart with the same plant adds no registration; a changed plant file does
    await _run_until(
        UplinkService(settings, db_dsn, example_plant, lambda: endpoints, now=lambda: T0), db_dsn, 2
    )
    assert [k for k, _ in _kinds(db_dsn)].count("registration") == 1
    renamed = replace(example_plant, enterprise=replace(example_plant.enterprise, name="新名称"))
    await _run_until(UplinkService(settings, db_dsn, renamed, lambda: endpoints, now=lambda: T0), db_dsn, 2)
    assert [k for k, _ in _kinds(db_dsn)].count("registration") == 2
