"""The alarm component's shape: no room past 800 lines, no import circle between its modules."""

from __future__ import annotations

import ast
from pathlib import Path

ALARMS = Path(__file__).resolve().parents[2] / "alarms"


def _alarm_imports(path: Path) -> set[str]:
    """The hazmon.alarms modules ``path`` imports, at any level (TYPE_CHECKING blocks too)."""
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        names = (
            [a.name for a in node.names]
            if isinstance(node, ast.Import)
            else [node.module]
            if isinstance(node, ast.ImportFrom) and node.module
            else []
        )
        out |= {n.split(".")[2] for n in names if n.startswith("hazmon.alarms.")}
    return out


def test_no_alarm_module_is_over_800_lines() -> None:
    sizes = {p.name: len(p.read_text(encoding="utf-8").splitlines()) for p in ALARMS.glob("*.py")}
    assert {n: s for n, s in sizes.items() if s > 800} == {}


def test_alarm_modules_import_each_other_without_a_circle() -> None:
    graph = {p.stem: _alarm_imports(p) for p in ALARMS.glob("*.py") if p.stem != "__init__"}
    circles: list[list[str]] = []

    def walk(node: str, path: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in path:
                circles.append([*path[path.index(nxt) :], nxt])
            elif nxt in graph:
                walk(nxt, [*path, nxt])

    for start in sorted(graph):
        walk(start, [start])
    assert circles == []
