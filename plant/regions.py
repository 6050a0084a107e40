"""Administrative regions by their 6-digit codes, and who may see what.

China's administrative division codes (GB/T 2260, Codes for the administrative divisions of
the People's Republic of China) give a county-level division six digits: the first two name
the province, the first four the city (prefecture), all six the county. A bureau works at
one level; it sees the enterprises whose county code falls under its own:

- a county bureau (``330106``) sees ``330106`` only;
- a city bureau (``330100``) sees every code starting ``3301``;
- a province bureau (``330000``) sees every code starting ``33``;
- the nation (``000000``) sees everything.

Examples:
    >>> covers(Scope("330100", "city"), "330106")
    True
    >>> covers(Scope("330106", "county"), "330108")
    False
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["LEVELS", "Level", "Scope", "covers", "parent_codes", "prefix", "valid_code"]

Level = Literal["county", "city", "province", "nation"]
LEVELS: tuple[Level, ...] = ("county", "city", "province", "nation")
_PREFIX_LEN: dict[Level, int] = {"county": 6, "city": 4, "province": 2, "nation": 0}
_CODE = re.compile(r"^[0-9]{6}$")


def valid_code(code: str) -> bool:
    """Six digits (GB/T 2260 county-level form)."""
    return bool(_CODE.match(code))


@dataclass(frozen=True, slots=True)
class Scope:
    """What a bureau (or a token of its staff) may see: its own code at its level."""

    code: str
    level: Level

    def __post_init__(self) -> None:
        if not valid_code(self.code):
            raise ValueError(f"region code {self.code!r} is not six digits")
        if self.level not in _PREFIX_LEN:
            raise ValueError(f"level {self.level!r} is not one of {', '.join(LEVELS)}")
        tail = self.code[_PREFIX_LEN[self.level] :]
        if self.level != "county" and tail.strip("0"):
            raise ValueError(
                f"region code {self.code!r} is not a {self.level} code: its last {len(tail)} digits must be 0"
            )


def prefix(scope: Scope) -> str:
    """The leading digits every covered county code starts with ('' for the nation)."""
    return scope.code[: _PREFIX_LEN[scope.level]]


def covers(scope: Scope, region_code: str) -> bool:
    """Whether a county-level ``region_code`` lies inside ``scope``."""
    return valid_code(region_code) and region_code.startswith(prefix(scope))


def parent_codes(region_code: str) -> dict[Level, str]:
    """The codes of the county, city, province and nation a county-level code lies in."""
    if not valid_code(region_code):
        raise ValueError(f"region code {region_code!r} is not six digits")
    return {
        "county": region_code,
        "city": region_code[:4] + "00",
        "province": region_code[:2] + "0000",
        "nation": "000000",
    }
