"""The daemon's readiness checks (``/readyz``): what is degraded, by name.

Each check answers ``(ok, detail)``; `hazmon.http.HttpServer.add_check` keeps the list,
so another part adds its own with one line. The daemon's own:

- ``database``: the batch writer's connection is up, or (before its first write, or
  while it waits for its next retry) PostgreSQL answers a ``SELECT 1`` within 2 s
  (probed at most every 5 s). Down: readings go to the spool.
- ``alarms``: the alarm service has connected and loaded its state. While the
  database is away at start it waits and retries every second.
- ``source:<name>``: each OPC UA endpoint and MQTT broker is connected.
- ``spool``: the spool is under `SPOOL_READY_MAX_FILL` of its ``max_mb`` (past it, a
  longer outage will fill it and readings will be refused).
- ``pipeline``: no pipeline task has stopped (the liveness answer's condition too).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg

from hazmon.collector import BatchWriter, Spool
from hazmon.failures import Failures
from hazmon.http import CheckResult, HttpServer

__all__ = ["SPOOL_READY_MAX_FILL", "DatabaseProbe", "SourceStates", "add_daemon_checks"]

SPOOL_READY_MAX_FILL = 0.8  # share of the spool's max_mb past which the daemon is not ready
_PROBE_TIMEOUT_S = 2
_PROBE_EVERY_S = 5.0


@dataclass
class SourceStates:
    """Connected or not, per source (what the collectors report through ``on_state``)."""

    states: dict[str, tuple[bool, str]] = field(default_factory=dict)

    def set(self, source: str, connected: bool, reason: str) -> None:
        self.states[source] = (connected, reason)

    def check(self, source: str) -> Callable[[], CheckResult]:
        def run() -> CheckResult:
            connected, reason = self.states.get(source, (False, "not connected yet"))
            return connected, {"connected": connected, "reason": reason}

        return run


class DatabaseProbe:
    """``SELECT 1`` on a fresh connection, at most every 5 s (the result is kept in between)."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self._at = 0.0
        self._last: tuple[bool, str] = (False, "not probed yet")

    async def __call__(self) -> tuple[bool, str]:
        if time.monotonic() - self._at < _PROBE_EVERY_S:
            return self._last
        try:
            async with await psycopg.AsyncConnection.connect(
                self.dsn, connect_timeout=_PROBE_TIMEOUT_S, autocommit=True
            ) as c:
                await c.execute("SELECT 1")
            self._last = (True, "reachable")
        except (psycopg.Error, OSError) as e:
            self._last = (False, f"{type(e).__name__}: {e}".strip())
        self._at = time.monotonic()
        return self._last


def add_daemon_checks(
    http: HttpServer,
    *,
    writer: BatchWriter,
    spool: Spool,
    probe: DatabaseProbe,
    sources: SourceStates,
    source_names: list[str],
    alarms_started: Callable[[], bool] | None,
    alarms_start: Failures,
    stopped_tasks: Callable[[], list[str]],
) -> None:
    """Add the daemon's own checks (see the module's docstring) to ``http``."""

    async def database() -> CheckResult:
        if writer.db_up:
            return True, {"writer_connected": True, "spool_readings": spool.rows}
        ok, why = await probe()
        return ok, {"writer_connected": False, "reachable": ok, "detail": why, "spool_readings": spool.rows}

    http.add_check("database", database)
    if alarms_started is not None:
        started = alarms_started

        def alarms() -> CheckResult:
            ok = started()
            detail: dict[str, object] = {"started": ok}
            if not ok:
                detail["waiting_for"] = "the database (retried every second)"
                detail.update(alarms_start.state())
            return ok, detail

        http.add_check("alarms", alarms)
    for name in source_names:
        http.add_check(f"source:{name}", sources.check(name))

    def spool_fill() -> CheckResult:
        fill = spool.bytes / spool.max_bytes if spool.max_bytes else 0.0
        return fill < SPOOL_READY_MAX_FILL, {
            "readings": spool.rows,
            "bytes": spool.bytes,
            "max_bytes": spool.max_bytes,
            "fill": round(fill, 4),
            "not_ready_from": SPOOL_READY_MAX_FILL,
        }

    http.add_check("spool", spool_fill)

    def pipeline() -> CheckResult:
        stopped = stopped_tasks()
        return not stopped, {"stopped_tasks": stopped}

    http.add_check("pipeline", pipeline)
