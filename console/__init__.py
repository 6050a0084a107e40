"""hazmon.console: the web console for plant safety managers and operators (the faces floor).

Server-rendered pages (Jinja2) on the daemon's own HTTP server: sign-in with server-side
sessions and CSRF tokens, the active alarms with their actions, the hidden-danger
register, duty checks, the daily commitment and assessments. The roof builds it with
`build_console` and mounts its routes; it passes the alarm service (the actions go
through the service's own path).
"""

from collections.abc import Callable
from datetime import UTC, datetime

from hazmon.alarms.api import AlarmApi
from hazmon.console.alarm_pages import mount_alarm_pages
from hazmon.console.config import ConsoleSettings, ConsoleUser, parse_settings
from hazmon.console.passwords import hash_password, verify
from hazmon.console.plant_pages import mount_plant_pages
from hazmon.console.web import PREFIX, Console
from hazmon.plant import Plant

__all__ = [
    "PREFIX",
    "Console",
    "ConsoleSettings",
    "ConsoleUser",
    "build_console",
    "hash_password",
    "parse_settings",
    "verify",
]


def build_console(
    plant: Plant,
    settings: ConsoleSettings,
    dsn: str,
    alarms: AlarmApi | None,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Console:
    """The console of ``plant`` with every page; ``alarms`` None: a daemon without alarm service."""
    c = Console(plant, settings, dsn, clock)
    if alarms is not None:
        mount_alarm_pages(c, alarms)
    mount_plant_pages(c)
    return c
