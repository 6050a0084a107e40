"""`hazmon grafana build [--check]`: the dashboards' JSON from the Python modules."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from hazmon.grafana.build import DEFAULT_OUT, check, write

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register `hazmon grafana build`."""
    g = sub.add_parser("grafana", help="Grafana dashboards (generated with grafanalib)")
    acts = g.add_subparsers(dest="grafana_command", metavar="ACTION", required=True)
    p = acts.add_parser("build", help="write grafana/dashboards/<locale>/<folder>/*.json (zh and en)")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 when the files differ from a fresh build",
    )
    p.set_defaults(handler=_build)


def _build(args: argparse.Namespace) -> int:
    out: Path = args.out
    if args.check:
        problems = check(out)
        for line in problems:
            print(f"hazmon grafana build --check: {line}", file=sys.stderr)
        if problems:
            return 1
        print(f"dashboards in {out} match a fresh build")
        return 0
    written = write(out)
    print(f"wrote {len(written)} dashboard file(s) under {out}")
    return 0
