"""API tokens, roles and regions (pure).

Roles: ``operator`` (control room: ack, shelve, comment), ``plant_manager`` (also
out of service, enterprise feedback), ``bureau`` at ``county``, ``city`` or
``province`` level (sees only alarms whose region code starts with its prefix;
records received / verified / closed). Only SHA-256 digests of tokens are kept.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "BUREAU_LEVELS",
    "ROLES",
    "ApiToken",
    "TokenBook",
    "digest",
    "new_token",
    "region_level",
    "region_level_problem",
    "region_prefix",
]

ROLES = ("operator", "plant_manager", "bureau")
BUREAU_LEVELS = ("county", "city", "province")
_PREFIX_LEN = {"county": 6, "city": 4, "province": 2}


def region_prefix(level: str, code: str) -> str:
    """The part of a GB/T 2260 code a bureau of ``level`` covers: 320116 -> 3201 (city)."""
    return code[: _PREFIX_LEN[level]]


def region_level(code: str) -> str:
    """The level of a 6-digit administrative code (GB/T 2260).

    ``XX0000`` is a province, ``XXXX00`` a city, any other a county: 320000 province,
    320100 city, 320116 county.
    """
    if code.endswith("0000"):
        return "province"
    if code.endswith("00"):
        return "city"
    return "county"


def region_level_problem(level: str, code: str) -> str | None:
    """Why ``code`` is not a region of ``level`` (a county token with a city's code), or None.

    A bureau sees the plants whose code starts with its prefix (`region_prefix`): a county
    token given its city's code 320100 would see no plant at all (no plant is in 320100),
    a city token given a county code only its own county's.
    """
    actual = region_level(code)
    if actual == level:
        return None
    example = {"province": code[:2] + "0000", "city": code[:4] + "00"}.get(level, "")
    shape = {"province": "XX0000", "city": "XXXX00"}.get(level, "")
    if level == "county":
        return f"region '{code}' is a {actual} code, not a county one: a county code does not end in 00"
    return (
        f"region '{code}' is a {actual} code, not a {level} one: a {level} code is {shape} "
        f"(e.g. {example} for this {actual})"
    )


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def new_token() -> str:
    return "hzm_" + secrets.token_urlsafe(24)


@dataclass(frozen=True, slots=True)
class ApiToken:
    """One API user.

    Attributes:
        name: who (recorded as the actor of every transition they make).
        role: operator | plant_manager | bureau.
        sha256: hex SHA-256 of the bearer token.
        level: bureau level (county | city | province); None for plant roles.
        region: the bureau's region code (6 digits); None for plant roles.
    """

    name: str
    role: str
    sha256: str
    level: str | None = None
    region: str | None = None

    def sees(self, region_code: str) -> bool:
        """Whether this user may see and act on alarms of an enterprise in ``region_code``."""
        if self.role != "bureau":
            return True
        if self.level is None or self.region is None:
            return False
        return region_code.startswith(region_prefix(self.level, self.region))


class TokenBook:
    """Looks bearer tokens up by digest (constant-time compare)."""

    def __init__(self, tokens: Iterable[ApiToken]) -> None:
        self._by_digest = {t.sha256.lower(): t for t in tokens}

    def find(self, bearer: str) -> ApiToken | None:
        d = digest(bearer)
        for k, t in self._by_digest.items():
            if hmac.compare_digest(k, d):
                return t
        return None
