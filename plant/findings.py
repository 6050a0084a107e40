"""What the rules engine tells the alarms: the `Finding` type.

It lives in the ground so that `hazmon.rules` produces it and `hazmon.alarms`
consumes it without either importing the other; the daemon carries findings from
one to the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hazmon.plant.standards import Level

__all__ = ["Condition", "Finding", "Level"]


class Condition(StrEnum):
    """What was found. The value is the stable key stored with alarms."""

    HH = "hh"
    H = "h"
    L = "l"
    LL = "ll"
    RATE = "rate"  # rate of change above the maximum rise / fall per minute
    PREDICT_HH = "predict_hh"
    PREDICT_LL = "predict_ll"
    GAS_FIRST = "gas_first"  # combustible / toxic / oxygen first level
    GAS_SECOND = "gas_second"
    VOTE_CONFIRMED = "vote_confirmed"  # k of n detectors of a group above first level
    VOTE_UNCONFIRMED = "vote_unconfirmed"  # one detector alone
    STUCK = "stuck"
    SPIKE = "spike"
    OUT_OF_RANGE = "out_of_range"
    BAD_QUALITY = "bad_quality"
    STALE = "stale"  # communication loss: no reading for N x its period
    CHATTERING = "chattering"
    ASSESSMENT_OVERDUE = "assessment_overdue"  # hazard-source conditions (alarms issue)
    FILING_OVERDUE = "filing_overdue"
    # supervision (hidden dangers, duties): sensor is "hidden-danger/<id>" or "duty/<role>"
    RECTIFICATION_OVERDUE = "rectification_overdue"  # a hidden danger not accepted by its deadline
    DUTY_CHECK_OVERDUE = "duty_check_overdue"  # a responsible person's check not done in its period
    COMMITMENT_MISSING = "commitment_missing"  # the daily safety commitment not filed by its time
    WEATHER_WARNING = "weather_warning"  # an official weather warning in force (sensor "weather/<kind>")
    # the bureau's warning (预警) on this plant: sensor "bureau/<warning id>", value its colour 1-4 (the tier)
    BUREAU_WARNING = "bureau_warning"
    SYSTEM = "system"  # hazmon itself: spool full, readings dropped…
    LINK_LOST = "link_lost"  # a source (OPC UA endpoint, MQTT broker) is down: one alarm, its sensors' stale
    # conditions are its consequences (sensor: the source's name)


@dataclass(frozen=True, slots=True)
class Finding:
    """One condition found on one sensor (or hazard source) at one time.

    A finding with ``active=False`` tells the alarms that the condition cleared
    (after its deadband and off-delay).

    Attributes:
        hazard_source: id of the hazard source.
        sensor: tag of the sensor, or None for a hazard-source condition.
        condition: what was found.
        level: first / second / predictive / fault.
        active: True when the condition holds, False when it cleared.
        ts_us: when it was found (simulated or real), µs since the epoch.
        value: the value that triggered it, if any.
        limit: the limit it was compared with, if any.
        expected_at_us: predictions: when the value is expected to cross.
        message_en: a sentence for people, in English.
        message_zh: the same in Chinese.
    """

    hazard_source: str
    sensor: str | None
    condition: Condition
    level: Level
    active: bool
    ts_us: int
    value: float | None = None
    limit: float | None = None
    expected_at_us: int | None = None
    message_en: str = ""
    message_zh: str = ""

    @property
    def key(self) -> tuple[str, str | None, Condition]:
        """Identity of the alarm this finding updates: (source, sensor, condition)."""
        return (self.hazard_source, self.sensor, self.condition)

    def message(self, locale: str) -> str:
        return self.message_zh if locale.startswith("zh") else self.message_en
