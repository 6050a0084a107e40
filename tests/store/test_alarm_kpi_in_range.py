"""The range functions behind the alarm-KPI panels give the views' rows for the hours a range overlaps.

Since 0305 they read the rollup alarm_kpi_hour, which triggers on alarm_event keep whole and
current: the rows must stay equal to the views' (computed from every raw event) after events
arrive late, are deleted or changed, alarms move, targets change, and when two writers
interleave.
"""

from __future__ import annotations

import random
import threading
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


FUNCTIONS = (
    ("alarm_kpi_hourly", "alarm_kpi_hourly_in"),
    ("alarm_kpi_chattering", "alarm_kpi_chattering_in"),
    ("alarm_kpi_hourly", "alarm_kpi_hourly_raw_in"),
    ("alarm_kpi_chattering", "alarm_kpi_chattering_raw_in"),
)


def _assert_equal_to_views(dsn: str, t_from: datetime, t_to: datetime) -> None:
    overlap = "hour > %(f)s - interval '1 hour' AND hour <= %(t)s"
    args = {"f": t_from, "t": t_to}
    with psycopg.connect(dsn) as conn:
        for view, fn in FUNCTIONS:
            want = conn.execute(f"SELECT * FROM {view} WHERE {overlap} ORDER BY 1, 2, 3", args).fetchall()
            got = conn.execute(f"SELECT * FROM {fn}(%(f)s, %(t)s) ORDER BY 1, 2, 3", args).fetchall()
            assert got == want, f"{fn} vs {view} over {t_from} .. {t_to}"
            if t_to - t_from >= timedelta(days=1):
                assert want, f"{view}: the seed gives rows in this range, so the comparison means something"


def _assert_rollup_is_the_views(dsn: str) -> None:
    """Every row of alarm_kpi_hour is the views' row of its hour, and nothing is stale."""
    with psycopg.connect(dsn) as conn:
        want = conn.execute(
            """SELECT h.enterprise_id, h.position, h.hour, h.alarms, h.red, h.orange, h.yellow, h.blue,
                      coalesce(c.chattering_alarms, 0)
               FROM alarm_kpi_hourly h LEFT JOIN alarm_kpi_chattering c USING (enterprise_id, position, hour)
               ORDER BY 1, 2, 3"""
        ).fetchall()
        got = conn.execute(
            "SELECT enterprise_id, position, hour, alarms, red, orange, yellow, blue, chattering_alarms "
            "FROM alarm_kpi_hour ORDER BY 1, 2, 3"
        ).fetchall()
        stale = conn.execute("SELECT hour, error FROM alarm_kpi_hour_stale").fetchall()
    assert got == want
    assert not stale


@pytest.mark.parametrize(("t_from", "t_to"), RANGES)
def test_functions_equal_the_views_over_the_overlapping_hours(
    db_dsn: str, t_from: datetime, t_to: datetime
) -> None:
    _seed(db_dsn)
    _assert_equal_to_views(db_dsn, t_from, t_to)


def _ids(dsn: str) -> list[int]:
    with psycopg.connect(dsn) as conn:
        return [int(str(r[0])) for r in conn.execute("SELECT id FROM alarm ORDER BY id").fetchall()]


def _raise(conn: psycopg.Connection[tuple[object, ...]], alarm_id: int, at: datetime, data: str) -> None:
    conn.execute(
        "INSERT INTO alarm_event (alarm_id, at_us, kind, actor, data) VALUES (%s, %s, 'raised', 'system', %s)",
        (alarm_id, int(at.timestamp() * US), data),
    )


