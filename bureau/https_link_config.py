"""The bureau config's ``https_link:`` section: the link over HTTPS (firewalls that allow only HTTPS).

::

    https_link:
      enabled: true
      host: 0.0.0.0
      port: 8443
      cert_file: /etc/hazmon/link.pem       # the server certificate (chain) and its key
      key_file: /etc/hazmon/link-key.pem
      insecure: false                       # true: plain http (tests, a TLS proxy in front)
      down_batch: 100                       # down messages answered per poll at most
      enterprises:                          # HTTP Basic: username = enterprise id, password's SHA-256 here
        - {id: E3301001, sha256: 5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8}
        - {id: E3301002, password_env: HAZMON_LINK_E3301002}

A password's SHA-256: ``printf %s "$PASSWORD" | sha256sum``. Every problem is reported as
``bureau.yaml:LINE: https_link.FIELD: reason`` at load.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Annotated

from pydantic import AfterValidator, Field, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from hazmon.plant.yamlmodel import SECTION, Flag, Whole, YText, check, pattern

__all__ = ["HttpsEnterprise", "HttpsLink"]

_Id = Annotated[YText, AfterValidator(pattern(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}", "an enterprise id"))]
_Sha = Annotated[YText, AfterValidator(pattern(r"[0-9a-fA-F]{64}", "a hex SHA-256 digest"))]
_Var = Annotated[YText, AfterValidator(pattern(r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable name"))]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class HttpsEnterprise:
    """One enterprise allowed on the HTTPS link: its id (the Basic username) and its password's digest."""

    id: _Id
    sha256: _Sha | None = None
    password_env: _Var | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> HttpsEnterprise:
        check(
            (("sha256", "password_env"), "give sha256 or password_env, not both")
            if self.sha256 is not None and self.password_env is not None
            else None,
            ((), "missing sha256 (or password_env)")
            if self.sha256 is None and self.password_env is None
            else None,
            (("password_env",), f"environment variable {self.password_env} is not set")
            if self.password_env is not None and not os.environ.get(self.password_env)
            else None,
        )
        return self

    def digest(self) -> str:
        """The hex SHA-256 of the enterprise's password (read from ``password_env`` when given)."""
        if self.sha256 is not None:
            return self.sha256.lower()
        return hashlib.sha256(os.environ.get(self.password_env or "", "").encode()).hexdigest()


def _file(v: str) -> str:
    if not Path(v).is_file():
        raise ValueError(f"'{v}': no such file")
    return v


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class HttpsLink:
    """The ``https_link:`` section (see the module docstring); disabled by default."""

    enabled: Flag = False
    host: YText = "0.0.0.0"  # the enterprises reach it from outside
    port: Annotated[Whole, Field(ge=0, le=65535)] = 8443  # 0: a free port (tests)
    cert_file: Annotated[YText, AfterValidator(_file)] | None = None
    key_file: Annotated[YText, AfterValidator(_file)] | None = None
    insecure: Flag = False
    down_batch: Annotated[Whole, Field(ge=1, le=1000)] = 100
    enterprises: tuple[HttpsEnterprise, ...] = ()

    @model_validator(mode="after")
    def _tls(self) -> HttpsLink:
        problems: list[tuple[tuple[str | tuple[str | int, ...], ...], str] | None] = []
        if self.enabled and not self.insecure and (self.cert_file is None or self.key_file is None):
            problems.append(
                (("cert_file", "key_file"), "HTTPS needs cert_file and key_file (or insecure: true)")
            )
        seen: set[str] = set()
        for i, e in enumerate(self.enterprises):
            if e.id in seen:
                problems.append(((("enterprises", i, "id"),), f"enterprise '{e.id}' given twice"))
            seen.add(e.id)
        check(*problems)
        return self

    def digests(self) -> dict[str, str]:
        """Enterprise id → the hex SHA-256 of its password."""
        return {e.id: e.digest() for e in self.enterprises}
