"""Alarm-flood detection (EEMUA 191 / ISA-18.2): pure, time is an argument.

A flood at one plant starts when more than ``count`` new alarms occur within
``window_s``; it ends when a whole window passes with no more than ``count``.
During a flood the control room gets one summary per flood instead of one
message per new alarm -- except for the highest priorities: the first notice of a
red or orange alarm always goes out on its own (`withholds_first_notice`).
EEMUA 191 (alarm floods: suppression and grouping are for the lower priorities)
and ISA-18.2 / IEC 62682 (the highest priorities stay annunciated) keep them out
of flood handling: a chlorine leak during a flood of stale-sensor alarms is the
one alarm nobody may miss.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

from hazmon.plant.standards import Tier

__all__ = ["NEVER_FLOODED", "FloodDecision", "FloodDetector", "withholds_first_notice"]

NEVER_FLOODED: frozenset[Tier] = frozenset({Tier.RED, Tier.ORANGE})
"""Tiers whose first notice no flood withholds (EEMUA 191, ISA-18.2: highest priorities)."""


@dataclass(frozen=True, slots=True)
class FloodDecision:
    """What one new alarm means for the flood.

    Attributes:
        in_flood: the alarm is part of a flood (no individual message, unless
            its tier is red or orange: `withholds_first_notice`).
        started: this alarm started the flood.
        flood_start_us: when the current flood started (None outside a flood).
        count: new alarms in the window, this one included.
    """

    in_flood: bool
    started: bool
    flood_start_us: int | None
    count: int


class FloodDetector:
    """Sliding window of activation times for one plant."""

    def __init__(self, count: int, window_s: float, history: Iterable[int] = ()) -> None:
        self.count = count
        self.window_us = round(window_s * 1e6)
        self._times: deque[int] = deque()
        self.flood_start_us: int | None = None
        for t in sorted(history):
            self.activation(t)

    def _expire(self, now_us: int) -> None:
        while self._times and self._times[0] <= now_us - self.window_us:
            self._times.popleft()

    def in_flood(self, now_us: int) -> bool:
        """Whether the flood is still on at ``now_us`` (ends when the window drops to ``count``)."""
        self._expire(now_us)
        if self.flood_start_us is not None and len(self._times) <= self.count:
            self.flood_start_us = None
        return self.flood_start_us is not None

    def activation(self, at_us: int) -> FloodDecision:
        """Record one new alarm at ``at_us`` (non-decreasing) and decide."""
        was = self.in_flood(at_us)
        self._times.append(at_us)
        n = len(self._times)
        if not was and n > self.count:
            self.flood_start_us = at_us
            return FloodDecision(True, True, at_us, n)
        return FloodDecision(was, False, self.flood_start_us, n)


def withholds_first_notice(decision: FloodDecision, tier: Tier) -> bool:
    """Whether the flood replaces the first notice of a new alarm of ``tier`` by its summary.

    Only for the lower tiers (yellow, blue): the first notice of a red or orange alarm
    always goes out, in a flood too (it is listed in the summary as well).
    """
    return decision.in_flood and tier not in NEVER_FLOODED
