"""Generate the dashboards' JSON (both locales) and check the committed copies.

Two sets: ``BOARDS`` read an enterprise's database (the plant daemon; provisioned by
grafana/provisioning/{datasources,dashboards}), ``BUREAU_BOARDS`` the bureau daemon's
(grafana/provisioning/bureau-platform/...). ``hazmon grafana build`` writes both.

``grafana/dashboards/<locale>/<folder>/<name>.json`` is written from the Python
modules and never edited by hand; ``hazmon grafana build --check`` (and
tests/grafana) fail when a committed file differs from a fresh build.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grafanalib._gen import DashboardEncoder
from grafanalib.core import Dashboard

from hazmon.grafana import bureau, bureau_figures, bureau_platform, detail, health, overview
from hazmon.grafana.texts import LOCALES, Texts

__all__ = [
    "ALL_BOARDS",
    "BOARDS",
    "BUREAU_BOARDS",
    "DEFAULT_OUT",
    "Board",
    "check",
    "render",
    "render_json",
    "write",
]

DEFAULT_OUT = Path(__file__).resolve().parent / "dashboards"
"""Where the generated JSON lives in the repository (grafana/dashboards)."""


@dataclass(frozen=True, slots=True)
class Board:
    """One dashboard: the provisioning folder it goes to, its file name, its builder."""

    folder: str  # control-room | bureau | engineering | bureau-platform (provisioning)
    name: str
    build: Callable[[Texts], Dashboard]


BOARDS: tuple[Board, ...] = (
    Board("control-room", "overview", overview.dashboard),
    Board("control-room", "hazard-source", detail.dashboard),
    Board("engineering", "sensor-health", health.dashboard),
    Board("bureau", "bureau-overview", bureau.dashboard),
    Board("bureau", "assessment-register", bureau.register_dashboard),
)
"""Dashboards on an enterprise's database (the plant daemon's)."""

BUREAU_BOARDS: tuple[Board, ...] = (
    Board("bureau-platform", "region-overview", bureau_platform.region_dashboard),
    Board("bureau-platform", "supervision-figures", bureau_figures.supervision_dashboard),
)
"""Dashboards on the bureau daemon's database (``hazmon bureau run``)."""

ALL_BOARDS: tuple[Board, ...] = BOARDS + BUREAU_BOARDS


def render_json(board: Board, locale: str) -> dict[str, Any]:
    """The dashboard model as Grafana reads it (plain JSON types)."""
    text = json.dumps(board.build(Texts(locale)), cls=DashboardEncoder)
    data: dict[str, Any] = json.loads(text)
    return data


def render(locales: tuple[str, ...] = LOCALES) -> dict[str, str]:
    """Relative path -> file text of every dashboard in every locale."""
    out: dict[str, str] = {}
    for loc in locales:
        for b in ALL_BOARDS:
            body = json.dumps(render_json(b, loc), indent=2, sort_keys=True, ensure_ascii=False)
            out[f"{loc}/{b.folder}/{b.name}.json"] = body + "\n"
    return out


def write(out_dir: Path = DEFAULT_OUT) -> list[Path]:
    """Write every file (removing stale generated ones); returns the files written."""
    files = render()
    written: list[Path] = []
    for rel, text in files.items():
        p = out_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
        written.append(p)
    for old in out_dir.rglob("*.json") if out_dir.exists() else ():
        if old.relative_to(out_dir).as_posix() not in files:
            old.unlink()
    return written


def check(out_dir: Path = DEFAULT_OUT) -> list[str]:
    """Differences between ``out_dir`` and a fresh build, one sentence each (empty: in step)."""
    files = render()
    problems: list[str] = []
    for rel, text in files.items():
        p = out_dir / rel
        if not p.exists():
            problems.append(f"{p}: missing (run `hazmon grafana build`)")
        elif p.read_text(encoding="utf-8") != text:
            problems.append(f"{p}: differs from a fresh build (edited by hand, or not rebuilt)")
    if out_dir.exists():
        for extra in sorted(out_dir.rglob("*.json")):
            if extra.relative_to(out_dir).as_posix() not in files:
                problems.append(f"{extra}: not produced by the build (remove it)")
    return problems
