"""The alarm service on a real database with a real webhook receiver, time simulated.

Findings are fed directly (the rules engine is not needed): the escalation chain,
acknowledgement, bureau handling, repeats, shelving, suppression, floods, retries
and dead letters, and the audit trail in alarm_event.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest

from hazmon.alarms import AlarmService, EventKind, TransitionError
from hazmon.alarms.notifier import RetryPolicy
from hazmon.plant import Plant
from hazmon.plant.findings import Condition
from hazmon.plant.standards import Grade, Tier
from tests.alarms.helpers import T0, S, assess_all, gas, rows, webhook_settings, who_when
from tests.alarms.receivers import HttpReceiver

MakeService = Callable[..., Awaitable[AlarmService]]


@pytest.fixture
async def make_service(example_plant: Plant, db_dsn: str, hook: HttpReceiver) -> AsyncIterator[MakeService]:
    made: list[AlarmService] = []

    async def make(assess: bool = True, **kw: Any) -> AlarmService:
        if assess and not made:
            assess_all(example_plant, db_dsn)
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


async def test_red_chain_unacknowledged_reaches_each_person_on_time(
    make_service: MakeService, hook: HttpReceiver, db_dsn: str
) -> None:
    svc = await make_service(repeat_s=0)
    await svc.handle([gas(T0)], T0)
    await svc.dispatch()
    assert who_when(hook.payloads(), "AT-101") == [
        ("control_room", 0, "escalation"),
        ("operational", 0, "escalation"),
    ]
    for t in (60, 299):
        await at(svc, t)
    assert len(hook.payloads()) == 2  # nothing before 5 min
    await at(svc, 300)
    await at(svc, 599)
    await at(svc, 600)
    await at(svc, 1799)
    await at(svc, 1800)
    await at(svc, 7200)
    assert who_when(hook.payloads(), "AT-101") == [
        ("control_room", 0, "escalation"),
        ("operational", 0, "escalation"),
        ("principal", 300, "escalation"),
        ("technical", 300, "escalation"),
        ("bureau_county", 600, "escalation"),
        ("bureau_city", 1800, "escalation"),
    ]
    assert hook.bad_signatures == 0
    first = hook.payloads()[0]
    assert first["tier"] == "red"
    assert first["alarms"][0]["message_zh"].startswith("AT-101 氯气浓度")
    assert "【红色预警】" in first["subject"] and "[RED]" in first["subject"]
    # every delivery is in the audit trail with whom it reached
    notified = rows(
        db_dsn,
        "SELECT e.data->>'recipient', e.at_us FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id "
        "WHERE a.sensor = 'AT-101' AND e.kind = 'notified' ORDER BY e.id",
    )
    assert sorted(((t - T0) // S, r) for r, t in notified) == [
        (0, "control_room"),
        (0, "operational"),
        (300, "principal"),
        (300, "technical"),
        (600, "bureau_county"),
        (1800, "bureau_city"),
    ]


async def test_ack_stops_escalation_and_bureau_closes_with_audit_trail(
    make_service: MakeService, hook: HttpReceiver, db_dsn: str
) -> None:
    svc = await make_service(repeat_s=0)
    await svc.handle([gas(T0)], T0)
    await at(svc, 300)
    await at(svc, 600)  # reaches the county bureau
    (alarm,) = [a for a in svc.alarms() if a.sensor == "AT-101"]
    await svc.act(alarm.id, EventKind.BUREAU_RECEIVED, "luhe")
    await at(svc, 700)
    await svc.act(alarm.id, EventKind.ACKED, "op1", "evacuated, valve closed")
    await svc.act(alarm.id, EventKind.BUREAU_VERIFIED, "luhe", "phoned the plant")
    await svc.handle([gas(T0 + 900 * S, active=False, value=0.1)], T0 + 900 * S)
    await svc.act(alarm.id, EventKind.BUREAU_FEEDBACK, "boss", "leak at V-102 flange, repaired")
    await svc.act(alarm.id, EventKind.BUREAU_CLOSED, "luhe", "消警")
    for t in (1000, 1800, 3600, 7200):
        await at(svc, t)
    assert who_when(hook.payloads(), "AT-101") == [
        ("control_room", 0, "escalation"),
        ("operational", 0, "escalation"),
        ("principal", 300, "escalation"),
        ("technical", 300, "escalation"),
        ("bureau_county", 600, "escalation"),
    ]  # no city bureau at 30 min: acknowledged at 700 s
    trail = rows(
        db_dsn,
        "SELECT kind, actor, comment, at_us FROM alarm_event WHERE alarm_id = %s AND kind <> 'notified' ORDER BY id",
        alarm.id,
    )
    assert [(k, who, c, (t - T0) // S) for k, who, c, t in trail] == [
        ("raised", "system", "", 0),
        ("bureau_received", "luhe", "", 600),
        ("acked", "op1", "evacuated, valve closed", 700),
        ("bureau_verified", "luhe", "phoned the plant", 700),
        ("cleared", "system", "", 900),
        ("bureau_feedback", "boss", "leak at V-102 flange, repaired", 900),
        ("bureau_closed", "luhe", "消警", 900),
    ]
    (proj,) = rows(
        db_dsn, "SELECT state, active, acked, bureau_step, acked_by FROM alarm WHERE id = %s", alarm.id
    )
    assert proj == ("normal", False, True, "closed", "op1")
    cancelled = rows(
        db_dsn,
        "SELECT recipient, status FROM alarm_notification WHERE alarm_id = %s AND status <> 'sent'",
        alarm.id,
    )
    assert cancelled == [("bureau_city", "cancelled")]


async def test_latching_gas_alarm_stays_until_acknowledged(
    make_service: MakeService, hook: HttpReceiver
) -> None:
    svc = await make_service(repeat_s=0)
    await svc.handle([gas(T0)], T0)
    await svc.handle([gas(T0 + 60 * S, active=False, value=0.0)], T0 + 60 * S)
    await at(svc, 300)
    (a,) = [a for a in svc.alarms() if a.sensor == "AT-101"]
    assert a.state.latched and not a.state.active
    assert ("technical", 300, "escalation") in who_when(hook.payloads(), "AT-101")  # still escalating
    await svc.act(a.id, EventKind.ACKED, "op1")
    assert not a.state.showing_active


async def test_first_level_rtn_stops_later_steps(make_service: MakeService, hook: HttpReceiver) -> None:
    svc = await make_service(repeat_s=0)
    f = gas(T0, cond=Condition.GAS_FIRST, value=1.2)
    await svc.handle([f], T0)
    await svc.handle([gas(T0 + 30 * S, active=False, cond=Condition.GAS_FIRST, value=0.2)], T0 + 30 * S)
    for t in (600, 1800, 3600):
        await at(svc, t)
    # cl2-tankfarm assessed grade 2: first level is yellow -> control room at once, then nothing
    assert who_when(hook.payloads(), "AT-101") == [("control_room", 0, "escalation")]


async def test_repeating_finding_updates_one_alarm(make_service: MakeService, db_dsn: str) -> None:
    svc = await make_service(repeat_s=0)
    for i in range(20):
        await svc.handle([gas(T0 + i * 10 * S, value=3.0 + i / 10)], T0 + i * 10 * S)
    n_alarms = rows(
        db_dsn, "SELECT count(*), max(activations), max(repeats) FROM alarm WHERE sensor = 'AT-101'"
    )
    kinds = rows(
        db_dsn,
        "SELECT kind, count(*) FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id "
        "WHERE a.sensor = 'AT-101' AND kind IN ('raised', 'updated') GROUP BY kind ORDER BY kind",
    )
    # one alarm, one activation; a repeat is recorded at most once a minute
    assert n_alarms == [(1, 1, 3)]
    assert kinds == [("raised", 1), ("updated", 3)]
    (last,) = rows(db_dsn, "SELECT last_seen_us FROM alarm WHERE sensor = 'AT-101'")
    assert last == (T0 + 190 * S,)


async def test_repeat_notifications_while_unacknowledged(
    make_service: MakeService, hook: HttpReceiver
) -> None:
    svc = await make_service(repeat_s=600)
    await svc.handle([gas(T0, cond=Condition.GAS_FIRST, value=1.5)], T0)  # yellow: control room only
    for t in (300, 600, 900, 1200, 1210):
        await at(svc, t)
    (a,) = [a for a in svc.alarms() if a.sensor == "AT-101"]
    await svc.act(a.id, EventKind.ACKED, "op1")
    await at(svc, 1800)
    assert who_when(hook.payloads(), "AT-101") == [
        ("control_room", 0, "escalation"),
        ("control_room", 600, "repeat"),
        ("operational", 900, "escalation"),  # yellow: 操作负责人 after 15 min
        ("control_room", 1200, "repeat"),
    ]


async def test_shelve_stops_notifications_and_unshelves_itself(
    make_service: MakeService, hook: HttpReceiver
) -> None:
    svc = await make_service(repeat_s=0)
    await svc.handle([gas(T0)], T0)
    await at(svc, 10)
    (a,) = [a for a in svc.alarms() if a.sensor == "AT-101"]
    with pytest.raises(TransitionError):
        await svc.act(a.id, EventKind.SHELVED, "op1", data={"until_us": T0 + 3600 * S, "reason": ""})
    await svc.act(
        a.id, EventKind.SHELVED, "op1", data={"until_us": T0 + 3600 * S, "reason": "sensor calibration"}
    )
    for t in (300, 600, 1800, 3599):
        await at(svc, t)
    assert len(who_when(hook.payloads(), "AT-101")) == 2
    await at(svc, 3600)  # shelving expires: escalation starts again from now
    await at(svc, 3900)
    got = who_when(hook.payloads(), "AT-101")
    assert got[2:] == [
        ("control_room", 3600, "escalation"),
        ("operational", 3600, "escalation"),
        ("principal", 3900, "escalation"),
        ("technical", 3900, "escalation"),
    ]
    ev = await svc.events(a.id)
    assert [(e["kind"], e["actor"], e["comment"]) for e in ev if e["kind"] in ("shelved", "unshelved")] == [
        ("shelved", "op1", ""),
        ("unshelved", "system", "shelving expired"),
    ]


async def test_faulty_sensor_suppresses_its_alarms(make_service: MakeService, hook: HttpReceiver) -> None:
    svc = await make_service(repeat_s=0)
    await svc.handle([gas(T0, cond=Condition.STUCK, value=0.0)], T0)
    await svc.handle([gas(T0 + 5 * S)], T0 + 5 * S)  # gas alarm on the stuck sensor
    await at(svc, 700)
    gas_alarm = next(a for a in svc.alarms() if a.sensor == "AT-101" and a.condition == "gas_second")
    assert gas_alarm.state.suppressed
    assert [p["alarms"][0]["condition"] for p in hook.payloads() if p["alarms"][0]["sensor"] == "AT-101"] == [
        "stuck"
    ]
    await svc.handle([gas(T0 + 800 * S, active=False, cond=Condition.STUCK)], T0 + 800 * S)
    await at(svc, 800)
    assert not gas_alarm.state.suppressed
    assert ("control_room", 800, "escalation") in who_when(
        [p for p in hook.payloads() if p["alarms"][0]["condition"] == "gas_second"]
    )


async def test_flood_sends_one_summary(make_service: MakeService, hook: HttpReceiver, db_dsn: str) -> None:
    svc = await make_service(repeat_s=0, flood_summary_delay_s=30.0)
    tags = [s.tag for s in svc.plant.sensors()][:15]
    for i, tag in enumerate(tags):  # 15 new alarms in 15 s at one plant
        await svc.handle([gas(T0 + i * S, tag=tag, cond=Condition.H, value=9.0)], T0 + i * S)
    await at(svc, 20)
    first10 = [p for p in hook.payloads() if p["purpose"] == "escalation"]
    assert sorted(a["sensor"] for p in first10 for a in p["alarms"]) == sorted(tags[:10])
    await at(svc, 40)
    summaries = [p for p in hook.payloads() if p["purpose"] == "flood_summary"]
    assert len(summaries) == 1
    assert summaries[0]["count"] == 5
    assert {a["sensor"] for a in summaries[0]["alarms"]} == set(tags[10:])
    # the flood started with the 11th new alarm; 15 new alarms in its window
    assert rows(db_dsn, "SELECT alarms, (started_us - %s) / 1000000 FROM alarm_flood", T0) == [(15, 10)]
    flooded = rows(db_dsn, "SELECT count(*) FROM alarm_notification WHERE status = 'flooded'")
    assert flooded[0][0] >= 5


async def test_retry_with_backoff_then_dead_letter(
    make_service: MakeService, hook: HttpReceiver, db_dsn: str
) -> None:
    svc = await make_service(repeat_s=0, retry=RetryPolicy(attempts=3, backoff_s=10.0, max_backoff_s=60.0))
    hook.status = 503
    await svc.handle([gas(T0, cond=Condition.GAS_FIRST, value=1.5)], T0)
    await at(svc, 0)
    await at(svc, 9)  # backoff 10 s: not yet
    await at(svc, 10)  # second attempt
    await at(svc, 29)
    await at(svc, 30)  # third attempt (backoff 20 s) -> dead
    await at(svc, 300)
    assert len([r for r in hook.requests if r["json"]["recipient"] == "control_room"]) == 3
    dead = rows(
        db_dsn,
        "SELECT d.notifier, d.attempts, d.error LIKE %s, (d.at_us - %s) / 1000000 FROM alarm_dead_letter d",
        "%HTTP 503%",
        T0,
    )
    assert dead == [("hook", 3, True, 30)]
    failed = rows(db_dsn, "SELECT count(*) FROM alarm_event WHERE kind = 'notify_failed'")
    assert failed == [(1,)]
    assert svc.metrics()["dead"] == 1


async def test_retry_succeeds_when_the_receiver_comes_back(
    make_service: MakeService, hook: HttpReceiver
) -> None:
    svc = await make_service(repeat_s=0, retry=RetryPolicy(attempts=5, backoff_s=10.0))
    hook.status = 500
    await svc.handle([gas(T0, cond=Condition.GAS_FIRST, value=1.5)], T0)
    await at(svc, 0)
    hook.status = 200
    await at(svc, 10)
    deliveries = [r["headers"]["X-Hazmon-Delivery"] for r in hook.requests]
    assert len(deliveries) == 2 and deliveries[0] == deliveries[1]  # same delivery id on the retry
    assert svc.metrics()["sent"] == 1


async def test_no_assessment_raises_overdue_and_counts_one_grade_more_severe(
    make_service: MakeService, hook: HttpReceiver, db_dsn: str
) -> None:
    svc = await make_service(assess=False, repeat_s=0)
    await at(svc, 0)
    overdue = rows(
        db_dsn,
        "SELECT hazard_source, tier_name, state FROM alarm WHERE condition = 'assessment_overdue' ORDER BY 1",
    )
    assert [h for h, _, _ in overdue] == sorted(h.id for h in svc.plant.hazard_sources)
    assert all(st == "active_unacked" for _, _, st in overdue)
    # a first-level alarm at the methanol farm: no assessment, so one grade more severe than its own
    g = svc.grade_of("cl2-tankfarm")
    assert g == Grade.ONE
    assert rows(db_dsn, "SELECT count(*) FROM alarm WHERE condition = 'filing_overdue' AND active") == [(0,)]


async def test_overdue_filing_raises_filing_overdue(
    example_plant: Plant, db_dsn: str, hook: HttpReceiver
) -> None:
    from datetime import date

    from hazmon.plant.assessment import AssessmentRecord
    from hazmon.store import add_assessment, connect

    with connect(db_dsn) as c:
        for hs in example_plant.hazard_sources:
            add_assessment(
                c,
                example_plant.enterprise.id,
                AssessmentRecord(hs.id, date(2026, 10, 1), "A", 60.0, Grade.TWO, None),
            )
        c.commit()
    svc = AlarmService(example_plant, webhook_settings(f"http://127.0.0.1:{hook.port}/h", repeat_s=0), db_dsn)
    try:
        await svc.start()
        await at(svc, 0)
        got = rows(db_dsn, "SELECT condition, count(*) FROM alarm WHERE active GROUP BY 1 ORDER BY 1")
        assert got == [("filing_overdue", 3)]
        assert svc.grade_of("cl2-tankfarm") == Grade.TWO  # the assessment itself is valid
    finally:
        await svc.close()


async def test_projection_equals_fold_of_the_log(make_service: MakeService, db_dsn: str) -> None:
    from hazmon.alarms.lifecycle import Event, fold, state_from_json

    svc = await make_service(repeat_s=0)
    await svc.handle([gas(T0)], T0)
    (a,) = [a for a in svc.alarms() if a.sensor == "AT-101"]
    await svc.act(a.id, EventKind.SHELVED, "op1", data={"until_us": T0 + 60 * S, "reason": "x"})
    await at(svc, 61)
    await svc.act(a.id, EventKind.ACKED, "op1")
    await svc.handle([gas(T0 + 90 * S, active=False)], T0 + 90 * S)
    log = rows(
        db_dsn,
        "SELECT kind, at_us, actor, comment, data FROM alarm_event WHERE alarm_id = %s ORDER BY id",
        a.id,
    )
    folded = fold(Event(EventKind(k), t, who, c, d) for k, t, who, c, d in log)
    (proj,) = rows(db_dsn, "SELECT folded FROM alarm WHERE id = %s", a.id)
    assert state_from_json(proj[0]) == folded == a.state


async def test_failed_batch_is_recorded_once_when_retried(make_service: MakeService, db_dsn: str) -> None:
    """The database connection drops mid-batch: handle raises, the daemon retries the same findings."""
    import psycopg

    svc = await make_service(repeat_s=0)
    await svc.handle([gas(T0, tag="AT-102", cond=Condition.GAS_FIRST, value=1.1)], T0)
    with psycopg.connect(db_dsn, autocommit=True) as c:
        c.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    batch = [gas(T0 + 5 * S), gas(T0 + 5 * S, tag="AT-102", cond=Condition.GAS_FIRST, active=False)]
    with pytest.raises(psycopg.OperationalError):
        await svc.handle(batch, T0 + 5 * S)
    await svc.handle(batch, T0 + 5 * S)  # the daemon's retry
    await at(svc, 10)
    got = rows(
        db_dsn,
        "SELECT a.sensor, e.kind FROM alarm_event e JOIN alarm a ON a.id = e.alarm_id "
        "WHERE e.kind IN ('raised', 'cleared') ORDER BY e.id",
    )
    assert got == [("AT-102", "raised"), ("AT-101", "raised"), ("AT-102", "cleared")]
    assert rows(db_dsn, "SELECT count(*) FROM alarm WHERE sensor = 'AT-101'") == [(1,)]


async def test_kpi_views_for_grafana(make_service: MakeService, db_dsn: str) -> None:
    # alarm_kpi_standing compares with the server's now(), so this test's times are relative to
    # the server's clock (not T0's fixed date): the start of the hour before the server's now.
    ((t0,),) = rows(db_dsn, "SELECT (extract(epoch FROM date_trunc('hour', now()) - interval '1 hour') * 1e6)::bigint")
    assert isinstance(t0, int)
    svc = await make_service(repeat_s=0)
    old = t0 - 2 * 86400 * S  # standing: active for two days
    await svc.handle([gas(old, tag="AT-102", cond=Condition.GAS_FIRST, value=1.1)], old)
    for i in range(3):  # AT-103 chatters: three activations within a minute
        t = t0 + i * 15 * S
        await svc.handle([gas(t, tag="AT-103", cond=Condition.GAS_FIRST, value=1.2)], t)
        await svc.handle([gas(t + 5 * S, tag="AT-103", cond=Condition.GAS_FIRST, active=False)], t + 5 * S)
    await svc.handle([gas(t0 + 100 * S)], t0 + 100 * S)
    hourly = rows(
        db_dsn,
        "SELECT position, alarms, red, orange, yellow, blue FROM alarm_kpi_hourly "
        "WHERE hour = to_timestamp(%s / 1e6) ORDER BY 1",
        t0,
    )
    assert hourly == [("control-room", 4, 1, 0, 3, 0)]
    assert rows(db_dsn, "SELECT sensor FROM alarm_kpi_standing") == [("AT-102",)]
    assert rows(db_dsn, "SELECT chattering_alarms FROM alarm_kpi_chattering") == [(1,)]
    targets = dict(rows(db_dsn, "SELECT key, value FROM alarm_kpi_target"))
    assert (targets["acceptable_per_hour"], targets["flood_count"]) == (6.0, 10.0)


async def test_alarm_row_written_elsewhere_is_reused_not_duplicated(
    make_service: MakeService, db_dsn: str
) -> None:
    """A row this process has not loaded (another run wrote it) is taken over, not a unique-key failure."""
    svc = await make_service(repeat_s=0)
    other = await make_service(repeat_s=0)  # started before the alarm exists: does not know it
    await svc.handle([gas(T0)], T0)
    await other.handle([gas(T0 + 5 * S, active=False)], T0 + 5 * S)
    assert rows(db_dsn, "SELECT count(*) FROM alarm WHERE sensor = 'AT-101'") == [(1,)]


@pytest.mark.parametrize("own_thread", [True, False])
async def test_service_on_its_own_thread_or_the_callers_loop(
    make_service: MakeService, hook: HttpReceiver, own_thread: bool
) -> None:
    """Same chain either way; with own_thread the service's loop is not the caller's."""
    import asyncio

    svc = await make_service(repeat_s=0, own_thread=own_thread)
    assert (svc._loop is not None and svc._loop is not asyncio.get_running_loop()) is own_thread
    await svc.handle([gas(T0)], T0)
    await svc.dispatch()
    (a,) = [a for a in svc.alarms() if a.sensor == "AT-101"]
    await svc.act(a.id, EventKind.ACKED, "op1")
    await at(svc, 600)
    assert who_when(hook.payloads(), "AT-101") == [
        ("control_room", 0, "escalation"),
        ("operational", 0, "escalation"),
    ]
    assert [e["kind"] for e in await svc.events(a.id)][:2] == ["raised", "notified"]


async def test_trace_keeps_each_stage_in_order(make_service: MakeService) -> None:
    from hazmon.alarms.trace import LatencyTrace

    svc = await make_service(repeat_s=0)
    tracer = LatencyTrace()
    svc.tracer = tracer  # the hook bench/alarm_latency.py installs
    await svc.handle([gas(T0)], T0)
    await svc.dispatch()
    (t,) = [t for t in tracer.traces if t["sensor"] == "AT-101"]
    assert t["finding_us"] == T0
    stages = ["handed_us", "locked_us", "issued_us", "committed_us", "claimed_us", "sent_us"]
    assert [t[k] for k in stages] == sorted(t[k] for k in stages)
    assert t["dispatch_us"] <= t["claimed_us"]
    untraced = await make_service(repeat_s=0)
    await untraced.handle([gas(T0, tag="AT-102", cond=Condition.GAS_FIRST, value=1.1)], T0)
    await untraced.dispatch()
    assert untraced.tracer is None
    assert [t["sensor"] for t in tracer.traces] == ["AT-101"]  # nothing of the service without it


async def test_new_assessment_gives_active_alarms_their_new_tier(
    make_service: MakeService, hook: HttpReceiver, db_dsn: str, example_plant: Plant
) -> None:
    """cl2-tankfarm assessed grade 2, then grade 1: a first-level gas alarm goes yellow -> orange."""
    from datetime import date

    from hazmon.plant.assessment import AssessmentRecord
    from hazmon.store import add_assessment, connect

    svc = await make_service(repeat_s=0, assessment_check_s=1)
    first = Condition.GAS_FIRST
    await svc.handle([gas(T0, tag="AT-102", cond=first, value=1.1)], T0)
    await svc.handle([gas(T0, tag="AT-103", cond=first, value=1.2)], T0)
    await at(svc, 0)
    (a,) = [x for x in svc.alarms() if x.sensor == "AT-102"]
    (b,) = [x for x in svc.alarms() if x.sensor == "AT-103"]
    await svc.act(b.id, EventKind.ACKED, "op1")  # acknowledged: takes the tier, escalates no more
    assert (a.state.tier, b.state.tier) == (int(Tier.YELLOW), int(Tier.YELLOW))
    await at(svc, 600)
    assert who_when(hook.payloads(), "AT-102") == [("control_room", 0, "escalation")]
    with connect(db_dsn) as c:
        add_assessment(
            c,
            example_plant.enterprise.id,
            AssessmentRecord(
                "cl2-tankfarm", date(2026, 11, 1), "Second Assessor", 95.0, Grade.ONE, date(2026, 11, 5)
            ),
        )
        c.commit()
    await at(svc, 700)
    assert (a.state.tier, b.state.tier) == (int(Tier.ORANGE), int(Tier.ORANGE))
    got = rows(
        db_dsn,
        "SELECT e.actor, e.comment, e.data->>'from_tier', e.data->>'tier', e.at_us FROM alarm_event e "
        "WHERE e.alarm_id = %s AND e.kind = 'tier_changed'",
        a.id,
    )
    assert len(got) == 1
    actor, comment, was, now, at_us = got[0]
    assert (actor, was, now, at_us) == ("system", "2", "3", T0 + 700 * S)
    assert comment == "tier yellow (黄) -> orange (橙): cl2-tankfarm assessed grade 1 (was: assessed grade 2)"
    assert rows(db_dsn, "SELECT tier, tier_name FROM alarm WHERE id = %s", b.id) == [(3, "orange")]
    assert (
        len(rows(db_dsn, "SELECT 1 FROM alarm_event WHERE alarm_id = %s AND kind = 'tier_changed'", b.id))
        == 1
    )
    # orange from the activation: operational at once and technical + principal at 10 min are
    # due already and go out now; the control room is not told again
    sent = who_when(hook.payloads(), "AT-102")
    assert sent == [
        ("control_room", 0, "escalation"),
        ("operational", 0, "escalation"),
        ("principal", 600, "escalation"),
        ("technical", 600, "escalation"),
    ]
    assert who_when(hook.payloads(), "AT-103") == [("control_room", 0, "escalation")]
    await at(svc, 1799)
    await at(svc, 3600)  # yellow's 15 min and 60 min steps were cancelled; orange's county at 30 min
    assert who_when(hook.payloads(), "AT-102") == [*sent, ("bureau_county", 1800, "escalation")]
    assert who_when(hook.payloads(), "AT-103") == [("control_room", 0, "escalation")]


async def test_steps_due_now_are_claimed_by_the_recording_transaction(
    make_service: MakeService, hook: HttpReceiver, db_dsn: str
) -> None:
    """No claim round trip for a new alarm's first messages: committed 'sending', sent from memory."""
    svc = await make_service(repeat_s=0, own_thread=False)  # the dispatcher cannot run before we look
    await svc.handle([gas(T0)], T0)
    got = rows(
        db_dsn,
        "SELECT recipient, status, attempts FROM alarm_notification WHERE due_us <= %s ORDER BY recipient",
        T0,
    )
    assert got == [("control_room", "sending", 1), ("operational", "sending", 1)]
    later = rows(db_dsn, "SELECT DISTINCT status, attempts FROM alarm_notification WHERE due_us > %s", T0)
    assert later == [("pending", 0)]
    assert await svc.dispatch() == 2
    assert who_when(hook.payloads(), "AT-101") == [
        ("control_room", 0, "escalation"),
        ("operational", 0, "escalation"),
    ]
    assert rows(db_dsn, "SELECT DISTINCT status FROM alarm_notification WHERE due_us <= %s", T0) == [
        ("sent",)
    ]


