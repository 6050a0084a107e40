"""The ``rules:`` section of the daemon config, parsed once into `RulesSettings`.

Every key is optional; the defaults suit a plant whose instruments report every
1 to 5 s. Example::

    rules:
      locale: zh
      window: {bucket_s: 10, trend_s: 600, spike_samples: 16}
      predict: {horizon_s: 1800, min_fill: 0.6, consistency: 0.8, fit_ratio: 3,
                on_delay_s: 30, off_delay_s: 60,
                kinds: [level, temperature, pressure, weight]}
      rate: {window_s: 60, clear_fraction: 0.8}
      stuck: {after_s: 300, tolerance: 0, kinds: [level, temperature, pressure]}
      spike: {z: 8, min_step: 0.02, hold_s: 300}
      faults: {off_delay_s: 60}
      stale: {factor: null}
      votes: {enabled: true}
      chattering: {count: 3, window_s: 60}
"""

from __future__ import annotations

from dataclasses import dataclass

import yaml

from hazmon.plant.model import SensorKind
from hazmon.plant.standards import ALARM_TARGETS
from hazmon.plant.yamlnode import Node, opt

__all__ = ["RulesSettings", "parse_settings"]

_KINDS = tuple(k.value for k in SensorKind)


@dataclass(frozen=True, slots=True)
class RulesSettings:
    """How the rules engine judges readings (all times in seconds).

    Attributes:
        locale: preferred language of log lines ("zh" or "en"); findings always
            carry both messages. None: the plant file's enterprise locale.
        bucket_s: width of one window bucket; the trend and rate windows hold the
            mean of each bucket, not every reading.
        trend_s: length of the trend window (robust line fit).
        spike_samples: raw readings kept per sensor for the spike (MAD) test.
        horizon_s: a prediction fires when HH / LL is expected within this time.
        min_fill: share of the trend window that must hold data before a fit counts.
        consistency: share of pairwise slopes that must agree in sign with the
            fitted slope (a monotonic trend, not a pump cycle or noise).
        fit_ratio: the fitted line must move over the window at least this many
            times the robust scatter of the points around it.
        predict_on_delay_s / predict_off_delay_s: delays of prediction findings.
        predict_kinds: sensor kinds that get predictions.
        rate_window_s: the rate of change is measured over this span.
        rate_clear_fraction: a rate alarm clears below this share of its limit.
        stuck_after_s: a value unchanged this long is "stuck".
        stuck_tolerance: a change no larger than this share of the span counts as unchanged.
        stuck_kinds: sensor kinds checked for stuck values (gas detectors and flow
            meters legitimately sit at zero).
        spike_z: robust z-score (|x - median| / (1.4826 MAD)) of a spike.
        spike_min_step: a reading must also jump by this share of the span.
        spike_hold_s: a spike fault clears after this long without a new spike.
        fault_off_delay_s: bad quality and out of range clear after this long
            without a faulty reading (one finding for a flickering fault).
        stale_factor: None: staleness comes from the collector (`StaleChange`);
            a number: the rules also flag a sensor silent for factor x period.
        votes: evaluate the plant file's vote groups.
        chattering_count / chattering_window_s: activations of one condition within
            the window that make it chattering (ISA-18.2 / EEMUA 191 targets).
    """

    locale: str | None = None
    bucket_s: float = 10.0
    trend_s: float = 600.0
    spike_samples: int = 16
    horizon_s: float = 1800.0
    min_fill: float = 0.6
    consistency: float = 0.8
    fit_ratio: float = 3.0
    predict_on_delay_s: float = 30.0
    predict_off_delay_s: float = 60.0
    predict_kinds: frozenset[SensorKind] = frozenset(
        {SensorKind.LEVEL, SensorKind.TEMPERATURE, SensorKind.PRESSURE, SensorKind.WEIGHT}
    )
    rate_window_s: float = 60.0
    rate_clear_fraction: float = 0.8
    stuck_after_s: float = 300.0
    stuck_tolerance: float = 0.0
    stuck_kinds: frozenset[SensorKind] = frozenset(
        {SensorKind.LEVEL, SensorKind.TEMPERATURE, SensorKind.PRESSURE}
    )
    spike_z: float = 8.0
    spike_min_step: float = 0.02
    spike_hold_s: float = 300.0
    fault_off_delay_s: float = 60.0
    stale_factor: float | None = None
    votes: bool = True
    chattering_count: int = ALARM_TARGETS.chattering_count
    chattering_window_s: float = ALARM_TARGETS.chattering_window_s

    @property
    def trend_buckets(self) -> int:
        """Buckets in the trend window (even, at least 4)."""
        n = max(4, round(self.trend_s / self.bucket_s))
        return n + (n % 2)


def _kinds(n: Node) -> frozenset[SensorKind] | None:
    items = n.sequence()
    if not isinstance(n.node, yaml.SequenceNode):
        return None
    out: set[SensorKind] = set()
    ok = True
    for item in items:
        k = item.choice(_KINDS)
        if k is None:
            ok = False
        else:
            out.add(SensorKind(k))
    return frozenset(out) if ok else None


