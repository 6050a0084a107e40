"""Every panel's SQL, expanded as Grafana expands it, against the example plant's history."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import psycopg
import pytest

from hazmon.grafana.build import BOARDS, render_json
from hazmon.grafana.macros import TimeRange
from hazmon.grafana.queries import Query, panel_queries, variable_combinations
from hazmon.grafana.texts import LOCALES

RANGES = {"1h": timedelta(hours=1), "1d": timedelta(days=1), "30d": timedelta(days=30)}

# Panels allowed to return no rows for a range even with the fixture's data, and why.
MAY_BE_EMPTY: dict[tuple[str, str], str] = {}


def _models() -> list[tuple[str, dict[str, Any]]]:
    return [(loc, render_json(b, loc)) for loc in LOCALES for b in BOARDS]


@pytest.mark.slow
@pytest.mark.parametrize("range_name", sorted(RANGES))
def test_every_panel_query_runs_and_has_rows(panel_db: tuple[str, datetime], range_name: str) -> None:
    dsn, now = panel_db
    rng = TimeRange(now - RANGES[range_name], now)
    failures: list[str] = []
    empty: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as conn:

        def run(sql: str) -> list[tuple[Any, ...]]:
            return conn.execute(sql.encode()).fetchall()

        for loc, model in _models():
            combos = variable_combinations(model, rng, run)
            assert combos, f"{model['uid']}: no value for its variables"
            for q in panel_queries(model):
                rows = 0
                for combo in combos:
                    sql = q.expand(rng, combo)
                    try:
                        rows += len(run(sql))
                    except psycopg.Error as e:
                        failures.append(f"{loc} {q.key} {dict(combo)}: {str(e).strip()}\n{sql}")
                        break
                if rows == 0 and (q.dashboard, q.title) not in MAY_BE_EMPTY:
                    empty.append(f"{loc} {q.key}")
    assert failures == []
    assert empty == []


def test_time_series_panels_return_time_first(panel_db: tuple[str, datetime]) -> None:
    """Grafana's time series format needs a "time" column, sorted ascending."""
    dsn, now = panel_db
    rng = TimeRange(now - timedelta(hours=6), now)
    with psycopg.connect(dsn, autocommit=True) as conn:

        def run(sql: str) -> list[tuple[Any, ...]]:
            return conn.execute(sql.encode()).fetchall()

        for _, model in _models()[: len(BOARDS)]:
            combos = variable_combinations(model, rng, run)
            for q in panel_queries(model):
                if q.format != "time_series":
                    continue
                for combo in combos:
                    cur = conn.execute(q.expand(rng, combo).encode())
                    assert cur.description is not None
                    assert cur.description[0].name == "time", q.key
                    times = [r[0] for r in cur.fetchall()]
                    assert times == sorted(times), q.key


def _run_panel(
    conn: psycopg.Connection[tuple[object, ...]], q: Query, rng: TimeRange, **variables: str
) -> list[tuple[Any, ...]]:
    return conn.execute(q.expand(rng, variables).encode()).fetchall()


def _query(uid: str, title: str, locale: str = "en") -> Query:
    for b in BOARDS:
        model = render_json(b, locale)
        if model["uid"] == uid:
            for q in panel_queries(model):
                if q.title == title:
                    return q
    raise KeyError(f"{uid}: no panel '{title}'")


def test_overview_shows_the_situations(fresh_db: tuple[str, datetime]) -> None:
    dsn, now = fresh_db
    rng = TimeRange(now - timedelta(hours=6), now)
    with psycopg.connect(dsn, autocommit=True) as conn:
        tiles = _run_panel(
            conn,
            _query("hazmon-overview", "Hazard sources · worst active warning"),
            rng,
            enterprise="hx-chem",
        )
        assert [(r[0], r[2]) for r in tiles] == [
            ("cl2-tankfarm", 4),
            ("lpg-spheres", 2),
            ("meoh-tankfarm", 0),
        ]
        key = {
            r[0]: r[8]
            for r in _run_panel(conn, _query("hazmon-overview", "Key sensors"), rng, enterprise="hx-chem")
        }
        assert key["PT-101"] == "h"
        assert key["LT-101"] == "normal"
        active = _run_panel(conn, _query("hazmon-overview", "Active alarms"), rng, enterprise="hx-chem")
        assert [(r[1], r[2], r[4]) for r in active] == [
            ("cl2-tankfarm", "AT-101", "active_unacked"),
            ("cl2-tankfarm", "PT-101", "active_acked"),
            ("lpg-spheres", "GT-201", "rtn_unacked"),
            ("lpg-spheres", "LT-201", "active_acked"),
            ("cl2-tankfarm", "TT-103", "active_unacked"),  # blue: the instrument fault
        ]
        stale = _run_panel(conn, _query("hazmon-overview", "Stale sensors"), rng, enterprise="hx-chem")
        assert stale == [(1,)]


