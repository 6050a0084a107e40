"""The `hazmon` command. Each area registers its sub-commands from its own module.

Roof code: it may import every component; no component imports it.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from hazmon import (
    __version__,
    cmd_alarms,
    cmd_bureau,
    cmd_console,
    cmd_db,
    cmd_grafana,
    cmd_plan,
    cmd_plant,
    cmd_run,
    cmd_simulate,
    cmd_supervision,
    cmd_weather,
)
from hazmon.logs import configure_logging

__all__ = ["main"]

Handler = Callable[[argparse.Namespace], int]

# Each module has register(subparsers) and sets `handler` on its parsers.
_AREAS = (
    cmd_plant,
    cmd_db,
    cmd_simulate,
    cmd_run,
    cmd_alarms,
    cmd_grafana,
    cmd_supervision,
    cmd_weather,
    cmd_bureau,
    cmd_console,
    cmd_plan,
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hazmon",
        description="Monitoring daemon for major hazard installations (重大危险源).",
    )
    parser.add_argument("--version", action="version", version=f"hazmon {__version__}")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"))
    parser.add_argument(
        "--log-json",
        action="store_true",
        default=None,
        help="JSON log lines (default: JSON when stderr is not a terminal)",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for area in _AREAS:
        area.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    configure_logging(args.log_level, args.log_json)
    try:
        return handler(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
