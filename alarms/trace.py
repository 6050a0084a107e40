"""Where an alarm's time goes: a hook a bench installs on the service (`AlarmService.tracer`).

The service calls its `Tracer` only when one is installed (None by default: production
pays one ``is None`` test per stage). `LatencyTrace` keeps, per alarm, the wall-clock
time (µs) of each stage until its first notification is sent, for
``bench/alarm_latency.py --trace``:

``finding_us`` (the finding's own time), ``handed_us`` (handle() reached the service's
loop), ``locked_us`` (write lock taken), ``issued_us`` (statements issued),
``committed_us``, ``dispatch_us`` (the dispatcher took the rows or started its claim),
``claimed_us``, ``sent_us`` (the notifier accepted the first message).

The hooks run on the service's loop (its own thread with ``own_thread``); read
`LatencyTrace.traces` after the service has stopped, or from that loop.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import Any, Protocol

from hazmon.alarms.repository import AlarmRow, Outgoing

__all__ = ["KEEP", "LatencyTrace", "Tracer"]

KEEP = 10_000  # latency traces kept in memory


class Tracer(Protocol):
    """What the service tells a tracer, in order, for each alarm it raises."""

    def batch_started(self) -> None:
        """A write transaction of findings begins."""

    def raised(self, a: AlarmRow, at_us: int) -> None:
        """``a`` was raised (a new activation) by a finding of time ``at_us`` (before the commit)."""

    def batch_recorded(self, handed_us: int, locked_us: int, issued_us: int, committed_us: int) -> None:
        """The batch of findings that raised them is committed."""

    def stage(self, rows: Sequence[Outgoing], stage: str, at_us: int) -> None:
        """Outbox rows reached ``stage`` (``dispatch_us``, ``claimed_us``, ``sent_us``) at ``at_us``."""

    def settled(self, rows: Sequence[Outgoing]) -> None:
        """Rows were marked sent."""


class LatencyTrace:
    """Keeps the stages of each alarm's first notification (the last `KEEP` alarms)."""

    def __init__(self) -> None:
        self.traces: deque[dict[str, Any]] = deque(maxlen=KEEP)
        self._tracing: dict[int, dict[str, Any]] = {}
        self._raised: list[AlarmRow] = []

    def batch_started(self) -> None:
        self._raised.clear()

    def raised(self, a: AlarmRow, at_us: int) -> None:
        self._raised.append(a)
        self._tracing[a.id] = {
            "alarm_id": a.id,
            "hazard_source": a.hazard_source,
            "sensor": a.sensor,
            "condition": a.condition,
            "finding_us": at_us,  # the finding's time (its reading's source time)
        }

    def batch_recorded(self, handed_us: int, locked_us: int, issued_us: int, committed_us: int) -> None:
        for a in self._raised:
            t = self._tracing.get(a.id)
            if t is not None:
                t.update(
                    handed_us=handed_us, locked_us=locked_us, issued_us=issued_us, committed_us=committed_us
                )
        self._raised.clear()
        while len(self._tracing) > KEEP:  # alarms that never notify must not pile up
            del self._tracing[next(iter(self._tracing))]

    def stage(self, rows: Sequence[Outgoing], stage: str, at_us: int) -> None:
        if not self._tracing:
            return
        for o in rows:
            t = self._tracing.get(o.alarm_id) if o.alarm_id is not None else None
            if t is not None and o.purpose == "escalation" and o.message.get("step") == 0:
                t.setdefault(stage, at_us)

    def settled(self, rows: Sequence[Outgoing]) -> None:
        if not self._tracing:
            return
        for o in rows:
            t = self._tracing.get(o.alarm_id) if o.alarm_id is not None else None
            if t is not None and "sent_us" in t:
                self.traces.append(self._tracing.pop(t["alarm_id"]))