def test_sensor_health_classifies_each_fault(fresh_db: tuple[str, datetime]) -> None:
    dsn, now = fresh_db
    rng = TimeRange(now - timedelta(hours=1), now)
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = _run_panel(conn, _query("hazmon-sensor-health", "Sensor status"), rng, enterprise="hx-chem")
        faults = _run_panel(
            conn,
            _query(
                "hazmon-sensor-health",
                "Instrument fault alarms (stuck, spike, out of range, bad quality, chattering)",
            ),
            rng,
            enterprise="hx-chem",
        )
    status = {r[0]: r[3] for r in rows}
    not_good = {r[0]: r[7] for r in rows}
    completeness = {r[0]: r[8] for r in rows}
    assert status["AT-102"] == "stale"
    assert status["TT-103"] == "bad"
    assert status["FT-301"] == "out_of_range"
    assert sum(1 for s in status.values() if s == "ok") == len(status) - 3
    assert not_good["TT-103"] == 120  # 10 minutes at 5 s
    assert completeness["LT-101"] == pytest.approx(1.0, abs=0.02)
    assert completeness["AT-102"] == pytest.approx(45 / 60, abs=0.03)  # silent for the last 15 of 60 min
    assert [(r[0], r[2], r[3]) for r in faults] == [("TT-103", "bad_quality", "active_unacked")]


def test_limits_are_drawn_for_the_selected_hazard_source(panel_db: tuple[str, datetime]) -> None:
    dsn, now = panel_db
    rng = TimeRange(now - timedelta(days=30), now)
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = _run_panel(
            conn,
            _query("hazmon-hazard-source", "Level"),
            rng,
            enterprise="hx-chem",
            hazard_source="cl2-tankfarm",
        )
    names = {r[1] for r in rows}
    assert {"LT-101 [m]", "LT-102 [m]", "LT-103 [m]"} <= names
    assert {"LT-101 HH", "LT-101 H", "LT-101 L", "LT-101 LL"} <= names
    hh = [r for r in rows if r[1] == "LT-101 HH"]
    assert [r[0] for r in hh] == [rng.start, rng.end]
    assert {r[2] for r in hh} == {2.04}
    # 30 days: hourly buckets from readings_1h (about 720 points per sensor, not 40 000)
    assert 700 <= sum(1 for r in rows if r[1] == "LT-101 [m]") <= 722


def test_prediction_finds_the_rising_level(panel_db: tuple[str, datetime]) -> None:
    dsn, now = panel_db
    rng = TimeRange(now - timedelta(hours=1), now)
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = _run_panel(
            conn,
            _query("hazmon-hazard-source", "Trend: predicted limit crossings"),
            rng,
            enterprise="hx-chem",
            hazard_source="cl2-tankfarm",
        )
    crossings = [r[6] for r in rows if r[6] is not None]
    assert crossings == sorted(crossings)  # soonest first
    first = {r[0]: r for r in rows}["LT-102"]
    assert first[4] == "HH"
    # 0.1 m per 30 min from H - 0.2 = 1.72 m: HH 2.04 is 0.22 m away at 0.2 m/h -> 66 min
    assert first[3] == pytest.approx(0.1 / 30, rel=0.02)
    assert first[6] - now == pytest.approx(timedelta(minutes=66), abs=timedelta(minutes=2))


def test_bureau_sees_escalations_and_overdue(panel_db: tuple[str, datetime]) -> None:
    dsn, now = panel_db
    rng = TimeRange(now - timedelta(days=1), now)
    with psycopg.connect(dsn, autocommit=True) as conn:
        by_tier = _run_panel(
            conn, _query("hazmon-bureau", "Escalated warnings by tier and handling"), rng, region="320000"
        )
        assert by_tier == [(4, "pending", 1), (3, "received", 1)]
        elsewhere = _run_panel(
            conn, _query("hazmon-bureau", "Escalated warnings by tier and handling"), rng, region="110000"
        )
        assert elsewhere == []
        overdue = _run_panel(
            conn, _query("hazmon-bureau", "Overdue assessments and filings"), rng, region="320116"
        )
        # ordered by next due date; meoh-tankfarm has no assessment on record: due today
        assert [(r[1], r[8], r[9]) for r in overdue] == [
            ("cl2-tankfarm", True, False),
            ("meoh-tankfarm", True, False),
            ("lpg-spheres", False, True),
        ]
        kpis = _run_panel(conn, _query("hazmon-bureau", "Alarm KPIs by enterprise"), rng, region="320116")
        assert len(kpis) == 1
        _, _avg, peak, floods, standing, chattering = kpis[0]
        assert (floods, standing, chattering) == (1, 1, 1)
        assert peak >= 3


def test_models_are_json_round_trip_stable() -> None:
    for _, model in _models():
        assert json.loads(json.dumps(model)) == model
