"""Emergency plans in the running daemon: a real PostgreSQL, broker and webhook receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
import pytest

from hazmon.clock import now_us
from hazmon.daemon import Daemon
from hazmon.plant import Plant
from hazmon.plant.standards import Grade
from tests.alarms.helpers import SECRET, assess_all, gas, rows, webhook_settings
from tests.alarms.receivers import HttpReceiver
from tests.conftest import EXAMPLE_PLANT
from tests.daemon.helpers import daemon_config, mqtt_only, wait_for
from tests.supervision.test_cli import hz


@pytest.fixture
async def hook() -> AsyncIterator[HttpReceiver]:
    r = HttpReceiver(secret=SECRET)
    await r.start()
    yield r
    await r.stop()


def _plan_messages(hook: HttpReceiver) -> list[dict[str, Any]]:
    return [p for p in hook.payloads() if p.get("kind") == "plan_event"]


async def _rounds(d: Daemon, n: int) -> None:
    assert d.plans is not None
    start = d.plans.rounds
    await wait_for(lambda: d.plans is not None and d.plans.rounds >= start + n, f"{n} plan rounds")


async def test_chlorine_second_level_starts_toxic_release_once_across_a_restart(
    example_plant: Plant, db_dsn: str, topic_prefix: str, tmp_path: Path, hook: HttpReceiver
) -> None:
    url = f"http://127.0.0.1:{hook.port}"
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    assess_all(plant, db_dsn, {"cl2-tankfarm": Grade.ONE})  # second level at grade one: red
    cfg = replace(daemon_config(tmp_path, db_dsn, plant), alarms=webhook_settings(url))
    started = "SELECT plan_id, level, drill, started_by, cause FROM plan_activation"
    d = Daemon(cfg, plant)
    d.plans_every_s = 0.1
    async with d:
        await d._found_and_recorded([gas(now_us())])  # the rules' finding: AT-101 above second level
        assert rows(db_dsn, "SELECT tier_name FROM alarm WHERE sensor = 'AT-101'") == [("red",)]
        await wait_for(lambda: bool(rows(db_dsn, started)), "the plan started")
        await wait_for(lambda: len(_plan_messages(hook)) >= 5, "the start told to its five recipients")
        await _rounds(d, 5)
    d = Daemon(cfg, plant)  # a restart with the alarm still active
    d.plans_every_s = 0.1
    async with d:
        await _rounds(d, 5)
    assert rows(db_dsn, started) == [
        ("toxic-release", 2, False, "auto", "alarm gas_second tier 4 at cl2-tankfarm/AT-101")
    ]
    assert rows(db_dsn, "SELECT kind, count(*) FROM plan_event GROUP BY kind ORDER BY kind") == [
        ("notified", 1),
        ("started", 1),
    ]
    msgs = _plan_messages(hook)
    assert sorted(m["recipient"] for m in msgs) == [
        "bureau_county", "control_room", "operational", "principal", "technical",
    ]  # fmt: skip
    assert {(m["plan"], m["level"], m["drill"], m["event"]) for m in msgs} == {
        ("toxic-release", "II", False, "started")
    }
    assert [s["id"] for s in msgs[0]["steps"]] == ["isolate", "absorb", "evacuate", "report"]


async def test_a_drill_tells_nobody_outside_as_real_and_a_wrong_role_is_refused(
    example_plant: Plant,
    db_dsn: str,
    topic_prefix: str,
    tmp_path: Path,
    hook: HttpReceiver,
) -> None:
    url = f"http://127.0.0.1:{hook.port}"
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    cfg = replace(daemon_config(tmp_path, db_dsn, plant), alarms=webhook_settings(url))
    start = ["plan", "start", "toxic-release", "-c", str(EXAMPLE_PLANT)]
    d = Daemon(cfg, plant)
    d.plans_every_s = 0.1
    async with d:
        r = hz(*start, "--by", "王强", "--role", "control_room", dsn=db_dsn)
        assert r.returncode == 2
        assert "role 'control_room' may not start plan 'toxic-release'" in r.stderr
        assert hz(*start, "--by", "张建国", "--role", "principal", "--drill", dsn=db_dsn).returncode == 0
        await wait_for(
            lambda: rows(db_dsn, "SELECT notified_at IS NOT NULL FROM plan_activation") == [(True,)],
            "the drill told",
        )
        step = ["plan", "step", "toxic-release", "isolate", "-c", str(EXAMPLE_PLANT)]
        assert hz(*step, "--by", "王强", "--role", "operational", "--drill", dsn=db_dsn).returncode == 0
        end = ["plan", "end", "toxic-release", "-c", str(EXAMPLE_PLANT), "--drill"]
        assert hz(*end, "--by", "张建国", "--role", "principal", dsn=db_dsn).returncode == 0
        await _rounds(d, 3)
    msgs = _plan_messages(hook)
    assert sorted(m["recipient"] for m in msgs) == ["control_room", "operational", "principal", "technical"]
    assert all(m["drill"] is True for m in msgs)
    assert not [p for p in hook.payloads() if str(p.get("recipient", "")).startswith("bureau_")]
    assert rows(db_dsn, "SELECT drill, level, started_by, ended_by FROM plan_activation") == [
        (True, 3, "张建国 (principal)", "张建国 (principal)")
    ]
    assert rows(db_dsn, "SELECT step_id, confirmed_by, role FROM plan_step") == [
        ("isolate", "王强", "operational")
    ]
    told = rows(db_dsn, "SELECT detail FROM plan_event WHERE kind = 'notified'")[0][0]
    assert "bureau_county: not told (drill)" in told


async def test_a_drill_reaches_the_bureau_link_only_as_a_drill(example_plant: Plant, db_dsn: str) -> None:
    """With the uplink on, a plan's start goes to the link's outbox; a drill's carries drill: true."""
    from hazmon.plans_wiring import Notice, PlanRunner
    from hazmon.store import connect
    from hazmon.weather import plan_repository as prepo
    from hazmon.weather.plans import manual_start

    told: list[Notice] = []

    async def notify(n: Notice) -> str:
        told.append(n)
        return "told"

    runner = PlanRunner(db_dsn, example_plant, notify, uplink=True)
    plan = example_plant.plans[0]
    people = {"principal": {"张建国"}}
    with connect(db_dsn, autocommit=True) as c:
        s = manual_start(plan, "张建国", "principal", None, True, [], people)
        assert not isinstance(s, Exception) and hasattr(s, "level")
        prepo.start(c, "hx-chem", s, by="张建国 (principal)", drill=True, now=datetime.now(UTC))  # type: ignore[arg-type]
    await runner.once()
    await runner.once()  # told once, reported once
    assert [n.activation.drill for n in told] == [True]
    got = rows(
        db_dsn, "SELECT kind, payload->>'event', payload->>'drill', payload->>'level' FROM uplink_outbox"
    )
    assert got == [("plan_event", "started", "true", "III")]


