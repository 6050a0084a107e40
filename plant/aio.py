"""Stopping asyncio tasks for certain on Python 3.11.

On Python 3.11, `asyncio.wait_for` returns its awaitable's result instead of raising
`CancelledError` when a cancel arrives in the same loop iteration as that result (CPython
gh-86296; 3.12 rebuilt `wait_for` on `asyncio.timeout`). The cancelled task then carries on as
if nothing had happened, and a ``task.cancel(); await task`` waits forever for a task that loops.
The OPC UA collector's watchdog did exactly that, and a collector stop hung (CI, 2026-11-29).

hazmon's own code uses `asyncio.timeout` (ruff bans `asyncio.wait_for`), but libraries call
`wait_for` inside their requests (asyncua does in every one). `cancel_and_wait` gives a task the
time to clean up after the first cancel and cancels again when it is still running after that.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog

__all__ = ["cancel_and_wait"]

log = structlog.get_logger("hazmon.aio")

_RECANCEL_S = 0.5


async def cancel_and_wait(
    *tasks: asyncio.Task[Any] | None, grace_s: float = 5.0, raise_errors: bool = True
) -> None:
    """Cancel ``tasks`` and return once every one of them has ended.

    A task still running ``grace_s`` after the cancel is taken to have lost it (see the module
    docstring): it is cancelled again every 0.5 s, and a warning names it. Cleanup shorter than
    ``grace_s`` (a disconnect, a last write) is never cut short.

    When the caller itself is cancelled meanwhile, the tasks still end first (none is left running
    behind it) and the caller's `CancelledError` is raised after.

    Args:
        tasks: the tasks (``None`` entries are skipped).
        grace_s: how long a task may take to end after the first cancel.
        raise_errors: raise the exception the first of ``tasks`` (in argument order) ended with,
            as ``await task`` would; otherwise the exceptions are only marked as seen.

    Raises:
        CancelledError: the caller was cancelled while it waited.
        Exception: what a task ended with (``raise_errors``).
    """
    pending = {t for t in tasks if t is not None and not t.done()}
    for t in pending:
        t.cancel()
    loop = asyncio.get_running_loop()
    recancel_at = loop.time() + grace_s
    caller_cancelled = False
    warned: set[str] = set()
    while pending:
        try:
            _done, pending = await asyncio.wait(pending, timeout=max(recancel_at - loop.time(), 0.0))
        except asyncio.CancelledError:
            caller_cancelled = True
            pending = {t for t in pending if not t.done()}
            continue
        if pending and loop.time() >= recancel_at:
            names = sorted(t.get_name() for t in pending)
            if not warned.issuperset(names):
                log.warning(
                    "task still running after its cancel (lost in asyncio.wait_for?); cancelling again",
                    tasks=names,
                    grace_s=grace_s,
                )
                warned.update(names)
            for t in pending:
                t.cancel()
            recancel_at = loop.time() + _RECANCEL_S
    if caller_cancelled:
        raise asyncio.CancelledError
    errors = [t.exception() for t in tasks if t is not None and not t.cancelled()]
    first = next((e for e in errors if e is not None), None)
    if raise_errors and first is not None:
        raise first
