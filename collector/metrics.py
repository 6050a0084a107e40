"""A small metrics registry rendered in the Prometheus text exposition format.

Counters and gauges with labels, thread-safe (the MQTT network thread counts
too), no dependency. Names follow Prometheus conventions (``_total`` for
counters, base units such as seconds).
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable

__all__ = ["Metrics"]

Labels = tuple[tuple[str, str], ...]


def _labels(labels: dict[str, str] | None) -> Labels:
    return tuple(sorted((labels or {}).items()))


def _fmt(v: float) -> str:
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def _esc(v: str) -> str:
    return v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Metrics:
    """Counters and gauges by (name, labels); `render` gives the /metrics text."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._help: dict[str, tuple[str, str]] = {}  # name -> (type, help)
        self._values: dict[str, dict[Labels, float]] = {}
        self._callbacks: dict[str, Callable[[], dict[Labels, float]]] = {}

    def declare(self, name: str, kind: str, help_text: str) -> None:
        """Declare a metric so it is exported (as 0) before its first sample."""
        with self._lock:
            self._help.setdefault(name, (kind, help_text))
            self._values.setdefault(name, {})

    def inc(self, name: str, amount: float = 1.0, labels: dict[str, str] | None = None) -> None:
        key = _labels(labels)
        with self._lock:
            d = self._values.setdefault(name, {})
            d[key] = d.get(key, 0.0) + amount

    def set(self, name: str, value: float, labels: dict[str, str] | None = None) -> None:
        with self._lock:
            self._values.setdefault(name, {})[_labels(labels)] = value

    def gauge_fn(self, name: str, help_text: str, fn: Callable[[], dict[Labels, float]]) -> None:
        """A gauge computed when scraped (queue depths, spool size…)."""
        with self._lock:
            self._help[name] = ("gauge", help_text)
            self._callbacks[name] = fn

    def get(self, name: str, labels: dict[str, str] | None = None) -> float:
        """The current value (0 when never set): what tests and /healthz read."""
        if name in self._callbacks:
            return self._callbacks[name]().get(_labels(labels), 0.0)
        with self._lock:
            return self._values.get(name, {}).get(_labels(labels), 0.0)

    def total(self, name: str) -> float:
        """Sum over every label set."""
        if name in self._callbacks:
            return sum(self._callbacks[name]().values())
        with self._lock:
            return sum(self._values.get(name, {}).values())

    def render(self) -> str:
        with self._lock:
            names = sorted(set(self._values) | set(self._callbacks))
            snap = {n: dict(self._values.get(n, {})) for n in names if n not in self._callbacks}
            helps = dict(self._help)
            cbs = dict(self._callbacks)
        lines: list[str] = []
        for n in names:
            values = cbs[n]() if n in cbs else snap[n]
            kind, text = helps.get(n, ("untyped", ""))
            if text:
                lines.append(f"# HELP {n} {text}")
            lines.append(f"# TYPE {n} {kind}")
            if not values and kind in ("counter", "gauge"):
                values = {(): 0.0}
            for labels, v in sorted(values.items()):
                lab = ",".join(f'{k}="{_esc(val)}"' for k, val in labels)
                lines.append(f"{n}{{{lab}}} {_fmt(v)}" if lab else f"{n} {_fmt(v)}")
        return "\n".join(lines) + "\n"
