"""The bureau platform's dashboards: every panel's SQL against a real bureau database.

The database is seeded as the bureau daemon would have filled it (tests/bureau/warnings_rows.py
writes the rows directly): four enterprises in three counties of two provinces, their sensors'
1-minute aggregates over the last 24 h, and open and closed warnings. Times are relative to the
database's ``now()``, the clock the views judge by.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
import pytest
from psycopg.types.json import Jsonb

from hazmon.grafana.build import BUREAU_BOARDS, render_json
from hazmon.grafana.common import BUREAU_DATASOURCE_UID
from hazmon.grafana.macros import TimeRange
from hazmon.grafana.queries import Query, panel_queries, variable_combinations
from hazmon.grafana.texts import LOCALES
from tests.bureau.supervision_rows import seed as seed_supervision
from tests.bureau.warnings_rows import Conn, add_enterprise, add_minutes, add_source

NAMES = {
    "E1": ("恒信化工", "Hengxin Chemical", "320116", "江苏省", "南京市", "六合区"),
    "E2": ("扬子石化", "Yangzi Petrochemical", "320116", "江苏省", "南京市", "六合区"),
    "E3": ("江宁气体", "", "320115", "江苏省", "南京市", "江宁区"),
    "E4": ("朝阳储运", "Chaoyang Storage", "110105", "北京市", "市辖区", "朝阳区"),
}


def _warning(
    c: Conn,
    key: str,
    kind: str,
    colour: int,
    eid: str,
    raised: datetime,
    *,
    closed: datetime | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    region = NAMES[eid][2]
    c.execute(
        "INSERT INTO bureau_warning (cause_key, kind, colour, enterprise_id, region_code, since, raised_at,"
        " state, closed_at, updated_at, text_zh, text_en, detail)"
        " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
        (
            key,
            kind,
            colour,
            eid,
            region,
            raised,
            raised,
            "closed" if closed else "pushed",
            closed,
            raised,
            f"{key} 预警",
            f"{key} warning",
            Jsonb(detail or {}),
        ),
    )


def seed(c: Conn) -> datetime:
    """The region described in the module docstring; returns the database's now at seeding."""
    row = c.execute("SELECT now()").fetchone()
    assert row is not None
    now: datetime = row[0]
    t = now.replace(second=0, microsecond=0)
    for eid, (name, name_en, region, prov, city, county) in NAMES.items():
        add_enterprise(c, eid, region, now - timedelta(days=30), name=name)
        reg = {"enterprise": {"name_en": name_en, "province": prov, "city": city, "county": county}}
        c.execute(
            "UPDATE bureau_enterprise SET registration = %s, last_message_at = %s WHERE enterprise_id = %s",
            (Jsonb(reg), None if eid == "E3" else now - timedelta(minutes=1), eid),
        )
    add_source(c, "E1", "T1", "I", (("LT-1", 60.0), ("PT-1", 60.0)))
    add_source(c, "E2", "T1", "II", (("LT-1", 60.0),))
    add_source(c, "E4", "T1", "III", (("LT-1", 60.0),))
    # whole days of data: any 24 h window ending in [t, t + 2 min) holds 1440 of these minutes
    full = t - timedelta(hours=24, minutes=1)
    for eid, tag in (("E1", "LT-1"), ("E1", "PT-1"), ("E4", "LT-1")):
        add_minutes(c, eid, tag, full, 1444)
    add_minutes(c, "E2", "LT-1", t - timedelta(hours=18), 720)  # half of the day
    c.execute(
        "UPDATE bureau_enterprise SET last_message_at = %s WHERE enterprise_id = 'E2'",
        (now - timedelta(hours=2),),
    )
    _warning(c, "silent:E2", "silent", 3, "E2", now - timedelta(minutes=90), detail={"mode": "link_down"})
    _warning(c, "red_unacked:E2:7", "red_unacked", 4, "E2", now - timedelta(hours=30))  # over 24 h: overdue
    _warning(c, "repeated:E4:LT-1", "repeated", 2, "E4", now - timedelta(days=3))
    _warning(c, "assessment_overdue:E1:T1", "assessment_overdue", 1, "E1", now - timedelta(minutes=10))
    _warning(
        c,
        "assessment_overdue:E4:T1",
        "assessment_overdue",
        1,
        "E4",
        now - timedelta(days=20),
        closed=now - timedelta(days=19),
    )
    return now


