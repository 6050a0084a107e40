"""Alarm safety (issue 12): a red or orange alarm is never swallowed or silenced.

Real database, real webhook receiver, time simulated: the first notice of a red or
orange alarm goes out during a flood; a detector dying during a leak does not
silence its alarm; one endpoint going down is one alarm, its stale sensors its
consequences.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest

from hazmon.alarms import AlarmService
from hazmon.alarms.causes import link_finding
from hazmon.alarms.messages import render
from hazmon.plant import OpcUaBinding, Plant
from hazmon.plant.findings import Condition
from hazmon.plant.standards import Grade
from tests.alarms.helpers import T0, S, assess_all, gas, rows, webhook_settings
from tests.alarms.receivers import HttpReceiver

MakeService = Callable[..., Awaitable[AlarmService]]


@pytest.fixture
async def make_service(example_plant: Plant, db_dsn: str, hook: HttpReceiver) -> AsyncIterator[MakeService]:
    made: list[AlarmService] = []

    async def make(grade: Grade = Grade.TWO, **kw: Any) -> AlarmService:
        assess_all(example_plant, db_dsn, {"cl2-tankfarm": grade})
        svc = AlarmService(
            example_plant, webhook_settings(f"http://127.0.0.1:{hook.port}/hook", **kw), db_dsn
        )
        await svc.start()
        made.append(svc)
        return svc

    yield make
    for s in made:
        await s.close()


async def at(svc: AlarmService, t_s: float) -> None:
    await svc.tick(T0 + round(t_s * S))


def first_notices(hook: HttpReceiver, sensor: str, condition: str) -> set[str]:
    """Recipients of step 0 (the first notice) of the alarm of ``sensor`` / ``condition``."""
    out: set[str] = set()
    for p in hook.payloads():
        if p["purpose"] != "escalation" or not any(
            a["sensor"] == sensor and a["condition"] == condition for a in p["alarms"]
        ):
            continue
        if any(s["step"] == 0 for s in p["steps"]):
            out.add(p["recipient"])
    return out


# grade 2 makes a second-level chlorine alarm red, grade 3 orange (TIER_TABLE)
@pytest.mark.parametrize(("grade", "tier"), [(Grade.TWO, "red"), (Grade.THREE, "orange")])
@pytest.mark.parametrize("storm", ["stale sensors at start-up", "process alarm flood"])
async def test_first_notice_of_red_or_orange_goes_out_during_a_flood(
    make_service: MakeService, hook: HttpReceiver, db_dsn: str, grade: Grade, tier: str, storm: str
) -> None:
    svc = await make_service(grade=grade, repeat_s=0, flood_summary_delay_s=30.0)
    others = [s.tag for s in svc.plant.sensors() if s.tag != "AT-101"][:20]
    for i, tag in enumerate(others):  # 20 new yellow / blue alarms within 20 s: a flood from the 11th on
        if storm.startswith("stale"):
            f = gas(T0 + i * S, tag=tag, cond=Condition.STALE, value=0.0)
        else:
            f = gas(T0 + i * S, tag=tag, cond=Condition.H, value=9.0)
        await svc.handle([f], T0 + i * S)
    assert rows(db_dsn, "SELECT count(*) FROM alarm_flood")[0][0] == 1  # the storm is a flood
    await svc.handle([gas(T0 + 25 * S)], T0 + 25 * S)  # the leak, in the middle of the flood
    await at(svc, 25)
    leak = next(a for a in svc.alarms() if a.sensor == "AT-101" and a.condition == "gas_second")
    assert leak.state.tier == {"red": 4, "orange": 3}[tier]
    assert first_notices(hook, "AT-101", "gas_second") == {"control_room", "operational"}
    assert rows(
        db_dsn,
        "SELECT status, count(*) FROM alarm_notification WHERE alarm_id = %s AND message->>'step' = '0' "
        "GROUP BY status",
        leak.id,
    ) == [("sent", 2)]
    # the lower tiers of the storm are still grouped into the one summary
    await at(svc, 60)
    assert len([p for p in hook.payloads() if p["purpose"] == "flood_summary"]) == 1
    flooded = rows(db_dsn, "SELECT count(*) FROM alarm_notification WHERE status = 'flooded'")[0][0]
    assert flooded >= 10


@pytest.mark.parametrize("fault", [Condition.STALE, Condition.BAD_QUALITY])
async def test_latched_red_alarm_escalates_on_when_its_detector_dies(
    make_service: MakeService, hook: HttpReceiver, db_dsn: str, fault: Condition
) -> None:
    svc = await make_service(repeat_s=0)
    await svc.handle([gas(T0)], T0)
    await svc.handle([gas(T0 + 30 * S, active=False)], T0 + 30 * S)  # the gas is gone: latched
    leak = next(a for a in svc.alarms() if a.sensor == "AT-101" and a.condition == "gas_second")
    assert (leak.state.latched, leak.state.tier) == (True, 4)
    await svc.handle([gas(T0 + 60 * S, cond=fault, value=0.0)], T0 + 60 * S)  # the detector dies
    for t in (61, 300, 600, 1800, 3600):
        await at(svc, t)
    assert not leak.state.suppressed
    assert svc.info(leak, T0 + 3600 * S).state == "active_unacked"
    later = [
        p
        for p in hook.payloads()
        if p["purpose"] == "escalation"
        and any(a["condition"] == "gas_second" for a in p["alarms"])
        and min(s["due_us"] for s in p["steps"]) > T0 + 60 * S
    ]
    assert sorted((p["recipient"], (p["steps"][0]["due_us"] - T0) // S) for p in later) == [
        ("bureau_city", 1800),
        ("bureau_county", 600),
        ("principal", 300),
        ("technical", 300),
    ]
    for p in later:
        said = p["alarms"][0]
        assert said["detector_reporting"] is False
        assert "DETECTOR NO LONGER REPORTING: AT-101" in said["detector_en"]
        assert "探测器已停止上报：AT-101" in said["detector_zh"]
    # the texts of e-mail and SMS say it in both languages too
    _, text, short, _ = render(svc.plant, [svc.info(leak)], "technical", "escalation", locale="zh")
    assert "DETECTOR NO LONGER REPORTING: AT-101" in text and "探测器已停止上报：AT-101" in text
    assert "探测器已停止上报" in short
    assert not rows(
        db_dsn,
        "SELECT id FROM alarm_notification WHERE alarm_id = %s AND status = 'cancelled'",
        leak.id,
    )
    kinds = [e["kind"] for e in await svc.events(leak.id)]
    assert "detector_lost" in kinds and "suppressed" not in kinds
    # the detector back: the note goes, the alarm still waits for its acknowledgement
    await svc.handle([gas(T0 + 4000 * S, active=False, cond=fault)], T0 + 4000 * S)
    assert (leak.state.detector_fault, leak.state.latched) == ("", True)


async def test_alarm_raised_on_a_detector_known_bad_is_still_suppressed(
    make_service: MakeService, hook: HttpReceiver
) -> None:
    svc = await make_service(repeat_s=0)
    await svc.handle([gas(T0, cond=Condition.STALE, value=0.0)], T0)
    await svc.handle([gas(T0 + 5 * S, cond=Condition.H, value=9.0)], T0 + 5 * S)
    await at(svc, 700)
    h = next(a for a in svc.alarms() if a.sensor == "AT-101" and a.condition == "h")
    assert h.state.suppressed and not h.state.detector_fault
    assert not [p for p in hook.payloads() if any(a["condition"] == "h" for a in p["alarms"])]


def _plant_with_endpoint_of(plant: Plant, n: int) -> Plant:
    """The example plant with ``n`` more level transmitters of cl2-tankfarm on the OPC UA endpoint dcs."""
    template = next(s for s in plant.sensors() if isinstance(s.binding, OpcUaBinding))
    extra = tuple(
        replace(template, tag=f"LT-9{i:02d}", binding=replace(template.binding, node=f"ns=2;s=LT-9{i:02d}"))
        for i in range(n)
    )
    sources = tuple(
        replace(hs, sensors=hs.sensors + extra) if hs.id == "cl2-tankfarm" else hs
        for hs in plant.hazard_sources
    )
    return replace(plant, hazard_sources=sources)


async def test_an_endpoint_going_down_is_one_alarm_its_stale_sensors_its_consequences(
    example_plant: Plant, db_dsn: str, hook: HttpReceiver
) -> None:
    plant = _plant_with_endpoint_of(example_plant, 100)
    dcs = [s.tag for s in plant.sensors() if s.binding.endpoint == "dcs"]
    assert len(dcs) >= 100
    gds = next(s.tag for s in plant.sensors() if s.binding.endpoint == "gds")
    assess_all(plant, db_dsn)
    svc = AlarmService(plant, webhook_settings(f"http://127.0.0.1:{hook.port}/hook", repeat_s=0), db_dsn)
    await svc.start()
    try:
        ent = plant.enterprise.id
        # one detector already silent on its own just before the endpoint is seen to go (watchdog delay)
        await svc.handle([gas(T0 - 5 * S, tag=dcs[0], cond=Condition.STALE, value=0.0)], T0 - 5 * S)
        await svc.dispatch()
        assert first_notices(hook, dcs[0], "stale") == {"control_room"}
        told_before = len(hook.payloads())
        error = "endpoint dcs unavailable: BadNodeIdUnknown (ns=2;s=LT-999 refused)"
        down = link_finding(ent, "dcs", lost=True, reason=error, sensors=len(dcs), now_us=T0)
        stale = [gas(T0 + S, tag=t, cond=Condition.STALE, value=0.0) for t in dcs]
        await svc.handle([down, *stale], T0 + S)
        for t in (2, 60, 900, 3600):
            await at(svc, t)
        link = next(a for a in svc.alarms() if a.condition == "link_lost")
        assert (link.hazard_source, link.sensor, link.state.active) == (ent, "dcs", True)
        assert "BadNodeIdUnknown (ns=2;s=LT-999 refused)" in link.state.message_en
        assert "BadNodeIdUnknown (ns=2;s=LT-999 refused)" in link.state.message_zh
        later = hook.payloads()[told_before:]
        about = [{a["condition"] for a in p["alarms"]} for p in later]
        assert about and all(c == {"link_lost"} for c in about), about  # 0 stale notifications
        assert first_notices(hook, "dcs", "link_lost") == {"control_room"}
        consequences = [a for a in svc.alarms() if a.condition == "stale" and a.sensor in dcs]
        assert len(consequences) == len(dcs)
        for a in consequences:  # shown: recorded, active, with their cause; not waiting for anyone
            assert (a.state.active, a.state.cause) == (True, "link_lost:dcs")
            assert svc.info(a, T0 + 3600 * S).state == "suppressed"
        assert rows(db_dsn, "SELECT count(*) FROM alarm_flood")[0][0] == 0
        # alarm-load KPIs count what was annunciated: the detector silent on its own and the link
        assert rows(db_dsn, "SELECT sum(alarms)::int FROM alarm_kpi_hourly") == [(2,)]
        assert rows(
            db_dsn,
            "SELECT count(*) FROM alarm_notification n JOIN alarm a ON a.id = n.alarm_id "
            "WHERE a.condition = 'stale' AND n.status IN ('pending', 'sending')",
        ) == [(0,)]
        # recovery: the link alarm clears, its consequences with it; one alarm waits for acknowledgement
        await svc.handle(
            [link_finding(ent, "dcs", lost=False, reason="", sensors=len(dcs), now_us=T0 + 3700 * S)],
            T0 + 3700 * S,
        )
        states = [svc.info(a, T0 + 3700 * S).state for a in svc.alarms() if a.state.activations]
        assert states.count("rtn_unacked") == 1 and "active_unacked" not in states
        assert svc.info(link, T0 + 3700 * S).state == "rtn_unacked"
        assert all(svc.info(a, T0 + 3700 * S).state == "normal" and not a.state.cause for a in consequences)
        # the rules' "fresh" coming after does nothing more
        await svc.handle(
            [gas(T0 + 3701 * S, tag=t, active=False, cond=Condition.STALE) for t in dcs], T0 + 3701 * S
        )
        # a single detector going stale while its source is connected alarms on its own
        n = len(hook.payloads())
        await svc.handle([gas(T0 + 4000 * S, tag=gds, cond=Condition.STALE, value=0.0)], T0 + 4000 * S)
        await svc.handle([gas(T0 + 4001 * S, tag=dcs[5], cond=Condition.STALE, value=0.0)], T0 + 4001 * S)
        await at(svc, 4001)
        assert first_notices(hook, gds, "stale") == {"control_room"}
        assert first_notices(hook, dcs[5], "stale") == {"control_room"}
        assert len(hook.payloads()) > n
    finally:
        await svc.close()


async def test_consequences_are_not_listed_in_a_flood_summary(
    make_service: MakeService, hook: HttpReceiver, db_dsn: str
) -> None:
    svc = await make_service(repeat_s=0, flood_summary_delay_s=30.0)
    dcs = [s.tag for s in svc.plant.sensors() if s.binding.endpoint == "dcs"][:5]
    gds = [s.tag for s in svc.plant.sensors() if s.binding.endpoint == "gds"][:15]
    for i, tag in enumerate(gds):  # a flood of its own, from the 11th alarm on (T0 + 10 s)
        await svc.handle([gas(T0 + i * S, tag=tag, cond=Condition.H, value=9.0)], T0 + i * S)
    t = T0 + 20 * S  # the link goes during the flood, before its summary is due (T0 + 40 s)
    down = link_finding(svc.plant.enterprise.id, "dcs", lost=True, reason="x", sensors=5, now_us=t)
    await svc.handle([down, *(gas(t, tag=tag, cond=Condition.STALE, value=0.0) for tag in dcs)], t)
    await at(svc, 60)
    (summary,) = [p for p in hook.payloads() if p["purpose"] == "flood_summary"]
    assert summary["alarms"] and not [a for a in summary["alarms"] if a["condition"] == "stale"]
