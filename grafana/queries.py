"""Every SQL a generated dashboard sends, ready to expand and run.

Reads the dashboard JSON (what Grafana reads), not the Python, so the tests and
``bench/panels.py`` check exactly what is deployed: panel targets, template
variable queries and annotation queries, with the max data points and minimum
interval Grafana would use for ``$__interval``.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from hazmon.grafana.macros import TimeRange, Variable, expand

__all__ = ["DEFAULT_MIN_INTERVAL", "Query", "panel_queries", "variable_combinations"]

DEFAULT_MIN_INTERVAL = "1s"
"""The data source's ``timeInterval`` (grafana/provisioning/datasources/hazmon.yaml)."""

_DEFAULT_WIDTH_POINTS = 1000  # a panel without maxDataPoints gets about its width in px


@dataclass(frozen=True, slots=True)
class Query:
    """One query of one dashboard."""

    dashboard: str  # uid
    panel_id: int  # 0 for annotations and variables
    title: str
    ref_id: str
    sql: str
    format: str
    max_data_points: int
    min_interval: str | None
    datasource: Mapping[str, Any] | None

    @property
    def key(self) -> str:
        return f"{self.dashboard}/{self.panel_id}/{self.ref_id} {self.title}"

    def expand(self, rng: TimeRange, variables: Mapping[str, Variable | str]) -> str:
        return expand(
            self.sql,
            rng,
            variables,
            max_data_points=self.max_data_points,
            min_interval=self.min_interval or DEFAULT_MIN_INTERVAL,
        )


def _panels(model: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    for p in model.get("panels", []):
        yield p
        yield from p.get("panels", [])


def panel_queries(model: Mapping[str, Any]) -> list[Query]:
    """Panel targets and annotation queries of a dashboard model."""
    uid = str(model["uid"])
    out: list[Query] = []
    for p in _panels(model):
        for t in p.get("targets", []):
            out.append(
                Query(
                    uid,
                    int(p["id"]),
                    str(p.get("title", "")),
                    str(t["refId"]),
                    str(t["rawSql"]),
                    str(t.get("format", "table")),
                    int(p.get("maxDataPoints") or _DEFAULT_WIDTH_POINTS),
                    p.get("interval") or None,
                    t.get("datasource"),
                )
            )
    for a in model.get("annotations", {}).get("list", []):
        t = a.get("target")
        if t and "rawSql" in t:
            out.append(
                Query(
                    uid,
                    0,
                    f"annotation {a.get('name', '')}",
                    str(t["refId"]),
                    str(t["rawSql"]),
                    "table",
                    _DEFAULT_WIDTH_POINTS,
                    None,
                    a.get("datasource"),
                )
            )
    return out


def variable_combinations(
    model: Mapping[str, Any],
    rng: TimeRange,
    run: Callable[[str], Sequence[tuple[Any, ...]]],
    limit: int = 50,
) -> list[dict[str, Variable]]:
    """Every combination of the dashboard's query-variable options, in order.

    Each variable's query is expanded with the variables before it (as Grafana
    refreshes them in order) and run with ``run``; its ``__value`` column (or
    the first column) gives the options.
    """
    combos: list[dict[str, Variable]] = [{}]
    for var in model.get("templating", {}).get("list", []):
        if var.get("type") != "query":
            continue
        name = str(var["name"])
        nxt: list[dict[str, Variable]] = []
        for c in combos:
            sql = expand(str(var["query"]), rng, c, max_data_points=_DEFAULT_WIDTH_POINTS)
            values = [str(r[0]) for r in run(sql)]
            nxt.extend({**c, name: Variable(v)} for v in values)
        combos = list(itertools.islice(nxt, limit))
    return combos
