"""The daemon's slow loops: database upkeep, supervision findings, assessment overrides.

Each runs in a task of its own (`hazmon.daemon.Daemon.start` starts them) and survives
the database being away: a failed round is logged and counted, and the next one sees
what this one missed.

- `Upkeep`: every minute the rollups are refreshed over the ranges committed since the
  last round (recorded in ``readings_dirty`` by the writers); on TimescaleDB the jobs'
  health is read (`job_metrics`, the ``db_jobs`` readiness check); once a day, in plain
  mode, retention.
- `SupervisionFindings`: hidden dangers and duties -> findings for the alarms.
- `AssessmentReload`: changed assessment limit overrides -> the rules.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence

import structlog

from hazmon.alarms.tiers import load_limit_overrides
from hazmon.clock import now_us
from hazmon.collector import Metrics
from hazmon.config import DatabaseSettings
from hazmon.plant import Finding, Limits, Plant, from_us
from hazmon.store import JobHealth, JobState, connect, refresh_dirty, refresh_overdue, storage_mode
from hazmon.store import job_health as read_job_health
from hazmon.supervision.repository import mark_told, sweep_once

__all__ = ["AssessmentReload", "SupervisionFindings", "Upkeep", "job_metrics"]

log = structlog.get_logger("hazmon.daemon")  # the daemon's lines, as before these loops had their module


class Upkeep:
    """Keep the rollups fresh in both storage modes, and do plain mode's retention.

    Every minute the rollups (readings_1m / readings_1h) are refreshed over exactly the
    source-time ranges committed since the last round (live data, spool replays, OPC UA
    backfills), as the writers recorded them in ``readings_dirty`` with the readings:
    `hazmon.store.refresh_dirty`, so a range committed just before a crash is refreshed by
    the next daemon. On TimescaleDB the jobs' health is read
    (metrics, readiness) and a refresh policy that has not run on time is done here. Once
    a day, in plain mode, rows past their retention are deleted.

    Args:
        db: the database settings (DSN, retention).
        metrics: where a failed round is counted.
        mode: the storage mode read at start ("": the database was down, read at the first round).
    """

    def __init__(self, db: DatabaseSettings, metrics: Metrics, mode: str) -> None:
        self.db = db
        self.metrics = metrics
        self.mode = mode
        self.rollup_refreshes = 0
        self.job_health: JobHealth | None = None  # TimescaleDB jobs as last read
        self.refreshed_overdue: tuple[str, ...] = ()  # what the last round refreshed for a late policy

    async def run(self) -> None:
        last_retention = 0.0
        while True:
            await asyncio.sleep(60.0)
            try:
                await self.once(retention=time.monotonic() - last_retention > 86_400)
                last_retention = (
                    time.monotonic() if time.monotonic() - last_retention > 86_400 else last_retention
                )
            except Exception as e:  # the database may be down: the ranges stay recorded for the next round
                self.metrics.inc("hazmon_pipeline_errors_total", 1, {"stage": "upkeep"})
                log.warning("rollup refresh / retention failed; retried in a minute", error=str(e))

    async def once(self, retention: bool = False) -> None:
        """Refresh the rollups over the committed ranges, check the jobs (and apply retention when asked)."""
        db = self.db
        keep = db.storage()

        def run() -> None:
            with connect(db.resolved_dsn(), autocommit=True) as c:
                if not self.mode:  # the database was down when the daemon started
                    self.mode = storage_mode(c) or ""
                mode = self.mode
                if refresh_dirty(c, mode=mode, keep_days=keep.retention_days):
                    self.rollup_refreshes += 1
                if mode == "timescaledb":
                    health = self.job_health = read_job_health(c)
                    self.refreshed_overdue = tuple(refresh_overdue(c, health))
                    for view in self.refreshed_overdue:
                        log.warning("refresh policy not on time; the daemon refreshed the rollup", view=view)
                elif retention:
                    row = c.execute(
                        "SELECT hazmon_apply_retention(%s, %s, %s)",
                        (keep.retention_days, keep.rollup_1m_days, keep.rollup_1h_days),
                    ).fetchone()
                    log.info("retention applied", deleted=row[0] if row else 0)

        await asyncio.to_thread(run)

    def jobs_ready(self) -> tuple[bool, dict[str, object]]:
        """Readiness of the TimescaleDB jobs.

        ``detail`` is one line: every job's problem (`JobHealth.summary`). A late or failing
        refresh policy is shown but is no reason for "not ready" (the daemon refreshes the
        rollups itself, `once`; ``refreshed_by_daemon`` names what its last round refreshed);
        a failing, late or paused retention or compression is.
        """
        h = self.job_health
        if h is None:
            return True, {"detail": "not read yet (plain PostgreSQL, or before the first upkeep round)"}
        blocking = [j.problem for j in h.jobs if j.problem is not None and j.kind != "refresh"]
        detail: dict[str, object] = {"detail": h.summary()}
        if self.refreshed_overdue:
            detail["refreshed_by_daemon"] = list(self.refreshed_overdue)
        return not blocking, detail


def job_metrics(m: Metrics, health: Callable[[], JobHealth | None]) -> None:
    """Per TimescaleDB job (label job="refresh:readings_1m", ...): last success, failures, late."""

    def per(fn: Callable[[JobState], float]) -> Callable[[], dict[tuple[str, ...], float]]:
        def read() -> dict[tuple[str, ...], float]:
            h = health()
            return {} if h is None else {(j.name,): fn(j) for j in h.jobs}

        return read

    m.gauge_fn(
        "hazmon_db_job_last_success_timestamp_seconds",
        "Unix time of the job's last successful run (0: never), by TimescaleDB job",
        per(lambda j: j.last_success.timestamp() if j.last_success else 0.0),
        ("job",),
    )
    m.gauge_fn(
        "hazmon_db_job_failures",
        "Failed runs of the job (TimescaleDB job_stats)",
        per(lambda j: float(j.total_failures)),
        ("job",),
    )
    m.gauge_fn(
        "hazmon_db_job_problem",
        "1 when the job is failing, late or paused",
        per(lambda j: float(j.problem is not None)),
        ("job",),
    )


class SupervisionFindings:
    """Hidden dangers and duties -> alarms: overdue rectifications, missed checks, missing commitments.

    `hazmon.supervision` computes only the changes since what the alarms were last told
    (one finding per record and deadline); ``found`` hands them to the alarms and returns
    once the alarm service has recorded them — only then is the told state stored, so a
    crash in between repeats them at the next start (the alarm service keeps one alarm per
    cause) instead of losing them.
    """

    def __init__(
        self,
        dsn: str,
        plant: Plant,
        metrics: Metrics,
        found: Callable[[Sequence[Finding]], Awaitable[None]],
        every_s: float,
    ) -> None:
        self.dsn = dsn
        self.plant = plant
        self.metrics = metrics
        self.found = found
        self.every_s = every_s

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                sweep = await asyncio.to_thread(sweep_once, self.dsn, self.plant, from_us(now_us()))
                if sweep.findings:
                    await self.found(sweep.findings)  # recorded by the alarm service
                await asyncio.to_thread(mark_told, self.dsn, self.plant, sweep)
            except Exception as e:  # the database may be down: the next round sees the same changes
                self.metrics.inc("hazmon_pipeline_errors_total", 1, {"stage": "supervision"})
                log.warning("supervision findings not computed; retried in a minute", error=str(e))


class AssessmentReload:
    """Re-read assessment limit overrides; changed ones go to the rules without a restart.

    The alarm service re-reads grades on its own; this is the rules' half (the limits
    agreed in an assessment take precedence over the plant file).

    Args:
        dsn: the database.
        plant: the plant whose overrides are read.
        every_s: how often.
        current: the overrides the rules were built with.
        apply: gives changed overrides to the rules (None: no rules, nothing applied).
    """

    def __init__(
        self,
        dsn: str,
        plant: Plant,
        every_s: float,
        current: dict[str, Limits],
        apply: Callable[[dict[str, Limits]], None] | None,
    ) -> None:
        self.dsn = dsn
        self.plant = plant
        self.every_s = every_s
        self.current = current
        self.apply = apply
        self.reloads = 0  # times changed overrides were given to the rules

    def read(self) -> dict[str, Limits]:
        with connect(self.dsn) as conn:
            return load_limit_overrides(conn, self.plant)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self.every_s)
            try:
                got = await asyncio.to_thread(self.read)
            except Exception as e:  # the database may be down: keep the limits we have
                log.warning("assessment overrides not re-read; keeping the current ones", error=str(e))
                continue
            if got != self.current and self.apply is not None:
                changed = sorted(
                    t for t in got.keys() | self.current.keys() if got.get(t) != self.current.get(t)
                )
                self.current = got
                self.apply(got)
                self.reloads += 1
                log.info("assessment limit overrides changed; rules use them now", tags=changed)
