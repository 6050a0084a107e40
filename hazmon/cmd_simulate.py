"""`hazmon simulate`, `hazmon record` and `hazmon replay`: a simulated plant over its own bindings."""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import structlog

from hazmon.cmd_fleet import register as register_fleet
from hazmon.plant import ConfigError, Plant, Reading, from_us, load, to_us
from hazmon.sim_cap import cap_args, with_cap
from hazmon.simulators import Scenario, Simulation, load_scenario, parse_duration, scenario_names
from hazmon.simulators.mqtt_publisher import MqttPublisher, MqttPublishError
from hazmon.simulators.opcua_server import OpcUaServerError, SimOpcUaServer
from hazmon.simulators.recording import (
    RecordingError,
    RecordingWriter,
    Replay,
    db_readings,
    read_header,
    read_recording,
)
from hazmon.simulators.scenario import format_timeline, timeline
from hazmon.simulators.serving import build_sinks, run_stream, shift_opcua_ports

__all__ = ["register"]

log = structlog.get_logger("hazmon.simulate")

_DEFAULT_DATA_DIR = os.environ.get("HAZMON_SIM_DATA", str(Path.home() / ".local" / "share" / "hazmon-sim"))


def _speed(text: str) -> float:
    if text in ("max", "inf", "0"):
        return math.inf
    v = float(text)
    if v <= 0:
        raise argparse.ArgumentTypeError("speed must be > 0 (or 'max')")
    return v


def _duration(text: str) -> float:
    try:
        return float(parse_duration(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from e


def _start(text: str) -> int:
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"'{text}' is not an ISO 8601 time (e.g. 2026-11-28T08:00:00Z)"
        ) from e
    return to_us(dt if dt.tzinfo else dt.replace(tzinfo=UTC))


def _serving_args(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--speed", type=_speed, default=1.0, help="N times faster than real time, or 'max' (default 1)"
    )
    p.add_argument("--no-opcua", action="store_true", help="do not start the OPC UA server(s)")
    p.add_argument("--no-mqtt", action="store_true", help="do not publish to MQTT")
    p.add_argument(
        "--opcua-port-offset", type=int, default=0, help="listen N ports above the plant file's OPC UA ports"
    )
    p.add_argument("--data-dir", default=_DEFAULT_DATA_DIR, help="where server certificates are kept")
    p.add_argument(
        "--opcua-history",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="OPC UA servers keep every value this long for HistoryRead (the daemon reads a gap back); "
        "0 keeps none (default). Real-time runs: at --speed > 1 the history keeps the future",
    )
    p.add_argument(
        "--client-id", default=None, help="MQTT client id prefix (default hazmon-sim-<broker>-<pid>)"
    )


def _sinks(plant: Plant, args: argparse.Namespace) -> list[SimOpcUaServer | MqttPublisher]:
    """The servers and publishers `_serving_args` asked for."""
    return build_sinks(
        plant,
        args.data_dir,
        opcua=not args.no_opcua,
        mqtt=not args.no_mqtt,
        client_id=args.client_id,
        opcua_history_s=args.opcua_history,
    )


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "simulate", help="run a simulated plant and serve it over its OPC UA and MQTT bindings"
    )
    p.add_argument("-c", "--plant", help="plant file (the one the daemon reads)")
    p.add_argument("--scenario", default="normal", help="built-in scenario name or scenario YAML file")
    p.add_argument("--seed", type=int, default=1, help="random seed: the same seed gives the same run")
    p.add_argument("--start", type=_start, default=None, help="simulated start time, ISO 8601 (default now)")
    p.add_argument(
        "--duration", type=_duration, default=None, help="simulated duration (default: until Ctrl-C)"
    )
    p.add_argument("--list", action="store_true", help="list the built-in scenarios and exit")
    p.add_argument(
        "--timeline",
        action="store_true",
        help="print what the scenario does when (from --start or now) and exit",
    )
    p.add_argument("--record", default=None, metavar="FILE", help="also record the stream to FILE")
    cap_args(p)
    _serving_args(p)
    p.set_defaults(handler=_simulate)
    register_fleet(p.add_subparsers(dest="what", metavar="fleet"), _duration, _speed)

    p = sub.add_parser("record", help="save a stream (simulated or from the database) to a compressed file")
    p.add_argument("-c", "--plant", required=True, help="plant file")
    p.add_argument("-o", "--output", required=True, help="recording file to write (gzip)")
    p.add_argument("--scenario", default="normal", help="built-in scenario name or scenario YAML file")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--start", type=_start, default=None, help="simulated start / first stored time, ISO 8601")
    p.add_argument(
        "--duration", type=_duration, default=None, help="how much (default: the scenario's duration)"
    )
    p.add_argument("--from-db", metavar="DSN", default=None, help="record stored readings from this database")
    p.set_defaults(handler=_record)

    p = sub.add_parser("replay", help="play a recording back over the plant's bindings")
    p.add_argument("file", help="recording file")
    p.add_argument("-c", "--plant", required=True, help="plant file (the one the daemon reads)")
    _serving_args(p)
    p.set_defaults(handler=_replay)


