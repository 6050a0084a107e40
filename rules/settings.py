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

import dataclasses
from dataclasses import field
from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator
from pydantic.dataclasses import dataclass

from hazmon.plant.model import SensorKind
from hazmon.plant.standards import ALARM_TARGETS
from hazmon.plant.yamlmodel import (
    SECTION,
    Flag,
    Fraction,
    NonNegative,
    Number,
    Positive,
    Whole,
    YText,
    check,
    choice,
    validate,
)
from hazmon.plant.yamlnode import Node

__all__ = ["RulesSettings", "parse_settings"]

_KINDS = tuple(k.value for k in SensorKind)


@dataclasses.dataclass(frozen=True, slots=True)
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


_D = RulesSettings()

Kind = Annotated[YText, BeforeValidator(choice(*_KINDS))]


def _kind_list(kinds: frozenset[SensorKind]) -> tuple[str, ...]:
    return tuple(sorted(k.value for k in kinds))


@dataclass(frozen=True, slots=True, config=SECTION)
class _Window:
    bucket_s: Positive = _D.bucket_s
    trend_s: Positive = _D.trend_s
    spike_samples: Annotated[Whole, Field(ge=4)] = _D.spike_samples


@dataclass(frozen=True, slots=True, config=SECTION)
class _Predict:
    horizon_s: Positive = _D.horizon_s
    min_fill: Fraction = _D.min_fill
    consistency: Fraction = _D.consistency
    fit_ratio: NonNegative = _D.fit_ratio
    on_delay_s: NonNegative = _D.predict_on_delay_s
    off_delay_s: NonNegative = _D.predict_off_delay_s
    kinds: tuple[Kind, ...] = _kind_list(_D.predict_kinds)


@dataclass(frozen=True, slots=True, config=SECTION)
class _Rate:
    window_s: Positive = _D.rate_window_s
    clear_fraction: Fraction = _D.rate_clear_fraction


@dataclass(frozen=True, slots=True, config=SECTION)
class _Stuck:
    after_s: Positive = _D.stuck_after_s
    tolerance: Fraction = _D.stuck_tolerance
    kinds: tuple[Kind, ...] = _kind_list(_D.stuck_kinds)


@dataclass(frozen=True, slots=True, config=SECTION)
class _Spike:
    z: Positive = _D.spike_z
    min_step: Fraction = _D.spike_min_step
    hold_s: NonNegative = _D.spike_hold_s


@dataclass(frozen=True, slots=True, config=SECTION)
class _Faults:
    off_delay_s: NonNegative = _D.fault_off_delay_s


@dataclass(frozen=True, slots=True, config=SECTION)
class _Stale:
    factor: Annotated[Number, Field(gt=1)] | None = _D.stale_factor


@dataclass(frozen=True, slots=True, config=SECTION)
class _Votes:
    enabled: Flag = _D.votes


@dataclass(frozen=True, slots=True, config=SECTION)
class _Chattering:
    count: Annotated[Whole, Field(ge=2)] = _D.chattering_count
    window_s: Positive = _D.chattering_window_s


@dataclass(frozen=True, slots=True, config=SECTION)
class _Rules:
    """The ``rules:`` mapping as written (`RulesSettings` is the flat form the engine reads)."""

    locale: Annotated[YText, BeforeValidator(choice("zh", "en"))] | None = _D.locale
    window: _Window = field(default_factory=_Window)
    predict: _Predict = field(default_factory=_Predict)
    rate: _Rate = field(default_factory=_Rate)
    stuck: _Stuck = field(default_factory=_Stuck)
    spike: _Spike = field(default_factory=_Spike)
    faults: _Faults = field(default_factory=_Faults)
    stale: _Stale = field(default_factory=_Stale)
    votes: _Votes = field(default_factory=_Votes)
    chattering: _Chattering = field(default_factory=_Chattering)

    @model_validator(mode="after")
    def _windows_fit(self) -> _Rules:
        w, r = self.window, self.rate
        check(
            (
                (("window", "bucket_s"), ("window", "trend_s")),
                f"bucket_s ({w.bucket_s:g}) must be at most a quarter of trend_s ({w.trend_s:g})",
            )
            if w.bucket_s > w.trend_s / 4
            else None,
            (
                (("rate", "window_s"),),
                f"rate window_s ({r.window_s:g}) must be at least window.bucket_s ({w.bucket_s:g})",
            )
            if r.window_s < w.bucket_s
            else None,
            (
                (("rate", "window_s"),),
                f"rate window_s ({r.window_s:g}) must be at most window.trend_s ({w.trend_s:g})",
            )
            if r.window_s > w.trend_s
            else None,
        )
        return self


def parse_settings(node: Node) -> RulesSettings | None:
    """Read the ``rules:`` mapping; problems are recorded on ``node`` (file:line: path: reason).

    Returns:
        The settings, or None when the section has problems.
    """
    r = validate(node, _Rules)
    if r is None:
        return None
    return RulesSettings(
        locale=r.locale,
        bucket_s=r.window.bucket_s,
        trend_s=r.window.trend_s,
        spike_samples=r.window.spike_samples,
        horizon_s=r.predict.horizon_s,
        min_fill=r.predict.min_fill,
        consistency=r.predict.consistency,
        fit_ratio=r.predict.fit_ratio,
        predict_on_delay_s=r.predict.on_delay_s,
        predict_off_delay_s=r.predict.off_delay_s,
        predict_kinds=frozenset(SensorKind(k) for k in r.predict.kinds),
        rate_window_s=r.rate.window_s,
        rate_clear_fraction=r.rate.clear_fraction,
        stuck_after_s=r.stuck.after_s,
        stuck_tolerance=r.stuck.tolerance,
        stuck_kinds=frozenset(SensorKind(k) for k in r.stuck.kinds),
        spike_z=r.spike.z,
        spike_min_step=r.spike.min_step,
        spike_hold_s=r.spike.hold_s,
        fault_off_delay_s=r.faults.off_delay_s,
        stale_factor=r.stale.factor,
        votes=r.votes.enabled,
        chattering_count=r.chattering.count,
        chattering_window_s=r.chattering.window_s,
    )