def test_late_events_rewrite_their_whole_hours(db_dsn: str) -> None:
    """Events for hours rolled up long ago: counts, a chattering burst across an hour boundary, consequences."""
    _seed(db_dsn)
    ids = _ids(db_dsn)
    h5 = T0 + timedelta(hours=5)
    with psycopg.connect(db_dsn) as conn:
        before = conn.execute(
            "SELECT alarms, chattering_alarms FROM alarm_kpi_hour WHERE hour = %s AND position = 'control-room'",
            (h5 + timedelta(hours=1),),
        ).fetchall()
        # a burst of ids[0] (control-room) at 05:59:30, 05:59:50 and 06:00:10: the third activation,
        # in hour 06, chatters because of the two late ones in hour 05 (written in that order)
        _raise(conn, ids[0], h5 + timedelta(minutes=59, seconds=30), '{"tier": 4}')
        conn.commit()
        _raise(conn, ids[0], h5 + timedelta(minutes=59, seconds=50), '{"tier": 3}')
        conn.commit()
        _raise(conn, ids[0], h5 + timedelta(hours=1, seconds=10), '{"tier": 1}')
        conn.commit()
        # ... and the same burst for ids[2], its last activation written first: the late ones
        # before it make it chatter afterwards
        _raise(conn, ids[2], h5 + timedelta(hours=1, seconds=10), '{"tier": 2}')
        conn.commit()
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO alarm_event (alarm_id, at_us, kind, actor, data) "
                "VALUES (%s, %s, 'raised', 'system', '{\"tier\": 2}')",
                [(ids[2], int((h5 + timedelta(minutes=59, seconds=s)).timestamp() * US)) for s in (30, 50)],
            )
        conn.commit()
        # consequences of a lost link, late, in a burst: left out of every KPI
        for s in (0, 5, 10, 15):
            _raise(
                conn, ids[4], h5 + timedelta(minutes=30, seconds=s), '{"tier": 4, "cause": "link_lost:dcs"}'
            )
        conn.commit()
        after = conn.execute(
            "SELECT alarms, chattering_alarms FROM alarm_kpi_hour WHERE hour = %s AND position = 'control-room'",
            (h5 + timedelta(hours=1),),
        ).fetchall()
    assert before != after  # the late events did change the rolled-up hour
    _assert_rollup_is_the_views(db_dsn)
    for t_from, t_to in RANGES:
        _assert_equal_to_views(db_dsn, t_from, t_to)


def test_deleted_and_changed_events_and_a_moved_alarm(db_dsn: str) -> None:
    _seed(db_dsn)
    ids = _ids(db_dsn)
    with psycopg.connect(db_dsn) as conn:
        # retention: the first day's events go
        conn.execute(
            "DELETE FROM alarm_event WHERE at_us < %s", (int((T0 + timedelta(days=1)).timestamp() * US),)
        )
        # a correction: some activations of day two become consequences, some change tier
        conn.execute(
            'UPDATE alarm_event SET data = data || \'{"cause": "link_lost:plc"}\' '
            "WHERE id %% 5 = 0 AND at_us < %s",
            (int((T0 + timedelta(days=2)).timestamp() * US),),
        )
        conn.execute("UPDATE alarm_event SET data = jsonb_build_object('tier', 4) WHERE id % 7 = 0")
        # an alarm handed to another operator position
        conn.execute("UPDATE alarm SET position = 'utilities' WHERE id = %s", (ids[1],))
        conn.commit()
        moved = conn.execute("SELECT count(*) FROM alarm_kpi_hour WHERE position = 'utilities'").fetchone()
    assert moved is not None and int(str(moved[0])) > 0
    _assert_rollup_is_the_views(db_dsn)
    for t_from, t_to in RANGES:
        _assert_equal_to_views(db_dsn, t_from, t_to)


def test_changed_chattering_targets_recompute_every_hour(db_dsn: str) -> None:
    _seed(db_dsn)
    with psycopg.connect(db_dsn) as conn:
        conn.execute(
            "INSERT INTO alarm_kpi_target (key, value, source) VALUES ('chattering_count', 2, 'test'), "
            "('chattering_window_s', 3600, 'test')"
        )
        conn.commit()
    _assert_rollup_is_the_views(db_dsn)
    for t_from, t_to in RANGES:
        _assert_equal_to_views(db_dsn, t_from, t_to)
    with psycopg.connect(db_dsn) as conn:
        conn.execute("UPDATE alarm_kpi_target SET value = 4 WHERE key = 'chattering_count'")
        conn.execute("DELETE FROM alarm_kpi_target WHERE key = 'chattering_window_s'")
        conn.commit()
    _assert_rollup_is_the_views(db_dsn)
    _assert_equal_to_views(db_dsn, *RANGES[2])