def _load_scenario(name: str) -> Scenario | None:
    """The scenario, or None after printing every problem of its file."""
    try:
        return load_scenario(name)
    except ConfigError as e:
        for prob in e.problems:
            print(prob, file=sys.stderr)
        return None


def _load_plant(path: str) -> Plant | None:
    try:
        return load(path)
    except ConfigError as e:
        for prob in e.problems:
            print(prob, file=sys.stderr)
        return None


class _Progress:
    """A one-line progress bar on stderr when it is a terminal (nothing otherwise)."""

    def __init__(self, start_us: int, end_us: int | None) -> None:
        self.start_us, self.end_us = start_us, end_us
        self.tty = sys.stderr.isatty()
        self._last = 0.0

    def __call__(self, now_us: int) -> None:
        if not self.tty:
            return
        t = time.monotonic()
        if t - self._last < 0.2 and (self.end_us is None or now_us < self.end_us):
            return
        self._last = t
        stamp = from_us(now_us).strftime("%Y-%m-%d %H:%M:%S")
        if self.end_us and self.end_us > self.start_us:
            f = min(1.0, (now_us - self.start_us) / (self.end_us - self.start_us))
            bar = "#" * int(f * 30)
            sys.stderr.write(f"\r[{bar:<30}] {f * 100:5.1f}%  {stamp}Z ")
        else:
            sys.stderr.write(f"\rsimulated {stamp}Z ")
        sys.stderr.flush()

    def done(self) -> None:
        if self.tty:
            sys.stderr.write("\n")


def _log_timeline(scenario: Scenario, start_us: int) -> None:
    """What will happen when, one log line each (stderr keeps one format: hazmon/logs.py)."""
    for at_s, what in timeline(scenario):
        at = from_us(start_us + round(at_s * 1e6)).isoformat()
        log.info("scenario timeline", at=at, after_s=at_s, what=what)


def _simulate(args: argparse.Namespace) -> int:  # noqa: PLR0911 - one exit per failure the user must see
    if args.list:
        for name in scenario_names():
            sc = load_scenario(name)
            print(f"{name:<16} {sc.description}")
        return 0
    if args.timeline:
        chosen = _load_scenario(args.scenario)
        if chosen is None:
            return 1
        print(format_timeline(chosen, args.start if args.start is not None else int(time.time()) * 1_000_000))
        return 0
    if not args.plant:
        print("hazmon simulate: -c/--plant is required (or --list, --timeline)", file=sys.stderr)
        return 2
    plant = _load_plant(args.plant)
    if plant is None:
        return 1
    scenario = _load_scenario(args.scenario)
    if scenario is None:
        return 1
    plant = shift_opcua_ports(plant, args.opcua_port_offset)
    start_us = args.start if args.start is not None else int(time.time()) * 1_000_000
    try:
        sim = Simulation(plant, scenario, seed=args.seed, start_us=start_us)
    except ValueError as e:  # the scenario names equipment, sensors or endpoints the plant lacks
        print(e, file=sys.stderr)
        return 1
    duration = args.duration if args.duration is not None else 10 * 365 * 86_400.0
    steps: Iterator[tuple[int, list[Reading]]] = sim.steps(duration, 1.0)
    writer = None
    if args.record:
        writer = RecordingWriter(
            args.record,
            {
                "enterprise": plant.enterprise.id,
                "source": "simulator",
                "plant": args.plant,
                "scenario": scenario.name,
                "seed": args.seed,
                "start_us": start_us,
            },
        )
        rec = writer
        steps = _tee(steps, lambda batch: rec.write(batch, sim.outage_changes()))
    sinks = _sinks(plant, args)
    progress = _Progress(start_us, start_us + int(duration * 1e6) if args.duration is not None else None)
    log.info(  # a log line, not a print: stderr has one format (hazmon/logs.py)
        f"simulating {plant.enterprise.id}",
        scenario=scenario.name,
        seed=args.seed,
        speed=args.speed,
        start=from_us(start_us).isoformat(),
        serving=[s.name for s in sinks],
    )
    _log_timeline(scenario, start_us)
    try:
        counters = asyncio.run(
            _until_signal(
                lambda: with_cap(
                    args,
                    run_stream(
                        steps,
                        plant,
                        sinks,
                        start_us=start_us,
                        speed=args.speed,
                        down=lambda: sim.down_endpoints,
                        progress=progress,
                    ),
                )
            )
        )
    except (MqttPublishError, OpcUaServerError) as e:
        print(f"hazmon simulate: {e}", file=sys.stderr)
        return 1
    finally:
        progress.done()
        if writer is not None:
            writer.close()
    _report(counters, sinks)
    return 0


