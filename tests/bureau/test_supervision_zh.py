"""The supervision refusals in Chinese name the level in Chinese (县级/市级/省级), never 'city级'."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from hazmon.bureau.supervision_flow import Event, Refused, apply, fold, level_zh, open_problems

TZ = ZoneInfo("Asia/Shanghai")
T0 = datetime(2027, 3, 1, 2, 0, tzinfo=UTC)
DL = date(2027, 3, 31)
ZH = {"county": "县级", "city": "市级", "province": "省级"}


def _no_latin(text: str) -> bool:
    return re.search(r"[A-Za-z]", text) is None


@pytest.mark.parametrize(("level", "zh"), ZH.items())
def test_level_zh(level: str, zh: str) -> None:
    assert level_zh(level) == zh


@pytest.mark.parametrize(
    ("level", "actor_level"), [("city", "county"), ("province", "city"), ("province", "county")]
)
def test_a_lower_level_is_told_in_chinese_which_level_supervises(level: str, actor_level: str) -> None:
    sv = fold([Event("opened", T0, "officer", level, DL)])
    got = apply(sv, "request_progress", "x", actor_level, at=T0 + timedelta(hours=1))
    assert isinstance(got, Refused)
    assert got.reason_zh == f"该督办已由{ZH[level]}督办" and _no_latin(got.reason_zh), got.reason_zh


@pytest.mark.parametrize(("level", "actor_level"), [("county", "city"), ("city", "province")])
def test_only_the_supervising_level_extends_in_chinese(level: str, actor_level: str) -> None:
    sv = fold([Event("opened", T0, "officer", level, DL)])
    got = apply(sv, "extend", "x", actor_level, at=T0 + timedelta(hours=1), deadline=DL + timedelta(days=30))
    assert isinstance(got, Refused)
    assert got.reason_zh == f"仅{ZH[level]}督办单位可以延期" and _no_latin(got.reason_zh), got.reason_zh


def test_a_major_hidden_danger_below_its_minimum_level_in_chinese() -> None:
    got = open_problems("county", "major", "rectifying", DL, T0, TZ, min_level={"major": "city"})
    (r,) = [r for r in got if r.field == "level"]
    assert r.reason_zh == "该隐患须由市级及以上督办" and _no_latin(r.reason_zh), r.reason_zh