@pytest.fixture
def bureau_db(db_dsn: str) -> Iterator[tuple[Conn, datetime]]:
    with psycopg.connect(db_dsn, autocommit=True) as c:
        now = seed(c)
        yield c, now


def _query(title: str, locale: str = "en") -> Query:
    for b in BUREAU_BOARDS:
        for q in panel_queries(render_json(b, locale)):
            if q.title == title:
                return q
    raise KeyError(title)


def _run(c: Conn, q: Query, now: datetime, region: str, **more: str) -> list[tuple[Any, ...]]:
    rng = TimeRange(now - timedelta(hours=24), now)
    return c.execute(q.expand(rng, {"region": region, **more}).encode()).fetchall()


def test_every_query_reads_the_bureau_datasource() -> None:
    for loc in LOCALES:
        for b in BUREAU_BOARDS:
            model = render_json(b, loc)
            qs = panel_queries(model)
            assert qs
            assert {q.datasource["uid"] for q in qs if q.datasource} == {BUREAU_DATASOURCE_UID}
            assert all(q.datasource for q in qs)
            for v in model["templating"]["list"]:
                assert v["datasource"]["uid"] == BUREAU_DATASOURCE_UID


def test_every_panel_query_runs_and_has_rows(bureau_db: tuple[Conn, datetime]) -> None:
    c, now = bureau_db
    rng = TimeRange(now - timedelta(hours=24), now)

    def run(sql: str) -> list[tuple[Any, ...]]:
        return c.execute(sql.encode()).fetchall()

    failures: list[str] = []
    empty: list[str] = []
    for loc in LOCALES:
        for b in BUREAU_BOARDS:
            model = render_json(b, loc)
            combos = variable_combinations(model, rng, run)
            regions = list(dict.fromkeys(str(x["region"].value) for x in combos))
            every = ["000000", "110000", "320000", "110100", "320100", "110105", "320115", "320116"]
            if len(model["templating"]["list"]) == 1:
                assert regions == every
            else:  # region × period: the first 50 combinations
                assert regions == every[: len(regions)] and len(combos) == 50
            for q in panel_queries(model):
                rows = 0
                for combo in combos:
                    sql = q.expand(rng, combo)
                    try:
                        rows += len(run(sql))
                    except psycopg.Error as e:
                        failures.append(f"{loc} {q.key} {dict(combo)}: {str(e).strip()}\n{sql}")
                        break
                if rows == 0:
                    empty.append(f"{loc} {q.key}")
    assert failures == []
    assert empty == []


def test_region_variable_names_the_regions(bureau_db: tuple[Conn, datetime]) -> None:
    c, _ = bureau_db
    model = render_json(BUREAU_BOARDS[0], "zh")
    (var,) = model["templating"]["list"]
    rows = {r[0]: r[1] for r in c.execute(var["query"].encode()).fetchall()}
    assert rows["000000"] == "全部区域"
    assert rows["320000"] == "江苏省"
    assert rows["320100"] == "江苏省 南京市"
    assert rows["320116"] == "江苏省 南京市 六合区"
    assert rows["110105"] == "北京市 市辖区 朝阳区"


@pytest.mark.parametrize(
    ("region", "n"), [("000000", 4), ("320000", 3), ("320100", 3), ("320116", 2), ("110000", 1)]
)
def test_enterprises_in_the_region(bureau_db: tuple[Conn, datetime], region: str, n: int) -> None:
    c, now = bureau_db
    assert _run(c, _query("Enterprises in the region"), now, region) == [(n,)]


