"""The whole chain in simulated time: simulator (chlorine-leak) → rules → alarm service →
real webhook, SMTP (STARTTLS + login), Mosquitto bureau topic and SMS gateway.

The collector is not in this chain (readings go from the simulator to the rules in-process)
so that an hour of plant time runs in seconds; the daemon's own wiring of the same
objects is tested by the daemon's tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from hazmon.alarms import AlarmService, EventKind, parse_settings
from hazmon.plant import Plant
from hazmon.plant.yamlnode import parse_document
from hazmon.rules import RulesRunner
from hazmon.simulators import Simulation, load_scenario
from tests.alarms.helpers import SECRET, T0, S, assess_all
from tests.alarms.receivers import HttpReceiver, MqttListener, SmtpServer
from tests.alarms.test_channels import _config

pytestmark = pytest.mark.slow

TICK_S = 5


@dataclass
class Rig:
    svc: AlarmService
    hook: HttpReceiver
    gateway: HttpReceiver
    smtp: SmtpServer
    bureau: MqttListener
    topic_prefix: str


@pytest.fixture
async def rig(
    example_plant: Plant,
    db_dsn: str,
    tmp_path: Path,
    mqtt_broker: tuple[str, int],
    topic_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[Rig]:
    monkeypatch.setenv("T_HOOK_SECRET", SECRET.decode())
    monkeypatch.setenv("T_SMTP_PASSWORD", SmtpServer.PASSWORD)
    hook, gateway = HttpReceiver(secret=SECRET), HttpReceiver()
    await hook.start()
    await gateway.start()
    smtp = SmtpServer(tmp_path)
    smtp.start()
    bureau = MqttListener(*mqtt_broker, f"{topic_prefix}/alarms/#")
    text = _config(hook.port, gateway.port, smtp.port, smtp.cert, mqtt_broker, topic_prefix)
    settings = parse_document(text, "hazmon.yaml", parse_settings)
    assess_all(example_plant, db_dsn)
    svc = AlarmService(example_plant, settings, db_dsn)
    await svc.start()
    yield Rig(svc, hook, gateway, smtp, bureau, topic_prefix)
    await svc.close()
    bureau.stop()
    smtp.stop()
    await hook.stop()
    await gateway.stop()


async def run_scenario(rig: Rig, plant: Plant, until_s: int, ack_at_s: int | None = None) -> int | None:
    """Simulate ``until_s`` seconds; acknowledge the red alarm ``ack_at_s`` after it was raised."""
    sim = Simulation(plant, "chlorine-leak", seed=1, start_us=T0)
    rules = RulesRunner(plant)
    raised_s: int | None = None
    for now, readings in sim.steps(until_s, 1.0):
        found = rules.process(readings, [], now)
        if found:
            await rig.svc.handle(found, now)
        t = (now - T0) // S
        red = [a for a in rig.svc.alarms() if a.condition == "gas_second" and a.state.activations]
        if red and raised_s is None:
            raised_s = ((red[0].state.activated_at_us or T0) - T0) // S
        if ack_at_s is not None and raised_s is not None and t == raised_s + ack_at_s:
            await rig.svc.act(red[0].id, EventKind.ACKED, "op1", "on site, leak isolated")
        if t % TICK_S == 0:
            await rig.svc.tick(now)
    return raised_s


async def notified(rig: Rig, condition: str) -> list[tuple[str, str, int]]:
    """(notifier, recipient, due s after the alarm was raised) for every delivery of ``condition``."""
    out = []
    for a in rig.svc.alarms():
        if a.condition != condition:
            continue
        start = a.state.activated_at_us or 0
        for e in await rig.svc.events(a.id):
            if e["kind"] == "notified":
                out.append(
                    (e["data"]["notifier"], e["data"]["recipient"], (e["data"]["due_us"] - start) // S)
                )
    return sorted(out, key=lambda x: (x[2], x[1], x[0]))


async def test_chlorine_leak_unacknowledged_reaches_the_city_bureau(rig: Rig, example_plant: Plant) -> None:
    raised_s = await run_scenario(rig, example_plant, 3600)
    leak_s = min(e.at_s for e in load_scenario("chlorine-leak").events)
    assert raised_s is not None and leak_s < raised_s < 1200  # the leak starts (at 30 s) and grows
    (red,) = [a for a in rig.svc.alarms() if a.condition == "gas_second"]
    assert (red.sensor, red.state.tier, red.state.latching) == ("AT-101", 4, True)
    assert not red.state.active and red.state.latched  # gas gone after the leak was isolated, still latched
    assert await notified(rig, "gas_second") == [
        ("control-room", "control_room", 0),
        ("mail", "operational", 0),
        ("sms", "operational", 0),
        ("mail", "principal", 300),
        ("sms", "principal", 300),
        ("mail", "technical", 300),
        ("sms", "technical", 300),
        ("mail", "bureau_county", 600),
        ("province-platform", "bureau_county", 600),
        ("mail", "bureau_city", 1800),
        ("province-platform", "bureau_city", 1800),
    ]
    bureau_msgs = rig.bureau.drain()
    red_msgs = [(t, m["recipient"]) for t, m in bureau_msgs if m["alarms"][0]["condition"] == "gas_second"]
    assert red_msgs == [
        (f"{rig.topic_prefix}/alarms/320116", "bureau_county"),
        (f"{rig.topic_prefix}/alarms/320100", "bureau_city"),
    ]
    mails = {m.to[0] for m in rig.smtp.box if "gas_second" in m.body}
    assert mails == {
        "wang.q@hx-chem.example.com",
        "li.ming@hx-chem.example.com",
        "zhang.jg@hx-chem.example.com",
        "duty@luhe.example.gov.cn",
        "duty@nanjing.example.gov.cn",
    }
    # the bureau handles it: received -> verified -> enterprise feedback -> closed (消警)
    for step, who, note in (
        (EventKind.BUREAU_RECEIVED, "county-bureau", ""),
        (EventKind.BUREAU_VERIFIED, "county-bureau", "confirmed by phone"),
        (EventKind.BUREAU_FEEDBACK, "plant-manager", "V-102 packing replaced"),
        (EventKind.ACKED, "operator", "reset after the leak"),
        (EventKind.BUREAU_CLOSED, "county-bureau", "消警"),
    ):
        await rig.svc.act(red.id, step, who, note)
    trail = [(e["kind"], e["actor"]) for e in await rig.svc.events(red.id) if e["kind"] != "notified"]
    assert trail == [
        ("raised", "system"),
        ("cleared", "system"),
        ("bureau_received", "county-bureau"),
        ("bureau_verified", "county-bureau"),
        ("bureau_feedback", "plant-manager"),
        ("acked", "operator"),
        ("bureau_closed", "county-bureau"),
    ]
    assert not red.state.showing_active and red.state.bureau_step == "closed"


async def test_chlorine_leak_acknowledged_stops_escalation(rig: Rig, example_plant: Plant) -> None:
    raised_s = await run_scenario(rig, example_plant, 3000, ack_at_s=120)
    assert raised_s is not None
    assert await notified(rig, "gas_second") == [
        ("control-room", "control_room", 0),
        ("mail", "operational", 0),
        ("sms", "operational", 0),
    ]
    assert [m for _, m in rig.bureau.drain() if m["alarms"][0]["condition"] == "gas_second"] == []
