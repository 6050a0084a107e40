"""Create the database a DSN names when it is missing, or say in one line what to run.

``hazmon db migrate`` (and so ``make demo``) calls `ensure_database` first: a fresh
``HAZMON_DSN=postgresql://…/plant_b`` then works without a manual ``createdb``. The
check goes through the server's maintenance database (``postgres``, else
``template1``), so it does not depend on the language of the server's messages.
"""

from __future__ import annotations

from collections.abc import Mapping

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

__all__ = ["DatabaseUnavailableError", "ensure_database"]


class DatabaseUnavailableError(Exception):
    """The database cannot be reached or created; the message says why and what to run."""


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return (text[0] if text else type(e).__name__).removeprefix("connection failed: ")


def _where(params: Mapping[str, object]) -> str:
    host = params.get("host") or "localhost"
    port = params.get("port") or 5432
    return f"{host}:{port}"


def ensure_database(dsn: str) -> bool:
    """Connect to ``dsn``; when its database does not exist, create it.

    Returns:
        True when the database was created, False when it was already there.

    Raises:
        DatabaseUnavailableError: the server cannot be reached, or the database is missing and
            this user may not create it (the message names the command to run).
    """
    try:
        with psycopg.connect(dsn, connect_timeout=10):
            return False
    except psycopg.OperationalError as first:
        error = first
    params = conninfo_to_dict(dsn)
    name = str(params.get("dbname") or params.get("user") or "")
    user = str(params.get("user") or "")
    admin: psycopg.Connection[tuple[object, ...]] | None = None
    for maintenance in ("postgres", "template1"):
        if maintenance == name:
            continue
        try:
            admin = psycopg.connect(
                make_conninfo(dsn, dbname=maintenance), autocommit=True, connect_timeout=10
            )
            break
        except psycopg.OperationalError:
            continue
    if admin is None:  # the server itself (or this user's login) is the problem
        raise DatabaseUnavailableError(
            f"cannot connect to PostgreSQL at {_where(params)}: {_first_line(error)} "
            "(start it with `make services`, or set HAZMON_DSN)"
        )
    with admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists is not None:
            raise DatabaseUnavailableError(f"cannot connect to database {name!r}: {_first_line(error)}")
        try:
            admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        except psycopg.Error as e:
            owner = f" -O {user}" if user else ""
            host, port = params.get("host") or "localhost", params.get("port") or 5432
            raise DatabaseUnavailableError(
                f"database {name!r} does not exist on {_where(params)} and cannot be created here "
                f"({_first_line(e)}): as a PostgreSQL superuser run  "
                f"createdb -h {host} -p {port}{owner} {name}"
            ) from e
    return True
