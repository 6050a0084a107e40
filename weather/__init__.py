"""Official weather warnings (GB/T 35965.1-2018, the Chinese profile of CAP 1.2).

A service component: it imports only the ground (`hazmon.plant`, `hazmon.store`). A
hardened parser (`cap`), pure matching to hazard sources (`matching`), pure state and
findings as a function of (alerts, now) (`state`), limits tightened while in force
(`tightening`), the PostgreSQL repository and the ingestion edges (`ingest`: files, a watched
directory; `http`: the POST route). Emergency plans (应急预案, PLANS.md): pure decisions
(`plans`) and their records (`plan_repository`). The daemon's wiring is in the roof
(`hazmon.weather_wiring`, `hazmon.plans_wiring`).
"""

from hazmon.weather.cap import Alert, Area, Info, Reason, Refused, parse
from hazmon.weather.state import Active, Transition, active_at, in_force, transitions

__all__ = [
    "Active",
    "Alert",
    "Area",
    "Info",
    "Reason",
    "Refused",
    "Transition",
    "active_at",
    "in_force",
    "parse",
    "transitions",
]
