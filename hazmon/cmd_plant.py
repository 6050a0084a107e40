"""`hazmon check FILE` and `hazmon plant FILE [--json]`."""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

from hazmon.config import load_config
from hazmon.plant import ConfigError, Plant, grade_source, load
from hazmon.plant.standards import LEL_REFERENCE

__all__ = ["plant_summary", "register"]

_TODO = re.compile(r"#\s*(TODO\b.*)$")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "check",
        help="check a plant file or a daemon config (and its plant file); print every problem as "
        "file:line: field: reason",
    )
    p.add_argument("file")
    p.set_defaults(handler=_check)
    p = sub.add_parser("plant", help="show each hazard source with S, R and grade (GB 18218-2018)")
    p.add_argument("file")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(handler=_plant)


def load_or_report(path: str) -> Plant | None:
    """Load a plant file, printing its problems to stderr when it has any."""
    try:
        return load(path)
    except ConfigError as e:
        for prob in e.problems:
            print(prob, file=sys.stderr)
        print(f"{path}: {len(e.problems)} problem(s)", file=sys.stderr)
        return None


_DAEMON_KEY = re.compile(r"^plant\s*:", re.MULTILINE)
_PLANT_KEY = re.compile(r"^enterprise\s*:", re.MULTILINE)


def _is_daemon_config(path: str) -> bool:
    """A daemon config names its plant file (``plant:``); a plant file starts at ``enterprise:``."""
    try:
        text = Path(path).read_bytes().decode("utf-8", errors="replace")
    except OSError:
        return False
    return bool(_DAEMON_KEY.search(text)) and not _PLANT_KEY.search(text)


def _check(args: argparse.Namespace) -> int:
    if _is_daemon_config(args.file):
        try:
            _, daemon_plant = load_config(args.file)
        except ConfigError as e:
            for prob in e.problems:
                print(prob, file=sys.stderr)
            print(f"{args.file}: {len(e.problems)} problem(s)", file=sys.stderr)
            return 1
        n = len(daemon_plant.sensors())
        print(
            f"{args.file}: ok (daemon config; plant {daemon_plant.path}: "
            f"{len(daemon_plant.hazard_sources)} hazard sources, {n} sensors)"
        )
        return 0
    plant = load_or_report(args.file)
    if plant is None:
        return 1
    n = len(plant.sensors())
    todos = _todos(args.file)
    for line in todos:
        print(line, file=sys.stderr)
    left = f", {len(todos)} TODO(s) to fill in" if todos else ""
    print(f"{args.file}: ok ({len(plant.hazard_sources)} hazard sources, {n} sensors{left})")
    return 0


def _todos(path: str) -> list[str]:
    """``file:line: warning: TODO ...`` for each ``# TODO`` comment (placeholders left for the engineer)."""
    out = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for i, line in enumerate(f, 1):
            m = _TODO.search(line)
            if m is not None:
                out.append(f"{path}:{i}: warning: {m.group(1).strip()}")
    return out


def plant_summary(plant: Plant) -> dict[str, object]:
    out: list[dict[str, object]] = []
    for hs in plant.hazard_sources:
        g = grade_source(hs)
        out.append(
            {
                "id": hs.id,
                "name": hs.name,
                "people_within_500m": hs.people_within_500m,
                "alpha": g.alpha,
                "s": round(g.s, 4),
                "r": round(g.r, 4),
                "major_hazard_source": g.is_major,
                "grade": int(g.grade) if g.grade else None,
                "grade_zh": g.grade.zh if g.grade else "非重大危险源",
                "grading_verified": g.verified,
                "chemicals": [
                    {
                        "id": i.chemical.id,
                        "cas": i.chemical.cas,
                        "max_t": i.max_t,
                        "q_t": i.chemical.q_t,
                        "beta": i.chemical.beta,
                        "category": i.chemical.category or None,
                    }
                    for i in hs.inventory
                ],
                "sensors": len(hs.sensors),
            }
        )
    e = plant.enterprise
    return {
        "enterprise": {"id": e.id, "name": e.name, "region_code": e.region.code},
        "lel_reference": LEL_REFERENCE,
        "hazard_sources": out,
    }


def _plant(args: argparse.Namespace) -> int:
    plant = load_or_report(args.file)
    if plant is None:
        return 1
    summary = plant_summary(plant)
    if args.json:
        # strict JSON: a number that is not finite is a bug to see, never `Infinity` for a script to choke on
        print(json.dumps(summary, ensure_ascii=False, indent=2, allow_nan=False))
        return 0
    e = plant.enterprise
    print(f"{e.name} ({e.id}) — {e.region.province}{e.region.city}{e.region.county} {e.region.code}")
    print(f"{'hazard source':<18} {'S':>8} {'α':>4} {'R':>8}  grade")
    for hs in summary["hazard_sources"]:  # type: ignore[attr-defined]
        grade = hs["grade_zh"] if hs["major_hazard_source"] else "not a major hazard source (S < 1)"
        flag = "" if hs["grading_verified"] else "  (uses unverified Q/β)"
        print(f"{hs['id']:<18} {hs['s']:>8.2f} {hs['alpha']:>4} {hs['r']:>8.1f}  {grade}{flag}")
    return 0
