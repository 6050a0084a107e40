"""Bureau warnings, pure: which causes hold, one warning per cause, clearing and restarts."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

from hazmon.bureau.warnings import (
    AlarmIn,
    AssessmentIn,
    Change,
    EnterpriseIn,
    Inputs,
    OpenWarning,
    RepeatIn,
    SourceIn,
    causes,
    evaluate,
)
from hazmon.plant.bureau_standards import WarningKind, WarningSettings
from hazmon.plant.standards import Tier

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
NOW = T0 + timedelta(hours=2)
S = WarningSettings()


def ent(**kw: object) -> EnterpriseIn:
    base = EnterpriseIn(
        "E1", "甲化工", "330106", T0, last_message_at=NOW, last_heartbeat_at=NOW, endpoints=2, connected=2,
        last_reading_at=NOW, last_data_at=NOW, sensors=3,
    )  # fmt: skip
    return replace(base, **kw)  # type: ignore[arg-type]


def src(sid: str = "T1", last: datetime | None = NOW) -> SourceIn:
    return SourceIn("E1", sid, f"储罐区{sid}", last, 2)


def apply(changes: list[Change], open_: list[OpenWarning], start_id: int = 100) -> list[OpenWarning]:
    """What a store would hold after the changes (a stand-in for the repository)."""
    by = {w.cause_key: w for w in open_}
    for i, ch in enumerate(changes):
        if ch.action == "raise":
            by[ch.cause_key] = OpenWarning(start_id + i, ch.cause_key)
        elif ch.action == "cause_cleared":
            by[ch.cause_key] = replace(by[ch.cause_key], cleared_at=ch.at)
        else:
            by[ch.cause_key] = replace(by[ch.cause_key], cleared_at=None)
    return list(by.values())


def test_all_well_gives_nothing() -> None:
    assert evaluate(Inputs((ent(),), (src(), src("T2"))), [], S, NOW) == []


def test_link_down_vs_plant_silent_texts() -> None:
    down = ent(last_message_at=NOW - timedelta(minutes=31), last_heartbeat_at=NOW - timedelta(minutes=31))
    c = causes(Inputs((down,)), S, NOW)["silent:E1"]
    assert c.detail["mode"] == "link_down"
    assert "通信中断" in c.text_zh and "link down" in c.text_en
    assert c.colour is Tier.ORANGE and c.kind is WarningKind.SILENT

    disc = ent(connected=0, last_data_at=NOW - timedelta(minutes=40))
    c = causes(Inputs((disc,)), S, NOW)["silent:E1"]
    assert c.detail["mode"] == "plant_silent"
    assert "心跳正常" in c.text_zh and "全部断开" in c.text_zh
    assert "plant silent" in c.text_en and "disconnected" in c.text_en

    conn_no_reading = ent(
        last_data_at=NOW - timedelta(minutes=40), last_reading_at=NOW - timedelta(minutes=40)
    )
    c = causes(Inputs((conn_no_reading,)), S, NOW)["silent:E1"]
    assert "endpoints are connected" in c.text_en and "但读数最后" in c.text_zh


def test_limit_is_exclusive_and_new_enterprise_gets_its_time() -> None:
    at_limit = ent(last_message_at=NOW - timedelta(minutes=30), last_heartbeat_at=None, last_data_at=NOW)
    assert causes(Inputs((at_limit,)), S, NOW) == {}
    fresh = ent(
        registered_at=NOW - timedelta(minutes=5),
        last_message_at=None,
        last_heartbeat_at=None,
        last_data_at=None,
    )
    assert causes(Inputs((fresh,)), S, NOW) == {}
    assert "silent:E1" in causes(Inputs((fresh,)), S, NOW + timedelta(minutes=26))
    no_sensors = ent(sensors=0, last_data_at=None)
    assert causes(Inputs((no_sensors,)), S, NOW) == {}


def test_silent_enterprise_does_not_raise_each_source() -> None:
    old = NOW - timedelta(hours=1)
    e = ent(last_message_at=old, last_heartbeat_at=old, last_data_at=old)
    changes = evaluate(Inputs((e,), (src("T1", old), src("T2", old))), [], S, NOW)
    assert [c.cause_key for c in changes] == ["silent:E1"]
    # while the enterprise stays silent its sources are neither raised nor cleared
    open_ = apply(changes, [])
    assert (
        evaluate(Inputs((e,), (src("T1", old), src("T2", old))), open_, S, NOW + timedelta(minutes=5)) == []
    )


def test_one_source_silent_alone_raises_that_source() -> None:
    changes = evaluate(Inputs((ent(),), (src("T1"), src("T2", NOW - timedelta(minutes=45)))), [], S, NOW)
    assert [(c.action, c.cause_key) for c in changes] == [("raise", "source_silent:E1:T2")]
    c = changes[0].cause
    assert c is not None and c.colour is Tier.YELLOW and c.source_id == "T2"


def test_one_cause_one_warning_and_clearing_and_recurring() -> None:
    old = NOW - timedelta(hours=1)
    silent = Inputs((ent(last_message_at=old, last_heartbeat_at=old),))
    first = evaluate(silent, [], S, NOW)
    assert [c.action for c in first] == ["raise"]
    open_ = apply(first, [])
    # still silent a minute later, and again: no second warning (a restart runs the same)
    assert evaluate(silent, open_, S, NOW + timedelta(minutes=1)) == []
    assert evaluate(silent, open_, S, NOW + timedelta(minutes=1)) == []
    # it comes back: the cause is cleared, the warning stays open (消警 is a staff step)
    back = Inputs(
        (ent(last_message_at=NOW + timedelta(minutes=2), last_heartbeat_at=NOW + timedelta(minutes=2)),)
    )
    cleared = evaluate(back, open_, S, NOW + timedelta(minutes=2))
    assert [(c.action, c.warning_id) for c in cleared] == [("cause_cleared", 100)]
    open_ = apply(cleared, open_)
    assert evaluate(back, open_, S, NOW + timedelta(minutes=2)) == []
    # silent again before anyone closed it: the same warning recurs, no new one
    again = evaluate(back, open_, S, NOW + timedelta(hours=1))
    assert [(c.action, c.warning_id) for c in again] == [("recurred", 100)]


def test_red_unacked_after_limit_only() -> None:
    a = AlarmIn("E1-42", "E1", "T1", "LT-101", "HH", NOW - timedelta(minutes=10))
    assert causes(Inputs((ent(),), red_unacked=(a,)), S, NOW) == {}
    later = causes(Inputs((ent(),), red_unacked=(a,)), S, NOW + timedelta(seconds=1))
    c = later["red_unacked:E1-42"]
    assert c.colour is Tier.RED and c.alarm_id == "E1-42" and "未确认" in c.text_zh


def test_repeated_counts_and_configurable() -> None:
    two = RepeatIn("E1", "T1", "GT-7", 2, NOW)
    three = replace(two, count=3)
    assert causes(Inputs((ent(),), repeats=(two,)), S, NOW) == {}
    assert "repeated:E1:GT-7" in causes(Inputs((ent(),), repeats=(three,)), S, NOW)
    assert "repeated:E1:GT-7" in causes(Inputs((ent(),), repeats=(two,)), replace(S, repeated_count=2), NOW)


def test_assessment_overdue_by_date_or_flag() -> None:
    today = NOW.date()  # 10:00 in Shanghai: the same date
    due_today = AssessmentIn("E1", "T1", today, False, False)
    assert causes(Inputs((ent(),), assessments=(due_today,)), S, NOW) == {}
    late = replace(due_today, next_due=today - timedelta(days=1))
    c = causes(Inputs((ent(),), assessments=(late,)), S, NOW)["assessment_overdue:E1:T1"]
    assert c.colour is Tier.BLUE and "重新评估逾期" in c.text_zh
    assert causes(Inputs((ent(),), assessments=(late,)), replace(S, assessment_grace_days=1), NOW) == {}
    filing = AssessmentIn("E1", "T2", date(2030, 1, 1), False, True)
    c = causes(Inputs((ent(),), assessments=(filing,)), S, NOW)["assessment_overdue:E1:T2"]
    assert "备案逾期" in c.text_zh and "filing" in c.text_en and "reassessment" not in c.text_en


def test_colours_from_settings() -> None:
    s = replace(S, colours=tuple((k, Tier.RED) for k in WarningKind))
    changes = evaluate(Inputs((ent(),), (src("T2", None),)), [], s, NOW)
    assert changes[0].cause is not None and changes[0].cause.colour is Tier.RED
    assert changes[0].cause.text_zh.startswith("红色")


def test_unknown_enterprise_rows_are_ignored() -> None:
    stray = AlarmIn("X-1", "X", "T1", None, "HH", T0)
    assert evaluate(Inputs((ent(),), red_unacked=(stray,)), [], S, NOW) == []


def test_chinese_texts_have_no_english_words() -> None:
    old = NOW - timedelta(hours=1)
    silent_link = ent(last_message_at=old, last_heartbeat_at=old)
    silent_plant = ent(connected=0, last_data_at=old)
    silent_no_reading = ent(last_data_at=old, last_reading_at=old)
    others = Inputs(
        (ent(),),
        (src("T2", None),),
        (AlarmIn("E1-42", "E1", "T1", "LT-101", "HH", old),),
        (RepeatIn("E1", "T1", "GT-7", 4, NOW),),
        (AssessmentIn("E1", "T1", date(2020, 1, 1), True, True),),
    )
    texts = [
        c.text_zh
        for i in (silent_link, silent_plant, silent_no_reading)
        for c in causes(Inputs((i,)), S, NOW).values()
    ]
    texts += [c.text_zh for c in causes(others, S, NOW).values()]
    assert len(texts) == 7
    ids = re.compile(r"E1-42|LT-101|GT-7|HH|E1|T1|T2")
    for t in texts:
        assert not re.search(r"[A-Za-z]", ids.sub("", t)), t
