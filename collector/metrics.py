"""The daemon's metrics: one `prometheus_client` registry per `Metrics` (per daemon).

Not the library's global default registry, so a test can run several daemons in
one process. Every family is declared once with its label NAMES fixed
(`counter`, `gauge`, `histogram`, `gauge_fn`), and the children known up front
(one per source, per loss reason…) are created at declaration through ``init``:
from the first scrape on, a family shows the same label names, never a bare
sample that later grows a ``source`` label. A sample with other label names than
declared raises `ValueError` (prometheus_client's own check).

`inc`, `set` and `observe` take the family by name; `get` and `total` read a
value back (tests, /healthz). Thread-safe (prometheus_client locks each child):
the MQTT network thread and the writer's thread count too. Names follow the
Prometheus conventions (``_total`` for counters, base units such as seconds).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

__all__ = ["DROP_REASONS", "LATENCY_BUCKETS_S", "Metrics"]

# no ``*_created`` series next to every counter and histogram child: Prometheus does not use
# them from the text format, and they would double the series (process-wide library switch)
disable_created_metrics()  # type: ignore[no-untyped-call]

# seconds: from a few ms (a reading committed in the next flush) to minutes (a database outage)
LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)

# hazmon_readings_dropped_total{reason}: every way a reading is lost after it was taken in
DROP_REASONS = tuple({"reason": r} for r in ("spool_full", "spool_io_error", "queue_closed"))

LabelValues = tuple[str, ...]
"""A callback gauge's label values, in the order of its declared label names."""


class _CallbackGauge(Collector):
    """A gauge computed at scrape time (queue depths, spool size…), with fixed label names."""

    def __init__(
        self, name: str, help_text: str, labels: Sequence[str], fn: Callable[[], Mapping[LabelValues, float]]
    ) -> None:
        self.name, self.help, self.labels, self.fn = name, help_text, list(labels), fn

    def values(self) -> dict[LabelValues, float]:
        out = {tuple(k): float(v) for k, v in self.fn().items()}
        for k in out:
            if len(k) != len(self.labels):
                raise ValueError(f"{self.name}: label values {k} for label names {self.labels}")
        return out

    def collect(self) -> Iterator[Metric]:
        fam = GaugeMetricFamily(self.name, self.help, labels=self.labels)
        for k, v in sorted(self.values().items()):
            fam.add_metric(list(k), v)
        yield fam

    def describe(self) -> Iterator[Metric]:  # registration must not call `fn` (nothing wired yet)
        yield GaugeMetricFamily(self.name, self.help, labels=self.labels)


_Family = Counter | Gauge | Histogram


