"""The rollups (readings_1m, readings_1h, readings_1d_counts): refreshing what was written, and job health.

Whatever writes readings (the batch writer, a spool replay after a database outage, an OPC UA
history backfill: `hazmon.store.write_readings`) records the source-time ranges it commits in
the table ``readings_dirty``, in the transaction that writes them (0406_readings_dirty.sql).
Every minute the daemon calls `refresh_dirty`, which consumes those rows and hands the
coalesced ranges to `refresh_rollups`: a crash after a commit loses nothing the rollups need.
`refresh_rollups` refreshes the rollups over exactly those ranges, bucket by whole bucket, in
either storage mode:

- plain PostgreSQL: ``hazmon_refresh_rollups(from, to)`` (store/migrations/0003_rollups.plain.sql)
  recomputes every bucket the range touches from all of that bucket's readings;
- TimescaleDB: ``CALL refresh_continuous_aggregate(view, start, end)`` over the range widened to
  whole buckets (TimescaleDB refreshes only the buckets that fit inside the window) and ending
  at the last complete bucket: newer rows are shown by real-time aggregation, and a bucket
  materialized before it is complete would hide the rows that arrive after it. The daily
  counts (readings_1d_counts, a continuous aggregate on readings_1h) come last: a range
  touching a finished day refreshes that day from the hours just refreshed. (In plain mode
  triggers on readings_1h keep that table.)

A range older than the raw data's retention is never refreshed (it would replace the rollup's
history with the few rows written there).

`job_health` reads TimescaleDB's job statistics (timescaledb_information.jobs / job_stats /
job_errors) into a small typed answer for metrics and the readiness check; `refresh_overdue`
does a refresh policy's work when that policy has not run on time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import numpy.typing as npt
import psycopg

from hazmon.plant.reading import from_us, to_us

__all__ = [
    "DAY_US",
    "HOUR_US",
    "MINUTE_US",
    "DirtyRanges",
    "JobHealth",
    "JobRow",
    "JobState",
    "assess_jobs",
    "bucket_window",
    "job_health",
    "refresh_dirty",
    "refresh_overdue",
    "refresh_rollups",
]

MINUTE_US = 60_000_000
HOUR_US = 3_600_000_000
DAY_US = 86_400_000_000
# TimescaleDB, in this order: readings_1d_counts (0405) is refreshed from readings_1h as it
# stands, so after readings_1h has taken in late data (and its refresh invalidates those days).
_ROLLUPS = (("readings_1m", MINUTE_US), ("readings_1h", HOUR_US), ("readings_1d_counts", DAY_US))


class DirtyRanges:
    """Source-time ranges (µs, inclusive) committed since the last `take`, thread-safe.

    Ranges closer than ``merge_gap_us`` merge (they share buckets anyway); beyond
    ``max_ranges`` the two closest merge, so memory stays bounded whatever is written.
    """

    def __init__(self, merge_gap_us: int = 5 * MINUTE_US, max_ranges: int = 32) -> None:
        self.merge_gap_us = merge_gap_us
        self.max_ranges = max_ranges
        self._ranges: list[tuple[int, int]] = []
        self._lock = threading.Lock()

    def add(self, lo_us: int, hi_us: int) -> None:
        with self._lock:
            self._ranges = _merge([*self._ranges, (min(lo_us, hi_us), max(lo_us, hi_us))], self.merge_gap_us)
            while len(self._ranges) > self.max_ranges:
                r = self._ranges
                k = min(range(len(r) - 1), key=lambda i: r[i + 1][0] - r[i][1])
                r[k : k + 2] = [(r[k][0], r[k + 1][1])]

    def add_times(self, ts_us: npt.NDArray[np.int64]) -> None:
        """Record the source times of one written batch, split where they are far apart.

        A batch can hold live readings and a backfill of hours ago side by side: each
        cluster becomes its own range, so the refresh covers what was written, not the gap.
        """
        if ts_us.size == 0:
            return
        lo, hi = int(ts_us.min()), int(ts_us.max())
        if hi - lo <= self.merge_gap_us:  # the usual live batch: no sort
            self.add(lo, hi)
            return
        t = np.sort(ts_us)
        cut = np.flatnonzero(np.diff(t) > self.merge_gap_us)
        starts = np.concatenate(([0], cut + 1))
        ends = np.concatenate((cut, [t.size - 1]))
        for a, b in zip(starts.tolist(), ends.tolist(), strict=True):
            self.add(int(t[a]), int(t[b]))

    def take(self) -> list[tuple[int, int]]:
        with self._lock:
            out, self._ranges = self._ranges, []
        return out

    def __bool__(self) -> bool:
        with self._lock:
            return bool(self._ranges)


def _merge(ranges: Iterable[tuple[int, int]], gap: int) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for lo, hi in sorted(ranges):
        if out and lo - out[-1][1] <= gap:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def bucket_window(
    lo_us: int, hi_us: int, bucket_us: int, *, now_us: int, floor_us: int | None, complete_only: bool
) -> tuple[int, int] | None:
    """The whole buckets covering readings at [lo_us, hi_us] (µs), as [start, end), or None.

    ``floor_us``: nothing before the first whole bucket at or after it (the raw retention's
    edge). ``complete_only``: end at the last bucket that is over by ``now_us``.
    """
    start = (lo_us // bucket_us) * bucket_us
    end = (hi_us // bucket_us + 1) * bucket_us
    if floor_us is not None:
        start = max(start, -((-floor_us) // bucket_us) * bucket_us)
    if complete_only:
        end = min(end, (now_us // bucket_us) * bucket_us)
    return (start, end) if start < end else None


def refresh_rollups(
    conn: psycopg.Connection[Any],
    ranges: Sequence[tuple[int, int]],
    *,
    mode: str,
    keep_days: int | None = None,
    now: datetime | None = None,
) -> int:
    """Refresh the rollups over the source-time ranges written (µs, inclusive).

    ``conn`` must be in autocommit (TimescaleDB refuses a refresh inside a transaction).
    ``keep_days``: the raw data's retention; older parts of a range are left alone.
    Returns the number of refresh calls made.
    """
    now_us = to_us(now or datetime.now(UTC))
    floor_us = None if keep_days is None else now_us - keep_days * 86_400_000_000
    calls = 0
    if mode != "timescaledb":
        for lo, hi in ranges:
            w = bucket_window(lo, hi, HOUR_US, now_us=now_us, floor_us=floor_us, complete_only=False)
            if w is not None:
                conn.execute(
                    "SELECT hazmon_refresh_rollups(%s, %s)",
                    (from_us(max(lo, w[0])), from_us(min(hi + 1, w[1]))),
                )
                calls += 1
        return calls
    for view, bucket in _ROLLUPS:
        wins = [
            w
            for lo, hi in ranges
            if (w := bucket_window(lo, hi, bucket, now_us=now_us, floor_us=floor_us, complete_only=True))
        ]
        for start, end in _merge(wins, 0):
            conn.execute(
                f"CALL refresh_continuous_aggregate('{view}', %s::timestamptz, %s::timestamptz)",
                (from_us(start), from_us(end)),
            )
            calls += 1
    return calls


def refresh_dirty(
    conn: psycopg.Connection[Any],
    *,
    mode: str,
    keep_days: int | None = None,
    now: datetime | None = None,
) -> int:
    """Refresh the rollups over the ranges recorded in ``readings_dirty``, consuming the rows.

    Plain mode: the rows are deleted in the transaction that refreshes the rollups (a failed
    or interrupted refresh leaves them for the next round). TimescaleDB refuses a refresh
    inside a transaction: the rows read are deleted after their refresh succeeded (a crash in
    between refreshes them again, which changes nothing). Rows committed meanwhile stay for
    the next round either way. ``conn`` must be in autocommit. Returns the refresh calls made.
    """
    d = DirtyRanges()
    if mode != "timescaledb":
        with conn.transaction():
            for lo, hi in conn.execute("DELETE FROM readings_dirty RETURNING lo, hi").fetchall():
                d.add(to_us(lo), to_us(hi))
            return refresh_rollups(conn, d.take(), mode=mode, keep_days=keep_days, now=now)
    rows = conn.execute("SELECT id, lo, hi FROM readings_dirty").fetchall()
    if not rows:
        return 0
    for _, lo, hi in rows:
        d.add(to_us(lo), to_us(hi))
    calls = refresh_rollups(conn, d.take(), mode=mode, keep_days=keep_days, now=now)
    conn.execute("DELETE FROM readings_dirty WHERE id = ANY(%s)", ([int(r[0]) for r in rows],))
    return calls


# -- job health -------------------------------------------------------------------------------

_KIND = {
    "policy_refresh_continuous_aggregate": "refresh",
    "policy_compression": "compression",
    "policy_retention": "retention",
}


@dataclass(frozen=True, slots=True)
class JobRow:
    """One TimescaleDB job as read from timescaledb_information.jobs joined with job_stats."""

    job_id: int
    proc_name: str
    relation: str | None  # the hypertable or continuous aggregate it works on
    schedule_interval: timedelta
    scheduled: bool
    config: dict[str, Any]
    last_successful_finish: datetime | None
    last_run_status: str | None  # "Success" | "Failed" | None (never ran)
    total_runs: int
    total_failures: int
    next_start: datetime | None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class JobState:
    """A job as judged by `assess_jobs`. ``name`` is stable: ``refresh:readings_1m``."""

    name: str
    job_id: int
    kind: str
    relation: str | None
    last_success: datetime | None
    total_failures: int
    failing: bool  # its last run failed
    late: bool  # no success within two schedule intervals (or never run though due)
    problem: str | None  # one line for the readiness answer, None when fine


@dataclass(frozen=True, slots=True)
class JobHealth:
    """What `job_health` returns: ``ok`` is False when any job is failing, late or paused."""

    mode: str
    checked_at: datetime
    jobs: tuple[JobState, ...]

    @property
    def ok(self) -> bool:
        return all(j.problem is None for j in self.jobs)

    @property
    def problems(self) -> tuple[str, ...]:
        return tuple(j.problem for j in self.jobs if j.problem is not None)

    def summary(self) -> str:
        """One line for the readiness answer."""
        if self.mode != "timescaledb":
            return "plain PostgreSQL: the daemon refreshes the rollups and applies retention"
        if self.ok:
            return f"{len(self.jobs)} TimescaleDB jobs on time"
        return "; ".join(self.problems)


def assess_jobs(rows: Iterable[JobRow], now: datetime, grace: timedelta = timedelta(minutes=1)) -> JobHealth:
    """Judge each job: failing (its last run failed), late, or paused. Pure."""
    out: list[JobState] = []
    for r in rows:
        kind = _KIND.get(r.proc_name, r.proc_name)
        name = f"{kind}:{r.relation}" if r.relation else f"{kind}:{r.job_id}"
        failing = r.last_run_status == "Failed"
        if r.last_successful_finish is not None:
            late = now - r.last_successful_finish > 2 * r.schedule_interval + grace
        else:  # never succeeded: late once it was due (or when nothing says when it runs)
            late = r.next_start is None or now - r.next_start > r.schedule_interval + grace
        problem = None
        if not r.scheduled:
            problem = f"{name}: paused"
        elif late and r.total_runs == 0:
            due = f"due since {r.next_start.isoformat()}" if r.next_start else "no next start scheduled"
            problem = f"{name}: never ran ({due})"
        elif failing or late:
            since = r.last_successful_finish.isoformat() if r.last_successful_finish else "never"
            what = "failing" if failing else "late"
            err = f", last error: {r.last_error}" if r.last_error else ""
            problem = (
                f"{name}: {what} (last success {since}, "
                f"{r.total_failures} of {r.total_runs} runs failed{err})"
            )
        out.append(
            JobState(
                name,
                r.job_id,
                kind,
                r.relation,
                r.last_successful_finish,
                r.total_failures,
                failing,
                late,
                problem,
            )
        )
    return JobHealth("timescaledb", now, tuple(out))


_JOBS_SQL = """
SELECT j.job_id, j.proc_name::text, coalesce(ca.view_name::text, j.hypertable_name::text),
       j.schedule_interval, j.scheduled, j.config, s.last_successful_finish, s.last_run_status::text,
       coalesce(s.total_runs, 0), coalesce(s.total_failures, 0), coalesce(s.next_start, j.next_start)