def test_two_writers_of_one_hour_both_count(db_dsn: str) -> None:
    """The second writer recomputes the hour after the first committed, and sees its events."""
    _seed(db_dsn)
    ids = _ids(db_dsn)
    at = T0 + timedelta(hours=7, minutes=10)
    errors: list[BaseException] = []
    with psycopg.connect(db_dsn) as first, psycopg.connect(db_dsn) as second:
        _raise(first, ids[0], at, '{"tier": 4}')  # not committed: the rollup's lock is held

        def write_second() -> None:
            try:
                _raise(second, ids[0], at + timedelta(seconds=1), '{"tier": 4}')
                second.commit()
            except BaseException as e:  # reported by the assertion below
                errors.append(e)

        t = threading.Thread(target=write_second)
        t.start()
        t.join(0.5)  # the second waits for the first
        _raise(first, ids[2], at + timedelta(seconds=2), '{"tier": 1}')
        first.commit()
        t.join(30)
        assert not t.is_alive()
        n = first.execute(
            "SELECT count(*) FROM alarm_event WHERE at_us BETWEEN %s AND %s",
            (int(at.timestamp() * US), int(at.timestamp() * US) + 2 * US),
        ).fetchone()
    assert errors == []
    assert n == (3,)
    _assert_rollup_is_the_views(db_dsn)


def test_a_malformed_event_never_fails_the_alarm_write(db_dsn: str) -> None:
    """The hour cannot be rolled up: the event is written all the same and the hour is marked stale."""
    _seed(db_dsn)
    ids = _ids(db_dsn)
    at = T0 + timedelta(hours=9, minutes=3)
    with psycopg.connect(db_dsn) as conn:
        _raise(conn, ids[0], at, '{"tier": "red"}')
        conn.commit()
        n = conn.execute("SELECT count(*) FROM alarm_event WHERE data ->> 'tier' = 'red'").fetchone()
        stale = conn.execute("SELECT hour FROM alarm_kpi_hour_stale").fetchall()
        assert n is not None and int(str(n[0])) == 1
        assert stale == [(T0 + timedelta(hours=9),)]
        conn.execute("UPDATE alarm_event SET data = '{\"tier\": 4}' WHERE data ->> 'tier' = 'red'")
        conn.commit()
    _assert_rollup_is_the_views(db_dsn)


def test_stale_hours_are_read_from_the_raw_events_until_repaired(db_dsn: str) -> None:
    _seed(db_dsn)
    with psycopg.connect(db_dsn) as conn:
        hour = T0 + timedelta(hours=30)
        conn.execute(
            "UPDATE alarm_kpi_hour SET alarms = alarms + 1000, chattering_alarms = 1000 WHERE hour = %s",
            (hour,),
        )
        conn.execute("INSERT INTO alarm_kpi_hour_stale (hour, error) VALUES (%s, 'test')", (hour,))
        conn.commit()
    for t_from, t_to in RANGES:
        _assert_equal_to_views(db_dsn, t_from, t_to)
    with psycopg.connect(db_dsn) as conn:
        left = conn.execute("SELECT alarm_kpi_hour_repair()").fetchone()
        conn.commit()
    assert left == (0,)
    _assert_rollup_is_the_views(db_dsn)


def test_the_function_reads_the_range_through_the_index(db_dsn: str) -> None:
    """The point of the functions: the plan reads the range by an index, not the whole log.

    The raw functions (0304's, kept for stale hours) scan alarm_event by (kind, at_us); the panel
    functions read the rollup by its (hour, ...) key and run the raw part only when a stale hour
    falls in the range.
    """
    _seed(db_dsn)
    with psycopg.connect(db_dsn) as conn:
        conn.execute("ANALYZE alarm_event, alarm_kpi_hour")
        conn.execute("SET enable_seqscan = off")  # a small table: ask whether an index path exists at all

        def plan(fn: str) -> str:
            return "\n".join(
                str(r[0])
                for r in conn.execute(
                    f"EXPLAIN SELECT * FROM {fn}(%s, %s)", (RANGES[0][0], RANGES[0][1])
                ).fetchall()
            )

        raw = plan("alarm_kpi_hourly_raw_in")
        rolled = plan("alarm_kpi_hourly_in")
        analyzed = "\n".join(
            str(r[0])
            for r in conn.execute(
                "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) SELECT * FROM alarm_kpi_hourly_in(%s, %s)",
                (RANGES[0][0], RANGES[0][1]),
            ).fetchall()
        )
    assert "alarm_event_kind_at" in raw, raw
    assert "at_us >=" in raw, raw
    assert "alarm_kpi_hour_pkey" in rolled, rolled
    assert "One-Time Filter" in rolled, rolled
    # with no stale hour the raw part never runs
    scans = [line for line in analyzed.splitlines() if " on alarm_event" in line]
    assert scans, analyzed
    assert all("never executed" in line for line in scans), analyzed
