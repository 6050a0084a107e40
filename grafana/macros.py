"""What Grafana does to a panel's SQL before PostgreSQL sees it, ported exactly.

Two stages, as in Grafana:

1. The browser (``templateSrv.replace``) substitutes dashboard variables and the
   built-ins ``$__interval``, ``$__interval_ms``, ``$__range*``, ``$__from``,
   ``$__to``. The interval comes from ``rangeutil.calculateInterval``: the range
   divided by the query's max data points, rounded by ``roundInterval``, never
   below the panel's (or data source's) minimum interval. A single-value
   variable is inserted as is (quotes doubled: ``SqlDatasource.interpolateVariable``);
   a multi-value or include-all variable becomes a comma-separated list of quoted
   literals.
2. The PostgreSQL data source backend (``pkg/tsdb/grafana-postgresql-datasource/
   macros.go``) expands ``$__timeFilter(col)``, ``$__timeGroup(col, '5m')``,
   ``$__timeGroupAlias``, ``$__timeFrom()``, ``$__timeTo()``,
   ``$__unixEpochFilter(col)``... With the TimescaleDB option on (as provisioned)
   ``$__timeGroup`` becomes ``time_bucket('300.000s',col)``.

Tests and ``bench/panels.py`` run every panel's SQL through `expand` so what
they execute is what Grafana would send.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

__all__ = [
    "MacroError",
    "TimeRange",
    "Variable",
    "calculate_interval",
    "expand",
    "expand_macros",
    "parse_interval_ms",
    "replace_variables",
    "round_interval",
    "seconds_to_hms",
]


class MacroError(ValueError):
    """A macro Grafana would also refuse (unknown macro, missing argument)."""


@dataclass(frozen=True, slots=True)
class TimeRange:
    """A dashboard time range, both ends in UTC."""

    start: datetime
    end: datetime

    @property
    def ms(self) -> int:
        return round((self.end - self.start).total_seconds() * 1000)


@dataclass(frozen=True, slots=True)
class Variable:
    """The current value of a dashboard variable."""

    value: str | Sequence[str]
    multi: bool = False
    include_all: bool = False


# rangeutil.roundInterval: (upper bound exclusive in ms, result in ms)
_ROUND: tuple[tuple[float, int], ...] = (
    (10, 1),
    (15, 10),
    (35, 20),
    (75, 50),
    (150, 100),
    (350, 200),
    (750, 500),
    (1500, 1000),
    (3500, 2000),
    (7500, 5000),
    (12500, 10000),
    (17500, 15000),
    (25000, 20000),
    (45000, 30000),
    (90000, 60000),
    (210000, 120000),
    (450000, 300000),
    (750000, 600000),
    (1050000, 900000),
    (1500000, 1200000),
    (2700000, 1800000),
    (5400000, 3600000),
    (9000000, 7200000),
    (16200000, 10800000),
    (32400000, 21600000),
    (86400000, 43200000),
    (604800000, 86400000),
    (1814400000, 604800000),
    (3628800000, 2592000000),
)


def round_interval(interval_ms: float) -> int:
    """Grafana's ``roundInterval``: a raw interval in ms to a "nice" one."""
    for bound, result in _ROUND:
        if interval_ms < bound:
            return result
    return 31536000000


_UNITS_S = {"y": 31536000, "M": 2592000, "w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1, "ms": 0.001}
_INTERVAL_RE = re.compile(r"(-?\d+(?:\.\d+)?)(ms|[Mwdhmsy])")


def parse_interval_ms(text: str) -> int:
    """Grafana's ``intervalToMs`` ("10s", "1m", "500ms"; a bare number is seconds)."""
    try:
        return int(float(text) * 1000) if float(text) else 0
    except ValueError:
        pass
    m = _INTERVAL_RE.search(text)
    if m is None:
        raise MacroError(f"invalid interval '{text}'")
    return round(_UNITS_S[m.group(2)] * 1000 * int(float(m.group(1))))


def seconds_to_hms(seconds: float) -> str:  # noqa: PLR0911 - mirrors Grafana's function line by line
    """Grafana's ``secondsToHms``: the largest whole unit ("1h", "30s", "500ms")."""
    years = math.floor(seconds / 31536000)
    if years:
        return f"{years}y"
    days = math.floor((seconds % 31536000) / 86400)
    if days:
        return f"{days}d"
    hours = math.floor((seconds % 31536000 % 86400) / 3600)
    if hours:
        return f"{hours}h"
    minutes = math.floor((seconds % 31536000 % 86400 % 3600) / 60)
    if minutes:
        return f"{minutes}m"
    secs = math.floor(seconds % 31536000 % 86400 % 3600 % 60)
    if secs:
        return f"{secs}s"
    ms = math.floor(seconds * 1000.0)
    if ms:
        return f"{ms}ms"
    return "less than a millisecond"


def calculate_interval(
    rng: TimeRange, max_data_points: int, min_interval: str | None = None
) -> tuple[str, int]:
    """Grafana's ``calculateInterval``: ($__interval, $__interval_ms) for a query."""
    low = parse_interval_ms(min_interval) if min_interval else 1
    ms = round_interval(rng.ms / max_data_points)
    ms = max(ms, low)
    return seconds_to_hms(ms / 1000), ms


def _quote(v: str) -> str:
    return "'" + v.replace("'", "''") + "'"


def _format(var: Variable) -> str:
    """``SqlDatasource.interpolateVariable`` of the PostgreSQL data source."""
    if isinstance(var.value, str):
        if var.multi or var.include_all:
            return _quote(var.value)
        return var.value.replace("'", "''")
    return ",".join(_quote(v) for v in var.value)


# templateSrv's variable regex: $name, [[name]] / [[name:fmt]], ${name} / ${name:fmt}
_VAR_RE = re.compile(r"\$(\w+)|\[\[(\w+?)(?::(\w+))?\]\]|\${(\w+)(?:\.([^:^\}]+))?(?::([^\}]+))?}")


def replace_variables(sql: str, variables: Mapping[str, Variable | str]) -> str:
    """Stage 1: dashboard variables and built-ins; unknown names are left as they are."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(2) or m.group(4)
        fmt = m.group(3) or m.group(6)
        v = variables.get(name)
        if v is None:
            return m.group(0)
        if isinstance(v, str):
            return v
        if fmt == "raw":
            return v.value if isinstance(v.value, str) else ",".join(v.value)
        if fmt is not None:
            raise MacroError(f"variable format '{fmt}' is not supported by this expander")
        return _format(v)

    return _VAR_RE.sub(sub, sql)


_MACRO_RE = re.compile(r"\$([_a-zA-Z0-9]+)\(([^\)]*)\)")


def _rfc3339(t: datetime) -> str:
    """Go's time.RFC3339Nano in UTC (trailing zeros of the fraction dropped)."""
    t = t.astimezone(UTC)
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    if t.microsecond:
        base += ("." + f"{t.microsecond:06d}").rstrip("0")
    return base + "Z"


def _go_float(x: float) -> str:
    """Go's %v of a float64 (whole numbers without a fraction)."""
    return str(int(x)) if float(x).is_integer() else repr(x)


def _parse_go_interval_s(text: str) -> float:
    """gtime.ParseInterval for the forms Grafana sends ("5m", "1h", "1d", "300ms")."""
    t = text.strip("'")
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d|w|M|y)", t)
    if m is None:
        raise MacroError(f"error parsing interval {text}")
    return int(m.group(1)) * _UNITS_S[m.group(2)]


