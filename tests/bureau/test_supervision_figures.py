"""Supervision figures per region and period: the periods, the SQL counts at their edges, the pooling."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest

from hazmon.bureau.periods import PeriodError, ReportPeriod, parse_period
from hazmon.bureau.supervision_figures import supervision_figures
from hazmon.plant.regions import Scope
from tests.bureau.supervision_rows import SH, local, seed
from tests.bureau.warnings_rows import Conn, connect

TZ = "Asia/Shanghai"
LATER = datetime(2024, 6, 1, tzinfo=UTC)  # the periods below are over by then
NAMES = (
    "screened", "found_general", "found_major", "rectified_general", "rectified_major", "overdue",
    "overdue_major", "supervisions_opened", "supervisions_open", "supervisions_overdue",
    "duty_checks_due", "duty_checks_done", "commitment_days_due", "commitments_filed", "commitments_on_time",
)  # fmt: skip


@pytest.fixture
def conn(db_dsn: str) -> Iterator[Conn]:
    yield from connect(db_dsn)


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2024-02", "2024-01-31T16:00:00+00:00", "2024-02-29T16:00:00+00:00"),  # 29 days: a leap year
        ("2026-02", "2026-01-31T16:00:00+00:00", "2026-02-28T16:00:00+00:00"),
        ("2028-02", "2028-01-31T16:00:00+00:00", "2028-02-29T16:00:00+00:00"),
        ("2026-12", "2026-11-30T16:00:00+00:00", "2026-12-31T16:00:00+00:00"),
        ("2026-Q1", "2025-12-31T16:00:00+00:00", "2026-03-31T16:00:00+00:00"),
        ("2026-Q2", "2026-03-31T16:00:00+00:00", "2026-06-30T16:00:00+00:00"),
        ("2026-Q3", "2026-06-30T16:00:00+00:00", "2026-09-30T16:00:00+00:00"),
        ("2026-Q4", "2026-09-30T16:00:00+00:00", "2026-12-31T16:00:00+00:00"),
        ("2026", "2025-12-31T16:00:00+00:00", "2026-12-31T16:00:00+00:00"),
    ],
)
def test_period_bounds_are_local_midnights(text: str, start: str, end: str) -> None:
    p = parse_period(text)
    assert p.text == text
    s, e = p.bounds(TZ)
    assert (s.isoformat(), e.isoformat()) == (start, end)
    assert s.astimezone(SH).time() == e.astimezone(SH).time() == datetime.min.time()


def test_period_labels_and_lengths() -> None:
    assert parse_period("2024-02").label_zh == "2024年2月"
    assert parse_period("2026-Q3").label_zh == "2026年第三季度"
    assert parse_period(" 2026 ").label_zh == "2026年"
    s, e = parse_period("2024-02").bounds(TZ)
    assert e - s == timedelta(days=29)
    s, e = parse_period("2024").bounds(TZ)
    assert e - s == timedelta(days=366)
    # a zone with daylight saving: March in Berlin is an hour short
    s, e = parse_period("2026-03").bounds("Europe/Berlin")
    assert e - s == timedelta(days=31, hours=-1)


@pytest.mark.parametrize(
    "bad", ["2026-13", "2026-00", "2026-Q0", "2026-Q5", "26-03", "2026-3", "2026Q3", "", "0000"]
)
def test_a_period_that_does_not_parse_says_what_fits(bad: str) -> None:
    with pytest.raises(PeriodError, match="month 2026-03, a quarter 2026-Q3 or a year 2026"):
        parse_period(bad)


def test_a_period_outside_the_calendar_is_refused() -> None:
    with pytest.raises(PeriodError):
        ReportPeriod("month", 2026, 13)


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "Europe/Berlin", "UTC"])
def test_sql_bounds_equal_python_bounds(conn: Conn, tz: str) -> None:
    for text in ("2024-02", "2024-03", "2024-Q1", "2026-Q4", "2026-10", "2024", "2026"):
        row = conn.execute("SELECT * FROM bureau_period_bounds(%s, %s)", (text, tz)).fetchone()
        assert row == parse_period(text).bounds(tz), (text, tz)


def test_sql_bounds_refuse_a_bad_period(conn: Conn) -> None:
    with pytest.raises(psycopg.errors.InvalidParameterValue, match="quarter 2026-Q3"):
        conn.execute("SELECT * FROM bureau_period_bounds('2026-Q5')")


def _rows(conn: Conn, text: str, now: datetime, prefix: str = "") -> dict[str, dict[str, Any]]:
    s, e = parse_period(text).bounds(TZ)
    rows = conn.execute(
        "SELECT * FROM bureau_supervision_figures(%s, %s, %s, %s, %s)", (prefix, s, e, now, TZ)
    ).fetchall()
    return {r[0]: dict(zip(NAMES, r[3:], strict=True)) for r in rows}


def _expect(*values: object) -> dict[str, object]:
    return dict(zip(NAMES, values, strict=True))


def test_february_of_a_leap_year(conn: Conn) -> None:
    seed(conn)
    got = _rows(conn, "2024-02", LATER)
    assert set(got) == {"A", "B", "C"}  # D registered in March
    # A: found 1 Feb 00:00 (in), 31 Jan 23:59:59 (out), 29 Feb (in), 1 Mar 00:00 (out), 10 Feb (in);
    # rectified 29 Feb 23:59:59 (in), 1 Mar 00:00 (out). Overdue at the end: the January one (deadline
    # 15 Feb) and the leap-day one (deadline 29 Feb: overdue from 1 Mar 00:00, the period's end).
    # Weeks ending 5, 12, 19, 26 Feb: checked in three (the last on Sunday 23:59:59); no quarter ends.
    # Commitments: 29 days, filed 1 Feb 09:59, 15 Feb 10:00:01 (late), 29 Feb 10:00:00 (on time).
    assert got["A"] == _expect(True, 2, 1, 2, 0, 2, 1, 1, 2, 1, 4, 3, 29, 3, 2)
    # B registered 10 Feb 12:00: weeks ending 12, 19, 26 Feb; commitment days 11-29 Feb (19)
    assert got["B"] == _expect(True, 1, 0, 0, 0, 0, 0, 0, 0, 0, 3, 1, 19, 1, 1)
    assert got["C"] == _expect(False, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 29, 0, 0)


def test_the_first_quarter(conn: Conn) -> None:
    seed(conn)
    got = _rows(conn, "2024-Q1", LATER)
    assert set(got) == {"A", "B", "C", "D"}
    # A: found 31 Jan, 1 Feb, 10 Feb (general), 29 Feb and 1 Mar (major); rectified 1 Feb's, 10 Feb's
    # and the leap-day one (on 1 Mar); 13 weeks (ending 8 Jan .. 1 Apr) + principal + technical, the
    # technical check at 1 Apr 00:00 belongs to the second quarter. 91 days of commitments (31 + 29 + 31).
    assert got["A"] == _expect(True, 3, 2, 2, 1, 1, 0, 2, 1, 1, 15, 4, 91, 4, 3)
    assert got["B"] == _expect(True, 1, 0, 0, 0, 1, 0, 0, 0, 0, 10, 1, 50, 1, 1)  # deadline 10 Mar passed
    assert got["C"] == _expect(False, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 91, 0, 0)
    # D registered 5 Mar 00:00: weeks ending 11, 18, 25 Mar and 1 Apr, the quarter; 5-31 Mar
    assert got["D"] == _expect(True, 0, 1, 0, 0, 0, 0, 0, 0, 0, 6, 0, 27, 0, 0)


def test_a_running_period_is_cut_at_now(conn: Conn) -> None:
    seed(conn)
    now = local(2024, 2, 15, 12)
    got = _rows(conn, "2024-02", now)
    # nothing after 15 Feb 12:00 counts: A's rectifications (20 and 29 Feb) not yet, the January
    # hidden danger (deadline 15 Feb) overdue only from 16 Feb; the supervision of 10 Jan overdue
    assert got["A"] == _expect(True, 2, 0, 0, 0, 0, 0, 0, 1, 1, 2, 2, 15, 2, 1)
    assert got["B"] == _expect(True, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 5, 1, 1)
    assert got["C"] == _expect(False, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 15, 0, 0)
    # a period not begun has no figures yet
    assert _rows(conn, "2024-03", now) == {}


def test_region_prefix(conn: Conn) -> None:
    seed(conn)
    assert set(_rows(conn, "2024-02", LATER, "3201")) == {"A", "B"}
    assert set(_rows(conn, "2024-02", LATER, "320116")) == {"A"}
    assert set(_rows(conn, "2024-02", LATER, "11")) == {"C"}


def test_pooled_per_region_with_rates(conn: Conn) -> None:
    seed(conn)
    f = supervision_figures(conn, parse_period("2024-02"), Scope("320000", "province"), TZ, LATER)
    assert f.start == datetime(2024, 1, 31, 16, tzinfo=UTC) and f.end == datetime(2024, 2, 29, 16, tzinfo=UTC)
    t = f.total
    assert (t.enterprises, t.screened, t.found_general, t.found_major, t.rectified) == (2, 2, 3, 1, 2)
    assert t.rectification_rate == 0.5
    assert t.rectification_rate_general == pytest.approx(2 / 3)
    assert t.rectification_rate_major == 0.0
    assert (t.duty_checks_due, t.duty_checks_done, t.duty_completion) == (7, 4, pytest.approx(4 / 7))
    assert (t.commitment_days_due, t.commitments_filed) == (48, 4)
    assert t.commitment_rate == pytest.approx(4 / 48)
    assert t.commitment_on_time_rate == pytest.approx(3 / 48)
    assert (t.supervisions_opened, t.supervisions_open, t.supervisions_overdue, t.overdue) == (1, 2, 1, 2)
    assert [(r.region_code, r.enterprises, r.found) for r in f.regions["county"]] == [
        ("320115", 1, 1),
        ("320116", 1, 3),
    ]
    assert [(r.region_code, r.enterprises) for r in f.regions["city"]] == [("320100", 2)]
    assert set(f.regions) == {"county", "city"}
    assert [e.enterprise_id for e in f.enterprises] == ["A", "B"]  # C lies in Beijing
    nation = supervision_figures(conn, parse_period("2024-02"), Scope("000000", "nation"), TZ, LATER)
    assert [r.region_code for r in nation.regions["province"]] == ["110000", "320000"]
    assert nation.total.screened == 2 and nation.total.enterprises == 3
    (ce,) = (e for e in nation.enterprises if e.enterprise_id == "C")
    assert ce.rectification_rate is None  # nothing found: no rate, not 100 %
    assert ce.duty_completion is None and ce.commitment_rate == 0.0
