"""`hazmon run -c hazmon.yaml` (the daemon) and `hazmon opcua browse URL`."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from hazmon.collector.browse import browse, format_sensors, format_table
from hazmon.config import load_config
from hazmon.daemon import Daemon
from hazmon.plant import ConfigError
from hazmon.runtime import apply_process_settings

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="run the daemon: collectors, batch writer, rules and alarms")
    p.add_argument("-c", "--config", required=True, help="daemon config file (hazmon.yaml)")
    p.add_argument("--check", action="store_true", help="check the config and the plant file, then exit")
    p.set_defaults(handler=_run)
    o = sub.add_parser("opcua", help="OPC UA tools")
    acts = o.add_subparsers(dest="opcua_command", metavar="ACTION", required=True)
    b = acts.add_parser("browse", help="list variables with node ids, units and ranges")
    b.add_argument("url", help="opc.tcp://host:port/path")
    b.add_argument("--write-sensors", action="store_true", help="print them as plant-file sensor entries")
    b.add_argument("--endpoint", default="dcs", help="endpoint name for the bindings of --write-sensors")
    b.add_argument("--timeout", type=float, default=10.0, help="seconds per request")
    b.set_defaults(handler=_browse)


def _run(args: argparse.Namespace) -> int:
    try:
        cfg, plant = load_config(args.config, create_files=not args.check)
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

    apply_process_settings()  # the same as the tests' in-process daemons (hazmon.runtime)
    asyncio.run(main())
    return 0


def _browse(args: argparse.Namespace) -> int:
    try:
        found = asyncio.run(browse(args.url, args.timeout))
    except (OSError, TimeoutError) as e:
        print(f"hazmon opcua browse: cannot reach {args.url}: {e or type(e).__name__}", file=sys.stderr)
        return 1
    print(format_sensors(found, args.endpoint, args.url) if args.write_sensors else format_table(found))
    return 0
