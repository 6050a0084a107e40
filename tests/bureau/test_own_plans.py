"""A bureau's own emergency plans: bureau.yaml's plans: (file:line errors), the pure decisions with
`now` passed in, and the runner and API on a real PostgreSQL, HTTP server and webhook receiver."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from hazmon.bureau.api import API_PREFIX, ApiUser, BureauApi, build_routes
from hazmon.bureau.config import BureauConfig, DatabaseSettings, load_config
from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.bureau.plan_api import bureau_plan_routes
from hazmon.bureau.plans import (
    AlarmNow,
    Now,
    WarningNow,
    WeatherNow,
    decide,
    manual_end,
    manual_start,
    may_confirm,
)
from hazmon.bureau_notify import notifier
from hazmon.bureau_plans import BureauPlanRunner
from hazmon.collector import Metrics
from hazmon.http import HttpServer
from hazmon.plant import ConfigError, Plant
from hazmon.plant.regions import Scope
from hazmon.weather.plans import Activation, End, LevelUp, Refusal, Start
from tests.alarms.helpers import SECRET
from tests.alarms.receivers import HttpReceiver
from tests.bureau.helpers import T0, Enterprise

CITY = Scope("320100", "city")

YAML = """\
id: nj-city
name: 南京市应急管理局
region: {code: "320100", level: city}
notify:
  channels:
    - {name: hook, kind: webhook, url: "%(url)s", secret_env: HAZMON_TEST_HOOK_SECRET}
  recipients:
    - {name: city-duty, channel: hook, region: {code: "320100", level: city}}
plans:
  - id: city-hazchem
    name: 南京市危险化学品事故应急预案
    start:
      - {level: II, alarm: {min_tier: red, grades: [I]}}
      - {level: III, weather: {kind: lightning, min_colour: orange}}
      - {level: I, bureau_warning: {min_colour: red, kinds: [red_unacked]}}
      - {level: III, manual: {by: [duty-officer]}}
    notify: [city-duty]
    steps:
      - {id: dispatch, text: 派出工作组赶赴现场, owner: duty-officer}
      - {id: report, text: 向市政府报告, owner: officer}
    end: {clear_for_min: 30, manual_by: [duty-officer]}
  - id: pukou-only
    name: 浦口区预案
    region: {code: "320111", level: county}
    start: [{level: IV, manual: {}}]
