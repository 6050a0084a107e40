"""Token files: API tokens kept out of the config, created with one token per role when missing.

A token file (YAML, mode 0600) is a list of ``{name, role, level?, region?, token}``. A
bureau entry without ``region`` covers the plant's own region at its level. The daemon
keeps only their SHA-256; ``hazmon alarms tokens -c hazmon.yaml`` prints them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from hazmon.alarms.auth import BUREAU_LEVELS, ROLES, ApiToken, digest, new_token, region_level_problem

__all__ = ["DEMO_USERS", "PlainToken", "ensure_token_file", "read_token_file"]

DEMO_USERS: tuple[tuple[str, str, str | None], ...] = (
    ("operator", "operator", None),
    ("plant-manager", "plant_manager", None),
    ("county-bureau", "bureau", "county"),
    ("city-bureau", "bureau", "city"),
    ("province-bureau", "bureau", "province"),
)


@dataclass(frozen=True, slots=True)
class PlainToken:
    name: str
    role: str
    level: str | None
    region: str | None
    token: str

    def api_token(self) -> ApiToken:
        return ApiToken(self.name, self.role, digest(self.token), self.level, self.region)


def ensure_token_file(path: Path) -> bool:
    """Create ``path`` with one fresh token per role when it does not exist; True if created."""
    entries = [
        {"name": n, "role": r, **({"level": lv} if lv else {}), "token": new_token()}
        for n, r, lv in DEMO_USERS
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(
            "# hazmon alarm API tokens (keep secret). A bureau without region covers the plant's region.\n"
        )
        yaml.safe_dump(entries, f, allow_unicode=True, sort_keys=False)
    return True


def read_token_file(path: Path) -> list[PlainToken]:
    """The tokens in ``path``.

    Raises:
        ValueError: a sentence naming the entry and what is wrong.
        OSError: the file cannot be read.
    """
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or []
    except (yaml.YAMLError, RecursionError) as err:
        # a token file edited by hand: a one-line reason, not a traceback
        reason = "nested too deeply" if isinstance(err, RecursionError) else str(err).splitlines()[0]
        raise ValueError(f"{path}: not a valid token file: {reason}") from err
    if not isinstance(data, list):
        raise ValueError(f"{path}: expected a list of tokens")
    out: list[PlainToken] = []
    for i, e in enumerate(data):
        if not isinstance(e, dict):
            raise ValueError(f"{path}: entry {i + 1}: expected a mapping")
        name, role, token = e.get("name"), e.get("role"), e.get("token")
        level, region = e.get("level"), e.get("region")
        if not isinstance(name, str) or not isinstance(token, str) or len(token) < 16:
            raise ValueError(f"{path}: entry {i + 1}: needs a name and a token of at least 16 characters")
        if role not in ROLES:
            raise ValueError(f"{path}: entry {i + 1} ({name}): role must be one of {', '.join(ROLES)}")
        if role == "bureau" and level not in BUREAU_LEVELS:
            raise ValueError(f"{path}: entry {i + 1} ({name}): a bureau needs level county, city or province")
        if region is not None and (not re.fullmatch(r"[1-9][0-9]{5}", str(region)) or role != "bureau"):
            raise ValueError(f"{path}: entry {i + 1} ({name}): region must be a bureau's 6-digit region code")
        why = region_level_problem(str(level), str(region)) if region is not None else None
        if why is not None:
            raise ValueError(f"{path}: entry {i + 1} ({name}): {why}")
        out.append(PlainToken(name, str(role), level, None if region is None else str(region), token))
    return out
