"""Rows for the bureau tables, written directly (the ingest is not needed to test warnings and figures)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

Conn = psycopg.Connection[Any]


def connect(db_dsn: str) -> Iterator[Conn]:
    """Body of each test file's ``conn`` fixture: an autocommit connection to the test database."""
    with psycopg.connect(db_dsn, autocommit=True) as c:
        yield c


def add_enterprise(
    c: Conn,
    eid: str,
    region: str,
    registered: datetime,
    *,
    last_message: datetime | None = None,
    name: str = "",
) -> None:
    c.execute(
        "INSERT INTO bureau_enterprise (enterprise_id, region_code, name, registration, registered_at, updated_at,"
        " last_message_at) VALUES (%s, %s, %s, %s, %s, %s, %s)",
        (eid, region, name or f"企业{eid}", Jsonb({}), registered, registered, last_message),
    )


def add_source(
    c: Conn, eid: str, sid: str, grade: str | None = "three", sensors: tuple[tuple[str, float], ...] = ()
) -> None:
    c.execute(
        "INSERT INTO bureau_hazard_source (enterprise_id, source_id, name, kind, grade, r_value, s_value, info)"
        " VALUES (%s, %s, %s, 'tank_farm', %s, 20, 3, '{}')",
        (eid, sid, f"罐区{sid}", grade),
    )
    for tag, period in sensors:
        c.execute(
            "INSERT INTO bureau_sensor (enterprise_id, tag, source_id, kind, unit, period_s, info)"
            " VALUES (%s, %s, %s, 'level', 'm', %s, '{}')",
            (eid, tag, sid, period),
        )


def add_minutes(c: Conn, eid: str, tag: str, start: datetime, minutes: int, count: int = 1) -> None:
    """One aggregate row per minute from ``start`` (``count`` readings each)."""
    with c.cursor() as cur:
        cur.executemany(
            "INSERT INTO bureau_aggregate (enterprise_id, sensor, bucket, count, min, mean, max, last)"
            " VALUES (%s, %s, %s, %s, 1, 1, 1, 1)",
            [(eid, tag, start + timedelta(minutes=i), count) for i in range(minutes)],
        )


def add_heartbeat(
    c: Conn,
    eid: str,
    endpoint: str,
    at: datetime,
    *,
    connected: bool = True,
    last_reading: datetime | None = None,
) -> None:
    c.execute(
        "INSERT INTO bureau_heartbeat (enterprise_id, endpoint, protocol, connected, last_reading_at, at, received_at)"
        " VALUES (%s, %s, 'opcua', %s, %s, %s, %s)"
        " ON CONFLICT (enterprise_id, endpoint) DO UPDATE SET connected = EXCLUDED.connected,"
        " last_reading_at = EXCLUDED.last_reading_at, at = EXCLUDED.at, received_at = EXCLUDED.received_at",
        (eid, endpoint, connected, last_reading, at, at),
    )
    c.execute(
        "UPDATE bureau_enterprise SET last_message_at = greatest(last_message_at, %s) WHERE enterprise_id = %s",
        (at, eid),
    )


def add_alarm(
    c: Conn,
    alarm_id: str,
    eid: str,
    sid: str,
    raised: datetime,
    *,
    tier: int = 4,
    sensor: str | None = "LT-1",
    acked: datetime | None = None,
) -> None:
    names = {1: "blue", 2: "yellow", 3: "orange", 4: "red"}
    c.execute(
        "INSERT INTO bureau_alarm (alarm_id, enterprise_id, source_id, sensor, condition, level, tier, tier_name,"
        " state, raised_at, updated_at, acked_at) VALUES (%s, %s, %s, %s, 'HH', 'second', %s, %s, 'active', %s, %s, %s)",
        (alarm_id, eid, sid, sensor, tier, names[tier], raised, raised, acked),
    )
