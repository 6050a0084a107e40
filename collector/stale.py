"""Staleness: a sensor that stops reporting is a condition, not a silence.

Pure logic, time is an argument. A sensor with no reading for ``factor`` x its
period (arrival time, not source time: a source clock can be wrong) becomes
stale; a whole source (broker, endpoint) going down marks all its sensors stale
at once, and its coming back makes them fresh again, each with a full stale limit
from the reconnect to report (nothing can be known of a sensor behind a dead
link: its staleness was the link's). Each transition is reported once as a
`StaleChange` for the rules.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from hazmon.plant.reading import StaleChange

__all__ = ["StaleTracker"]


class StaleTracker:
    """Last arrival per sensor and the stale / fresh state derived from it.

    Args:
        periods_s: tag -> expected period, s.
        factor: stale after ``factor`` x period without a reading.
        start_us: when watching began: a sensor never heard from is stale
            ``factor`` x period after it.
    """

    def __init__(self, periods_s: Mapping[str, float], factor: float, start_us: int) -> None:
        self.factor = factor
        self._limit_us = {t: int(p * factor * 1_000_000) for t, p in periods_s.items()}
        self._periods = dict(periods_s)
        self._last: dict[str, int] = dict.fromkeys(periods_s, start_us)
        self._stale: set[str] = set()
        self._down: dict[str, set[str]] = {}  # source -> its tags while it is down
        self._unheard: set[str] = set(periods_s)  # no reading yet since watching began
        self._heard: dict[str, int] = {}  # tag -> its last reading's arrival (never moved by a reconnect)
        self._why: dict[str, str] = {}  # tag -> why it cannot report (a refused node), for its stale reason

    @property
    def stale_count(self) -> int:
        return len(self._stale)

    def is_stale(self, tag: str) -> bool:
        return tag in self._stale

    def last_seen_us(self, tags: Iterable[str]) -> int | None:
        """When the newest reading of any of ``tags`` arrived (µs); None: none since watching began."""
        heard = [self._heard[t] for t in tags if t in self._heard]
        return max(heard) if heard else None

    def seen(self, tags: Iterable[str], now_us: int) -> list[StaleChange]:
        """Readings arrived for ``tags`` at ``now_us``; returns the sensors that came back."""
        last = self._last
        fresh = dict.fromkeys(tags, now_us)  # one C-level pass over a batch's tags
        if not fresh.keys() <= last.keys():
            fresh = {t: now_us for t in fresh if t in last}  # unknown tags are the collectors' to report
        last.update(fresh)
        self._heard.update(fresh)
        if self._unheard:
            self._unheard -= fresh.keys()
        out: list[StaleChange] = []
        if self._why:
            for t in self._why.keys() & fresh.keys():
                del self._why[t]
        if self._stale:
            for t in sorted(self._stale & fresh.keys()):
                if not self._is_down(t):
                    self._stale.discard(t)
                    out.append(StaleChange(t, False, now_us, "readings resumed"))
        return out

    def explain(self, tag: str, why: str) -> None:
        """The collector knows why ``tag`` cannot report (its node refused): its stale reason says so."""
        if tag in self._last:
            self._why[tag] = why

    def _is_down(self, tag: str) -> bool:
        return any(tag in tags for tags in self._down.values())

    def check(self, now_us: int) -> list[StaleChange]:
        """Sensors that went stale since the last check."""
        out: list[StaleChange] = []
        for t, last in self._last.items():
            if t not in self._stale and now_us - last >= self._limit_us[t]:
                self._stale.add(t)
                p = self._periods[t]
                silent = f"no reading for {self.factor * p:g} s ({self.factor:g} x {p:g} s)"
                why = self._why.get(t)
                out.append(StaleChange(t, True, now_us, silent if why is None else f"{why}; {silent}"))
        return out

    def source_down(self, source: str, tags: Iterable[str], now_us: int, reason: str) -> list[StaleChange]:
        """A broker or endpoint went away: all its sensors are stale now."""
        tags = [t for t in tags if t in self._last]
        self._down[source] = set(tags)
        out: list[StaleChange] = []
        for t in tags:
            if t not in self._stale:
                self._stale.add(t)
                out.append(StaleChange(t, True, now_us, reason))
        return out

    def source_up(self, source: str, now_us: int, tags: Iterable[str] = ()) -> list[StaleChange]:
        """The source is (back) up: the sensors that went down with it are fresh again.

        Their staleness was the link's (one cause, one alarm: the link-lost alarm
        clears with its consequences), so each is judged again from the reconnect:
        its clock restarts now, and one still silent a full stale limit later is
        stale on its own. Its sensors never heard from (``tags`` of the source)
        start their clock now too: a link that takes a while to come up at start
        (10,000 OPC UA items subscribing) is not taken for 10,000 silent sensors.

        Returns:
            the sensors that turned fresh ("link restored"), sorted by tag.
        """
        out: list[StaleChange] = []
        for t in sorted(self._down.pop(source, set())):
            self._last[t] = max(self._last[t], now_us)
            if t in self._stale and not self._is_down(t):
                self._stale.discard(t)
                out.append(StaleChange(t, False, now_us, "link restored"))
        for t in tags:
            if t in self._unheard and t not in self._stale:
                self._last[t] = max(self._last[t], now_us)
        return out