async def test_an_end_by_hand_goes_to_the_bureau_and_a_drill_never_counts_as_real(
    example_plant: Plant, db_dsn: str, make_db: Any
) -> None:
    """`hazmon plan end` (another process) is reported as plan_event ended; the bureau stores it, and
    a drill's start and end stay a drill there (the bureau's real plans never list it)."""
    from hazmon.bureau.ingest import IngestLimits, Ingestor
    from hazmon.plans_wiring import Notice, PlanRunner
    from hazmon.plant.link import topic
    from hazmon.plant.regions import Scope
    from hazmon.store import connect
    from hazmon.uplink.outbox import claim
    from tests.bureau.helpers import Enterprise

    async def notify(n: Notice) -> str:
        return "told"

    runner = PlanRunner(db_dsn, example_plant, notify, uplink=True)
    cfg = ["-c", str(EXAMPLE_PLANT)]
    assert (
        hz(
            "plan", "start", "toxic-release", *cfg, "--by", "张建国", "--role", "principal", dsn=db_dsn
        ).returncode
        == 0
    )
    assert (
        hz(
            "plan",
            "start",
            "toxic-release",
            *cfg,
            "--by",
            "张建国",
            "--role",
            "principal",
            "--drill",
            dsn=db_dsn,
        )
    ).returncode == 0
    await runner.once()  # both told and their starts reported
    end = ["plan", "end", "toxic-release", *cfg, "--by", "张建国", "--role", "principal"]
    assert hz(*end, dsn=db_dsn).returncode == 0
    assert hz(*end, "--drill", dsn=db_dsn).returncode == 0
    await runner.once()
    await runner.once()  # each end reported once
    sent = "SELECT payload->>'event', payload->>'drill', payload->>'actor' FROM uplink_outbox ORDER BY seq"
    got = rows(db_dsn, sent)
    assert sorted(got) == [
        ("ended", "false", "张建国 (principal)"),
        ("ended", "true", "张建国 (principal)"),
        ("started", "false", "张建国 (principal)"),
        ("started", "true", "张建国 (principal)"),
    ]
    assert [e for e, _, _ in got] == ["started", "started", "ended", "ended"]

    # the bureau takes them as the link delivers them
    bureau = make_db()
    ent = example_plant.enterprise
    ing = Ingestor(Scope("320100", "city"), IngestLimits())
    now = datetime.now(UTC)
    with connect(db_dsn, autocommit=True) as c:
        out = claim(c, 100)
    with psycopg.connect(bureau, autocommit=True) as b:
        e = Enterprise(example_plant)
        raw = e.envelope(e.registration()).model_dump_json().encode()
        assert ing.handle(b, raw, topic(ent.id, "registration"), now).status == "stored"
        for r in out:
            o = ing.handle(b, r.envelope(now).model_dump_json().encode(), topic(ent.id, r.kind), now)
            assert o.status == "stored", o
        plans = b.execute(
            "SELECT drill, ended_at IS NOT NULL, started_by FROM bureau_plan ORDER BY drill"
        ).fetchall()
    assert plans == [(False, True, "张建国 (principal)"), (True, True, "张建国 (principal)")]
