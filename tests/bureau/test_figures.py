"""Daily figures: online rate, alarm handling rate, warnings, risk ranking (pure and on PostgreSQL)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta

import pytest

from hazmon.bureau.figures import daily, day_window, expected_minutes, grade_of, risk
from hazmon.bureau.warning_repository import tick
from hazmon.plant.bureau_standards import COLOUR_WEIGHT, WarningSettings
from hazmon.plant.regions import Scope
from hazmon.plant.standards import Grade, Tier
from tests.bureau.warnings_rows import (
    Conn,
    add_alarm,
    add_enterprise,
    add_heartbeat,
    add_minutes,
    add_source,
    connect,
)

S = WarningSettings()  # Asia/Shanghai
DAY = date(2026, 3, 2)
START, END = day_window(DAY, S.timezone)  # 2026-03-01 16:00 UTC .. 2026-03-02 16:00 UTC
AFTER = END + timedelta(hours=6)


@pytest.fixture
def conn(db_dsn: str) -> Iterator[Conn]:
    yield from connect(db_dsn)


def test_day_window_is_local_midnight() -> None:
    assert datetime(2026, 3, 1, 16, 0, tzinfo=UTC) == START
    assert timedelta(days=1) == END - START


def test_expected_minutes() -> None:
    assert expected_minutes(1.0, START, END) == 1440
    assert expected_minutes(60.0, START, END) == 1440
    assert expected_minutes(300.0, START, END) == 288
    assert expected_minutes(60.0, END, START) == 0


def test_risk_formula() -> None:
    assert risk(Grade.ONE, 0.0, 1.0) == 4.0
    assert risk(Grade.FOUR, 0.0, 1.0) == 1.0
    assert risk(Grade.TWO, 4.0 + 2.0, 0.5) == 3.0 * 7.0 * 1.5
    assert risk(None, 0.0, None) == 2.0  # nothing seen counts as offline
    assert grade_of("one") is Grade.ONE and grade_of("三级") is Grade.THREE and grade_of("x") is None
    assert grade_of("II") is Grade.TWO  # as hazmon.plant.link.Registration sends it
    # bureau_risk_24h_view weighs a warning by its colour number: keep the table the same
    assert all(COLOUR_WEIGHT[t] == t.value for t in Tier)


def test_online_rate_per_sensor_source_enterprise(conn: Conn) -> None:
    add_enterprise(conn, "E1", "330106", START - timedelta(days=10))
    add_source(conn, "E1", "T1", "two", (("LT-1", 60.0), ("PT-1", 300.0)))
    add_source(conn, "E1", "T2", "four", (("GT-2", 10.0),))
    add_minutes(conn, "E1", "LT-1", START, 1440)  # all day
    add_minutes(conn, "E1", "PT-1", START, 144 * 5, count=0)  # rows without readings are not data
    add_minutes(conn, "E1", "GT-2", START, 720)  # half the day
    add_minutes(conn, "E1", "GT-2", END, 60)  # the next day does not count
    add_minutes(conn, "E1", "LT-1", START - timedelta(minutes=30), 30)  # nor the day before
    f = daily(conn, DAY, S, AFTER, None)
    by = {s.tag: s for s in f.sensors}
    assert by["LT-1"].online_rate == 1.0
    assert by["PT-1"].online_rate == 0.0 and by["PT-1"].minutes_expected == 288
    assert by["GT-2"].online_rate == 0.5
    src = {s.source_id: s for s in f.sources}
    assert src["T1"].online_rate == pytest.approx(1440 / (1440 + 288))
    assert src["T2"].online_rate == 0.5
    (e,) = f.enterprises
    assert e.online_rate == pytest.approx((1440 + 720) / (1440 + 288 + 1440))
    assert e.grade is Grade.TWO


def test_day_still_running_and_late_registration(conn: Conn) -> None:
    add_enterprise(conn, "E1", "330106", START + timedelta(hours=12, seconds=20))
    add_source(conn, "E1", "T1", "three", (("LT-1", 60.0),))
    add_minutes(conn, "E1", "LT-1", START + timedelta(hours=12), 360)
    f = daily(conn, DAY, S, START + timedelta(hours=18), None)
    (s,) = f.sensors
    assert s.minutes_expected == 360 and s.online_rate == 1.0


def test_alarm_handling_rate(conn: Conn) -> None:
    add_enterprise(conn, "E1", "330106", START - timedelta(days=10))
    add_source(conn, "E1", "T1", "two")
    t = START + timedelta(hours=1)
    add_alarm(conn, "A1", "E1", "T1", t, acked=t + timedelta(minutes=5))  # handled
    add_alarm(conn, "A2", "E1", "T1", t, acked=t + timedelta(minutes=31))  # late
    add_alarm(conn, "A3", "E1", "T1", t)  # never
    add_alarm(conn, "A4", "E1", "T1", END - timedelta(minutes=10))  # still inside its limit at "now"
    add_alarm(conn, "A5", "E1", "T1", START - timedelta(minutes=1), acked=START)  # the day before
    now = END + timedelta(minutes=5)
    (e,) = daily(conn, DAY, S, now, None).enterprises
    assert (e.alarms_raised, e.alarms_handled, e.alarms_pending) == (4, 1, 1)
    assert e.handling_rate == pytest.approx(1 / 3)
    # once A4's limit has passed it counts as not handled
    (e,) = daily(conn, DAY, S, AFTER, None).enterprises
    assert e.handling_rate == pytest.approx(1 / 4)


def test_no_alarms_no_rate(conn: Conn) -> None:
    add_enterprise(conn, "E1", "330106", START - timedelta(days=10))
    (e,) = daily(conn, DAY, S, AFTER, None).enterprises
    assert e.handling_rate is None and e.online_rate is None


def test_warnings_open_overdue_and_ranking_by_region(conn: Conn) -> None:
    # E1 grade one, fully online; E2 grade four, silent since midday; E3 in another city
    for eid, region, grade in (("E1", "330106", "one"), ("E2", "330108", "four"), ("E3", "320102", "two")):
        add_enterprise(conn, eid, region, START - timedelta(days=10))
        add_source(conn, eid, "T1", grade, (("LT-1", 60.0),))
    add_minutes(conn, "E1", "LT-1", START, 1440)
    add_heartbeat(conn, "E1", "dcs", END)
    add_minutes(conn, "E2", "LT-1", START, 720)
    add_minutes(conn, "E3", "LT-1", START, 1440)
    add_heartbeat(conn, "E3", "dcs", END)
    tick(conn, S, START + timedelta(hours=13))  # E2 silent an hour: one orange warning
    conn.execute(
        "UPDATE bureau_warning SET raised_at = %s", (START - timedelta(days=4),)
    )  # open 4 days: overdue (72 h)
    city = Scope("330100", "city")
    f = daily(conn, DAY, S, AFTER, city)
    assert [e.enterprise_id for e in f.enterprises] == ["E2", "E1"]  # E3 outside the city
    e2, e1 = f.enterprises
    assert (e2.warnings_open, e2.warnings_overdue, e2.open_weight) == (1, 1, 3.0)
    assert e2.risk == pytest.approx(1.0 * (1 + 3.0) * (2 - 0.5))
    assert e1.risk == pytest.approx(4.0)
    counties = {r.region_code: r for r in f.regions["county"]}
    assert set(counties) == {"330106", "330108"}
    (c,) = f.regions["city"]
    assert c.region_code == "330100" and c.enterprises == 2 and c.warnings_open == 1
    assert c.online_rate == pytest.approx((1440 + 720) / 2880)
    # a warning closed before the day ended is not open in that day's figures
    conn.execute("UPDATE bureau_warning SET state = 'closed', closed_at = %s", (END - timedelta(hours=1),))
    f = daily(conn, DAY, S, AFTER, city)
    assert sum(e.warnings_open for e in f.enterprises) == 0


def test_grafana_views(conn: Conn) -> None:
    now = conn.execute("SELECT now()").fetchone()
    assert now is not None
    t = now[0].replace(second=0, microsecond=0)
    add_enterprise(conn, "E1", "330106", t - timedelta(days=2))
    add_source(conn, "E1", "T1", "one", (("LT-1", 60.0), ("PT-1", 60.0)))
    add_minutes(conn, "E1", "LT-1", t - timedelta(hours=24) + timedelta(minutes=1), 1440)
    rows = conn.execute("SELECT enterprise_id, sensors, online_rate FROM bureau_online_24h_view").fetchall()
    assert rows[0][0] == "E1" and rows[0][1] == 2
    assert 0.49 < float(rows[0][2]) <= 0.5
    tick(conn, S, t - timedelta(minutes=10))  # never a message: silent since registration
    (w,) = conn.execute("SELECT kind, colour_name, age_s FROM bureau_warning_open_view").fetchall()
    assert w[0] == "silent" and w[1] == "orange" and 600 <= float(w[2]) < 3600


def test_risk_view_agrees_with_the_formula(conn: Conn) -> None:
    now = conn.execute("SELECT now()").fetchone()
    assert now is not None
    t = now[0].replace(second=0, microsecond=0)
    add_enterprise(conn, "E1", "330106", t - timedelta(days=2))
    add_source(conn, "E1", "T1", "four", (("LT-1", 60.0),))
    add_source(conn, "E1", "T2", "two", (("LT-2", 60.0),))
    add_minutes(conn, "E1", "LT-1", t - timedelta(hours=24) + timedelta(minutes=1), 1440)
    add_enterprise(conn, "E2", "330106", t - timedelta(days=2))
    add_heartbeat(conn, "E1", "dcs", t - timedelta(minutes=11))
    add_heartbeat(conn, "E2", "dcs", t - timedelta(minutes=11))
    tick(conn, S, t - timedelta(minutes=10))  # E1: source T2 silent (yellow); E2: no sensors, no warning
    rows = {
        r[0]: r[1:]
        for r in conn.execute(
            "SELECT enterprise_id, risk, online_rate, open_weight FROM bureau_risk_24h_view"
        )
    }
    r1, online, weight = rows["E1"]
    assert float(weight) == 2.0
    assert float(r1) == pytest.approx(risk(Grade.TWO, 2.0, float(online)))
    assert float(rows["E2"][0]) == pytest.approx(risk(None, 0.0, None))


def test_a_day_is_local_and_may_be_23_hours() -> None:
    start, end = day_window(date(2026, 3, 29), "Europe/Berlin")  # clocks go forward that night
    assert end - start == timedelta(hours=23)
    assert expected_minutes(60.0, start, end) == 1380
