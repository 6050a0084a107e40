"""The ``supervision:`` section of ``bureau.yaml``: who may supervise (挂牌督办) and when it escalates.

::

    supervision:
      min_level: {general: county, major: city}   # the lowest level that may open a supervision on it
      escalate_after_days: 0                      # days of grace after the local midnight following
                                                  # the deadline before the next level up takes over

Both default to hazmon's table in `hazmon.plant.supervision_standards` (``SUPERVISION_MIN_LEVEL``:
county for both levels of danger, [unverified] — provinces differ, see ``SUPERVISION_SOURCE``;
escalation at the local midnight after the deadline). A province that requires city-level
supervision of a major hidden danger writes ``min_level: {major: city}``; the level not written
keeps the default.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from hazmon.plant.supervision_standards import SUPERVISION_LEVELS, SUPERVISION_MIN_LEVEL, SUPERVISION_SOURCE
from hazmon.plant.yamlmodel import SECTION, Whole, YText, check, choice

__all__ = ["MinLevel", "SupervisionSection"]

_Level = Annotated[YText, BeforeValidator(choice(*SUPERVISION_LEVELS))]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class MinLevel:
    """Hidden-danger level -> the lowest bureau level that may open a supervision on it."""

    general: _Level = SUPERVISION_MIN_LEVEL["general"]
    major: _Level = SUPERVISION_MIN_LEVEL["major"]

    @model_validator(mode="after")
    def _major_not_below_general(self) -> MinLevel:
        rank = SUPERVISION_LEVELS.index
        check(
            (
                ("major",),
                f"a major hidden danger is not supervised below a general one (general: {self.general})",
            )
            if rank(self.major) < rank(self.general)
            else None
        )
        return self

    def as_map(self) -> dict[str, str]:
        return {"general": self.general, "major": self.major}


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class SupervisionSection:
    """The ``supervision:`` section (see the module docstring)."""

    min_level: MinLevel = MinLevel()
    escalate_after_days: Annotated[Whole, Field(ge=0, le=365)] = 0

    @property
    def source(self) -> str:
        """Where the defaults come from (shown beside them)."""
        return SUPERVISION_SOURCE
