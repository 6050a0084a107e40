"""Reads of the readings table that the daemon needs (Grafana's are SQL in grafana/)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import psycopg

from hazmon.plant.reading import to_us

__all__ = ["newest_reading_us"]


def newest_reading_us(
    conn: psycopg.Connection[tuple[object, ...]], sensor_ids: Sequence[int], not_before: datetime
) -> int | None:
    """The newest stored reading's time (µs) among ``sensor_ids``, looking back to ``not_before``.

    One index probe per sensor on (sensor_id, time); the bound keeps TimescaleDB from opening
    old (compressed) chunks. None when none of them has a reading since ``not_before``.
    """
    if not sensor_ids:
        return None
    row = conn.execute(
        """
        SELECT max(last.time)
        FROM unnest(%s::integer[]) AS s(id)
        CROSS JOIN LATERAL (
            SELECT time FROM readings
            WHERE sensor_id = s.id AND time >= %s
            ORDER BY time DESC LIMIT 1
        ) AS last
        """,
        (list(sensor_ids), not_before),
    ).fetchone()
    if row is None or row[0] is None:
        return None
    t = row[0]
    assert isinstance(t, datetime)
    return to_us(t)
