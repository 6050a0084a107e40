"""cancel_and_wait: a task that lost its cancel in asyncio.wait_for still ends (pure asyncio)."""

from __future__ import annotations

import asyncio
import sys

import pytest

from hazmon.plant.aio import cancel_and_wait


async def _race_lost_cancel(task_of: asyncio.Future[asyncio.Task[None]], ticks: list[int]) -> None:
    """Loops like a watchdog; its first wait ends in exactly the race CPython 3.11 loses."""
    task = await task_of
    fut: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    def race() -> None:  # the result and the cancel in one loop iteration
        fut.set_result(1)
        task.cancel()

    asyncio.get_running_loop().call_soon(race)
    await asyncio.wait_for(fut, 10)  # noqa: TID251 - the bug under test
    while True:
        ticks.append(1)
        await asyncio.sleep(0.01)


async def _start_racer() -> tuple[asyncio.Task[None], list[int]]:
    ticks: list[int] = []
    holder: asyncio.Future[asyncio.Task[None]] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(_race_lost_cancel(holder, ticks), name="racer")
    holder.set_result(task)
    return task, ticks


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="wait_for keeps cancels from 3.12 on")
async def test_the_lost_cancel_is_real_on_311() -> None:
    task, ticks = await _start_racer()
    await asyncio.sleep(0.2)
    # cancelled once, and still running: `task.cancel(); await task` would wait forever
    assert not task.done() and task.cancelling() == 1 and ticks
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_task_that_lost_its_cancel_is_cancelled_again_and_ends() -> None:
    task, _ticks = await _start_racer()
    await asyncio.sleep(0.1)
    async with asyncio.timeout(10):
        await cancel_and_wait(task, grace_s=0.3)
    assert task.cancelled()


async def _with_cleanup(cleanup_s: float, ended: list[str]) -> asyncio.Task[None]:
    """A running task whose cleanup (a disconnect, a last write) takes ``cleanup_s``."""

    async def worker() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(cleanup_s)
            ended.append("cleaned up")

    t = asyncio.create_task(worker())
    await asyncio.sleep(0)
    return t


async def test_cleanup_inside_the_grace_is_not_cut_short() -> None:
    ended: list[str] = []
    t = await _with_cleanup(0.3, ended)
    await cancel_and_wait(t, grace_s=2.0)
    assert ended == ["cleaned up"] and t.cancelled()


async def test_a_cancelled_caller_waits_for_the_tasks_then_is_cancelled() -> None:
    ended: list[str] = []
    w = await _with_cleanup(0.2, ended)
    caller = asyncio.create_task(cancel_and_wait(w))
    await asyncio.sleep(0.05)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    assert ended == ["cleaned up"] and w.done()  # nothing left running behind the caller


async def test_the_first_error_is_raised_unless_asked_not_to() -> None:
    async def fails() -> None:
        raise ValueError("broken")

    for raise_errors in (True, False):
        t = asyncio.create_task(fails())
        await asyncio.sleep(0)
        if raise_errors:
            with pytest.raises(ValueError, match="broken"):
                await cancel_and_wait(None, t)
        else:
            await cancel_and_wait(t, raise_errors=False)