def _macro(name: str, args: list[str], rng: TimeRange, timescaledb: bool) -> str:  # noqa: PLR0911, PLR0912 - macros.go's switch
    a0 = args[0] if args and args[0] else None
    if name == "__time":
        if a0 is None:
            raise MacroError(f"missing time column argument for macro {name}")
        return f'{a0} AS "time"'
    if name == "__timeEpoch":
        if a0 is None:
            raise MacroError(f"missing time column argument for macro {name}")
        return f'extract(epoch from {a0}) as "time"'
    if name == "__timeFilter":
        if a0 is None:
            raise MacroError(f"missing time column argument for macro {name}")
        return f"{a0} BETWEEN '{_rfc3339(rng.start)}' AND '{_rfc3339(rng.end)}'"
    if name == "__timeFrom":
        return f"'{_rfc3339(rng.start)}'"
    if name == "__timeTo":
        return f"'{_rfc3339(rng.end)}'"
    if name in ("__timeGroup", "__timeGroupAlias"):
        if len(args) < 2:
            raise MacroError(f"macro {name} needs time column and interval and optional fill value")
        secs = _parse_go_interval_s(args[1])
        if timescaledb:
            tg = f"time_bucket('{secs:.3f}s',{args[0]})"
        else:
            tg = f"floor(extract(epoch from {args[0]})/{_go_float(secs)})*{_go_float(secs)}"
        return tg + ' AS "time"' if name == "__timeGroupAlias" else tg
    if name == "__unixEpochFilter":
        if a0 is None:
            raise MacroError(f"missing time column argument for macro {name}")
        f, t = int(rng.start.timestamp()), int(rng.end.timestamp())
        return f"{a0} >= {f} AND {a0} <= {t}"
    if name in ("__unixEpochGroup", "__unixEpochGroupAlias"):
        if len(args) < 2:
            raise MacroError(f"macro {name} needs time column and interval and optional fill value")
        s = _go_float(_parse_go_interval_s(args[1]))
        g = f"floor(({args[0]})/{s})*{s}"
        return g + ' AS "time"' if name == "__unixEpochGroupAlias" else g
    raise MacroError(f'unknown macro "{name}"')


def expand_macros(sql: str, rng: TimeRange, *, timescaledb: bool = True) -> str:
    """Stage 2: the PostgreSQL data source's macro engine (macros.go)."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1)
        if name == "__timeGroup":
            idx = sql.find(m.group(0))
            end = idx + len(m.group(0))
            if idx >= 0 and end < len(sql) and sql[end] == ",":
                name = "__timeGroupAlias"  # pre-5.3 compatibility, as Grafana does
        args = [a.strip(" ") for a in m.group(2).split(",")]
        return _macro(name, args, rng, timescaledb)

    return _MACRO_RE.sub(sub, sql)


def expand(
    sql: str,
    rng: TimeRange,
    variables: Mapping[str, Variable | str],
    *,
    max_data_points: int,
    min_interval: str | None = None,
    timescaledb: bool = True,
) -> str:
    """Both stages: the SQL Grafana's PostgreSQL data source would run."""
    interval, interval_ms = calculate_interval(rng, max_data_points, min_interval)
    builtins: dict[str, Variable | str] = {
        "__interval": interval,
        "__interval_ms": str(interval_ms),
        "__range": f"{rng.ms // 1000}s",
        "__range_s": str(rng.ms // 1000),
        "__range_ms": str(rng.ms),
        "__from": str(round(rng.start.timestamp() * 1000)),
        "__to": str(round(rng.end.timestamp() * 1000)),
    }
    return expand_macros(replace_variables(sql, {**builtins, **variables}), rng, timescaledb=timescaledb)
