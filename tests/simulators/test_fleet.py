"""The fleet simulator: 20 enterprises over a real broker into a running bureau daemon, and its determinism."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import psycopg
import pytest
from paho.mqtt.enums import CallbackAPIVersion

from hazmon.bureau.config import BrokerSettings, BureauConfig, DatabaseSettings, HttpSettings, RegionSettings
from hazmon.bureau.warning_config import Warnings
from hazmon.bureau.warning_repository import list_warnings, tick
from hazmon.bureau_daemon import BureauDaemon
from hazmon.plant.link import Aggregates, parse_envelope
from hazmon.simulators.fleet import COUNTIES, FleetPublisher, FleetSpec, build_fleet, fleet_minutes, link_up
from testkit.mosquitto import PrivateMosquitto

LEAK, SILENT, FLAPPING = "sim-0003", "sim-0005", "sim-0007"


def _spec(start: datetime, seed: int = 7, n: int = 20) -> FleetSpec:
    return FleetSpec(
        enterprises=n,
        sensors_per_enterprise=12,
        start=start,
        minutes=60,
        seed=seed,
        leak=frozenset({LEAK}),
        silent=frozenset({SILENT}),
        flapping=frozenset({FLAPPING}),
    )


def _wire(spec: FleetSpec) -> list[str]:
    return [env.model_dump_json() for _, out in fleet_minutes(spec, build_fleet(spec)) for _, env in out]


def test_the_same_seed_gives_the_same_messages_ids_included() -> None:
    start = datetime.fromisoformat("2026-03-01T08:00:00+00:00")
    one, again, other = _wire(_spec(start)), _wire(_spec(start)), _wire(_spec(start, seed=8))
    assert one == again
    assert one != other
    envs = [parse_envelope(w) for w in one]  # every message passes the link's own validation
    assert len({e.message_id for e in envs}) == len(envs)
    regions = {e.region_code for e in envs}
    assert len(regions) == len(COUNTIES) and all(r.startswith("3201") for r in regions)
    kinds = {
        s.kind
        for e in envs
        if e.kind == "registration"
        for hs in e.payload.hazard_sources
        for s in hs.sensors
    }
    assert {"gas_toxic", "gas_combustible", "level", "pressure", "temperature"} <= kinds
    silent_last = max(
        e.payload.window_start
        for e in envs
        if e.enterprise_id == SILENT and isinstance(e.payload, Aggregates)
    )
    assert silent_last == start + timedelta(minutes=9)
    assert not all(link_up(_spec(start), FLAPPING, m) for m in range(60))
    assert all(link_up(_spec(start), LEAK, m) for m in range(60))


async def _until(cond: Callable[[], object], what: str, within_s: float = 180.0) -> None:
    deadline = time.monotonic() + within_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)


@pytest.mark.slow
async def test_a_fleet_reports_to_a_bureau_with_a_leak_a_silent_one_and_a_flapping_link(
    make_db: Callable[[], str], private_mosquitto: PrivateMosquitto
) -> None:
    dsn = make_db()
    cfg = BureauConfig(
        id="nj-city",
        name="南京市应急管理局",
        region=RegionSettings("320100", "city"),
        database=DatabaseSettings(dsn=dsn, migrate=False),
        broker=BrokerSettings(
            url=f"mqtt://127.0.0.1:{private_mosquitto.port}",
            group="bureau",
            client_id=f"bureau-{uuid.uuid4().hex[:6]}",
            retry_max_s=0.3,
        ),
        http=HttpSettings(port=0),
        tokens=(),
        warnings=Warnings(tick_interval_s=1e6),  # the test's own tick is the one that counts
    )
    with psycopg.connect(dsn, autocommit=True) as conn:
        db_now = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        start = db_now.replace(second=0, microsecond=0) - timedelta(minutes=60)  # the fleet ends by now
        spec = _spec(start)
        daemon = BureauDaemon(cfg)
        await daemon.start()
        try:
            await _until(daemon.subscriber.connected.is_set, "the bureau's subscription")
            pub = FleetPublisher(spec, f"mqtt://127.0.0.1:{private_mosquitto.port}", connections=3)
            try:
                report = await asyncio.to_thread(pub.run, build_fleet(spec))
                await asyncio.to_thread(pub.flush)
            finally:
                pub.close()
            assert report.reconnects >= 1  # the flapping link did go down and come back

            def stored() -> dict[str, tuple[int, int]]:
                rows = conn.execute(
                    "SELECT enterprise_id, count(*), sum(count) FROM bureau_aggregate GROUP BY 1"
                ).fetchall()
                return {r[0]: (int(r[1]), int(r[2])) for r in rows}

            sent = {e: (report.aggregate_rows[e], report.readings[e]) for e in report.aggregate_rows}
            await _until(lambda: stored() == sent, "every aggregate row at the bureau")
        finally:
            await daemon.stop()

        assert len(sent) == 20 and sent[SILENT][0] == 10 * 12 and sent[FLAPPING][0] == 60 * 12
        registered = {r[0] for r in conn.execute("SELECT enterprise_id FROM bureau_enterprise").fetchall()}
        assert registered == set(spec.ids())
        assert report.alarms == [f"{LEAK}:1"]
        alarm = conn.execute(
            "SELECT tier, enterprise_id FROM bureau_alarm WHERE alarm_id = %s", (f"{LEAK}:1",)
        )
        assert alarm.fetchone() == (4, LEAK)  # red
        dead = conn.execute("SELECT count(*) FROM bureau_dead_letter").fetchone()
        assert dead == (0,)

        tick(conn, cfg.warning_settings, start + timedelta(minutes=60))
        kinds = {(w["kind"], w["enterprise_id"]) for w in list_warnings(conn, None)}
        assert ("silent", SILENT) in kinds
        assert ("red_unacked", LEAK) in kinds
        assert {e for k, e in kinds if k == "silent"} == {SILENT}


def _hz(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hazmon", "simulate", "fleet", *args],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
    )


def test_the_command_publishes_the_fleet_on_the_broker(private_mosquitto: PrivateMosquitto) -> None:
    got: list[str] = []
    ready = threading.Event()
    c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:6]}", protocol=mqtt.MQTTv5)
    c.on_connect = lambda c, u, f, rc, p: c.subscribe("hazmon/v1/+/up/#", qos=1)
    c.on_subscribe = lambda c, u, m, r, p: ready.set()
    c.on_message = lambda c, u, msg: got.append(msg.topic)
    c.connect("127.0.0.1", private_mosquitto.port)
    c.loop_start()
    try:
        assert ready.wait(10)
        broker = f"mqtt://127.0.0.1:{private_mosquitto.port}"
        common = ("--enterprises", "3", "--sensors-per-enterprise", "4", "--broker", broker)
        r = _hz(*common, "--duration", "3m", "--speed", "max", "--flapping", "sim-0002",
                "--start", "2026-03-01T08:00:00Z")  # fmt: skip
        assert r.returncode == 0, r.stderr
        deadline = time.monotonic() + 30
        while len(got) < 3 * (1 + 3 + 3) and time.monotonic() < deadline:
            time.sleep(0.05)
        kinds = sorted(t.rsplit("/", 1)[1] for t in got)
        assert kinds == ["aggregates"] * 9 + ["heartbeat"] * 9 + ["registration"] * 3
        bad = _hz(*common, "--silent", "sim-0009")
        assert bad.returncode == 2 and "no such enterprise sim-0009" in bad.stderr
    finally:
        c.loop_stop()
        c.disconnect()
