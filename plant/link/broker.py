"""Where a link broker is, from its ``mqtt://`` / ``mqtts://`` URL, for both ends of the link.

`BrokerAddress` is mixed into the enterprise's ``uplink:`` settings and the bureau's ``broker:``
settings, which each declare ``url`` and ``password_env``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

__all__ = ["BrokerAddress"]


class BrokerAddress:
    """Host, port and TLS of ``self.url``; the password from ``self.password_env`` when connecting."""

    __slots__ = ()
    if TYPE_CHECKING:
        url: str
        password_env: str | None

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        u = urlsplit(self.url)
        return u.port or (8883 if u.scheme == "mqtts" else 1883)

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme == "mqtts"

    def password(self) -> str | None:
        """The password from ``password_env`` (read when connecting, never kept in the config)."""
        return os.environ.get(self.password_env) if self.password_env else None