async def test_message_sent_again_after_a_crash_keeps_its_delivery_id(
    make_service: MakeService, hook: HttpReceiver, db_dsn: str
) -> None:
    """Sent, then the process died before the 'sent' mark: the resend is the same message.

    Another alarm's step for the same person falls due in the same round; it goes in a
    message of its own instead of changing the resent message's delivery id.
    """
    import psycopg

    svc = await make_service(repeat_s=0, own_thread=False)
    await svc.handle([gas(T0)], T0)
    await at(svc, 0)
    await svc.handle([gas(T0 + 100 * S, tag="AT-102")], T0 + 100 * S)
    await at(svc, 100)
    await at(svc, 300)  # AT-101's technical + principal step

    def technical(sensor: str) -> list[dict[str, Any]]:
        return [
            p
            for p in hook.payloads()
            if p["recipient"] == "technical" and any(a["sensor"] == sensor for a in p["alarms"])
        ]

    (before,) = technical("AT-101")
    with psycopg.connect(db_dsn, autocommit=True) as c:  # the crash: sent, never marked
        c.execute(
            "UPDATE alarm_notification SET status = 'sending' WHERE recipient = 'technical' AND status = 'sent'"
        )
    await svc.close()
    again = await make_service(repeat_s=0, own_thread=False)
    await at(again, 400)  # the resend and AT-102's own technical step, in one round
    twice = technical("AT-101")
    assert len(twice) == 2
    assert twice[1]["delivery_id"] == before["delivery_id"]
    assert [a["sensor"] for a in twice[1]["alarms"]] == ["AT-101"]
    (other,) = technical("AT-102")
    assert [a["sensor"] for a in other["alarms"]] == ["AT-102"]
    assert other["delivery_id"] != before["delivery_id"]
