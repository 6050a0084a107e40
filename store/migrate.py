"""Versioned migrations, recorded in the database, safe to run on every start.

Files in ``hazmon/store/migrations`` are named ``NNNN_name.sql``; a migration that
differs between storage modes comes as ``NNNN_name.timescale.sql`` and
``NNNN_name.plain.sql``. Number ranges by owner keep components apart: store
0001-0099, collector 0100-0199, rules 0200-0299, alarms 0300-0399, grafana
0400-0499, supervision 0500-0599, uplink 0600-0699, weather 0700-0799, bureau
0800-0899 (the bureau's tables live in the common set: a bureau runs in its own
database and an enterprise database keeps them empty).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from importlib import resources
from typing import Any

import psycopg
import structlog

from hazmon.plant.standards import RETENTION_DEFAULT_DAYS, RETENTION_MIN_DAYS

__all__ = [
    "TIMESCALEDB_MIN",
    "TIMESCALEDB_TESTED",
    "MigrationResult",
    "StorageSettings",
    "ensure_policies",
    "migrate",
    "migrations",
    "storage_mode",
    "timescaledb_supported",
    "timescaledb_update_pending",
]

log = structlog.get_logger("hazmon.store")

_LOCK_KEY = 0x6A7A_6D6F  # pg_advisory_lock key: one migrator at a time
# TimescaleDB versions hazmon supports: from 2.18.1 (a continuous aggregate's compressed
# chunks can be refreshed, so late data older than the compression age still lands, per the
# TimescaleDB docs on compression of continuous aggregates) to the newest tested, 2.28.
TIMESCALEDB_MIN = (2, 18, 1)
TIMESCALEDB_TESTED = (2, 28)
ROLLUP_1M_DEFAULT_DAYS = 730  # two years of 1-minute rollups
ROLLUP_1H_DEFAULT_DAYS = 3650  # ten years of hourly rollups
# Refresh policies (TimescaleDB): a safety net behind the daemon, which refreshes what it writes
# every minute (hazmon.store.rollups). Real-time aggregation shows the buckets newer than the last
# refresh. start_offset stays under the shortest compress_after (1 day), as TimescaleDB requires.
# readings_1d_counts (0405, on readings_1h): a refresh window must cover two buckets, so 3 days;
# its compression waits at least as long (`_compress_after_days`).
_REFRESH = {
    "readings_1m": (timedelta(hours=2), timedelta(minutes=1), timedelta(minutes=1)),
    "readings_1h": (timedelta(hours=12), timedelta(hours=1), timedelta(minutes=30)),
    "readings_1d_counts": (timedelta(days=3), timedelta(hours=1), timedelta(hours=1)),
}


def _compress_after_days(view: str, configured: int) -> int:
    """A rollup's compression age: the configured one, but never inside its refresh window.

    Older TimescaleDB releases refused a compression policy starting inside the refresh
    policy's window (the rule noted at `_REFRESH`; the 2.23 test build accepts it), and a
    compressed chunk inside it would be decompressed by every refresh. readings_1m /
    readings_1h refresh under a day back, readings_1d_counts 3 days.
    """
    start = _REFRESH[view][0]
    return max(configured, -(-int(start.total_seconds()) // 86_400))


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """How readings are kept.

    Attributes:
        retention_days: readings older than this are dropped; at least 30 (Order 40).
        compress_after_days: TimescaleDB compresses chunks (of readings and of both rollups)
            older than this.
        mode: "auto" (TimescaleDB when the extension can be created), "plain" or
            "timescaledb" (fail when it is not available).
        retention_1m_days: readings_1m is kept this long (0: the default, the longer of
            730 days and ``retention_days``); never shorter than the raw readings.
        retention_1h_days: readings_1h is kept this long (0: the default, the longer of
            3650 days and the 1-minute rollup's); never shorter than readings_1m.
    """

    retention_days: int = RETENTION_DEFAULT_DAYS
    compress_after_days: int = 7
    mode: str = "auto"
    retention_1m_days: int = 0
    retention_1h_days: int = 0

    def __post_init__(self) -> None:
        if self.retention_days < RETENTION_MIN_DAYS:
            raise ValueError(
                f"retention_days: {self.retention_days} is under the {RETENTION_MIN_DAYS} days "
                "that electronic records must be kept (Order 40 of 2011)"
            )
        if self.compress_after_days < 1:
            raise ValueError(f"compress_after_days: must be >= 1, got {self.compress_after_days}")
        if self.mode not in ("auto", "plain", "timescaledb"):
            raise ValueError(f"mode: '{self.mode}' is not one of auto, plain, timescaledb")
        if self.retention_1m_days and self.retention_1m_days < self.retention_days:
            raise ValueError(
                f"retention_1m_days: {self.retention_1m_days} is shorter than the raw readings' "
                f"retention_days {self.retention_days}"
            )
        if self.retention_1h_days and self.retention_1h_days < self.rollup_1m_days:
            raise ValueError(
                f"retention_1h_days: {self.retention_1h_days} is shorter than the 1-minute rollup's "
                f"{self.rollup_1m_days} days"
            )

    @property
    def rollup_1m_days(self) -> int:
        """Days readings_1m is kept (the configured value, or its default)."""
        return self.retention_1m_days or max(ROLLUP_1M_DEFAULT_DAYS, self.retention_days)

    @property
    def rollup_1h_days(self) -> int:
        """Days readings_1h is kept (the configured value, or its default)."""
        return self.retention_1h_days or max(ROLLUP_1H_DEFAULT_DAYS, self.rollup_1m_days)


@dataclass(frozen=True, slots=True)
class MigrationResult:
    mode: str  # "timescaledb" | "plain"
    applied: tuple[str, ...]  # versions applied by this run
    timescaledb_version: str | None


@dataclass(frozen=True, slots=True)
class _Migration:
    version: str
    variants: dict[str, str]  # "" | "timescale" | "plain" -> SQL text


def migrations() -> list[_Migration]:
    """All migrations shipped with hazmon, in order."""
    found: dict[str, dict[str, str]] = {}
    for f in resources.files("hazmon.store").joinpath("migrations").iterdir():
        name = f.name
        if not name.endswith(".sql"):
            continue
        stem = name[: -len(".sql")]
        variant = ""
        for v in ("timescale", "plain"):
            if stem.endswith("." + v):
                stem, variant = stem[: -len(v) - 1], v
        found.setdefault(stem, {})[variant] = f.read_text(encoding="utf-8")
    return [_Migration(v, found[v]) for v in sorted(found)]


def _checksum(sql: str) -> str:
    return hashlib.sha256(sql.encode()).hexdigest()[:16]


def storage_mode(conn: psycopg.Connection[tuple[object, ...]]) -> str | None:
    """The mode this database was migrated in, or None before the first migration."""
    row = conn.execute("SELECT to_regclass('hazmon_meta') IS NOT NULL").fetchone()
    if not row or not row[0]:
        return None
    r = conn.execute("SELECT value FROM hazmon_meta WHERE key = 'storage_mode'").fetchone()
    return str(r[0]) if r else None


def _detect(conn: psycopg.Connection[tuple[object, ...]], wanted: str) -> tuple[str, str | None, str]:
    """Returns (mode, timescaledb version, reason)."""
    if wanted == "plain":
        return "plain", None, "plain mode requested"
    avail = conn.execute(
        "SELECT default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if avail is None:
        if wanted == "timescaledb":
            raise RuntimeError("storage mode 'timescaledb' requested but the extension is not installed")
        return "plain", None, "the timescaledb extension is not installed on this server"
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error as e:
        if wanted == "timescaledb":
            raise RuntimeError(f"cannot create extension timescaledb: {e}") from e
        return "plain", None, f"CREATE EXTENSION timescaledb failed: {str(e).strip()}"
    ver = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'").fetchone()
    return "timescaledb", str(ver[0]) if ver else None, "extension present"


def timescaledb_supported(version: str | None) -> bool:
    """Whether a TimescaleDB ``extversion`` ("2.28.3", "2.23.0-dev") is in the supported range."""
    if not version:
        return False
    try:
        v = tuple(int(x) for x in version.split("-")[0].split("."))
    except ValueError:
        return False
    return v >= TIMESCALEDB_MIN and v[:2] <= TIMESCALEDB_TESTED


def _interval_text(td: timedelta) -> str:
    return f"{int(td.total_seconds())} seconds"


def _policy_jobs(conn: psycopg.Connection[tuple[object, ...]]) -> dict[tuple[str, str], tuple[int, Any, Any]]:
    """(relation, proc_name) -> (job id, config, schedule_interval) of the existing policies."""
    rows = conn.execute(
        """SELECT coalesce(ca.view_name::text, j.hypertable_name::text), j.proc_name::text, j.job_id,
                  j.config, j.schedule_interval
           FROM timescaledb_information.jobs j
           LEFT JOIN timescaledb_information.continuous_aggregates ca
                  ON ca.materialization_hypertable_schema = j.hypertable_schema
                 AND ca.materialization_hypertable_name = j.hypertable_name
           WHERE j.proc_name IN ('policy_compression', 'policy_retention',
                                 'policy_refresh_continuous_aggregate')"""
    ).fetchall()
    return {(str(r[0]), str(r[1])): (int(str(r[2])), r[3], r[4]) for r in rows}


def _same_intervals(conn: psycopg.Connection[tuple[object, ...]], config: Any, want: dict[str, str]) -> bool:
    cfg = dict(config or {})
    for k, v in want.items():
        row = conn.execute(
            "SELECT %s::interval IS NOT DISTINCT FROM %s::interval", (cfg.get(k), v)
        ).fetchone()
        if not row or not row[0]:
            return False
    return True


def ensure_policies(conn: psycopg.Connection[tuple[object, ...]], s: StorageSettings) -> list[str]:
    """Create each TimescaleDB policy once; change one (alter_job) only when its settings differ.

    A start thus keeps the jobs, their ids and their run history.

    Policies: compression and retention of readings, and of each rollup (retention
    `StorageSettings.rollup_1m_days` / `rollup_1h_days`, the latter for readings_1d_counts
    too), and the rollups' refresh policies.
    Returns what was created or changed ("created retention readings_1m", ...).
    """

    def days(n: int) -> str:
        return f"{n} days"

    want: list[tuple[str, str, dict[str, str], timedelta | None]] = [
        ("readings", "policy_compression", {"compress_after": days(s.compress_after_days)}, None),
        ("readings", "policy_retention", {"drop_after": days(s.retention_days)}, None),
    ]
    for view, (start, end, period) in _REFRESH.items():
        want.append(
            (
                view,
                "policy_refresh_continuous_aggregate",
                {"start_offset": _interval_text(start), "end_offset": _interval_text(end)},
                period,
            )
        )
    for view, keep in (
        ("readings_1m", s.rollup_1m_days),
        ("readings_1h", s.rollup_1h_days),
        ("readings_1d_counts", s.rollup_1h_days),  # derived from readings_1h: kept as long
    ):
        compress = days(_compress_after_days(view, s.compress_after_days))
        want.append((view, "policy_compression", {"compress_after": compress}, None))
        want.append((view, "policy_retention", {"drop_after": days(keep)}, None))
    have = _policy_jobs(conn)
    changed: list[str] = []
    for rel, proc, cfg, every in want:
        what = proc.removeprefix("policy_").replace("refresh_continuous_aggregate", "refresh")
        cur = have.get((rel, proc))
        if cur is None:
            with conn.transaction():
                if proc == "policy_compression":
                    conn.execute(
                        "SELECT add_compression_policy(%s, compress_after => %s::interval)",
                        (rel, cfg["compress_after"]),
                    )
                elif proc == "policy_retention":
                    conn.execute(
                        "SELECT add_retention_policy(%s, drop_after => %s::interval)",
                        (rel, cfg["drop_after"]),
                    )
                else:
                    conn.execute(
                        "SELECT add_continuous_aggregate_policy(%s, start_offset => %s::interval, "
                        "end_offset => %s::interval, schedule_interval => %s::interval)",
                        (rel, cfg["start_offset"], cfg["end_offset"], every),
                    )
            changed.append(f"created {what} {rel}")
            continue
        job_id, config, schedule = cur
        if _same_intervals(conn, config, cfg) and (every is None or schedule == every):
            continue
        new_cfg = {**dict(config or {}), **cfg}
        with conn.transaction():
            if every is None:
                conn.execute("SELECT alter_job(%s, config => %s::jsonb)", (job_id, json.dumps(new_cfg)))
            else:
                conn.execute(
                    "SELECT alter_job(%s, config => %s::jsonb, schedule_interval => %s::interval)",
                    (job_id, json.dumps(new_cfg), every),
                )
        changed.append(f"changed {what} {rel} (job {job_id})")
    return changed


_CREATED_BY = {  # continuous aggregate -> the migration that (re-)creates it WITH NO DATA
    "readings_1m": "0003_rollups",
    "readings_1h": "0003_rollups",
    "readings_1d_counts": "0405_health_day_counts_timescale",
}


def _materialize_all(conn: psycopg.Connection[tuple[object, ...]], applied: list[str]) -> None:
    """Refresh the continuous aggregates (re-)created by this run over all their data, once.

    In order, each after the one it reads (readings_1d_counts reads readings_1h as it
    stands). A bucket below the refresh watermark that was never materialized would vanish from
    the real-time view.
    """
    for view, unit in (("readings_1m", "minute"), ("readings_1h", "hour"), ("readings_1d_counts", "day")):
        if _CREATED_BY[view] in applied:
            conn.execute(
                f"CALL refresh_continuous_aggregate('{view}', NULL, date_trunc('{unit}', now(), 'UTC'))"
            )


def timescaledb_update_pending(installed: str | None, available: str | None) -> str | None:
    """A warning when the database's TimescaleDB (``installed``) is not the server's (``available``).

    After a package upgrade each database keeps the old extension version until
    ``ALTER EXTENSION timescaledb UPDATE``; its background jobs then run the new library against
    the old SQL definitions and can fail where the same job run by hand succeeds (portal and
    snapshot errors: timescale/timescaledb#3496, solved in #3780 by that statement). None when
    they match or either is unknown.
    """
    if not installed or not available or installed == available:
        return None
    return (
        f"TimescaleDB {installed} is installed in this database but the server has {available}: "
        "run ALTER EXTENSION timescaledb UPDATE as the first statement of a new session (psql -X); "
        "until then background jobs can fail (store/README.md, job failures)"
    )


def _timescale_after(
    conn: psycopg.Connection[tuple[object, ...]], s: StorageSettings, tsv: str | None, applied: list[str]
) -> list[str]:
    """After the migrations in TimescaleDB mode: version check, first materialization, policies."""
    if not timescaledb_supported(tsv):
        log.warning(
            f"TimescaleDB {tsv} is outside the supported {'.'.join(map(str, TIMESCALEDB_MIN))} to "
            f"{'.'.join(map(str, TIMESCALEDB_TESTED))}.x (store/README.md)"
        )
    row = conn.execute(
        "SELECT installed_version, default_version FROM pg_available_extensions WHERE name = 'timescaledb'"
    ).fetchone()
    if row and (pending := timescaledb_update_pending(*(None if v is None else str(v) for v in row))):
        log.warning(pending)
    if set(_CREATED_BY.values()) & set(applied):
        log.info("materializing the (re-)created rollups over all readings (once)")
        _materialize_all(conn, applied)
    return ensure_policies(conn, s)


def migrate(
    conn: psycopg.Connection[tuple[object, ...]], settings: StorageSettings | None = None
) -> MigrationResult:
    """Apply every migration not yet applied, and the storage policies.

    Idempotent and safe to run on every start; concurrent runs wait for each other.
    Logs exactly one line saying which storage mode is active.
    """
    s = settings or StorageSettings()
    conn.autocommit = True
    conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
    try:
        conn.execute(
            """CREATE TABLE IF NOT EXISTS schema_migrations (
                   version    text PRIMARY KEY,
                   variant    text NOT NULL,
                   checksum   text NOT NULL,
                   applied_at timestamptz NOT NULL DEFAULT now())"""
        )
        existing = storage_mode(conn)
        if existing is not None:
            mode = existing
            tsv = None
            if mode == "timescaledb":
                r = conn.execute("SELECT extversion FROM pg_extension WHERE extname='timescaledb'").fetchone()
                tsv = str(r[0]) if r else None
            reason = "as first migrated"
            if s.mode not in ("auto", mode):
                raise RuntimeError(f"database was migrated in {mode} mode; cannot switch to {s.mode}")
        else:
            mode, tsv, reason = _detect(conn, s.mode)
        done = {str(r[0]) for r in conn.execute("SELECT version FROM schema_migrations").fetchall()}
        applied: list[str] = []
        for m in migrations():
            if m.version in done:
                continue
            variant = (
                "timescale"
                if mode == "timescaledb" and "timescale" in m.variants
                else ("plain" if "plain" in m.variants else "")
            )
            sql = m.variants.get(variant)
            if sql is None:
                raise RuntimeError(f"migration {m.version}: no variant for {mode} mode")
            with conn.transaction():
                conn.execute(sql.encode())
                conn.execute(
                    "INSERT INTO schema_migrations (version, variant, checksum) VALUES (%s, %s, %s)",
                    (m.version, variant or "common", _checksum(sql)),
                )
            applied.append(m.version)
        with conn.transaction():
            for k, v in (
                ("storage_mode", mode),
                ("retention_days", str(s.retention_days)),
                ("compress_after_days", str(s.compress_after_days)),
                ("retention_1m_days", str(s.rollup_1m_days)),
                ("retention_1h_days", str(s.rollup_1h_days)),
            ):
                conn.execute(
                    "INSERT INTO hazmon_meta (key, value) VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    (k, v),
                )
        if mode == "timescaledb":
            changed = _timescale_after(conn, s, tsv, applied)
            log.info(
                f"storage mode: TimescaleDB {tsv} (hypertable readings, compression after "
                f"{s.compress_after_days} d, retention {s.retention_days} d, continuous aggregates "
                f"readings_1m / readings_1h (and readings_1d_counts) kept {s.rollup_1m_days} d / "
                f"{s.rollup_1h_days} d)",
                mode=mode,
                reason=reason,
                applied=applied,
                policies=changed,
            )
        else:
            log.info(
                f"storage mode: plain PostgreSQL ({reason}); same tables, rollups readings_1m / "
                f"readings_1h refreshed by the daemon, retention {s.retention_days} d (rollups "
                f"{s.rollup_1m_days} d / {s.rollup_1h_days} d) applied by the daemon",
                mode=mode,
                applied=applied,
            )
        return MigrationResult(mode, tuple(applied), tsv)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
