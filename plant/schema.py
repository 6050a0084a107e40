"""Shared pydantic v2 building blocks for validating what comes from outside.

The HTTP API validates every request with models built from these (`hazmon.alarms.api_schema`);
the config files are meant to move onto the same types (text that PostgreSQL can store, numbers
that are numbers), so the rules are written once.

* `Text`: a string PostgreSQL and every notifier can carry: no NUL (a ``text`` column cannot
  hold U+0000) and no lone surrogate (not encodable as UTF-8), at most `TEXT_MAX` characters.
* `Strict`: the model configuration of anything parsed from JSON: strict types (``true`` is not
  a number, ``"600"`` is not a number), unknown keys refused, frozen.
* `describe`: a `ValidationError` as one line naming each field and what is wrong, without
  echoing the input (which may be megabytes or a secret).
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, ConfigDict, Field, ValidationError

__all__ = ["TEXT_MAX", "Strict", "Text", "describe", "storable_text"]

TEXT_MAX = 4000
"""Longest free text accepted (a comment, a shelving reason)."""

Strict = ConfigDict(strict=True, extra="forbid", frozen=True)


def storable_text(s: str) -> str:
    """``s`` when PostgreSQL and UTF-8 can hold it.

    Raises:
        ValueError: for a NUL character or a lone surrogate, naming its position.
    """
    for i, ch in enumerate(s):
        if ch == "\0":
            raise ValueError(f"contains a NUL character (U+0000) at position {i}")
        if "\ud800" <= ch <= "\udfff":
            raise ValueError(f"contains a lone surrogate (U+{ord(ch):04X}) at position {i}: not Unicode text")
    return s


Text = Annotated[str, Field(max_length=TEXT_MAX), AfterValidator(storable_text)]


def _where(loc: tuple[int | str, ...], prefix: str) -> str:
    parts = [prefix] if prefix else []
    for p in loc:
        if isinstance(p, int) and parts:
            parts[-1] += f"[{p}]"
        else:
            parts.append(str(p))
    return ".".join(parts) or "(value)"


def describe(e: ValidationError, prefix: str = "") -> str:
    """Every error of ``e`` as ``field.path: reason``, joined by ``; `` (the input is never echoed)."""
    out: list[str] = []
    for err in e.errors(include_url=False, include_input=False):
        msg = str(err["msg"])
        if err["type"] == "json_invalid":
            msg = "not valid JSON: " + str((err.get("ctx") or {}).get("error", msg))
        elif err["type"] == "extra_forbidden":
            msg = "unknown field"
        elif msg.startswith("Value error, "):
            msg = msg[len("Value error, ") :]
        out.append(f"{_where(tuple(err['loc']), prefix)}: {msg}")
    return "; ".join(out)