def test_silent_enterprises(bureau_db: tuple[Conn, datetime]) -> None:
    c, now = bureau_db
    assert _run(c, _query("Silent enterprises"), now, "320000") == [(2,)]
    assert _run(c, _query("Silent enterprises"), now, "110000") == [(0,)]
    rows = _run(c, _query("Silent enterprises: detail"), now, "320000")
    # never a message first (E3: no warning yet, the default limit), then E2 (the daemon's warning)
    assert [(r[0], r[1], r[4], r[5], r[6]) for r in rows] == [
        ("江宁气体", "320115", "no_message", None, None),  # no English name registered: the Chinese one
        ("Yangzi Petrochemical", "320116", "link_down", 3, "pushed"),
    ]
    assert rows[0][2] is None
    assert rows[1][3] == pytest.approx(7200, abs=120)


def test_online_rate_is_pooled(bureau_db: tuple[Conn, datetime]) -> None:
    c, now = bureau_db
    ((rate,),) = _run(c, _query("Online rate (last 24 h)"), now, "320116")
    assert float(rate) == pytest.approx((2 * 1440 + 720) / (3 * 1440))
    assert _run(c, _query("Online rate (last 24 h)"), now, "320115") == [(None,)]  # no sensor: no rate


def test_open_warnings_by_colour(bureau_db: tuple[Conn, datetime]) -> None:
    c, now = bureau_db
    q = _query("Open warnings by colour")
    assert _run(c, q, now, "320100") == [(1, 1, 0, 1)]  # red, orange, yellow, blue
    assert _run(c, q, now, "110105") == [(0, 0, 1, 0)]  # the closed blue one is not open


def test_per_county(bureau_db: tuple[Conn, datetime]) -> None:
    c, now = bureau_db
    rows = _run(c, _query("Region overview by county"), now, "000000")
    got = [(r[0], r[1], *r[2:8], None if r[8] is None else round(float(r[8]), 6)) for r in rows]
    assert got == [
        ("110105", "朝阳区", 1, 0, 0, 0, 1, 0, 1.0),
        ("320115", "江宁区", 1, 1, 0, 0, 0, 0, None),
        ("320116", "六合区", 2, 1, 1, 1, 0, 1, round(3600 / 4320, 6)),
    ]


def test_ranking_by_risk(bureau_db: tuple[Conn, datetime]) -> None:
    c, now = bureau_db
    rows = _run(c, _query("Enterprises ranked by risk (last 24 h)"), now, "000000")
    # E2: grade II (3) × (1 + red 4 + orange 3) × (2 − 0.5) = 36; E1: grade I (4) × (1 + blue 1) × 1 = 8;
    # E4: grade III (2) × (1 + yellow 2) × 1 = 6; E3: no grade (1) × 1 × (2 − nothing seen) = 2
    assert [(r[0], r[1], r[3], r[4], float(r[7])) for r in rows] == [
        (1, "Yangzi Petrochemical", "Grade 2", 2, 36.0),
        (2, "Hengxin Chemical", "Grade 1", 1, 8.0),
        (3, "Chaoyang Storage", "Grade 3", 1, 6.0),
        (4, "江宁气体", "Not a major hazard source", 0, 2.0),
    ]
    zh = _run(c, _query("企业风险排名 (近 24 小时)", "zh"), now, "320116")
    assert [(r[1], r[3]) for r in zh] == [("扬子石化", "二级"), ("恒信化工", "一级")]


