"""hazmon.grafana: dashboards as code (grafanalib), provisioning, Grafana's SQL macros.

`hazmon grafana build` writes ``grafana/dashboards/<locale>/<folder>/*.json``;
``grafana/provisioning`` holds the data source and dashboard providers Grafana
loads at start (``provisioning/bureau-platform`` those of a bureau's Grafana).
`hazmon.grafana.macros` expands panel SQL the way Grafana does (used by the tests
and bench/panels.py).
"""

from hazmon.grafana.build import (
    ALL_BOARDS,
    BOARDS,
    BUREAU_BOARDS,
    DEFAULT_OUT,
    Board,
    check,
    render,
    render_json,
    write,
)
from hazmon.grafana.texts import LOCALES, Texts

__all__ = [
    "ALL_BOARDS",
    "BOARDS",
    "BUREAU_BOARDS",
    "DEFAULT_OUT",
    "LOCALES",
    "Board",
    "Texts",
    "check",
    "render",
    "render_json",
    "write",
]
