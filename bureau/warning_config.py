"""The bureau config's ``warnings:`` section: the warning limits, colours and figures' time zone.

Every key is optional; the defaults are `hazmon.plant.bureau_standards.WarningSettings`
(hazmon defaults: no national deadline is published). An example section::

    # warnings:
      silent_after_s: 1800          # enterprise: no message (link down) / no data (plant silent)
      source_silent_after_s: 1800   # one hazard source without data
      red_unacked_after_s: 600      # a red alarm still unacknowledged
      repeated_count: 3             # alarms of one sensor ...
      repeated_window_s: 86400      # ... within this window
      assessment_grace_days: 0
      alarm_handled_within_s: 1800  # alarm handling rate: acknowledged within this
      timezone: Asia/Shanghai       # days of the daily figures, dates of assessments
      colours: {silent: orange, source_silent: yellow, red_unacked: red,
                repeated: yellow, assessment_overdue: blue}
      close_within_h: {red: 24, orange: 72, yellow: 168, blue: 336}   # open longer: overdue

The bureau config embeds `Warnings` as a field (``warnings: Warnings = field(default_factory=
Warnings)``) and calls `to_settings`; `parse_warnings` reads the section on its own.
"""

from __future__ import annotations

from dataclasses import field
from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, Strict
from pydantic.dataclasses import dataclass as pydantic_dataclass

from hazmon.plant.bureau_standards import RULES, WarningKind, WarningSettings
from hazmon.plant.standards import Tier
from hazmon.plant.supervision_standards import valid_timezone
from hazmon.plant.yamlmodel import SECTION, Positive, YText, choice, validate
from hazmon.plant.yamlnode import Node

__all__ = ["Warnings", "parse_warnings", "to_settings"]

_D = WarningSettings()
_COLOUR_NAMES = ("red", "orange", "yellow", "blue")
_Colour = Annotated[YText, BeforeValidator(choice(*_COLOUR_NAMES))]
_Count = Annotated[int, Strict(), Field(ge=1)]
_Days = Annotated[int, Strict(), Field(ge=0)]


def _tz(v: str) -> str:
    if not valid_timezone(v):
        raise ValueError(f"'{v}' is not an IANA time zone (e.g. Asia/Shanghai)")
    return v


def _name(t: Tier) -> str:
    return t.colour


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _Colours:
    silent: _Colour = _name(RULES[WarningKind.SILENT].colour)
    source_silent: _Colour = _name(RULES[WarningKind.SOURCE_SILENT].colour)
    red_unacked: _Colour = _name(RULES[WarningKind.RED_UNACKED].colour)
    repeated: _Colour = _name(RULES[WarningKind.REPEATED].colour)
    assessment_overdue: _Colour = _name(RULES[WarningKind.ASSESSMENT_OVERDUE].colour)


_H = dict(_D.close_within_h)


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _CloseWithin:
    red: Positive = _H[Tier.RED]
    orange: Positive = _H[Tier.ORANGE]
    yellow: Positive = _H[Tier.YELLOW]
    blue: Positive = _H[Tier.BLUE]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class Warnings:
    """The ``warnings:`` section as written (see the module docstring)."""

    silent_after_s: Positive = _D.silent_after_s
    source_silent_after_s: Positive = _D.source_silent_after_s
    red_unacked_after_s: Positive = _D.red_unacked_after_s
    repeated_count: _Count = _D.repeated_count
    repeated_window_s: Positive = _D.repeated_window_s
    assessment_grace_days: _Days = _D.assessment_grace_days
    alarm_handled_within_s: Positive = _D.alarm_handled_within_s
    timezone: Annotated[YText, AfterValidator(_tz)] = _D.timezone
    colours: _Colours = field(default_factory=_Colours)
    close_within_h: _CloseWithin = field(default_factory=_CloseWithin)
    tick_interval_s: Positive = 60.0
    """How often the bureau daemon evaluates the rules (`warning_repository.tick`)."""


_TIER = {t.colour: t for t in Tier}


def to_settings(w: Warnings) -> WarningSettings:
    """The frozen settings `hazmon.bureau.warnings.evaluate` and the figures take."""
    return WarningSettings(
        silent_after_s=w.silent_after_s,
        source_silent_after_s=w.source_silent_after_s,
        red_unacked_after_s=w.red_unacked_after_s,
        repeated_count=w.repeated_count,
        repeated_window_s=w.repeated_window_s,
        assessment_grace_days=w.assessment_grace_days,
        alarm_handled_within_s=w.alarm_handled_within_s,
        close_within_h=tuple((t, float(getattr(w.close_within_h, t.colour))) for t in reversed(Tier)),
        colours=tuple((k, _TIER[getattr(w.colours, k.value)]) for k in WarningKind),
        timezone=w.timezone,
    )


def parse_warnings(n: Node) -> WarningSettings | None:
    """`WarningSettings` from a ``warnings:`` mapping; problems are recorded on ``n``."""
    w = validate(n, Warnings)
    return None if w is None else to_settings(w)
