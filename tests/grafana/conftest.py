"""A database with the example plant's history for the Grafana panel tests.

Built once per module from the session's migrated template: 30 days of readings
(every 10 minutes, then the last 2 hours simulated by `hazmon.simulators.Simulation`
at each sensor's own period) ending now, with the situations the panels must show (a sensor above H, one rising
towards HH, a stale detector, bad quality, an out-of-range transmitter),
assessments (overdue, filing overdue, none) and alarms (active, acknowledged,
escalated to the bureau, standing, chattering, a flood). Rollups refreshed.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import numpy as np
import psycopg
import pytest

from hazmon.plant import Plant
from hazmon.plant.limits import effective_limits
from hazmon.plant.reading import to_us
from hazmon.simulators import Simulation
from hazmon.store import ReadingColumns, connect, sensor_ids, write_readings

ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
HISTORY_DAYS = 30
HISTORY_STEP_S = 600
RECENT_S = 2 * 3600


def _dsn(name: str) -> str:
    return ADMIN.rsplit("/", 1)[0] + "/" + name


def _baseline(lo: float, hi: float, l: float | None, h: float | None) -> float:  # noqa: E741
    """A normal value: between L and H, or low in the range (never below it with the 1 % wobble)."""
    if l is not None and h is not None:
        return (l + h) / 2
    if h is not None:
        return lo + max(0.2 * (h - lo), 0.02 * (hi - lo))
    return lo + (hi - lo) * 0.4


def plant_history(plant: Plant, ids: dict[str, int], now_us: int) -> ReadingColumns:
    """Readings of every sensor ending at ``now_us``, with the faults the panels must show.

    The last 2 hours come from the simulator (`Simulation`, scenario "normal", each
    sensor at its own period); the 30 days before are a sparse synthetic history
    (one reading every 10 minutes) so the 1-day and 30-day panels have rollups.
    """
    recent = now_us - RECENT_S * 1_000_000
    sim = Simulation(plant, "normal", seed=7, start_us=recent)
    by_tag: dict[str, list[tuple[int, float, int]]] = {s.tag: [] for s in plant.sensors()}
    for r in sim.readings(RECENT_S):
        if r.ts_us < now_us:
            by_tag[r.tag].append((r.ts_us, r.value, int(r.quality)))
    parts: list[ReadingColumns] = []
    start = now_us - HISTORY_DAYS * 86_400_000_000
    for k, s in enumerate(plant.sensors()):
        lim = effective_limits(s)
        base = _baseline(s.range[0], s.range[1], lim.l, lim.h)
        span = (s.range[1] - s.range[0]) * 0.01
        t_hist = np.arange(start, recent, HISTORY_STEP_S * 1_000_000, dtype=np.int64)
        sim_rows = np.array(by_tag[s.tag], dtype=np.float64).reshape(-1, 3)
        t = np.concatenate([t_hist, sim_rows[:, 0].astype(np.int64)])
        v = np.concatenate([base + span * np.sin(t_hist / 3.6e9 + k), sim_rows[:, 1]])
        q = np.concatenate([np.zeros(t_hist.shape[0], np.int16), sim_rows[:, 2].astype(np.int16)])
        age = (now_us - t) / 1e6
        if s.tag == "PT-101" and lim.h is not None:  # above H now (key sensor)
            v[age < 300] = lim.h + 0.05
        if s.tag == "LT-102" and lim.h is not None:  # rising towards HH over the last 30 min
            m = age < 1800
            v[m] = lim.h - 0.2 + (1800 - age[m]) * (0.1 / 1800)
        if s.tag == "TT-103":  # bad quality for the last 10 minutes
            q[age <= 600] = 2
        if s.tag == "FT-301":  # transmitter over its range
            v[age < 120] = s.range[1] * 1.2
        if s.tag == "AT-102":  # stale: nothing for the last 15 minutes
            keep = age >= 900
            t, v, q = t[keep], v[keep], q[keep]
        n = t.shape[0]
        parts.append(ReadingColumns(np.full(n, ids[s.tag], dtype=np.int32), t, v.astype(np.float64), q))
    return ReadingColumns.concat(parts)


def _alarm(
    conn: psycopg.Connection[tuple[object, ...]],
    ent: str,
    region: str,
    hs: str,
    sensor: str | None,
    condition: str,
    tier: int,
    state: str,
    activated_us: int,
    *,
    level: str = "first",
    bureau_step: str | None = None,
) -> int:
    tier_name = {1: "blue", 2: "yellow", 3: "orange", 4: "red"}[tier]
    active = state in ("active_unacked", "active_acked")
    acked = state in ("active_acked", "normal")
    row = conn.execute(
        """INSERT INTO alarm (enterprise_id, hazard_source, sensor, condition, region_code, level, tier,
               tier_name, state, active, acked, bureau_step, activations, activated_at_us, last_seen_us,
               value, limit_value, message_en, message_zh, folded)
           VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 1, %s, %s, 1.0, 0.5, %s, %s, '{}')
           RETURNING id""",
        (
            ent,
            hs,
            sensor,
            condition,
            region,
            level,
            tier,
            tier_name,
            state,
            active,
            acked,
            bureau_step,
            activated_us,
            activated_us,
            f"{sensor} {condition}",
            f"{sensor} {condition} 报警",
        ),
    ).fetchone()
    assert row is not None
    aid = int(str(row[0]))
    conn.execute(
        "INSERT INTO alarm_event (alarm_id, at_us, kind, actor, data) VALUES (%s, %s, 'raised', 'system', %s)",
        (aid, activated_us, json.dumps({"tier": tier})),
    )
    return aid


def load_alarms(conn: psycopg.Connection[tuple[object, ...]], plant: Plant, now_us: int) -> None:
    e = plant.enterprise
    ent, region = e.id, e.region.code
    m = 60_000_000
    a1 = _alarm(
        conn,
        ent,
        region,
        "cl2-tankfarm",
        "AT-101",
        "gas_second",
        4,
        "active_unacked",
        now_us - 20 * m,
        level="second",
    )
    conn.execute(
        "INSERT INTO alarm_event (alarm_id, at_us, kind, actor, data) VALUES (%s, %s, 'notified', 'system', %s)",
        (a1, now_us - 10 * m, json.dumps({"purpose": "escalation", "recipient": "bureau_county", "step": 2})),
    )
    a2 = _alarm(conn, ent, region, "lpg-spheres", "LT-201", "h", 2, "active_acked", now_us - 90 * m)
    conn.execute(  # told to the control room only: not a bureau matter
        "INSERT INTO alarm_event (alarm_id, at_us, kind, actor, data) VALUES (%s, %s, 'notified', 'system', %s)",
        (a2, now_us - 89 * m, json.dumps({"purpose": "escalation", "recipient": "control_room", "step": 0})),
    )
    _alarm(
        conn,
        ent,
        region,
        "meoh-tankfarm",
        "TT-301",
        "h",
        2,
        "normal",
        now_us - 3 * 1440 * m,
        bureau_step="closed",
    )
    _alarm(
        conn,
        ent,
        region,
        "cl2-tankfarm",
        "PT-101",
        "h",
        3,
        "active_acked",
        now_us - 2 * 1440 * m,
        bureau_step="received",
    )  # standing: active for two days
    _alarm(
        conn,
        ent,
        region,
        "cl2-tankfarm",
        "TT-103",
        "bad_quality",
        1,
        "active_unacked",
        now_us - 10 * m,
        level="fault",
    )
    chat = _alarm(conn, ent, region, "lpg-spheres", "GT-201", "gas_first", 2, "rtn_unacked", now_us - 5 * m)
    for i in (1, 2):  # three activations within a minute: chattering
        conn.execute(
            "INSERT INTO alarm_event (alarm_id, at_us, kind, actor) VALUES (%s, %s, 'raised', 'system')",
            (chat, now_us - 5 * m + i * 10_000_000),
        )
    for d in range(1, HISTORY_DAYS, 3):  # older load for the hourly KPIs
        conn.execute(
            "INSERT INTO alarm_event (alarm_id, at_us, kind, actor, data) VALUES (%s, %s, 'raised', 'system', %s)",
            (chat, now_us - d * 1440 * m, json.dumps({"tier": 2})),
        )
    conn.execute(
        "INSERT INTO alarm_flood (enterprise_id, started_us, last_us, alarms) VALUES (%s, %s, %s, 14)",
        (ent, now_us - 6 * 60 * m, now_us - 6 * 60 * m + 8 * m),
    )


def load_assessments(conn: psycopg.Connection[tuple[object, ...]], today: date) -> None:
    rows = [
        # report more than 3 years ago: reassessment overdue (filed in time)
        (
            "cl2-tankfarm",
            today - timedelta(days=3 * 366 + 10),
            today - timedelta(days=3 * 366),
            '{"chlorine": 60.0}',
        ),
        # recent report never filed: filing overdue
        ("lpg-spheres", today - timedelta(days=40), None, '{"lpg": 800.0}'),
    ]
    for code, report, filed, inv in rows:
        conn.execute(
            """INSERT INTO assessment (hazard_source_id, report_date, assessor, r_value, grade, filed_on,
                   inventory)
               SELECT id, %s, '江苏安评中心', r_value, coalesce(grade, 4), %s, %s
               FROM hazard_source WHERE code = %s""",
            (report, filed, inv, code),
        )


@pytest.fixture(scope="module")
def panel_db(template_db: str, example_plant: Plant) -> Iterator[tuple[str, datetime]]:
    """(DSN, now) of a database holding the example plant's history ending at now."""
    name = f"hazmon_gf_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(ADMIN, autocommit=True) as a:
        for attempt in range(20):
            try:
                a.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_db}"')
                break
            except psycopg.errors.ObjectInUse:
                time.sleep(0.1 * (attempt + 1))
    dsn = _dsn(name)
    now = datetime.now(UTC).replace(microsecond=0)
    now_us = to_us(now)
    try:
        with connect(dsn) as conn:
            ids = sensor_ids(conn, example_plant.enterprise.id)
            write_readings(conn, plant_history(example_plant, ids, now_us))
            with conn.transaction():
                load_assessments(conn, now.date())
                load_alarms(conn, example_plant, now_us)
            conn.execute(
                "SELECT hazmon_refresh_rollups(%s, %s)", (now - timedelta(days=HISTORY_DAYS + 1), now)
            )
            conn.commit()
        yield dsn, now
    finally:
        with psycopg.connect(ADMIN, autocommit=True) as a:
            a.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


STALE_TAG = "AT-102"


def _touch(dsn: str) -> None:
    """Repeat every sensor's latest reading now (except the stale one).

    The views judge staleness against the database's now(); without this, a slow
    run would see the 1-second sensors go stale between the fixture and the test.
    """
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(
            """INSERT INTO readings (time, sensor_id, value, quality)
               SELECT clock_timestamp(), l.sensor_id, l.value, l.quality
               FROM hazmon_sensor_latest l WHERE l.tag <> %s AND l.time IS NOT NULL
               ON CONFLICT DO NOTHING""",
            (STALE_TAG,),
        )


@pytest.fixture
def fresh_db(panel_db: tuple[str, datetime]) -> tuple[str, datetime]:
    """`panel_db` with every sensor but the stale one having reported just now."""
    _touch(panel_db[0])
    return panel_db