def _fraction(n: Node) -> float | None:
    v = n.num(0.0)
    if v is not None and v > 1.0:
        n.problem(f"must be between 0 and 1, got {v:g}")
        return None
    return v


def _pos(n: Node) -> float | None:
    return n.num(0.0, exclusive=True)


def _nonneg(n: Node) -> float | None:
    return n.num(0.0)


def _sub(m: dict[str, Node], key: str, allowed: set[str]) -> dict[str, Node]:
    if key not in m:
        return {}
    return m[key].mapping(allowed) or {}


def parse_settings(node: Node) -> RulesSettings | None:
    """Read the ``rules:`` mapping; problems are recorded on ``node`` (file:line: path: reason).

    Returns:
        The settings, or None when the section is not a mapping.
    """
    d = RulesSettings()
    allowed = {
        "locale",
        "window",
        "predict",
        "rate",
        "stuck",
        "spike",
        "faults",
        "stale",
        "votes",
        "chattering",
    }
    m = node.mapping(allowed)
    if m is None:
        return None
    win = _sub(m, "window", {"bucket_s", "trend_s", "spike_samples"})
    pre = _sub(
        m,
        "predict",
        {"horizon_s", "min_fill", "consistency", "fit_ratio", "on_delay_s", "off_delay_s", "kinds"},
    )
    rate = _sub(m, "rate", {"window_s", "clear_fraction"})
    stuck = _sub(m, "stuck", {"after_s", "tolerance", "kinds"})
    spike = _sub(m, "spike", {"z", "min_step", "hold_s"})
    faults = _sub(m, "faults", {"off_delay_s"})
    stale = _sub(m, "stale", {"factor"})
    votes = _sub(m, "votes", {"enabled"})
    chat = _sub(m, "chattering", {"count", "window_s"})

    stale_factor = d.stale_factor
    if "factor" in stale and not (
        hasattr(stale["factor"].node, "value") and stale["factor"].node.value in ("null", "~", "")
    ):
        stale_factor = stale["factor"].num(1.0, exclusive=True)

    s = RulesSettings(
        locale=opt(m, "locale", lambda x: x.choice(("zh", "en")), d.locale),
        bucket_s=opt(win, "bucket_s", _pos, d.bucket_s),
        trend_s=opt(win, "trend_s", _pos, d.trend_s),
        spike_samples=opt(win, "spike_samples", lambda x: x.whole(4), d.spike_samples),
        horizon_s=opt(pre, "horizon_s", _pos, d.horizon_s),
        min_fill=opt(pre, "min_fill", _fraction, d.min_fill),
        consistency=opt(pre, "consistency", _fraction, d.consistency),
        fit_ratio=opt(pre, "fit_ratio", _nonneg, d.fit_ratio),
        predict_on_delay_s=opt(pre, "on_delay_s", _nonneg, d.predict_on_delay_s),
        predict_off_delay_s=opt(pre, "off_delay_s", _nonneg, d.predict_off_delay_s),
        predict_kinds=opt(pre, "kinds", _kinds, d.predict_kinds),
        rate_window_s=opt(rate, "window_s", _pos, d.rate_window_s),
        rate_clear_fraction=opt(rate, "clear_fraction", _fraction, d.rate_clear_fraction),
        stuck_after_s=opt(stuck, "after_s", _pos, d.stuck_after_s),
        stuck_tolerance=opt(stuck, "tolerance", _fraction, d.stuck_tolerance),
        stuck_kinds=opt(stuck, "kinds", _kinds, d.stuck_kinds),
        spike_z=opt(spike, "z", _pos, d.spike_z),
        spike_min_step=opt(spike, "min_step", _fraction, d.spike_min_step),
        spike_hold_s=opt(spike, "hold_s", _nonneg, d.spike_hold_s),
        fault_off_delay_s=opt(faults, "off_delay_s", _nonneg, d.fault_off_delay_s),
        stale_factor=stale_factor,
        votes=opt(votes, "enabled", Node.flag, d.votes),
        chattering_count=opt(chat, "count", lambda x: x.whole(2), d.chattering_count),
        chattering_window_s=opt(chat, "window_s", _pos, d.chattering_window_s),
    )
    if s.bucket_s > s.trend_s / 4:
        (win.get("bucket_s") or win.get("trend_s") or node).problem(
            f"bucket_s ({s.bucket_s:g}) must be at most a quarter of trend_s ({s.trend_s:g})"
        )
    if s.rate_window_s < s.bucket_s:
        (rate.get("window_s") or node).problem(
            f"rate window_s ({s.rate_window_s:g}) must be at least window.bucket_s ({s.bucket_s:g})"
        )
    if s.rate_window_s > s.trend_s:
        (rate.get("window_s") or node).problem(
            f"rate window_s ({s.rate_window_s:g}) must be at most window.trend_s ({s.trend_s:g})"
        )
    return s
