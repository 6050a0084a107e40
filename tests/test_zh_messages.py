"""Every Chinese message text is Chinese: no English words around the numbers, units, tags and ids.

Each kind of message is generated through the code that makes it (the rules' wording, the
collector's staleness, the rules runner, assessment status, the alarm notification texts, the
daemon's system conditions) and its Chinese half is checked: once numbers, units, the plant's
own identifiers (tags, hazard sources, endpoints, chemical ids), URLs, protocol names and
quoted error texts (“…”) are taken out, no ASCII letter may be left.
"""

from __future__ import annotations

import math
import re
from datetime import date

import pytest

from hazmon.alarms.lifecycle import AlarmStatus
from hazmon.alarms.messages import AlarmInfo, render
from hazmon.collector.stale import StaleTracker
from hazmon.plant import AssessmentRecord, Condition, Plant, Reading, assessment_status
from hazmon.plant.model import UNITS
from hazmon.plant.standards import CHEMICALS, Grade
from hazmon.rules import RulesRunner, RulesSettings
from hazmon.rules import messages as rm
from hazmon.system_zh import system_message_zh

T0 = 1_800_000_000_000_000
PROTOCOLS = ("OPC UA", "QoS", "MQTT")
_QUOTED = re.compile(r"“[^”]*”")
_URL = re.compile(r"https?://\S+")
_NUMBER = re.compile(r"(?<![A-Za-z])[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")
_TIME = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)?")


def english_left(text: str, plant: Plant) -> list[str]:
    """The ASCII words of ``text`` that are none of the allowed ones."""
    t = _URL.sub(" ", _QUOTED.sub(" ", text))
    t = _TIME.sub(" ", t)
    ids = {s.tag for s in plant.sensors()} | {h.id for h in plant.hazard_sources} | {plant.enterprise.id}
    ids |= {g.id for h in plant.hazard_sources for g in h.vote_groups}
    ids |= {e.name for e in plant.opcua} | {e.name for e in plant.mqtt} | {c.id for c in CHEMICALS}
    for word in sorted(ids, key=len, reverse=True):
        t = re.sub(rf"(?<![A-Za-z0-9_.-]){re.escape(word)}(?![A-Za-z0-9_.-])", " ", t)
    for p in PROTOCOLS:
        t = t.replace(p, " ")
    units = {u for us in UNITS.values() for u in us} | {"mg/m³"}
    for u in sorted(units, key=len, reverse=True):  # a unit after a number (or "?" for no value)
        t = re.sub(rf"((?:\d|\?) ?){re.escape(u)}(/min)?(?![A-Za-z])", r"\1 ", t)
    t = _NUMBER.sub(" ", t)
    return re.findall(r"[A-Za-z]+", t)


def assert_chinese(text: str, plant: Plant) -> None:
    assert english_left(text, plant) == [], text


def test_checker_finds_english(example_plant: Plant) -> None:
    # the check itself: it must catch the defects the issue names, and pass their Chinese
    left = english_left("评估逾期（3 years after the report）", example_plant)
    assert left == ["years", "after", "the", "report"]
    left = english_left("AT-101 仪表故障：数据中断：no reading for 6 s", example_plant)
    assert left == ["no", "reading", "for", "s"]
    assert english_left("LT-101 液位 2.1 m，高于高限 1.92 m", example_plant) == []
    assert english_left("端点 dcs 不可用：“ConnectionError: refused”", example_plant) == []


def test_rules_wording_is_chinese(example_plant: Plant) -> None:
    texts: list[str] = []
    for s in example_plant.sensors():
        for name in ("hh", "h", "l", "ll"):
            for active in (True, False):
                texts.append(rm.limit_text(s, name, active, 1.5, 1.0, s.kind.is_gas)[1])
        for active in (True, False):
            texts.append(rm.rate_text(s, active, -0.3, 0.2)[1])
            texts.append(rm.predict_text(s, "hh", active, 1.0, 0.01, 2.0, 600.0)[1])
            texts.append(rm.predict_text(s, "ll", active, 1.0, -0.01, 0.2, 600.0)[1])
            for kind, detail in (
                ("stuck", "5 min"),
                ("spike", ""),
                ("out_of_range", ""),
                ("bad_quality", ""),
                ("chattering", "5/60"),
            ):
                texts.append(rm.fault_text(s, kind, active, math.nan, detail)[1])
    for confirmed in (True, False):
        for active in (True, False):
            for g in [g for h in example_plant.hazard_sources for g in h.vote_groups]:
                texts.append(rm.vote_text(g.id, confirmed, active, 2, g.k, len(g.sensors))[1])
    for t in texts:
        assert_chinese(t, example_plant)


