"""The alarms of one plant in memory, shared by the recorder and the dispatcher.

The database is the truth: the book is loaded from it at start and reloaded after a
failed write transaction (`hazmon.alarms.recorder`). Both sides run on the service's
loop, so no lock guards it.
"""

from __future__ import annotations

import time
from collections import defaultdict

from hazmon.alarms.lifecycle import status
from hazmon.alarms.messages import AlarmInfo
from hazmon.alarms.repository import AlarmRow
from hazmon.plant.findings import Condition

__all__ = ["NOT_BY_SENSOR", "SENSOR_FAULTS", "AlarmBook", "alarm_info", "real_now_us"]

SENSOR_FAULTS: frozenset[Condition] = frozenset(
    {Condition.STUCK, Condition.OUT_OF_RANGE, Condition.BAD_QUALITY, Condition.STALE}
)
"""While one of these is active on a sensor, its process alarms not raised yet are suppressed
(an active one escalates on, saying its detector is no longer reporting)."""
NOT_BY_SENSOR = SENSOR_FAULTS | {Condition.LINK_LOST}  # never suppressed by a sensor's health


def real_now_us() -> int:
    return time.time_ns() // 1000


class AlarmBook:
    """Alarms by key, id and sensor, the sensors now faulty, and the service's now."""

    def __init__(self) -> None:
        self.by_key: dict[tuple[str, str | None, str], AlarmRow] = {}
        self.by_id: dict[int, AlarmRow] = {}
        # sensor tag -> its alarms: a sensor turning faulty suppresses its process alarms without
        # a scan of every alarm (10,000 sensors going stale at once made that quadratic)
        self.by_sensor: dict[str, list[AlarmRow]] = defaultdict(list)
        self.faulty: dict[str, set[str]] = defaultdict(set)
        self.now_us = 0  # the latest now_us given to handle / tick (simulated time in tests)

    def load(self, rows: list[AlarmRow]) -> None:
        """Replace the contents by ``rows`` (read from the database)."""
        self.by_key = {a.key: a for a in rows}
        self.by_id = {a.id: a for a in rows}
        self.by_sensor = defaultdict(list)
        for a in rows:
            if a.sensor:
                self.by_sensor[a.sensor].append(a)
        self.faulty = defaultdict(set)
        for a in rows:  # sensor faults still active suppress that sensor's alarms
            if a.sensor and a.condition in SENSOR_FAULTS and a.state.active:
                self.faulty[a.sensor].add(a.condition)

    def add(self, a: AlarmRow) -> None:
        self.by_key[a.key] = a
        self.by_id[a.id] = a
        if a.sensor:
            self.by_sensor[a.sensor].append(a)

    def advance(self, now_us: int) -> None:
        self.now_us = max(self.now_us, now_us)

    def now_or_real(self) -> int:
        return self.now_us or real_now_us()


def alarm_info(a: AlarmRow, now_us: int) -> AlarmInfo:
    """What a message says about one alarm."""
    s = a.state
    return AlarmInfo(
        a.id,
        a.hazard_source,
        a.sensor,
        a.condition,
        max(1, min(4, s.tier)),
        status(s, now_us).value,
        s.activated_at_us,
        s.value,
        s.limit,
        s.message_en,
        s.message_zh,
        s.detector_fault,
    )
