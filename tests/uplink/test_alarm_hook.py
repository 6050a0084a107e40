"""Alarm events enter the uplink outbox in the transaction that records them: both or neither."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from hazmon.alarms import AlarmService
from hazmon.alarms.lifecycle import EventKind
from hazmon.bureau_link import alarm_event_hook
from hazmon.plant import Plant
from hazmon.plant.link import AlarmEvent
from tests.alarms.helpers import T0, assess_all, gas


def _ids(dsn: str) -> tuple[list[int], list[int]]:
    """(alarm_event ids, the event ids of the outbox's alarm_event messages), both in order."""
    with psycopg.connect(dsn) as c:
        events = [int(r[0]) for r in c.execute("SELECT id FROM alarm_event ORDER BY id")]
        sent = [
            int(r[0])
            for r in c.execute(
                "SELECT payload->>'event_id' FROM uplink_outbox WHERE kind = 'alarm_event' ORDER BY seq"
            )
        ]
    return events, sent


async def test_an_event_and_its_message_commit_or_roll_back_together(
    example_plant: Plant, db_dsn: str
) -> None:
    assess_all(example_plant, db_dsn)
    hook = alarm_event_hook(example_plant, [0])
    fail = [True]

    async def flaky(
        conn: psycopg.AsyncConnection[tuple[Any, ...]], alarm: dict[str, Any], event: dict[str, Any]
    ) -> None:
        await hook(conn, alarm, event)  # the message is written on the recorder's connection...
        if fail[0]:
            raise RuntimeError("crash after the enqueue, before the commit")

    svc = AlarmService(example_plant, None, db_dsn, on_event=flaky)
    await svc.start()
    try:
        with pytest.raises(RuntimeError):
            await svc.handle([gas(T0)], T0)
        assert _ids(db_dsn) == ([], [])  # ...and rolled back with the event: neither is kept
        fail[0] = False
        await svc.handle([gas(T0)], T0)  # the same finding again (the daemon retries its batch)
        a = svc.alarms()[0]
        await svc.act(a.id, EventKind.ACKED, "op1", "seen")
        events, sent = _ids(db_dsn)
        assert events and sent == events  # every event once, in order
        with psycopg.connect(db_dsn) as c:
            payloads = [
                r[0]
                for r in c.execute(
                    "SELECT payload FROM uplink_outbox WHERE kind = 'alarm_event' ORDER BY seq"
                )
            ]
        msgs = [AlarmEvent.model_validate(p, strict=False) for p in payloads]
        assert [m.event for m in msgs if m.event in ("raised", "acked")] == ["raised", "acked"]
        assert {m.alarm_id for m in msgs} == {f"{example_plant.enterprise.id}:{a.id}"}
        assert msgs[-1].state == "active_acked" and msgs[-1].actor == "op1" and msgs[-1].comment == "seen"
    finally:
        await svc.close()
