"""`hazmon simulate fleet`: many synthetic enterprises speaking the link to a bureau's broker."""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import structlog

from hazmon.simulators.fleet import FleetPublisher, FleetSpec, build_fleet

__all__ = ["register"]

log = structlog.get_logger("hazmon.simulate.fleet")


def _ids(text: str) -> frozenset[str]:
    return frozenset(x.strip() for x in text.split(",") if x.strip())


def register(
    sub: argparse._SubParsersAction[argparse.ArgumentParser],
    duration: Callable[[str], float],
    speed: Callable[[str], float],
) -> None:
    """Add ``fleet`` under ``hazmon simulate`` (``duration``, ``speed``: that command's argument types)."""
    p = sub.add_parser("fleet", help="many synthetic enterprises reporting to a bureau over the link (MQTT)")
    p.add_argument("--enterprises", type=int, default=20, help="how many (default 20)")
    p.add_argument("--sensors-per-enterprise", type=int, default=20, help="sensors each (default 20)")
    p.add_argument("--broker", default="mqtt://127.0.0.1:1883", help="the bureau's broker, mqtt://host:port")
    p.add_argument("--duration", type=duration, default=3600.0, help="simulated duration (default 1h)")
    p.add_argument("--speed", type=speed, default=1.0, help="N times faster than real time, or 'max'")
    p.add_argument("--seed", type=int, default=1, help="the same seed gives the same messages, ids included")
    p.add_argument("--start", default=None, help="simulated start, ISO 8601 (default: this minute)")
    p.add_argument(
        "--leak-at", type=_ids, default=frozenset(), metavar="ENT[,ENT]", help="a red alarm, never acked"
    )
    p.add_argument("--silent", type=_ids, default=frozenset(), metavar="ENT[,ENT]", help="stops sending")
    p.add_argument("--flapping", type=_ids, default=frozenset(), metavar="ENT[,ENT]", help="link up/down")
    p.add_argument("--connections", type=int, default=4, help="MQTT connections the fleet shares (default 4)")
    p.add_argument("--username", default=None, help="broker username (password: $HAZMON_FLEET_MQTT_PASSWORD)")
    p.set_defaults(handler=_fleet)


def _fleet(args: argparse.Namespace) -> int:
    if args.start:
        start = datetime.fromisoformat(args.start.replace("Z", "+00:00"))
        start = start if start.tzinfo else start.replace(tzinfo=UTC)
    else:
        start = datetime.now(UTC).replace(second=0, microsecond=0)
    spec = FleetSpec(
        enterprises=args.enterprises,
        sensors_per_enterprise=args.sensors_per_enterprise,
        start=start,
        minutes=max(1, math.ceil(args.duration / 60)),
        seed=args.seed,
        leak=args.leak_at,
        silent=args.silent,
        flapping=args.flapping,
    )
    unknown = sorted((spec.leak | spec.silent | spec.flapping) - set(spec.ids()))
    if unknown:
        print(f"hazmon simulate fleet: no such enterprise {', '.join(unknown)} (sim-0001..)", file=sys.stderr)
        return 2
    fleet = build_fleet(spec)
    try:
        pub = FleetPublisher(
            spec,
            args.broker,
            connections=args.connections,
            client_id=f"hazmon-fleet-{os.getpid()}",
            username=args.username,
            password=os.environ.get("HAZMON_FLEET_MQTT_PASSWORD"),
        )
    except (OSError, ValueError, TimeoutError) as e:
        print(f"hazmon simulate fleet: {args.broker}: {e}", file=sys.stderr)
        return 1
    end = start + timedelta(minutes=spec.minutes)
    log.info("fleet", enterprises=spec.enterprises, sensors=spec.sensors_per_enterprise,
             start=start.isoformat(), end=end.isoformat(), speed=args.speed)  # fmt: skip
    t0 = time.monotonic()
    try:
        report = pub.run(fleet, args.speed)
        pub.flush()
    except TimeoutError as e:
        print(f"hazmon simulate fleet: {e}", file=sys.stderr)
        return 1
    finally:
        pub.close()
    log.info(
        "fleet sent",
        messages=report.messages,
        aggregate_rows=sum(report.aggregate_rows.values()),
        alarms=report.alarms,
        reconnects=report.reconnects,
        wall_s=round(time.monotonic() - t0, 1),
    )
    return 0
