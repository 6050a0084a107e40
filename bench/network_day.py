"""Issue 3's speed goal: a simulated `normal` day at `--speed 1000` over the network in < 120 s wall.

Runs the real CLI (`python -m hazmon simulate`) on the example plant, publishing to a private
Mosquitto (a `mosquitto_sub` counts what arrives) and serving OPC UA on a free port, and prints,
side by side in one run: the nominal pacing (86.4 s at speed 1000), the wall time, their ratio,
the goal, and the MQTT messages received against those published. Correctness over the network
(every value inside its band, every message arriving) is tests/simulators/test_network_day.py's.

    .venv/bin/python bench/network_day.py [--duration 1d] [--speed 1000]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))  # testkit: helpers shared with the tests
from hazmon.plant import MqttBinding, load  # noqa: E402
from hazmon.simulators import parse_duration  # noqa: E402
from testkit import PrivateMosquitto, free_port, private_plant_file  # noqa: E402

GOAL_S = 120.0  # issue 3: a day at --speed 1000 in under two minutes
START_ISO = "2026-03-01T00:00:00+00:00"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", default="1d")
    ap.add_argument("--speed", type=float, default=1000.0)
    args = ap.parse_args()
    run_s = float(parse_duration(args.duration))
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        broker = PrivateMosquitto(tmp)
        broker.start()
        try:
            plant_file = private_plant_file(tmp, broker.port, free_port(), "bench")
            plant = load(plant_file)
            published = sum(
                int(run_s / s.period_s) for s in plant.sensors() if isinstance(s.binding, MqttBinding)
            )
            out = (tmp / "mqtt.txt").open("wb")
            sub_exe = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"
            sub = subprocess.Popen(
                [sub_exe, "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1", "-t", "bench/#"],
                stdout=out,
                stderr=subprocess.DEVNULL,
            )
            time.sleep(1.0)  # a bench, not a test: the subscription is in place well before this
            cmd = [sys.executable, "-m", "hazmon", "simulate", "-c", str(plant_file), "--scenario", "normal"]
            cmd += ["--start", START_ISO, "--duration", args.duration, "--speed", str(args.speed)]
            cmd += ["--data-dir", str(tmp / "sim")]
            t0 = time.monotonic()
            rc = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, check=False)
            wall = time.monotonic() - t0
            time.sleep(2.0)
            sub.terminate()
            sub.wait(10)
            out.close()
            received = (tmp / "mqtt.txt").read_bytes().count(b"\n")
        finally:
            broker.stop()
    if rc.returncode != 0:
        print(rc.stderr.decode(errors="replace")[-2000:], file=sys.stderr)
        return 1
    nominal = run_s / args.speed
    print(f"simulated {run_s / 3600:.1f} h at --speed {args.speed:g}")
    print(f"{'nominal pacing':>22}: {nominal:8.1f} s")
    print(f"{'wall time':>22}: {wall:8.1f} s   wall/nominal {wall / nominal:.2f}")
    goal = GOAL_S * run_s / 86_400
    verdict = "met" if wall < goal else "MISSED"
    print(f"{'goal':>22}: {goal:8.1f} s   wall/goal {wall / goal:.2f}  ({verdict})")
    print(f"{'MQTT received':>22}: {received} of {published} published")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