async def _until_signal(run: Callable[[], Awaitable[dict[str, int]]]) -> dict[str, int]:
    """Run ``run()``; SIGINT or SIGTERM cancel it (servers stopped, recording closed), then exit 130.

    The handlers are installed whatever this process inherited: a shell script that
    starts the simulator in the background (``hazmon simulate ... &``) leaves SIGINT
    ignored, and Python then installs neither its own handler nor asyncio's, so a
    ``kill -INT`` did nothing at all.
    """
    task = asyncio.ensure_future(run())
    loop = asyncio.get_running_loop()
    signalled: list[int] = []

    def on_signal(sig: int) -> None:
        signalled.append(sig)
        task.cancel()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        return await task
    except asyncio.CancelledError:
        if not signalled:
            raise
        raise KeyboardInterrupt from None  # the CLI's exit status for an interrupted run: 130
    finally:
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(sig)


def _tee(
    steps: Iterator[tuple[int, list[Reading]]], sink: Callable[[list[Reading]], None]
) -> Iterator[tuple[int, list[Reading]]]:
    for now, batch in steps:
        sink(batch)
        yield now, batch


def _report(counters: dict[str, int], sinks: Sequence[object]) -> None:
    parts = [f"{k}={v}" for k, v in counters.items()]
    for s in sinks:
        c = getattr(s, "counters", {})
        parts.append(f"{getattr(s, 'name', '?')}: " + " ".join(f"{k}={v}" for k, v in c.items() if v))
    log.info("stream served", counters="; ".join(parts))


def _record(args: argparse.Namespace) -> int:
    plant = _load_plant(args.plant)
    if plant is None:
        return 1
    if args.from_db:
        if args.start is None or args.duration is None:
            print("hazmon record --from-db needs --start and --duration", file=sys.stderr)
            return 2
        import psycopg  # noqa: PLC0415 - only this path needs the database

        end_us = args.start + int(args.duration * 1e6)
        header: dict[str, object] = {
            "enterprise": plant.enterprise.id,
            "source": "database",
            "start_us": args.start,
            "end_us": end_us,
        }
        with psycopg.connect(args.from_db) as conn, RecordingWriter(args.output, header) as w:
            batch: list[Reading] = []
            for r in db_readings(conn, plant.enterprise.id, args.start, end_us):
                batch.append(r)
                if len(batch) >= 10_000:
                    w.write(batch)
                    batch = []
            w.write(batch)
            n = w.count
        print(f"{args.output}: {n} readings from the database", file=sys.stderr)
        return 0
    scenario = _load_scenario(args.scenario)
    if scenario is None:
        return 1
    start_us = args.start if args.start is not None else int(time.time()) * 1_000_000
    duration = args.duration if args.duration is not None else scenario.duration_s
    try:
        sim = Simulation(plant, scenario, seed=args.seed, start_us=start_us)
    except ValueError as e:  # the scenario names equipment, sensors or endpoints the plant lacks
        print(e, file=sys.stderr)
        return 1
    header = {
        "enterprise": plant.enterprise.id,
        "source": "simulator",
        "plant": args.plant,
        "scenario": scenario.name,
        "seed": args.seed,
        "start_us": start_us,
        "end_us": start_us + int(duration * 1e6),
    }
    with RecordingWriter(args.output, header) as w:
        for _, batch in sim.steps(duration, 60.0):
            w.write(batch, sim.outage_changes())
        n = w.count
    print(f"{args.output}: {n} readings, scenario {scenario.name}, seed {args.seed}", file=sys.stderr)
    return 0


def _replay(args: argparse.Namespace) -> int:
    plant = _load_plant(args.plant)
    if plant is None:
        return 1
    try:
        header = read_header(args.file)
    except RecordingError as e:
        print(e, file=sys.stderr)
        return 1
    start_us = header.get("start_us")
    end_us = header.get("end_us")
    if not isinstance(start_us, int):
        first = next(read_recording(args.file), None)
        if first is None:
            print(f"{args.file}: no readings", file=sys.stderr)
            return 1
        start_us = first.ts_us - 1
    plant = shift_opcua_ports(plant, args.opcua_port_offset)
    sinks = _sinks(plant, args)
    progress = _Progress(start_us, end_us if isinstance(end_us, int) else None)
    replay = Replay(args.file, start_us)
    try:
        counters = asyncio.run(
            _until_signal(
                lambda: run_stream(
                    replay.steps(),
                    plant,
                    sinks,
                    start_us=start_us,
                    speed=args.speed,
                    down=lambda: replay.down_endpoints,
                    progress=progress,
                )
            )
        )
    except (RecordingError, MqttPublishError, OpcUaServerError) as e:
        print(f"hazmon replay: {e}", file=sys.stderr)
        return 1
    finally:
        progress.done()
    _report(counters, list(sinks))
    return 0
