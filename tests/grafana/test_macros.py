"""Grafana's variable and macro expansion, ported: exact strings, table-driven.

Expected values are what Grafana's code produces (rangeutil.ts roundInterval,
secondsToHms, calculateInterval; SqlDatasource.interpolateVariable; the
PostgreSQL data source's macros.go).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hazmon.grafana.macros import (
    MacroError,
    TimeRange,
    Variable,
    calculate_interval,
    expand,
    expand_macros,
    replace_variables,
    round_interval,
    seconds_to_hms,
)

T0 = datetime(2026, 11, 28, 10, 0, 0, tzinfo=UTC)
RNG = TimeRange(T0 - timedelta(hours=1), T0)


@pytest.mark.parametrize(
    ("raw_ms", "rounded"),
    [
        (5, 1),
        (12, 10),
        (7200, 5000),
        (7499, 5000),
        (7500, 10000),
        (60000, 60000),
        (89999, 60000),
        (90000, 120000),
        (172800, 120000),
        (5184000, 3600000),
        (5400000, 7200000),
        (10**12, 31536000000),
    ],
)
def test_round_interval(raw_ms: float, rounded: int) -> None:
    assert round_interval(raw_ms) == rounded


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(3600, "1h"), (7200, "2h"), (90, "1m"), (5, "5s"), (0.5, "500ms"), (86400, "1d"), (31536000, "1y")],
)
def test_seconds_to_hms(seconds: float, text: str) -> None:
    assert seconds_to_hms(seconds) == text


@pytest.mark.parametrize(
    ("span", "points", "min_interval", "expected"),
    [
        (timedelta(hours=1), 500, None, ("5s", 5000)),  # 7.2 s -> 5 s
        (timedelta(hours=1), 500, "1m", ("1m", 60000)),  # never below the minimum
        (timedelta(days=1), 500, "1s", ("2m", 120000)),  # 172.8 s -> 2 m
        (timedelta(days=30), 500, "1s", ("1h", 3600000)),  # 5184 s -> 1 h: readings_1h
        (timedelta(days=7), 500, "1s", ("20m", 1200000)),
    ],
)
def test_calculate_interval(
    span: timedelta, points: int, min_interval: str | None, expected: tuple[str, int]
) -> None:
    assert calculate_interval(TimeRange(T0 - span, T0), points, min_interval) == expected


def test_variables_single_multi_and_builtin() -> None:
    sql = "WHERE a = '$ent' AND b IN ($tags) AND c = ${ent} AND d = [[ent]] AND e = $unknown AND f = $__interval"
    out = replace_variables(
        sql,
        {"ent": Variable("o'hx"), "tags": Variable(["LT-1", "it's"], multi=True), "__interval": "5s"},
    )
    assert out == (
        "WHERE a = 'o''hx' AND b IN ('LT-1','it''s') AND c = o''hx AND d = o''hx AND e = $unknown AND f = 5s"
    )


def test_include_all_single_value_is_quoted() -> None:
    assert replace_variables("x IN ($v)", {"v": Variable("a", include_all=True)}) == "x IN ('a')"


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("WHERE $__timeFilter(time)", "WHERE time BETWEEN '2026-11-28T09:00:00Z' AND '2026-11-28T10:00:00Z'"),
        ("$__timeFrom() / $__timeTo()", "'2026-11-28T09:00:00Z' / '2026-11-28T10:00:00Z'"),
        ("SELECT $__timeGroupAlias(time, '5m')", "SELECT time_bucket('300.000s',time) AS \"time\""),
        ("SELECT $__timeGroupAlias(time, 1h)", "SELECT time_bucket('3600.000s',time) AS \"time\""),
        ("SELECT $__timeGroup(time, 5m), v", "SELECT time_bucket('300.000s',time) AS \"time\", v"),
        ("GROUP BY $__timeGroup(time, 5m)", "GROUP BY time_bucket('300.000s',time)"),
        ("WHERE $__unixEpochFilter(ts)", "WHERE ts >= 1795856400 AND ts <= 1795860000"),
        ("SELECT $__time(t)", 'SELECT t AS "time"'),
        ("SELECT $__timeEpoch(t)", 'SELECT extract(epoch from t) as "time"'),
        ("SELECT $__unixEpochGroupAlias(ts, 10m)", 'SELECT floor((ts)/600)*600 AS "time"'),
    ],
)
def test_macros_timescaledb_on(sql: str, expected: str) -> None:
    assert expand_macros(sql, RNG, timescaledb=True) == expected


def test_time_group_without_timescaledb() -> None:
    assert (
        expand_macros("SELECT $__timeGroupAlias(time, 5m)", RNG, timescaledb=False)
        == 'SELECT floor(extract(epoch from time)/300)*300 AS "time"'
    )


def test_fractional_seconds_in_time_filter() -> None:
    rng = TimeRange(T0.replace(microsecond=120000), T0.replace(microsecond=500))
    assert expand_macros("$__timeFrom()", rng) == "'2026-11-28T10:00:00.12Z'"
    assert expand_macros("$__timeTo()", rng) == "'2026-11-28T10:00:00.0005Z'"


@pytest.mark.parametrize("sql", ["$__timeFilter()", "$__timeGroup(time)", "$__bogus(x)"])
def test_bad_macros_are_refused(sql: str) -> None:
    with pytest.raises(MacroError):
        expand_macros(sql, RNG)


def test_expand_both_stages() -> None:
    sql = "SELECT $__timeGroupAlias(time, $__interval), v FROM t WHERE $__timeFilter(time) AND s = '$s' LIMIT $__interval_ms"
    out = expand(sql, RNG, {"s": Variable("LT-101")}, max_data_points=500, min_interval="1s")
    assert out == (
        "SELECT time_bucket('5.000s',time) AS \"time\", v FROM t WHERE time BETWEEN "
        "'2026-11-28T09:00:00Z' AND '2026-11-28T10:00:00Z' AND s = 'LT-101' LIMIT 5000"
    )