class Metrics:
    """Families by name over one `CollectorRegistry`; `render` gives the /metrics text."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._lock = threading.Lock()
        self._families: dict[str, _Family] = {}
        self._callbacks: dict[str, _CallbackGauge] = {}

    # -- declaring ---------------------------------------------------------------------------
    def _declare(
        self,
        kind: type[_Family],
        name: str,
        help_text: str,
        labels: Sequence[str],
        init: Iterable[Mapping[str, str]],
        **kw: object,
    ) -> _Family:
        with self._lock:
            fam = self._families.get(name)
            if fam is None:
                if name in self._callbacks:
                    raise ValueError(f"metric {name} is already declared as a callback gauge")
                fam = kind(name, help_text, list(labels), registry=self.registry, **kw)  # type: ignore[arg-type]
                self._families[name] = fam
            elif not isinstance(fam, kind) or tuple(fam._labelnames) != tuple(labels):
                raise ValueError(f"metric {name} declared again with other type or label names {labels}")
        for values in init:
            fam.labels(**values)
        return fam

    def counter(
        self, name: str, help_text: str, labels: Sequence[str] = (), init: Iterable[Mapping[str, str]] = ()
    ) -> Counter:
        """Declare a counter (exported as 0 before its first count); again with the same labels is a no-op.

        ``init``: the label values known now (each source's name…), created at 0. Returns
        the family: a hot path keeps its child (``.labels(...)``) instead of calling `inc`
        by name (a child's ``inc`` costs a third of a lookup by name and labels).
        """
        fam = self._declare(Counter, name, help_text, labels, init)
        assert isinstance(fam, Counter)
        return fam

    def gauge(
        self, name: str, help_text: str, labels: Sequence[str] = (), init: Iterable[Mapping[str, str]] = ()
    ) -> Gauge:
        """Declare a gauge; see `counter`."""
        fam = self._declare(Gauge, name, help_text, labels, init)
        assert isinstance(fam, Gauge)
        return fam

    def histogram(
        self,
        name: str,
        help_text: str,
        labels: Sequence[str] = (),
        init: Iterable[Mapping[str, str]] = (),
        buckets: Sequence[float] = LATENCY_BUCKETS_S,
    ) -> Histogram:
        """Declare a histogram (``_bucket``, ``_sum``, ``_count``); see `counter`."""
        fam = self._declare(Histogram, name, help_text, labels, init, buckets=tuple(buckets))
        assert isinstance(fam, Histogram)
        return fam

    def gauge_fn(
        self,
        name: str,
        help_text: str,
        fn: Callable[[], Mapping[LabelValues, float]],
        labels: Sequence[str] = (),
    ) -> None:
        """A gauge computed when scraped: ``fn`` maps label values (ordered as ``labels``) to a value.

        A second call with the same name and labels replaces the function (a new writer on the
        same metrics reports its own spool).
        """
        cb = _CallbackGauge(name, help_text, labels, fn)
        with self._lock:
            if name in self._families:
                raise ValueError(f"metric {name} is already declared")
            old = self._callbacks.get(name)
            if old is not None:
                if old.labels != cb.labels:
                    raise ValueError(f"metric {name} declared again with other label names {labels}")
                self.registry.unregister(old)
            self._callbacks[name] = cb
            self.registry.register(cb)

    # -- counting ----------------------------------------------------------------------------
    def _child(self, name: str, labels: Mapping[str, str] | None) -> _Family:
        fam = self._families.get(name)
        if fam is None:
            raise KeyError(f"metric {name} was never declared")
        return fam.labels(**labels) if labels else fam

    def inc(self, name: str, amount: float = 1.0, labels: Mapping[str, str] | None = None) -> None:
        child = self._child(name, labels)
        assert isinstance(child, Counter | Gauge), name
        child.inc(amount)

    def set(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        child = self._child(name, labels)
        assert isinstance(child, Gauge), name
        child.set(value)

    def observe(self, name: str, value: float, labels: Mapping[str, str] | None = None) -> None:
        child = self._child(name, labels)
        assert isinstance(child, Histogram), name
        child.observe(value)

    # -- reading back ------------------------------------------------------------------------
    def _samples(self, name: str) -> list[tuple[dict[str, str], float]]:
        """Every sample named ``name`` (a family's own name, or ``<histogram>_count`` / ``_sum``)."""
        cb = self._callbacks.get(name)
        if cb is not None:
            return [(dict(zip(cb.labels, k, strict=True)), v) for k, v in cb.values().items()]
        fam = self._families.get(name)
        if fam is None:
            for suffix in ("_count", "_sum"):
                if name.endswith(suffix) and isinstance(self._families.get(name[: -len(suffix)]), Histogram):
                    fam = self._families[name[: -len(suffix)]]
            if fam is None:
                return []
        return [(s.labels, s.value) for m in fam.collect() for s in m.samples if s.name == name]

    def get(self, name: str, labels: Mapping[str, str] | None = None) -> float:
        """The current value (0 when never counted): what tests and /healthz read."""
        want = dict(labels or {})
        return next((v for lab, v in self._samples(name) if lab == want), 0.0)

    def total(self, name: str) -> float:
        """Sum over every label set."""
        return sum(v for _, v in self._samples(name))

    def render(self) -> bytes:
        """The Prometheus text exposition (format 0.0.4) of every family."""
        return generate_latest(self.registry)
