"""`hazmon db migrate` with a HAZMON_DSN naming a database that does not exist yet (real PostgreSQL)."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.conftest import ADMIN_DSN, ROOT, dsn_for, free_port


def _migrate(dsn: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hazmon", "db", "migrate", "--mode", "plain"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "HAZMON_DSN": dsn},
    )


def _drop(name: str) -> None:
    with psycopg.connect(ADMIN_DSN, autocommit=True) as a:
        a.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_migrate_creates_a_missing_database() -> None:
    name = f"hazmon_fresh_{uuid.uuid4().hex[:8]}"
    try:
        r = _migrate(dsn_for(name))
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[0] == f"created database {name}"
        with psycopg.connect(dsn_for(name)) as c:
            assert c.execute("SELECT count(*) FROM schema_migrations").fetchone() is not None
        again = _migrate(dsn_for(name))
        assert again.returncode == 0 and "created database" not in again.stdout
    finally:
        _drop(name)


def test_migrate_says_in_one_line_what_to_run_when_the_user_may_not_create_it() -> None:
    role = f"hazmon_nocreate_{uuid.uuid4().hex[:8]}"
    name = f"hazmon_fresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_DSN, autocommit=True) as a:
        a.execute(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
    try:
        r = _migrate(make_conninfo(ADMIN_DSN, user=role, dbname=name))
        assert r.returncode == 1
        assert "Traceback" not in r.stderr
        (line,) = r.stderr.strip().splitlines()
        assert line.startswith(f"hazmon db migrate: database '{name}' does not exist on ")
        p = conninfo_to_dict(ADMIN_DSN)
        assert line.endswith(f"createdb -h {p.get('host')} -p {p.get('port') or 5432} -O {role} {name}")
    finally:
        _drop(name)
        with psycopg.connect(ADMIN_DSN, autocommit=True) as a:
            a.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_unreachable_server_is_one_line() -> None:
    port = free_port()  # nothing listens there
    r = _migrate(f"postgresql://postgres@127.0.0.1:{port}/hazmon")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith(f"hazmon db migrate: cannot connect to PostgreSQL at 127.0.0.1:{port}")
