"""The running marker: a run that ended without `Daemon.stop` (crash, kill -9, power cut) is not silent.

While the daemon runs, ``<data_dir>/running.json`` holds a snapshot, rewritten every
second, of how many readings are in memory (queue and writer buffer). A clean stop
removes it; a marker found at start means the previous run ended without a stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path

import structlog

from hazmon.clock import now_us
from hazmon.collector import Metrics, SystemEvent
from hazmon.plant import from_us

__all__ = ["RunningMarker"]

log = structlog.get_logger("hazmon.daemon")  # the daemon's lines, as before the marker had its module


class RunningMarker:
    """``<data_dir>/running.json``: written while running, removed by a clean stop.

    Args:
        data_dir: the daemon's data directory.
        in_memory: readings held in memory now (queue and writer buffer), for the snapshot.
    """

    def __init__(self, data_dir: Path, in_memory: Callable[[], int]) -> None:
        self.path = data_dir / "running.json"
        self.in_memory = in_memory

    def previous_run(self, metrics: Metrics, system_event: SystemEvent, ack_durable: bool) -> None:
        """A marker left by the previous run means it ended without `stop` (crash, kill -9, power cut).

        MQTT QoS 1 messages acknowledged on commit (``ack: durable``) come again from
        the broker. Readings no broker keeps for us (OPC UA, QoS 0, ``ack: received``)
        that were in memory (queue, writer buffer) were lost; the marker's last
        snapshot says how many readings were in memory at most. That loss cannot be
        undone here, but it is not silent: an error log line, the
        ``hazmon_previous_run_unclean`` gauge, and a system alarm.
        """
        m = self.path
        if not m.exists():
            metrics.set("hazmon_previous_run_unclean", 0)
            return
        try:
            snap = json.loads(m.read_text())
            held, at = int(snap["in_memory"]), str(snap["at"])
        except (OSError, ValueError, KeyError, TypeError):
            held, at = -1, "unknown"
        what = f"up to {held} readings held in memory" if held >= 0 else "an unknown number of readings"
        if ack_durable:
            fate = (
                "then may not be in the database: MQTT QoS 1 messages among them were not acknowledged "
                "and the broker delivers them again; OPC UA and QoS 0 readings among them are lost"
            )
        else:
            fate = "then were acknowledged to the broker (ack: received) but may not be in the database"
        msg = f"the previous daemon run ended without a clean stop (last seen {at}); {what} {fate}"
        log.error("previous run ended uncleanly", marker=str(m), in_memory=held, last_seen=at)
        metrics.set("hazmon_previous_run_unclean", 1)
        system_event("unclean_shutdown", True, msg)
        system_event("unclean_shutdown", False, "recorded: " + msg)  # an event, not a standing state

    def write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(
            json.dumps(
                {"pid": os.getpid(), "at": from_us(now_us()).isoformat(), "in_memory": self.in_memory()}
            )
        )
        tmp.replace(self.path)

    async def run(self) -> None:
        """Keep the snapshot (readings in memory) current, every second."""
        while True:
            try:
                await asyncio.to_thread(self.write)
            except OSError as e:
                log.warning("running marker not written", error=str(e))
            await asyncio.sleep(1.0)

    def remove(self) -> None:
        """A clean stop: nothing was left in memory."""
        with contextlib.suppress(OSError):
            self.path.unlink(missing_ok=True)
