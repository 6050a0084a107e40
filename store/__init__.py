"""The ground's database: migrations, the COPY writer, the registry and queries.

PostgreSQL with TimescaleDB when the extension is there (hypertable, compression,
retention, continuous aggregates), plain PostgreSQL with the same tables and
queries otherwise.
"""

from hazmon.store.assessments import add_assessment, latest_assessments, list_assessments
from hazmon.store.db import DEFAULT_DSN, connect, connect_async, dsn_from_env, is_temporary
from hazmon.store.migrate import MigrationResult, StorageSettings, ensure_policies, migrate, storage_mode
from hazmon.store.queries import newest_reading_us
from hazmon.store.registry import sensor_ids, sync_registry
from hazmon.store.rollups import (
    DirtyRanges,
    JobHealth,
    JobState,
    job_health,
    refresh_dirty,
    refresh_overdue,
    refresh_rollups,
)
from hazmon.store.writer import (
    ReadingColumns,
    UnknownTagError,
    dirty_ranges_sql,
    encode_copy_binary,
    write_readings,
    write_readings_async,
)

__all__ = [
    "DEFAULT_DSN",
    "DirtyRanges",
    "JobHealth",
    "JobState",
    "MigrationResult",
    "ReadingColumns",
    "StorageSettings",
    "UnknownTagError",
    "add_assessment",
    "connect",
    "connect_async",
    "dirty_ranges_sql",
    "dsn_from_env",
    "encode_copy_binary",
    "ensure_policies",
    "is_temporary",
    "job_health",
    "latest_assessments",
    "list_assessments",
    "migrate",
    "newest_reading_us",
    "refresh_dirty",
    "refresh_overdue",
    "refresh_rollups",
    "sensor_ids",
    "storage_mode",
    "sync_registry",
    "write_readings",
    "write_readings_async",
]