FROM timescaledb_information.jobs j
LEFT JOIN timescaledb_information.job_stats s ON s.job_id = j.job_id
LEFT JOIN timescaledb_information.continuous_aggregates ca
       ON ca.materialization_hypertable_schema = j.hypertable_schema
      AND ca.materialization_hypertable_name = j.hypertable_name
ORDER BY j.job_id
"""
_ERRORS_SQL = """
SELECT DISTINCT ON (job_id) job_id, err_message FROM timescaledb_information.job_errors
ORDER BY job_id, finish_time DESC
"""


def job_health(conn: psycopg.Connection[Any], now: datetime | None = None) -> JobHealth:
    """The TimescaleDB jobs (refresh, compression, retention...) and whether each runs on time.

    In plain mode (no timescaledb extension) there are no jobs: the daemon does their work.
    ``now`` defaults to the database server's clock (the one job_stats is written with).
    """
    ext = conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    row = conn.execute("SELECT now()").fetchone()
    at = now or (row[0] if row and isinstance(row[0], datetime) else datetime.now(UTC))
    if ext is None:
        return JobHealth("plain", at, ())
    errors: dict[int, str] = {}
    if conn.execute("SELECT to_regclass('timescaledb_information.job_errors')").fetchone() not in (
        None,
        (None,),
    ):
        try:
            errors = {int(r[0]): str(r[1]) for r in conn.execute(_ERRORS_SQL).fetchall()}
        except psycopg.Error:  # not readable by this role: the counts still tell
            if not conn.autocommit:
                conn.rollback()
    rows = [
        JobRow(
            job_id=int(r[0]),
            proc_name=str(r[1]),
            relation=None if r[2] is None else str(r[2]),
            schedule_interval=r[3],
            scheduled=bool(r[4]),
            config=dict(r[5] or {}),
            last_successful_finish=r[6],
            last_run_status=r[7],
            total_runs=int(r[8]),
            total_failures=int(r[9]),
            next_start=r[10],
            last_error=errors.get(int(r[0])),
        )
        for r in conn.execute(_JOBS_SQL).fetchall()
    ]
    return assess_jobs(rows, at)


def refresh_overdue(conn: psycopg.Connection[Any], health: JobHealth) -> list[str]:
    """Do the work of every refresh policy that is failing or late: refresh its window now.

    The window is the policy's own (now - start_offset to now - end_offset, from its config).
    ``conn`` must be in autocommit. Returns the continuous aggregates refreshed.
    """
    done: list[str] = []
    for j in health.jobs:
        if j.kind != "refresh" or j.relation is None or not (j.failing or j.late):
            continue
        cfg = conn.execute(
            "SELECT config FROM timescaledb_information.jobs WHERE job_id = %s", (j.job_id,)
        ).fetchone()
        if cfg is None:
            continue
        c = dict(cfg[0] or {})
        win = conn.execute(
            "SELECT now() - %s::interval, now() - %s::interval", (c.get("start_offset"), c.get("end_offset"))
        ).fetchone()
        assert win is not None
        conn.execute(
            "CALL refresh_continuous_aggregate(%s::regclass, %s::timestamptz, %s::timestamptz)",
            (j.relation, win[0], win[1]),
        )
        done.append(j.relation)
    return done
