"""`hazmon simulate --cap FILE --cap-at SECONDS`: a weather warning played beside the scenario.

The CAP file is posted to the daemon's ``POST /api/weather/cap`` ``--cap-at`` seconds (of
simulated time) after the start, its times moved to that moment (`hazmon.simulators.cap_player`).
The token: ``--cap-token``, else ``$HAZMON_TOKEN``, else the operator's token of
``--cap-token-file`` (an alarm token file, read when the warning is played: the daemon may
create it after the simulator started).
"""

from __future__ import annotations

import argparse
import asyncio
import os
from collections.abc import Awaitable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

from hazmon.alarms.tokens import read_token_file
from hazmon.simulators.cap_player import play

__all__ = ["cap_args", "with_cap"]

T = TypeVar("T")


def _cap_file(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise argparse.ArgumentTypeError(f"{path}: cannot read: {e.strerror}") from e


def cap_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--cap", type=_cap_file, metavar="FILE", help="a weather warning (CAP 1.2 XML) to post to the daemon"
    )
    p.add_argument("--cap-at", type=float, default=30.0, metavar="SECONDS", help="when (default 30 s)")
    p.add_argument(
        "--cap-url", default="http://127.0.0.1:8470/api/weather/cap", help="the daemon's CAP route"
    )
    p.add_argument("--cap-token", default=None, help="an operator's API token (default $HAZMON_TOKEN)")
    p.add_argument(
        "--cap-token-file", default=None, metavar="FILE", help="or the operator's token of this file"
    )


def _token(args: argparse.Namespace) -> str:
    if args.cap_token or os.environ.get("HAZMON_TOKEN"):
        return str(args.cap_token or os.environ["HAZMON_TOKEN"])
    if args.cap_token_file:
        try:
            return next(t.token for t in read_token_file(Path(args.cap_token_file)) if t.role == "operator")
        except (OSError, ValueError, StopIteration):
            return ""
    return ""


async def with_cap(args: argparse.Namespace, run: Awaitable[T]) -> T:
    """``run`` with the CAP file played beside it (when ``--cap`` is given); stopped with it."""
    task = None
    if getattr(args, "cap", None):
        task = asyncio.create_task(
            play(
                args.cap,
                args.cap_at,
                args.cap_url,
                lambda: _token(args),
                lambda: datetime.now(UTC),
                speed=args.speed,
            )
        )
    try:
        return await run
    finally:
        if task is not None:
            task.cancel()
