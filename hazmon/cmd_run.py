"""`hazmon run -c hazmon.yaml`: the daemon."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from hazmon.config import load_config
from hazmon.daemon import Daemon
from hazmon.plant import ConfigError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the daemon: collectors, batch writer, rules and alarms")
    p.add_argument("-c", "--config", required=True, help="daemon config file (hazmon.yaml)")
    p.add_argument("--check", action="store_true", help="check the config and the plant file, then exit")
    p.set_defaults(handler=_run)


def _run(args: argparse.Namespace) -> int:
    try:
        cfg, plant = load_config(args.config)
    except ConfigError as e:
        for prob in e.problems:
            print(prob, file=sys.stderr)
        print(f"{args.config}: {len(e.problems)} problem(s)", file=sys.stderr)
        return 1
    if args.check:
        print(f"{args.config}: ok (plant {cfg.plant_file}: {len(plant.sensors())} sensors)")
        return 0

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await Daemon(cfg, plant).run_until(stop)

    asyncio.run(main())
    return 0
