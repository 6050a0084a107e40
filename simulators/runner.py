"""Pace a stream of simulated (or recorded) readings in wall-clock time and hand them to the servers.

The stream is any iterable of ``(now_us, readings)`` steps in simulated time
(`Simulation.steps` or a replayed recording). At ``speed`` N, the readings of
simulated time t are handed over when N·(wall time elapsed) reaches t − start.
When the servers cannot keep up, steps are handed over together (never
dropped), so a run may take longer than duration/speed but loses nothing.

Endpoint outages (`Simulation.down_endpoints`) stop the endpoint's server or
connection and start it again when the outage ends.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

import structlog

from hazmon.plant.reading import Reading

__all__ = ["Sink", "Step", "serve"]

log = structlog.get_logger("hazmon.simulators")

Step = tuple[int, list[Reading]]

# Running flat out, hand the event loop to the servers' tasks (OPC UA sessions, MQTT waits) at
# least this often rather than after every step: a loop turn is an epoll call.
_YIELD_EVERY_S = 0.002


class Sink(Protocol):
    """Where readings go: one OPC UA server or one MQTT connection (one endpoint)."""

    name: str

    async def start(self) -> None: ...

    async def stop(self) -> None: ...

    async def send(self, readings: Sequence[Reading]) -> None: ...


async def serve(  # noqa: PLR0915 - the pacing loop reads best in one piece
    steps: Iterable[Step],
    sinks: Sequence[Sink],
    route: dict[str, str],
    *,
    start_us: int,
    speed: float = 1.0,
    down: Callable[[], frozenset[str]] | None = None,
    progress: Callable[[int], None] | None = None,
    stop: asyncio.Event | None = None,
    max_batch: int = 20_000,
) -> dict[str, int]:
    """Hand each step's readings to the sink of their endpoint, paced by ``speed``.

    Args:
        steps: ``(now_us, readings)`` in simulated time.
        sinks: one per endpoint; they must be started already.
        route: tag -> endpoint name.
        start_us: simulated time that corresponds to the start of the run.
        speed: simulated seconds per wall second; ``inf`` runs as fast as the sinks allow.
        down: endpoints that must be away now (a scenario outage).
        progress: called with the simulated time after each hand-over.
        stop: set it to end the run early.
        max_batch: when behind schedule, hand over at least every this many readings.

    Returns:
        Counters: steps, readings handed over, readings without an endpoint, outages.
    """
    loop = asyncio.get_running_loop()
    wall0 = loop.time()
    by_name = {s.name: s for s in sinks}
    pending: dict[str, list[Reading]] = {s.name: [] for s in sinks}
    n_pending = 0
    is_down: set[str] = set()
    counters = {"steps": 0, "readings": 0, "unrouted": 0, "outages": 0}

    async def flush() -> None:
        nonlocal n_pending
        if down is not None:
            now_down = down()
            for name in sorted(now_down - is_down):
                if name in by_name:
                    log.warning("endpoint outage begins", endpoint=name)
                    await by_name[name].stop()
                    counters["outages"] += 1
                is_down.add(name)
            for name in sorted(is_down - now_down):
                if name in by_name:
                    log.warning("endpoint outage ends", endpoint=name)
                    await by_name[name].start()
                is_down.discard(name)
        for name, batch in pending.items():
            if batch:
                await by_name[name].send(batch)
                counters["readings"] += len(batch)
                pending[name] = []
        n_pending = 0

    last_now = start_us
    yielded = wall0
    for now_us, readings in steps:
        counters["steps"] += 1
        last_now = now_us
        for r in readings:
            ep = route.get(r.tag)
            if ep is None or ep not in pending:
                counters["unrouted"] += 1
                continue
            pending[ep].append(r)
        n_pending += len(readings)
        ahead = -1.0 if math.isinf(speed) else wall0 + (now_us - start_us) / 1e6 / speed - loop.time()
        if ahead > 0:
            await asyncio.sleep(ahead)
        if ahead > 0 or n_pending >= max_batch or math.isinf(speed) or counters["steps"] % 64 == 0:
            await flush()
            if progress is not None:
                progress(now_us)
            if (math.isinf(speed) or ahead <= 0) and loop.time() - yielded >= _YIELD_EVERY_S:
                await asyncio.sleep(0)  # let the servers' own tasks run (a loop turn costs a system call)
                yielded = loop.time()
        if stop is not None and stop.is_set():
            break
    await flush()
    if progress is not None:
        progress(last_now)
    return counters