def test_stale_reasons_are_chinese(example_plant: Plant) -> None:
    s = next(x for x in example_plant.sensors() if x.tag == "AT-101")
    tracker = StaleTracker({s.tag: s.period_s}, 3.0, T0)
    reasons = [c.reason for c in tracker.check(T0 + 60_000_000)]  # the collector's own wording
    reasons += [c.reason for c in tracker.seen([s.tag], T0 + 61_000_000)]
    reasons += [
        c.reason
        for c in tracker.source_down(
            "gds", [s.tag], T0 + 62_000_000, "broker gds disconnected: Unspecified error"
        )
    ]
    assert reasons[0].startswith("no reading for")
    reasons += [
        "endpoint dcs unavailable: ConnectionError: [Errno 111] Connection refused",  # collector/opcua.py
        "endpoint dcs disconnected",
        "node ns=2;s=AT-101 of gds refused by the server: BadNodeIdUnknown; no reading for 6 s (3 x 2 s)",
        "no reading",
        "something nobody foresaw",
    ]
    for r in reasons:
        for active in (True, False):
            assert_chinese(rm.fault_text(s, "stale", active, math.nan, r)[1], example_plant)
    # through the rules runner: its own staleness (a sensor that stops reporting), and the collector's
    runner = RulesRunner(example_plant, RulesSettings(stale_factor=3.0))
    found = []
    for t in range(120):
        now = T0 + t * 1_000_000
        rs = [Reading(tag, now, 1.0) for tag in ("LT-101", "AT-101") if t < 3]
        changes = tracker.check(now) if t == 60 else []
        found += runner.process(rs, changes, now)
    stale = [f for f in found if f.condition is Condition.STALE]
    assert {f.sensor for f in stale} >= {"LT-101"}
    for f in stale:
        assert_chinese(f.message_zh, example_plant)


def test_assessment_reasons_are_chinese(example_plant: Plant) -> None:
    hs = example_plant.hazard_sources[0]
    rec = AssessmentRecord(hs.id, date(2020, 1, 10), "某评价公司", 96.0, Grade(2), None)
    changed = AssessmentRecord(
        hs.id, date(2025, 1, 10), "某评价公司", 96.0, Grade(2), None, inventory={"chlorine": 1.0}
    )
    for r in (None, rec, changed):
        st = assessment_status(r, hs, date(2026, 1, 1))
        assert st.due_reason  # the English stays for the English half
        assert_chinese(st.due_reason_zh, example_plant)


@pytest.mark.parametrize("purpose", ["escalation", "repeat", "flood_summary"])
def test_notification_texts_are_chinese(example_plant: Plant, purpose: str) -> None:
    alarms = [
        AlarmInfo(
            i + 1,
            "cl2-tankfarm",
            "AT-101" if i % 2 else None,
            cond.value,
            1 + i % 4,
            state.value,
            T0 if i % 3 else None,
            None if i % 2 else 2.5,
            None if i % 3 else 2.0,
            "",
            "",
        )
        for i, (cond, state) in enumerate(zip(list(Condition), list(AlarmStatus) * 4, strict=False))
    ]
    for recipient in ("control_room", "bureau_county"):
        subject, text, short, _ = render(
            example_plant,
            alarms,
            recipient,
            purpose,
            locale="zh",
            api_url="http://127.0.0.1:8470/api/v1",
            flood_total=len(alarms) + 5 if purpose == "flood_summary" else None,
        )
        zh_block = text.split("\n\n")[0]
        assert_chinese(subject.split(" / ")[0], example_plant)
        assert_chinese(zh_block, example_plant)
        assert_chinese(short, example_plant)
        for a in alarms[:1]:
            one = render(example_plant, [a], recipient, purpose, locale="zh")[2]
            assert_chinese(one, example_plant)


def test_system_conditions_are_chinese(example_plant: Plant) -> None:
    unclean = (
        "the previous daemon run ended without a clean stop (last seen 2026-11-28T10:00:00+00:00); "
        "up to 1200 readings held in memory then were acknowledged to the broker (ack: received) "
        "but may not be in the database"
    )
    durable = (
        "the previous daemon run ended without a clean stop (last seen unknown); an unknown number of "
        "readings then may not be in the database: MQTT QoS 1 messages among them were not acknowledged "
        "and the broker delivers them again; OPC UA and QoS 0 readings among them are lost"
    )
    cases = [
        ("spool_full", True, "spool full (1073741824 bytes): readings are being dropped"),
        ("spool_full", False, "spool has room again"),
        ("spool_io_error", True, "spool write failed: [Errno 28] No space left on device"),
        ("unclean_shutdown", True, unclean),
        ("unclean_shutdown", False, "recorded: " + unclean),
        ("unclean_shutdown", True, durable),
        ("something_new", True, "a condition added later"),
    ]
    for key, active, message in cases:
        zh = system_message_zh(key, active, message)
        assert zh.startswith(("系统故障：", "系统恢复：", "已记录："))
        assert_chinese(zh, example_plant)
