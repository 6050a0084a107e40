"""Fixtures shared by every test: real PostgreSQL and Mosquitto on 127.0.0.1.

Databases are created per test session (and per test where asked) from a
migrated template, and dropped at the end; ports are picked when a fixture runs,
never at import time.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest

from hazmon.plant import Plant, load
from hazmon.runtime import apply_process_settings
from hazmon.store import StorageSettings, connect, migrate, sync_registry
from testkit import PrivateMosquitto, free_port, wait_port

# the port and broker helpers live in testkit/ (bench/ uses them too); tests import them from here
__all__ = ["PrivateMosquitto", "free_port", "wait_port"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_PLANT = ROOT / "examples" / "plant.yaml"
ADMIN_DSN = os.environ.get("HAZMON_TEST_ADMIN_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
MQTT_HOST = "127.0.0.1"
MQTT_PORT = int(os.environ.get("HAZMON_TEST_MQTT_PORT", "1883"))


def dsn_for(dbname: str) -> str:
    base = ADMIN_DSN.rsplit("/", 1)[0]
    return f"{base}/{dbname}"


def _admin() -> psycopg.Connection[tuple[object, ...]]:
    return psycopg.connect(ADMIN_DSN, autocommit=True)


@pytest.fixture(scope="session", autouse=True)
def daemon_process_settings() -> Iterator[None]:
    """The suite runs daemons in-process: with `hazmon run`'s interpreter settings (hazmon.runtime)."""
    before = apply_process_settings()
    yield
    sys.setswitchinterval(before)


@pytest.fixture(scope="session")
def example_plant() -> Plant:
    return load(EXAMPLE_PLANT)


@pytest.fixture(scope="session")
def template_db(example_plant: Plant) -> Iterator[str]:
    """Name of a database migrated (plain mode) with the example plant loaded."""
    name = f"hazmon_tpl_{uuid.uuid4().hex[:8]}"
    with _admin() as a:
        a.execute(f'CREATE DATABASE "{name}"')
    try:
        with connect(dsn_for(name)) as c:
            migrate(c, StorageSettings(mode="plain"))
            c.autocommit = False
            sync_registry(c, example_plant)
            c.commit()
        yield name
    finally:
        with _admin() as a:
            a.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def make_db(template_db: str) -> Iterator[Callable[[], str]]:
    """Factory: a fresh migrated database with the example plant, as a DSN."""
    made: list[str] = []

    def make() -> str:
        name = f"hazmon_t_{uuid.uuid4().hex[:10]}"
        with _admin() as a:
            for attempt in range(20):
                try:
                    a.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
                    break
                except psycopg.errors.ObjectInUse:  # template busy: another test is copying it
                    time.sleep(0.1 * (attempt + 1))
        made.append(name)
        return dsn_for(name)

    yield make
    with _admin() as a:
        for name in made:
            a.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def db_dsn(make_db: Callable[[], str]) -> str:
    """A fresh migrated database with the example plant loaded, for this test only."""
    return make_db()


@pytest.fixture
def empty_db() -> Iterator[str]:
    """A fresh empty database (not migrated), for this test only."""
    name = f"hazmon_e_{uuid.uuid4().hex[:10]}"
    with _admin() as a:
        a.execute(f'CREATE DATABASE "{name}"')
    yield dsn_for(name)
    with _admin() as a:
        a.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def mqtt_broker() -> tuple[str, int]:
    """The machine's Mosquitto on 127.0.0.1 (make test starts it when stopped)."""
    wait_port(MQTT_PORT, 5.0)
    return (MQTT_HOST, MQTT_PORT)


@pytest.fixture
def topic_prefix() -> str:
    """A topic prefix no other test uses, so tests can share the broker."""
    return f"hazmon-test/{uuid.uuid4().hex[:10]}"


@pytest.fixture
def private_mosquitto() -> Iterator[PrivateMosquitto]:
    with tempfile.TemporaryDirectory(prefix="hazmon-mosq-") as d:
        m = PrivateMosquitto(Path(d))
        m.start()
        try:
            yield m
        finally:
            m.stop()
