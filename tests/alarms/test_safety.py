"""Alarm safety (issue 12): a red or orange alarm is never swallowed or silenced.

Real database, real webhook receiver, time simulated: the first notice of a red or
orange alarm goes out during a flood; a detector dying during a leak does not
silence its alarm; one endpoint going down is one alarm, its stale sensors its
consequences.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from hazmon.alarms import AlarmService
from hazmon.alarms.messages import render
from hazmon.plant import Plant
from hazmon.plant.findings import Condition
from hazmon.plant.standards import Grade
from tests.alarms.helpers import SECRET, T0, S, assess_all, gas, rows, webhook_settings
from tests.alarms.receivers import HttpReceiver

MakeService = Callable[..., Awaitable[AlarmService]]


@pytest.fixture
async def hook() -> AsyncIterator[HttpReceiver]:
    r = HttpReceiver(secret=SECRET)
    await r.start()
    yield r
    await r.stop()


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
