"""The bureau config's `warnings:` section: defaults, overrides and clear refusals."""

from __future__ import annotations

import pytest

from hazmon.bureau.warning_config import parse_warnings
from hazmon.plant.bureau_standards import RULES, WarningKind, WarningSettings
from hazmon.plant.standards import Tier
from hazmon.plant.yamlnode import ConfigError, parse_document


def parse(text: str) -> WarningSettings:
    return parse_document(text, "bureau.yaml", parse_warnings)


def test_defaults_match_the_rules_table() -> None:
    s = parse("{}\n")
    assert s == WarningSettings()
    assert all(s.colour(k) is RULES[k].colour for k in WarningKind)
    assert s.red_unacked_after_s == 600 and s.repeated_count == 3
    assert s.close_within_s(Tier.RED) == 24 * 3600


def test_overrides() -> None:
    s = parse(
        "silent_after_s: 600\nrepeated_count: 5\ntimezone: Asia/Urumqi\n"
        "colours: {silent: red}\nclose_within_h: {blue: 48}\n"
    )
    assert s.silent_after_s == 600 and s.repeated_count == 5 and s.timezone == "Asia/Urumqi"
    assert s.colour(WarningKind.SILENT) is Tier.RED
    assert s.colour(WarningKind.REPEATED) is Tier.YELLOW
    assert s.close_within_s(Tier.BLUE) == 48 * 3600


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("silent_after_s: -5\n", "bureau.yaml:1: silent_after_s:"),
        ("colours: {silent: purple}\n", "colours.silent: 'purple' is not one of"),
        ("timezone: Mars/Base\n", "is not an IANA time zone"),
        ("repeated_count: 0\n", "repeated_count:"),
        ("silently: 3\n", "unknown key 'silently'"),
    ],
)
def test_refusals_name_place_and_reason(text: str, needle: str) -> None:
    with pytest.raises(ConfigError) as e:
        parse(text)
    assert needle in str(e.value)
