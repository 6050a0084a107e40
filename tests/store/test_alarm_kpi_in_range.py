"""The range functions behind the alarm-KPI panels give the views' rows for the hours a range overlaps."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import psycopg
import pytest

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
US = 1_000_000


def _seed(dsn: str) -> None:
    """40 alarms, 1,760 activations over three days, some in bursts that chatter (3 within 60 s), 200 of them consequences."""
    rnd = random.Random(7)
    t0_us = int(T0.timestamp() * US)
    with psycopg.connect(dsn) as conn:
        ids = [
            r[0]
            for r in conn.execute(
                """INSERT INTO alarm (enterprise_id, hazard_source, sensor, condition, region_code, level,
                       tier, tier_name, state, active, acked, activations, activated_at_us, last_seen_us,
                       folded, position)
                   SELECT 'hx-chem', 'hs-01', 'X-' || g, 'h', '320116', 'first', 1 + g %% 4,
                          (ARRAY['blue','yellow','orange','red'])[1 + g %% 4], 'normal', false, true, 1,
                          %s, %s, '{}', CASE WHEN g %% 2 = 0 THEN 'control-room' ELSE 'tank-farm' END
                   FROM generate_series(0, 39) g RETURNING id""",
                (t0_us, t0_us),
            ).fetchall()
        ]
        events: list[tuple[int, int, int]] = []
        for _ in range(1400):
            events.append((rnd.choice(ids), t0_us + rnd.randrange(3 * 86_400 * US), rnd.randint(1, 4)))
        for _ in range(120):  # bursts: three activations of one alarm within 40 s
            a, t = rnd.choice(ids), t0_us + rnd.randrange(3 * 86_400 * US)
            events += [(a, t + k * 20 * US, 4) for k in range(3)]
        # consequences of a lost link carry their cause: the KPIs leave them out
        caused = [(rnd.choice(ids), t0_us + rnd.randrange(3 * 86_400 * US)) for _ in range(200)]
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO alarm_event (alarm_id, at_us, kind, actor, data) VALUES "
                "(%s, %s, 'raised', 'system', '{\"tier\": 2, \"cause\": \"link_lost:dcs\"}')",
                caused,
            )
            cur.executemany(
                "INSERT INTO alarm_event (alarm_id, at_us, kind, actor, data) "
                "VALUES (%s, %s, 'raised', 'system', jsonb_build_object('tier', %s))",
                events,
            )


RANGES = [
    (T0 + timedelta(hours=5, minutes=17), T0 + timedelta(hours=6, minutes=2)),  # mid-hour, both ends
    (T0 + timedelta(days=1), T0 + timedelta(days=2)),  # on the hour
    (T0 - timedelta(days=1), T0 + timedelta(days=4)),  # more than all of it
    (T0 + timedelta(hours=30, seconds=30), T0 + timedelta(hours=30, seconds=40)),  # inside one hour
]


@pytest.mark.parametrize(("t_from", "t_to"), RANGES)
def test_functions_equal_the_views_over_the_overlapping_hours(
    db_dsn: str, t_from: datetime, t_to: datetime
) -> None:
    _seed(db_dsn)
    overlap = "hour > %(f)s - interval '1 hour' AND hour <= %(t)s"
    args = {"f": t_from, "t": t_to}
    with psycopg.connect(db_dsn) as conn:
        for view, fn in (
            ("alarm_kpi_hourly", "alarm_kpi_hourly_in"),
            ("alarm_kpi_chattering", "alarm_kpi_chattering_in"),
        ):
            want = conn.execute(f"SELECT * FROM {view} WHERE {overlap} ORDER BY 1, 2, 3", args).fetchall()
            got = conn.execute(f"SELECT * FROM {fn}(%(f)s, %(t)s) ORDER BY 1, 2, 3", args).fetchall()
            assert got == want, view
            if t_to - t_from >= timedelta(days=1):
                assert want, f"{view}: the seed gives rows in this range, so the comparison means something"


def test_the_function_reads_the_range_through_the_index(db_dsn: str) -> None:
    """The point of the functions: the plan scans alarm_event by (kind, at_us), not the whole log."""
    _seed(db_dsn)
    with psycopg.connect(db_dsn) as conn:
        conn.execute("ANALYZE alarm_event")
        conn.execute("SET enable_seqscan = off")  # a small table: ask whether an index path exists at all
        plan = "\n".join(
            str(r[0])
            for r in conn.execute(
                "EXPLAIN SELECT * FROM alarm_kpi_hourly_in(%s, %s)", (RANGES[0][0], RANGES[0][1])
            ).fetchall()
        )
    assert "alarm_event_kind_at" in plan, plan
    assert "at_us >=" in plan, plan