def test_open_warnings_by_age_and_one_by_one(bureau_db: tuple[Conn, datetime]) -> None:
    c, now = bureau_db
    ages = _run(c, _query("Open warnings by colour and age"), now, "000000")
    # colour, < 1 h, < 1 day, < 7 days, older, total
    assert ages == [(4, 0, 0, 1, 0, 1), (3, 0, 1, 0, 0, 1), (2, 0, 0, 1, 0, 1), (1, 1, 0, 0, 0, 1)]
    assert _run(c, _query("Open warnings by colour and age"), now, "110000") == [
        (4, 0, 0, 0, 0, 0),
        (3, 0, 0, 0, 0, 0),
        (2, 0, 0, 1, 0, 1),
        (1, 0, 0, 0, 0, 0),
    ]
    rows = _run(c, _query("Open warnings"), now, "000000")
    # colour, kind, enterprise, overdue (red: 24 h to close, orange 72 h, yellow 168 h, blue 336 h)
    assert [(r[0], r[1], r[2], r[6]) for r in rows] == [
        (4, "red_unacked", "Yangzi Petrochemical", True),
        (3, "silent", "Yangzi Petrochemical", False),
        (2, "repeated", "Chaoyang Storage", False),
        (1, "assessment_overdue", "Hengxin Chemical", False),
    ]
    assert rows[0][5] == pytest.approx(30 * 3600, abs=120)
    assert rows[0][9] == "red_unacked:E2:7 warning"


def test_period_variable_offers_recent_periods(bureau_db: tuple[Conn, datetime]) -> None:
    c, _ = bureau_db
    model = render_json(next(b for b in BUREAU_BOARDS if b.name == "supervision-figures"), "en")
    var = next(v for v in model["templating"]["list"] if v["name"] == "period")
    got = [r[0] for r in c.execute(var["query"].encode()).fetchall()]
    row = c.execute(
        "SELECT to_char(n, 'YYYY-MM'), to_char(n, 'YYYY-\"Q\"Q'), to_char(n, 'YYYY'),"
        " to_char(n - interval '1 year', 'YYYY-MM')"
        " FROM (SELECT now() AT TIME ZONE 'Asia/Shanghai' AS n) x"
    ).fetchone()
    assert row is not None
    month, quarter, year, month_a_year_ago = row
    assert len(got) == 12 + 8 + 3
    assert got[0] == month and got[12] == quarter and got[20] == year  # the current ones first
    assert month_a_year_ago not in got[:12] and len(set(got)) == len(got)


@pytest.fixture
def supervised_db(db_dsn: str) -> Iterator[Conn]:
    """The bureau database of tests/bureau/supervision_rows.py (February 2024 at its edges)."""
    with psycopg.connect(db_dsn, autocommit=True) as c:
        seed_supervision(c)
        yield c


def test_supervision_figures_of_a_leap_february(supervised_db: Conn) -> None:
    c = supervised_db
    now = datetime(2024, 6, 1, tzinfo=UTC)  # the panels read now(): February 2024 is long over
    totals = _run(c, _query("The period in figures"), now, "320000", period="2024-02")
    # enterprises, screened, found, general, major, rectified, rate, opened, under supervision, overdue
    assert totals == [(2, 2, 3 + 1, 3, 1, 2, 0.5, 1, 2, 2)]
    assert _run(c, _query("The period in figures"), now, "110000", period="2024-02") == [
        (1, 0, 0, 0, 0, 0, None, 0, 0, 0)
    ]
    counties = _run(c, _query("By county"), now, "000000", period="2024-Q1")
    assert [(r[0], r[2], r[4], r[8], float(r[13])) for r in counties] == [
        ("110105", 1, 0, None, 0.0),  # no hidden danger: no rectification rate; no commitment filed
        ("320115", 1, 1, 0.0, 1 / 50),
        ("320116", 2, 7 - 1, 3 / 6, 4 / (91 + 27)),  # A (5 found, 3 rectified) and D (1 found)
    ]
    ents = _run(
        c,
        _query("By enterprise: hidden dangers, supervision, duties, commitments"),
        now,
        "320116",
        period="2024-02",
    )
    # A: duty checks 3 of 4 weeks, commitments 3 of 29 days (2 on time)
    assert [(r[0], r[2], r[6], r[10], r[11], r[12], r[13], r[14], r[15]) for r in ents] == [
        ("企业A", 3, 2 / 3, 4, 3, 0.75, 29, 3 / 29, 2 / 29)
    ]
