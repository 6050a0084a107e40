"""The daemon config's ``console:`` section: who may sign in to the web console, and for how long.

::

    console:
      enabled: true              # default true when users are listed
      session_idle_s: 1800       # signed out after 30 minutes without a request
      session_max_s: 43200       # and 12 hours after signing in, whatever happens
      secure_cookie: false       # true behind HTTPS (the cookie is then sent over HTTPS only)
      language: zh               # zh | en: the default language of the pages
      refresh_s: 5               # the active-alarm list refreshes itself this often
      users:
        - {name: 王强, role: operator, password_hash: "scrypt$15$8$1$..."}
        - {name: 张建国, role: plant_manager, password_hash: "scrypt$..."}
        - {name: 六合区应急局, role: bureau, level: county, region: "320116", password_hash: "scrypt$..."}

Roles are those of the alarm API tokens (`hazmon.alarms.auth`): ``operator``,
``plant_manager``, ``bureau`` (with a ``level``; without ``region`` it covers the plant's
region at that level). A hash is made with ``hazmon console passwd``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from hazmon.alarms.auth import BUREAU_LEVELS, ROLES, region_level_problem
from hazmon.plant.web_users import IdleSeconds, Language, MaxSeconds, PasswordHash, UserName
from hazmon.plant.yamlmodel import SECTION, Flag, Whole, YText, check, choice, pattern, validate
from hazmon.plant.yamlnode import Node

__all__ = ["ConsoleSettings", "ConsoleUser", "parse_settings"]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class ConsoleUser:
    name: UserName
    role: Annotated[YText, BeforeValidator(choice(*ROLES))]
    password_hash: PasswordHash
    level: Annotated[YText, BeforeValidator(choice(*BUREAU_LEVELS))] | None = None
    region: Annotated[YText, AfterValidator(pattern(r"[1-9][0-9]{5}", "a 6-digit region code"))] | None = None

    @model_validator(mode="after")
    def _bureau(self) -> ConsoleUser:
        if self.role == "bureau" and self.level is None:
            check((("level",), "a bureau user needs level county, city or province"))
        if self.role != "bureau" and (self.level is not None or self.region is not None):
            check((("level", "region"), "only a bureau user has a level and a region"))
        if self.level is not None and self.region is not None:
            why = region_level_problem(self.level, self.region)
            check((("region",), why) if why else None)
        return self


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class ConsoleSettings:
    enabled: Flag = True
    session_idle_s: IdleSeconds = 1800
    session_max_s: MaxSeconds = 43_200
    secure_cookie: Flag = False
    language: Language = "zh"
    refresh_s: Annotated[Whole, Field(ge=1, le=300)] = 5  # the active-alarm list polls this often
    users: tuple[ConsoleUser, ...] = ()

    @model_validator(mode="after")
    def _unique(self) -> ConsoleSettings:
        names = [u.name for u in self.users]
        twice = sorted({n for n in names if names.count(n) > 1})
        check((("users",), f"user {twice[0]} is listed twice") if twice else None)
        return self

    def user(self, name: str) -> ConsoleUser | None:
        return next((u for u in self.users if u.name == name), None)


def parse_settings(n: Node) -> ConsoleSettings | None:
    """`ConsoleSettings` from the ``console:`` mapping; problems are recorded on ``n`` (file:line)."""
    return validate(n, ConsoleSettings)
