"""Connections and the error classification every writer uses."""

from __future__ import annotations

import os

import psycopg
from psycopg import errors as pge

__all__ = ["DEFAULT_DSN", "connect", "connect_async", "dsn_from_env", "is_temporary"]

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/hazmon"


def dsn_from_env() -> str:
    """The DSN in HAZMON_DSN, else the local default."""
    return os.environ.get("HAZMON_DSN", DEFAULT_DSN)


def connect(dsn: str | None = None, *, autocommit: bool = False) -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(dsn or dsn_from_env(), autocommit=autocommit, application_name="hazmon")


async def connect_async(
    dsn: str | None = None, *, autocommit: bool = False
) -> psycopg.AsyncConnection[tuple[object, ...]]:
    return await psycopg.AsyncConnection.connect(
        dsn or dsn_from_env(), autocommit=autocommit, application_name="hazmon"
    )


_TEMPORARY = (
    pge.AdminShutdown,
    pge.CrashShutdown,
    pge.CannotConnectNow,
    pge.ConnectionException,
    pge.DeadlockDetected,
    pge.SerializationFailure,
    pge.LockNotAvailable,
    pge.QueryCanceled,
    pge.TooManyConnections,
    pge.InsufficientResources,
    pge.DiskFull,
    pge.OutOfMemory,
)


def is_temporary(exc: BaseException) -> bool:
    """True when retrying the same write later can succeed (the one place that decides).

    Connection loss, server shutdown or start-up, deadlocks, lock timeouts and
    resource exhaustion are temporary: the batch is kept (spooled) and retried.
    Anything else (bad data, schema mismatch, constraint violations) is permanent:
    retrying would fail the same way, so the batch goes to the dead letters.
    """
    if isinstance(exc, _TEMPORARY):
        return True
    if isinstance(exc, psycopg.OperationalError) and not isinstance(exc, psycopg.errors.ProgramLimitExceeded):
        return True
    return isinstance(exc, OSError | TimeoutError)