"""


def _config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str = "http://127.0.0.1:9/h"
) -> BureauConfig:
    monkeypatch.setenv("HAZMON_TEST_HOOK_SECRET", SECRET.decode())
    f = tmp_path / "bureau.yaml"
    f.write_text(YAML % {"url": url}, encoding="utf-8")
    return load_config(f)


def test_mistakes_in_the_plans_are_named_with_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = YAML % {"url": "http://127.0.0.1:9/h"}
    bad = bad.replace("notify: [city-duty]", "notify: [city-duty, nobody]").replace(
        'region: {code: "320111", level: county}', 'region: {code: "330106", level: county}'
    )
    bad += "  - id: city-hazchem\n    name: again\n    start: [{level: V, manual: {}}, {level: II, alarm: {}, manual: {}}]\n"
    monkeypatch.setenv("HAZMON_TEST_HOOK_SECRET", "x")
    f = tmp_path / "bureau.yaml"
    f.write_text(bad, encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    text = str(e.value)
    assert f"{f}:28: plans[2].start[0].level: 'V' is not one of: I, II, III, IV" in text
    assert (
        f"{f}:28: plans[2].start[1]: give exactly one of bureau_warning, alarm, weather, manual (got alarm, manual)"
        in text
    )
    f.write_text(bad.split("  - id: city-hazchem\n    name: again")[0], encoding="utf-8")
    with pytest.raises(ConfigError) as e:
        load_config(f)
    text = str(e.value)
    assert "plans[0].notify[1]: no recipient 'nobody' in notify.recipients (city-duty)" in text
    assert "plans[1].region: county 330106 is not inside this bureau's region" in text


# ------------------------------------------------------------------ pure, with now passed in


def _red_alarm(grade: str | None, region: str = "320116", since: datetime = T0) -> AlarmNow:
    return AlarmNow("hx-chem:7", 4, grade, region, since)


def test_the_conditions_start_once_in_the_region_rise_and_end_after_the_quiet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = _config(tmp_path, monkeypatch)
    plans, now = cfg.plans, T0 + timedelta(minutes=1)
    assert decide(plans, CITY, Now(alarms=[_red_alarm("II")]), [], {}, now) == []  # not grade I
    assert decide(plans, CITY, Now(alarms=[_red_alarm("I", "330106")]), [], {}, now) == []  # outside
    orange = WeatherNow("W1", "lightning", "orange", "hx-chem", "320116", T0)
    (s,) = decide(plans, CITY, Now(weather=[orange]), [], {}, now)
    assert isinstance(s, Start) and (s.plan_id, s.level) == ("city-hazchem", 3)
    assert s.cause == "weather orange lightning warning W1 at hx-chem"
    yellow = WeatherNow("W1", "lightning", "yellow", "hx-chem", "320116", T0)
    assert decide(plans, CITY, Now(weather=[yellow]), [], {}, now) == []
    # open at III: a red alarm at a grade I source raises it to II; nothing starts twice
    act = Activation(1, "city-hazchem", 3, False, now, True)
    (up,) = decide(plans, CITY, Now(alarms=[_red_alarm("I")], weather=[orange]), [act], {}, now)
    assert isinstance(up, LevelUp) and up.level == 2
    red = WarningNow(5, "red_unacked", 4, "hx-chem", "320116", T0)
    (up,) = decide(plans, CITY, Now(warnings=[red]), [act], {}, now)
    assert isinstance(up, LevelUp) and up.level == 1
    # nothing holds: the countdown starts, and the plan ends after clear_for_min
    quiet = Activation(1, "city-hazchem", 3, False, now, True, clear_since=now)
    assert decide(plans, CITY, Now(), [quiet], {}, now + timedelta(minutes=29)) == []
    (end,) = decide(plans, CITY, Now(), [quiet], {}, now + timedelta(minutes=30))
    assert isinstance(end, End) and end.reason == "all start conditions cleared for 30 min"
    # the same warning after the end does not start it again; a newer one does
    ended = {"city-hazchem": now + timedelta(minutes=30)}
    assert decide(plans, CITY, Now(weather=[orange]), [], ended, now + timedelta(hours=1)) == []
    late = WeatherNow("W2", "lightning", "red", "hx-chem", "320116", now + timedelta(minutes=40))
    assert len(decide(plans, CITY, Now(weather=[late]), [], ended, now + timedelta(hours=1))) == 1
    # a drill is never touched by the conditions
    drill = Activation(2, "city-hazchem", 3, True, now, False)
    assert decide(plans, CITY, Now(), [drill], {}, now + timedelta(hours=9)) == []


def test_by_hand_only_the_named_officers(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    plan = _config(tmp_path, monkeypatch).plans[0]
    assert manual_start(plan, "someone", "officer", None, False, []) == Refusal(
        "'someone' may not start plan 'city-hazchem' (allowed: duty-officer)"
    )
    assert isinstance(manual_start(plan, "duty-officer", "viewer", None, False, []), Refusal)
    s = manual_start(plan, "duty-officer", "officer", None, True, [])
    assert isinstance(s, Start) and s.level == 3 and s.cause == "drill 演练 by duty-officer"
    act = Activation(1, plan.id, 3, True, T0, False)
    assert isinstance(manual_start(plan, "duty-officer", "officer", None, True, [act]), Refusal)
    assert isinstance(manual_start(plan, "duty-officer", "officer", "II", False, [act]), Start)
    assert may_confirm(plan, "dispatch", "other", "officer", []) == Refusal(
        "step 'dispatch' is confirmed by duty-officer, not other"
    )
    assert may_confirm(plan, "report", "other", "officer", []) is None  # owner: any officer
    assert may_confirm(plan, "report", "other", "officer", ["report"]) == Refusal(
        "step 'report' is already confirmed"
    )
    assert isinstance(manual_end(plan, act, "other", "officer"), Refusal)
    assert manual_end(plan, act, "duty-officer", "officer") == End(1, plan.id, "ended by duty-officer")


# ------------------------------------------------------------------ real database, HTTP, webhook

USERS = {"duty-officer": "tok-duty", "other-officer": "tok-other", "viewer": "tok-view", "pukou": "tok-pukou"}


def _users() -> list[ApiUser]:
    def u(name: str, role: str, scope: Scope) -> ApiUser:
        return ApiUser(name, role, hashlib.sha256(USERS[name].encode()).hexdigest(), scope)  # type: ignore[arg-type]

    return [u("duty-officer", "officer", CITY), u("other-officer", "officer", CITY), u("viewer", "viewer", CITY),
            u("pukou", "officer", Scope("320111", "county"))]  # fmt: skip


@pytest.fixture
async def hook() -> AsyncIterator[HttpReceiver]:
    r = HttpReceiver(secret=SECRET)
    await r.start()
    yield r
    await r.stop()


async def test_a_red_alarm_at_a_grade_one_source_starts_the_plan_once_and_officers_work_it(
    db_dsn: str, example_plant: Plant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hook: HttpReceiver
) -> None:
    cfg = _config(tmp_path, monkeypatch, f"http://127.0.0.1:{hook.port}/h")
    cfg = dataclasses.replace(cfg, database=DatabaseSettings(dsn=db_dsn))
    ent = Enterprise(example_plant)
    ing = Ingestor(CITY, IngestLimits())
    with psycopg.connect(db_dsn, autocommit=True) as c:
        assert ing.handle(c, *ent.wire(ent.envelope(ent.registration())), T0).status == "stored"
        c.execute("UPDATE bureau_hazard_source SET grade = 'I' WHERE source_id = 'cl2-tankfarm'")
        assert ing.handle(c, *ent.wire(ent.envelope(ent.alarm(7, 1, "raised"))), T0).status == "stored"
    now = [T0 + timedelta(minutes=2)]

    def runner() -> BureauPlanRunner:
        return BureauPlanRunner(cfg, {c.name: notifier(c) for c in cfg.notify.channels}, lambda: now[0])

    r1 = runner()
    await r1.once()
    await r1.once()
    r2 = runner()  # a restart with the alarm still open
    await r2.once()
    rows = "SELECT plan_id, level, drill, started_by, cause FROM bureau_own_plan_activation ORDER BY id"
    with psycopg.connect(db_dsn) as c:
        assert c.execute(rows).fetchall() == [
            ("city-hazchem", 2, False, "auto", f"alarm {ent.id}:7 tier red at a grade I hazard source")
        ]
    told = [p for p in hook.payloads() if p.get("kind") == "bureau_plan_event"]
    assert [(p["plan"], p["level"], p["drill"]) for p in told] == [("city-hazchem", "II", False)]
    assert [s["id"] for s in told[0]["steps"]] == ["dispatch", "report"]

    api = BureauApi(db_dsn, _users(), clock=lambda: now[0])
    http = HttpServer("127.0.0.1", 0, Metrics(), lambda: (True, {}))
    extra = (lambda g, rf: bureau_plan_routes(api, cfg.plans, cfg.scope, g, rf, API_PREFIX),)
    http.mount(build_routes(api, extra))
    base = f"http://127.0.0.1:{await http.start()}{API_PREFIX}/bureau-plans"
    try:
        async with aiohttp.ClientSession() as s:

            async def call(path: str, who: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
                h = {"Authorization": f"Bearer {USERS[who]}"}
                req = (
                    s.get(base + path, headers=h)
                    if body is None
                    else s.post(base + path, headers=h, json=body)
                )
                async with req as resp:
                    return resp.status, await resp.json()

            st, body = await call("", "viewer")
            assert st == 200 and [p["id"] for p in body["plans"]] == ["city-hazchem", "pukou-only"]
            (act,) = body["plans"][0]["activations"]
            assert (act["level"], act["open"], act["drill"], act["started_by"]) == ("II", True, False, "auto")
            st, body = await call("", "pukou")  # a county token: only its county's plan
            assert [p["id"] for p in body["plans"]] == ["pukou-only"]
            assert (await call("/city-hazchem/end", "pukou", {}))[0] == 404
            assert (await call("/city-hazchem/steps", "viewer", {"step": "report"}))[0] == 403
            assert (await call("/city-hazchem/steps", "other-officer", {"step": "dispatch"})) == (
                409, {"error": "step 'dispatch' is confirmed by duty-officer, not other-officer"}
            )  # fmt: skip
            now[0] += timedelta(minutes=5)
            st, body = await call(
                "/city-hazchem/steps", "duty-officer", {"step": "dispatch", "note": "已出发"}
            )
            assert st == 200 and body["confirmed_by"] == "duty-officer"
            assert (await call("/city-hazchem/steps", "duty-officer", {"step": "dispatch"}))[0] == 409
            assert (await call("/city-hazchem/steps", "duty-officer", {"step": "nope!"}))[0] == 400
            # a drill beside the real one: flagged, told as a drill, never counted as real
            st, body = await call("/city-hazchem/start", "duty-officer", {"drill": True})
            assert st == 200 and body == {
                "activation": 2,
                "plan": "city-hazchem",
                "level": "III",
                "drill": True,
            }
            assert (await call("/city-hazchem/start", "duty-officer", {}))[0] == 409  # the real one is open
            await r2.once()
            drills = [p for p in hook.payloads() if p.get("kind") == "bureau_plan_event" and p["drill"]]
            assert len(drills) == 1
            assert (await call("/city-hazchem/end", "other-officer", {}))[0] == 409
            st, body = await call("/city-hazchem/end", "duty-officer", {})
            assert st == 200 and body["reason"] == "ended by duty-officer"
            st, body = await call("", "duty-officer")
            acts = {a["drill"]: a for a in body["plans"][0]["activations"]}
            assert acts[False]["open"] is False and acts[False]["ended_by"] == "duty-officer"
            assert [x["step_id"] for x in acts[False]["steps"]] == ["dispatch"]
            assert acts[True]["open"] is True
        await r2.once()  # the alarm still holds, but it held before the end: not started again
        with psycopg.connect(db_dsn) as c:
            n = c.execute("SELECT count(*) FROM bureau_own_plan_activation WHERE NOT drill").fetchone()
        assert n == (1,)
    finally:
        await http.stop()
