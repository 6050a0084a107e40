"""Acks ride on queue positions: each runs once everything put up to it is settled, in put order.

Pure logic (no services): the MQTT input files its PUBACK with the readings it
puts; the writer reports how far it has committed or spooled; nothing is
acknowledged before its readings, and nothing out of order.
"""

from __future__ import annotations

import asyncio

from hazmon.collector.queue import ReadingQueue
from hazmon.plant import Reading, ReadingBatch

T0 = 1_795_860_000_000_000


def _rs(n: int, first: int = 0) -> ReadingBatch:
    return ReadingBatch.from_readings([Reading(f"T{i}", T0 + i, float(i)) for i in range(first, first + n)])


def test_acks_run_in_put_order_once_their_readings_are_settled() -> None:
    async def main() -> list[str]:
        q = ReadingQueue(1000, asyncio.get_running_loop())
        acked: list[str] = []
        q.put_threadsafe(_rs(3), lambda: acked.append("a"))  # positions 1..3
        q.put_threadsafe(_rs(2, 3), lambda: acked.append("b"))  # 4..5
        q.put_threadsafe(ReadingBatch.empty(), lambda: acked.append("c"))  # no readings: after b
        q.put_threadsafe(_rs(4, 5), lambda: acked.append("d"))  # 6..9
        assert q.pending_acks == 4
        batch = await q.get_batch(100, 0)
        assert len(batch) == 9 and q.taken == 9
        q.settled(2)
        assert acked == [], "a's readings are not all settled"
        q.settled(3)
        assert acked == ["a"]
        q.settled(8)
        assert acked == ["a", "b", "c"], "c had no readings: it goes right after b, not before"
        q.settled(9)
        assert q.pending_acks == 0
        return acked

    assert asyncio.run(main()) == ["a", "b", "c", "d"]


def test_a_message_without_readings_is_acked_at_once_when_nothing_waits() -> None:
    async def main() -> None:
        q = ReadingQueue(1000, asyncio.get_running_loop())
        acked: list[str] = []
        q.put_threadsafe(ReadingBatch.empty(), lambda: acked.append("x"))
        assert acked == ["x"]
        q.put_threadsafe(_rs(2))  # readings without an ack (an OPC UA input)
        q.put_threadsafe(ReadingBatch.empty(), lambda: acked.append("y"))
        assert acked == ["x"], "y waits for the readings put before it"
        await q.get_batch(10, 0)
        q.settled(q.taken)
        assert acked == ["x", "y"]

    asyncio.run(main())


def test_a_failing_ack_does_not_stop_the_others() -> None:
    async def main() -> list[str]:
        q = ReadingQueue(1000, asyncio.get_running_loop())
        acked: list[str] = []

        def boom() -> None:
            raise RuntimeError("connection gone")

        q.put_threadsafe(_rs(1), boom)
        q.put_threadsafe(_rs(1, 1), lambda: acked.append("after"))
        await q.get_batch(10, 0)
        q.settled(2)
        return acked

    assert asyncio.run(main()) == ["after"]


def test_readings_put_from_the_loop_take_positions_too() -> None:
    async def main() -> None:
        q = ReadingQueue(1000, asyncio.get_running_loop())
        acked: list[str] = []
        await q.put(_rs(5))
        q.put_threadsafe(_rs(1, 5), lambda: acked.append("m"))
        await q.get_batch(3, 0)
        assert q.taken == 3
        q.settled(q.taken)
        assert acked == []
        await q.get_batch(10, 0)
        q.settled(q.taken)
        assert acked == ["m"]

    asyncio.run(main())
