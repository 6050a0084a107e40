"""Who may sign in to a web console: the fields both consoles' ``console:`` sections share.

The plant daemon's section (`hazmon.console.config`) and the bureau daemon's
(`hazmon.bureau.config`, users with a region scope and the roles ``viewer``/``officer`` of its
API tokens) are built from the same checked fields: a name, an scrypt password hash
(``hazmon console passwd``), session lengths, the cookie flag and the default language.
Only hashes are kept in a config file.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, cast

from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from hazmon.plant.regions import LEVELS, Scope
from hazmon.plant.yamlmodel import SECTION, Flag, Whole, YText, check, choice, pattern

__all__ = [
    "HASH_PATTERN",
    "BureauConsoleSettings",
    "BureauUser",
    "IdleSeconds",
    "Language",
    "MaxSeconds",
    "PasswordHash",
    "UserName",
    "UserRegion",
    "hash_problem",
]

HASH_PATTERN = r"scrypt\$[0-9]{1,2}\$[0-9]{1,2}\$[0-9]{1,2}\$[A-Za-z0-9+/=]{16,}\$[A-Za-z0-9+/=]{40,}"
_RE = re.compile(HASH_PATTERN)


def hash_problem(h: str) -> str | None:
    """Why ``h`` is not a usable hash (None when it is)."""
    if not _RE.fullmatch(h):
        return "not a password hash: make one with `hazmon console passwd`"
    log_n, r, p = (int(x) for x in h.split("$")[1:4])
    if not (10 <= log_n <= 20 and 1 <= r <= 32 and 1 <= p <= 16):
        return f"scrypt parameters out of range (log2 n 10-20, r 1-32, p 1-16): {log_n}, {r}, {p}"
    return None


def _hash(v: str) -> str:
    why = hash_problem(v)
    if why is not None:
        raise ValueError(why)
    return v


UserName = Annotated[YText, AfterValidator(pattern(r"\S(.{0,62}\S)?", "a name of 1-64 characters"))]
PasswordHash = Annotated[YText, AfterValidator(_hash)]
IdleSeconds = Annotated[Whole, Field(ge=60, le=86_400)]
MaxSeconds = Annotated[Whole, Field(ge=300, le=30 * 86_400)]
Language = Annotated[YText, BeforeValidator(choice("zh", "en"))]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class UserRegion:
    """``{code: "320116", level: county}``: the region a user sees (GB/T 2260 code at its level)."""

    code: Annotated[YText, AfterValidator(pattern(r"[0-9]{6}", "a six-digit region code (GB/T 2260)"))]
    level: Annotated[YText, BeforeValidator(choice(*LEVELS))]

    @model_validator(mode="after")
    def _shape(self) -> UserRegion:
        try:
            Scope(self.code, cast(Any, self.level))
        except ValueError as e:
            check((("code",), str(e)))
        return self

    @property
    def scope(self) -> Scope:
        return Scope(self.code, cast(Any, self.level))


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class BureauUser:
    """A bureau console user: ``viewer`` reads, ``officer`` also takes the steps; sees only ``region``."""

    name: UserName
    role: Annotated[YText, BeforeValidator(choice("viewer", "officer"))]
    password_hash: PasswordHash
    region: UserRegion

    @property
    def scope(self) -> Scope:
        return self.region.scope


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class BureauConsoleSettings:
    """The bureau daemon's ``console:`` section (the plant console's session fields, bureau users)."""

    enabled: Flag = True
    session_idle_s: IdleSeconds = 1800
    session_max_s: MaxSeconds = 43_200
    secure_cookie: Flag = False
    language: Language = "zh"
    refresh_s: Annotated[Whole, Field(ge=1, le=300)] = 5  # the alarm lists poll this often
    users: tuple[BureauUser, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> BureauConsoleSettings:
        names = [u.name for u in self.users]
        twice = sorted({n for n in names if names.count(n) > 1})
        check((("users",), f"user {twice[0]} is listed twice") if twice else None)
        return self

    def user(self, name: str) -> BureauUser | None:
        return next((u for u in self.users if u.name == name), None)
