"""Scale-out: two `hazmon run` processes split one plant's topics with an MQTT 5 shared subscription."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from hazmon.plant import Plant, Reading, load
from tests.conftest import free_port
from tests.daemon.helpers import Publisher, as_rows, json_payload, rows

ROOT = Path(__file__).resolve().parents[2]
T0 = 1_795_860_000_000_000


def _metric(port: int, line_prefix: str) -> float:
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    for line in body.splitlines():
        if line.startswith(line_prefix + " "):
            return float(line.split()[-1])
    return 0.0


def _wait(cond: object, what: str, limit_s: float = 30.0) -> None:
    deadline = time.monotonic() + limit_s
    while True:
        try:
            if cond():  # type: ignore[operator]
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.mark.slow
def test_two_daemons_split_a_shared_subscription_and_store_everything_once(
    example_plant: Plant, db_dsn: str, mqtt_broker: tuple[str, int], topic_prefix: str, tmp_path: Path
) -> None:
    text = (ROOT / "examples" / "plant.yaml").read_text()
    text = text.replace("topic: plant/", f"topic: {topic_prefix}/plant/")
    text = text.replace(
        "client_id: hazmon-hx-chem, qos: 1}", f"client_id: {tmp_path.name[:20]}, qos: 1, shared_group: g1}}"
    )
    text = text.replace(
        "opc.tcp://127.0.0.1:4840/hazmon", f"opc.tcp://127.0.0.1:{free_port()}/hazmon"
    )  # no server
    (tmp_path / "plant.yaml").write_text(text)
    plant = load(tmp_path / "plant.yaml")
    assert plant.mqtt[0].shared_group == "g1"
    procs: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    for inst in ("a", "b"):
        port = free_port()
        cfg = tmp_path / f"hazmon-{inst}.yaml"
        cfg.write_text(
            f"plant: plant.yaml\ndata_dir: data-{inst}\ninstance: {inst}\n"
            f"database: {{dsn: '{db_dsn}', storage_mode: plain}}\nhttp: {{port: {port}}}\n"
            "collector: {flush_interval_s: 0.2}\n" + ("alarms: false\n" if inst == "b" else "")
            # one alarm service per plant: the second instance runs none
        )
        log = (tmp_path / f"daemon-{inst}.log").open("wb")
        p = subprocess.Popen(
            [sys.executable, "-m", "hazmon", "run", "-c", str(cfg)],
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
        procs[inst] = (p, port)
    try:
        for inst, (_p, port) in procs.items():
            _wait(
                lambda port=port: _metric(port, 'hazmon_mqtt_subscribed{source="gds"}') == 1, f"daemon {inst}"
            )
        mqtt_tags = [s for s in plant.sensors() if hasattr(s.binding, "topic")]
        sent = [
            Reading(s.tag, T0 + k * 1_000_000 + i, k + i / 8)
            for k in range(30)
            for i, s in enumerate(mqtt_tags)
        ]
        pub = Publisher(*mqtt_broker)
        for r in sent:
            pub.publish(plant.sensor(r.tag).binding.topic, json_payload(r))  # type: ignore[union-attr]
        pub.close()
        tags = {r.tag for r in sent}
        sql = "SELECT s.tag, r.time, r.value, r.quality FROM readings r JOIN sensor s ON s.id = r.sensor_id ORDER BY 1, 2"
        _wait(
            lambda: len([x for x in rows(db_dsn, sql) if x[0] in tags]) >= len(sent), "every reading stored"
        )
        received = {
            inst: _metric(port, 'hazmon_readings_received_total{source="gds"}')
            for inst, (_p, port) in procs.items()
        }
    finally:
        for p, _port in procs.values():
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(30) for p, _port in procs.values()]
    assert [x for x in rows(db_dsn) if x[0] in tags] == as_rows(sent)
    assert received["a"] > 0 and received["b"] > 0 and received["a"] + received["b"] == len(sent)
    assert codes == [0, 0]
    logs = "".join((tmp_path / f"daemon-{i}.log").read_text() for i in ("a", "b"))
    assert re.search(r"\$share/g1/", logs)
