"""Versioned migrations, recorded in the database, safe to run on every start.

Files in ``hazmon/store/migrations`` are named ``NNNN_name.sql``; a migration that
differs between storage modes comes as ``NNNN_name.timescale.sql`` and
``NNNN_name.plain.sql``. Number ranges by owner keep components apart: store
0001-0099, collector 0100-0199, rules 0200-0299, alarms 0300-0399, grafana
0400-0499.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

import psycopg
import structlog

from hazmon.plant.standards import RETENTION_DEFAULT_DAYS, RETENTION_MIN_DAYS

__all__ = ["MigrationResult", "StorageSettings", "migrate", "migrations", "storage_mode"]

log = structlog.get_logger("hazmon.store")

_LOCK_KEY = 0x6A7A_6D6F  # pg_advisory_lock key: one migrator at a time


@dataclass(frozen=True, slots=True)
class StorageSettings:
    """How readings are kept.

    Attributes:
        retention_days: readings older than this are dropped; at least 30 (Order 40).
        compress_after_days: TimescaleDB compresses chunks older than this.
        mode: "auto" (TimescaleDB when the extension can be created), "plain" or
            "timescaledb" (fail when it is not available).
    """

    retention_days: int = RETENTION_DEFAULT_DAYS
    compress_after_days: int = 7
    mode: str = "auto"

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


def _apply_policies(conn: psycopg.Connection[tuple[object, ...]], s: StorageSettings) -> None:
    with conn.transaction():
        conn.execute("SELECT remove_compression_policy('readings', if_exists => true)")
        conn.execute(
            "SELECT add_compression_policy('readings', compress_after => make_interval(days => %s))",
            (s.compress_after_days,),
        )
        conn.execute("SELECT remove_retention_policy('readings', if_exists => true)")
        conn.execute(
            "SELECT add_retention_policy('readings', drop_after => make_interval(days => %s))",
            (s.retention_days,),
        )


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
            ):
                conn.execute(
                    "INSERT INTO hazmon_meta (key, value) VALUES (%s, %s) "
                    "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
                    (k, v),
                )
        if mode == "timescaledb":
            _apply_policies(conn, s)
            log.info(
                f"storage mode: TimescaleDB {tsv} (hypertable readings, compression after "
                f"{s.compress_after_days} d, retention {s.retention_days} d, continuous aggregates "
                "readings_1m / readings_1h)",
                mode=mode,
                reason=reason,
                applied=applied,
            )
        else:
            log.info(
                f"storage mode: plain PostgreSQL ({reason}); same tables, rollups readings_1m / "
                f"readings_1h refreshed by the daemon, retention {s.retention_days} d applied by the daemon",
                mode=mode,
                applied=applied,
            )
        return MigrationResult(mode, tuple(applied), tsv)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
