"""The in-process simulated plant: `Simulation` turns (plant, scenario, seed) into readings.

Time is simulated: the engine advances in fixed ticks (the shortest sensor
period, at most 1 s) from ``start_us``; each sensor reports at its own period
with its simulated timestamp. The same plant, scenario, seed and start give
exactly the same readings, whatever ``step_s`` the caller asks for.

Example:
    sim = Simulation(plant, scenario="chlorine-leak", seed=1, start_us=to_us(datetime(2026, 7, 1)))
    for now_us, readings in sim.steps(3600):
        ...
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from hazmon.plant.limits import effective_limits
from hazmon.plant.model import Equipment, OpcUaBinding, Plant, Sensor, SensorKind
from hazmon.plant.reading import Quality, Reading
from hazmon.plant.standards import Chemical
from hazmon.simulators.faults import ActiveFault, apply_faults
from hazmon.simulators.physics import (
    ambient_c,
    gauge_pressure,
    height_table,
    lag_alpha,
    plume_g_m3,
    steady_lagged_c,
    thermal_tau_s,
    to_detector_unit,
)
from hazmon.simulators.scenario import (
    Ambient,
    Event,
    Fault,
    Heat,
    Leak,
    Outage,
    Pump,
    Scenario,
    StopLeak,
    Wind,
    load_scenario,
)

__all__ = ["OutageChange", "Simulation", "endpoint_of"]

# Transmitter behaviour (simulation choices, not cited numbers): noise standard
# deviation as a fraction of span, truncated at ±4 σ like a filtered transmitter.
_NOISE_FRACTION: dict[SensorKind, float] = {
    SensorKind.LEVEL: 0.0004,
    SensorKind.TEMPERATURE: 0.001,
    SensorKind.PRESSURE: 0.0008,
    SensorKind.FLOW: 0.002,
    SensorKind.WEIGHT: 0.0005,
    SensorKind.GAS_TOXIC: 0.002,
    SensorKind.GAS_COMBUSTIBLE: 0.002,
    SensorKind.OXYGEN: 0.002,
}
_NOISE_CLIP = 4.0
# Detector first-order response time constants (T90 ≈ 2.3 τ): electrochemical
# toxic cells ~60 s T90, catalytic/IR combustible heads ~25 s T90.
_DETECTOR_TAU_S: dict[SensorKind, float] = {
    SensorKind.GAS_TOXIC: 25.0,
    SensorKind.GAS_COMBUSTIBLE: 12.0,
    SensorKind.OXYGEN: 15.0,
}
# NAMUR NE 43: a 4-20 mA loop carries measurements from 3.8 to 20.5 mA, so a
# process value beyond the range saturates there (-1.25 % / +3.125 % of span).
_SAT_LOW, _SAT_HIGH = 0.2 / 16.0, 0.5 / 16.0
# ... and a failing one signals at 3.6 mA / 21 mA (-2.5 % / +6.25 %): the extremes of any reading.
_FAIL_LOW, _FAIL_HIGH = 0.4 / 16.0, 1.0 / 16.0
_AIR_O2_PCT = 20.9
_WEATHER_TAU_S = 6 * 3600.0
_MEANDER_TAU_S = 60.0
_AUTO_FILL_PER_H = 0.025  # automatic operation moves 2.5 % of capacity per hour
_AUTO_HOLD_S = (1800.0, 4 * 3600.0)
_NOISE_BLOCK = 1 << 16

_LEVEL_SCALE = {"m": 1.0, "mm": 1000.0}
_PRESSURE_SCALE = {"MPa": 1e-6, "kPa": 1e-3, "bar": 1e-5, "Pa": 1.0}


class OutageChange(NamedTuple):
    """An endpoint going away (``down``) or coming back, at the simulated tick it took effect."""

    ts_us: int
    endpoint: str
    down: bool


def endpoint_of(sensor: Sensor) -> str:
    return sensor.binding.endpoint


class _Rng:
    """Seeded numbers drawn in blocks (fast per value, same sequence for the same seed)."""

    def __init__(self, seed: int) -> None:
        self.gen = np.random.Generator(np.random.PCG64(seed))
        self._n: list[float] = []
        self._u: list[float] = []

    def normal(self) -> float:
        if not self._n:  # refilled in place: the engine's hot loop holds the list
            block = np.clip(self.gen.standard_normal(_NOISE_BLOCK), -_NOISE_CLIP, _NOISE_CLIP)
            self._n.extend(block.tolist())
        return self._n.pop()

    def uniform(self) -> float:
        if not self._u:
            self._u.extend(self.gen.random(_NOISE_BLOCK).tolist())
        return self._u.pop()


@dataclass(slots=True)
class _Vessel:
    eq: Equipment
    heights: list[float]
    volumes: list[float]
    volume: float
    temp_c: float
    tau_s: float
    fill_to_m: float
    draw_to_m: float
    auto: bool
    in_m3_h: float = 0.0
    out_m3_h: float = 0.0
    heat_c_per_h: float = 0.0
    mode: str = "hold"  # fill | draw | hold (automatic operation)
    alpha_dt: float = 0.0  # the tick the thermal lag factor below was computed for
    alpha: float = 0.0
    hold_until_us: int = 0
    next_mode: str = "fill"
    level: float = 0.0  # level_m() of the current volume, kept by set_volume

    def set_volume(self, volume: float) -> None:
        self.volume = volume
        self.level = self.level_m()

    def level_m(self) -> float:
        v = self.volume
        i = bisect.bisect_left(self.volumes, v)
        if i <= 0:
            return 0.0
        if i >= len(self.volumes):
            return self.heights[-1]
        v0, v1 = self.volumes[i - 1], self.volumes[i]
        h0, h1 = self.heights[i - 1], self.heights[i]
        return h0 + (h1 - h0) * (v - v0) / (v1 - v0) if v1 > v0 else h0

    def volume_at(self, level: float) -> float:
        return float(np.interp(level, self.heights, self.volumes))


@dataclass(slots=True)
class _LeakState:
    leak: Leak
    src: tuple[float, float]
    start_us: int

    def rate(self, now_us: int) -> float:
        lk = self.leak
        if lk.ramp_to_g_s is None or lk.ramp_s <= 0:
            return lk.rate_g_s
        f = min(1.0, (now_us - self.start_us) / (lk.ramp_s * 1e6))
        return lk.rate_g_s + (lk.ramp_to_g_s - lk.rate_g_s) * f


@dataclass(slots=True)
class _Channel:
    """One sensor's transmitter: what it measures, how, and when it reports."""

    sensor: Sensor
    period_us: int
    next_us: int
    lo: float
    hi: float
    sigma: float
    decimals: int | None  # quantisation: a power of ten of the span / 10 000
    true_value: Callable[[], float]
    zero_suppress: bool
    endpoint: str
    faults: list[ActiveFault] = field(default_factory=list)
    tag: str = ""
    sat_lo: float = 0.0
    sat_hi: float = 0.0
    gas_pos: tuple[float, float] | None = None
    gas_tau_s: float = 0.0
    gas_lagged: float = 0.0


def _decimals(span: float) -> int | None:
    return -math.floor(math.log10(span / 10_000.0)) if span > 0 else None


def _level_band(sensor: Sensor, height: float) -> tuple[float, float]:
    """Automatic operation fills to 80 % and draws to 20 % of the band between L and H."""
    lim = effective_limits(sensor)
    scale = 1.0 / (_LEVEL_SCALE.get(sensor.unit) or (100.0 / height))
    hi = lim.h if lim.h is not None else lim.hh
    lo = lim.l if lim.l is not None else lim.ll
    hi_m = hi * scale if hi is not None else 0.8 * height
    lo_m = lo * scale if lo is not None else 0.2 * height
    return lo_m + 0.2 * (hi_m - lo_m), lo_m + 0.8 * (hi_m - lo_m)


class Simulation:
    """A simulated plant that produces readings in simulated time.

    Args:
        plant: the plant (the same file the daemon reads).
        scenario: a built-in scenario name, a scenario file path, or a `Scenario`.
        seed: makes the run exactly repeatable.
        start_us: simulated start, µs since the epoch (default: now, whole second).
    """

    def __init__(
        self,
        plant: Plant,
        scenario: str | Scenario = "normal",
        seed: int = 1,
        start_us: int | None = None,
    ) -> None:
        if start_us is None:
            import time  # noqa: PLC0415 - the only use of the wall clock

            start_us = int(time.time()) * 1_000_000
        self.plant = plant
        self.scenario = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        self.seed = seed
        self.start_us = start_us
        self.now_us = start_us
        self._rng = _Rng(seed)
        sc = self.scenario
        self._ambient: Ambient = sc.ambient
        self._wind: Wind = sc.wind
        self._weather = 0.0
        self._meander = 0.0
        self._leaks: dict[str, _LeakState] = {}
        self._events: list[Event] = list(sc.events)
        self._event_i = 0
        self._outages: dict[str, int] = {}  # endpoint -> back at (µs)
        self._outage_changes: list[OutageChange] = []  # not yet taken by outage_changes()
        periods = [s.period_s for s in plant.sensors()] or [1.0]
        self.tick_us = max(100_000, int(min(1.0, *periods) * 1e6))
        self._vessels: dict[str, _Vessel] = {}
        for hs in plant.hazard_sources:
            for eq in hs.equipment:
                self._vessels[eq.id] = self._make_vessel(eq, hs.sensors)
        self._channels = [self._make_channel(s) for s in plant.sensors()]
        self._by_tag = {c.sensor.tag: c for c in self._channels}
        self._gas = [c for c in self._channels if c.gas_pos is not None]
        self._plume = False  # some detector still sees gas (so the plume must be followed)
        self.endpoints = {e.name for e in plant.opcua} | {b.name for b in plant.mqtt}
        self._check_events()
        self.counters: dict[str, int] = {"readings": 0, "dropout": 0, "outage": 0}

    # ------------------------------------------------------------------ setup

    def _make_vessel(self, eq: Equipment, sensors: tuple[Sensor, ...]) -> _Vessel:
        shape = eq.type
        if eq.type == "tank" and eq.chemical is not None and eq.chemical.id == "chlorine":
            shape = "horizontal"  # liquefied-chlorine tanks are horizontal pressure vessels
        table = height_table(shape, eq.capacity_m3, eq.height_m)
        heights = np.linspace(0.0, eq.height_m, len(table)).tolist()
        lt = [s for s in sensors if s.equipment == eq.id and s.kind is SensorKind.LEVEL]
        draw_to, fill_to = _level_band(lt[0], eq.height_m) if lt else (0.2 * eq.height_m, 0.8 * eq.height_m)
        level0, temp0 = self.scenario.initial.get(eq.id, (None, None))
        if level0 is None:
            level0 = draw_to + (fill_to - draw_to) * self._rng.uniform()
        tau = thermal_tau_s(eq.capacity_m3)
        a = self.scenario.ambient
        if temp0 is None:
            temp0 = steady_lagged_c(
                self.start_us / 1e6,
                tau,
                mean_c=a.mean_c,
                swing_c=a.swing_c,
                peak_hour=a.peak_hour,
                utc_offset_h=a.utc_offset_h,
            )
        v = _Vessel(
            eq,
            heights,
            table.tolist(),
            0.0,
            temp0,
            tau,
            fill_to,
            draw_to,
            self.scenario.auto_operation,
        )
        v.set_volume(v.volume_at(level0))
        v.alpha_dt = self.tick_us / 1e6
        v.alpha = lag_alpha(v.alpha_dt, tau)
        v.next_mode = "fill" if self._rng.uniform() < 0.5 else "draw"
        v.hold_until_us = self.start_us + int(self._rng.uniform() * _AUTO_HOLD_S[1] * 1e6)
        return v

    def _make_channel(self, s: Sensor) -> _Channel:
        lo, hi = s.range
        span = hi - lo
        vessel = self._vessels.get(s.equipment) if s.equipment else None
        ch = _Channel(
            s,
            period_us=int(s.period_s * 1e6),
            next_us=self.start_us + int(s.period_s * 1e6),
            lo=lo,
            hi=hi,
            sigma=_NOISE_FRACTION.get(s.kind, 0.001) * span,
            decimals=_decimals(span),
            true_value=lambda: lo,
            zero_suppress=s.kind in (SensorKind.GAS_TOXIC, SensorKind.GAS_COMBUSTIBLE, SensorKind.FLOW),
            endpoint=endpoint_of(s),
        )
        ch.true_value = self._measure(s, ch, vessel)
        ch.tag = s.tag
        ch.sat_lo, ch.sat_hi = lo - _SAT_LOW * span, hi + _SAT_HIGH * span
        return ch

    def _measure(self, s: Sensor, ch: _Channel, v: _Vessel | None) -> Callable[[], float]:  # noqa: PLR0911
        k = s.kind
        if k is SensorKind.LEVEL and v is not None:
            scale = _LEVEL_SCALE.get(s.unit, 100.0 / v.eq.height_m)
            return lambda: v.level * scale
        if k is SensorKind.TEMPERATURE:
            off = 273.15 if s.unit == "K" else 0.0
            if v is not None:
                return lambda: v.temp_c + off
            return lambda: self.ambient_now() + off
        if k is SensorKind.PRESSURE and v is not None and v.eq.chemical is not None:
            chem_id = v.eq.chemical.id
            scale = _PRESSURE_SCALE.get(s.unit, 1e-6)
            if gauge_pressure(chem_id, 20.0) is not None:
                return lambda: (gauge_pressure(chem_id, v.temp_c) or 0.0) * scale
            return lambda: 0.0
        if k is SensorKind.WEIGHT and v is not None:
            return lambda: v.volume * (1000.0 if s.unit == "kg" else 1.0)
        if k is SensorKind.FLOW:
            return self._flow_meter(s, v)
        if k.is_gas:
            pos = s.position
            if pos is None and v is not None:
                pos = v.eq.position
            ch.gas_pos = pos
            ch.gas_tau_s = _DETECTOR_TAU_S.get(k, 15.0)
            if k is SensorKind.OXYGEN:
                ch.gas_lagged = 0.0  # displacement, %VOL
                return lambda: _AIR_O2_PCT * (1.0 - ch.gas_lagged / 100.0)
            return lambda: ch.gas_lagged
        return lambda: s.range[0]

    def _flow_meter(self, s: Sensor, v: _Vessel | None) -> Callable[[], float]:
        meter = next((m for m in self.scenario.meters if m.tag == s.tag), None)
        if meter is not None:
            vs = [self._vessels[e] for e in meter.equipment if e in self._vessels]
            if meter.direction == "into":
                return lambda: sum(x.in_m3_h for x in vs)
            return lambda: sum(x.out_m3_h for x in vs)
        if v is not None:
            return lambda: v.in_m3_h + v.out_m3_h
        hs = self.plant.hazard_source(s.hazard_source)
        vs = [self._vessels[e.id] for e in hs.equipment]
        return lambda: sum(x.in_m3_h for x in vs)

    def _check_events(self) -> None:
        """Every equipment, sensor and endpoint a scenario names must exist in this plant.

        Raises:
            ValueError: listing every unknown name, each with the event's time.
        """
        bad: list[str] = []
        for ev in self.scenario.events:
            a = ev.action
            what = ""
            if isinstance(a, Pump | Heat) and a.equipment not in self._vessels:
                what = f"unknown equipment {a.equipment}"
            elif isinstance(a, Leak) and a.at is None:
                v = self._vessels.get(a.equipment or "")
                if v is None:
                    what = f"leak {a.id}: unknown equipment {a.equipment}"
                elif v.eq.position is None:
                    what = f"leak {a.id}: equipment {a.equipment} has no position"
            elif isinstance(a, Fault) and a.sensor not in self._by_tag:
                what = f"fault on unknown sensor {a.sensor}"
            elif isinstance(a, Outage) and a.endpoint not in self.endpoints:
                what = f"outage of unknown endpoint {a.endpoint}"
            if what:
                bad.append(f"{self.scenario.source}: event at {ev.at_s:g} s: {what}")
        if bad:
            raise ValueError("\n".join(bad))

    # ------------------------------------------------------------------ state

    def ambient_now(self) -> float:
        a = self._ambient
        return ambient_c(self.now_us / 1e6, a.mean_c, a.swing_c, a.peak_hour, a.utc_offset_h) + self._weather

    def wind_now(self) -> tuple[float, float]:
        """(from_deg, speed m/s) now, meander included."""
        return ((self._wind.from_deg + self._meander) % 360.0, self._wind.speed_m_s)

    def endpoint_down(self, name: str) -> bool:
        """True while a scenario outage holds the endpoint away."""
        return name in self._outages

    @property
    def down_endpoints(self) -> frozenset[str]:
        return frozenset(self._outages)

    def outage_changes(self) -> list[OutageChange]:
        """Endpoints that went away or came back since the last call, in time order (for recordings).

        Each change carries the tick at which it took effect: from a ``down``
        change on, the endpoint's readings are suppressed and its server is
        away, until the ``up`` change.
        """
        changes, self._outage_changes = self._outage_changes, []
        return changes

    def vessel_state(self, equipment: str) -> dict[str, float]:
        """Level (m), volume (m³), temperature (°C) and pumps of one equipment: for tests and demos."""
        v = self._vessels[equipment]
        return {
            "level_m": v.level,
            "volume_m3": v.volume,
            "temp_c": v.temp_c,
            "in_m3_h": v.in_m3_h,
            "out_m3_h": v.out_m3_h,
        }

    # ------------------------------------------------------------------ events

    def _apply(self, ev: Event) -> None:  # noqa: PLR0912 - one branch per action
        a = ev.action
        at_us = self.start_us + int(ev.at_s * 1e6)
        if isinstance(a, Leak):
            src = a.at
            if src is None and a.equipment in self._vessels:
                src = self._vessels[a.equipment].eq.position
            if src is None:
                raise ValueError(
                    f"{self.scenario.source}: leak {a.id}: equipment {a.equipment} has no position"
                )
            self._leaks[a.id] = _LeakState(a, src, at_us)
        elif isinstance(a, StopLeak):
            self._leaks.pop(a.id, None)
        elif isinstance(a, Pump):
            v = self._vessel(a.equipment)
            if a.auto is not None:
                v.auto = a.auto
            if a.in_m3_h is not None:
                v.in_m3_h = a.in_m3_h
            if a.out_m3_h is not None:
                v.out_m3_h = a.out_m3_h
        elif isinstance(a, Heat):
            self._vessel(a.equipment).heat_c_per_h = a.c_per_h
        elif isinstance(a, Fault):
            ch = self._by_tag.get(a.sensor)
            if ch is None:
                raise ValueError(f"{self.scenario.source}: fault on unknown sensor {a.sensor}")
            end = None if a.duration_s is None else at_us + int(a.duration_s * 1e6)
            ch.faults.append(ActiveFault(a.kind, at_us, end, a.amount, a.every_s))
        elif isinstance(a, Outage):
            if a.endpoint not in self.endpoints:
                raise ValueError(f"{self.scenario.source}: outage of unknown endpoint {a.endpoint}")
            self._outages[a.endpoint] = at_us + int(a.duration_s * 1e6)
        elif isinstance(a, Wind):
            self._wind = a
        else:
            self._ambient = a

    def _vessel(self, eq: str) -> _Vessel:
        v = self._vessels.get(eq)
        if v is None:
            raise ValueError(f"{self.scenario.source}: unknown equipment {eq}")
        return v

    # ------------------------------------------------------------------ physics

    def _advance(self, t_us: int) -> None:
        """Move the plant from ``self.now_us`` to ``t_us`` (one tick)."""
        dt = (t_us - self.now_us) / 1e6
        self.now_us = t_us
        rng = self._rng
        w_a = dt / _WEATHER_TAU_S
        self._weather += -self._weather * w_a + self._ambient.weather_c * math.sqrt(2 * w_a) * rng.normal()
        m_a = dt / _MEANDER_TAU_S
        self._meander += -self._meander * m_a + self._wind.meander_deg * math.sqrt(2 * m_a) * rng.normal()
        amb = self.ambient_now()
        for v in self._vessels.values():
            alpha = v.alpha if dt == v.alpha_dt else lag_alpha(dt, v.tau_s)
            v.temp_c += alpha * (amb - v.temp_c) + v.heat_c_per_h * dt / 3600.0
            if v.auto:
                self._operate(v, t_us)
            if v.in_m3_h != v.out_m3_h:  # otherwise volume and level stay as they are
                cap = v.eq.capacity_m3
                v.set_volume(min(cap, max(0.0, v.volume + (v.in_m3_h - v.out_m3_h) * dt / 3600.0)))
        if self._leaks or self._plume:
            self._disperse(dt, t_us)

    def _operate(self, v: _Vessel, t_us: int) -> None:
        """Automatic operation: fill to the upper target, hold, draw to the lower, hold."""
        level = v.level
        rate = _AUTO_FILL_PER_H * v.eq.capacity_m3
        if (v.mode == "fill" and level >= v.fill_to_m) or (v.mode == "draw" and level <= v.draw_to_m):
            v.next_mode = "draw" if v.mode == "fill" else "fill"
            v.mode = "hold"
            lo, hi = _AUTO_HOLD_S
            v.hold_until_us = t_us + int((lo + (hi - lo) * self._rng.uniform()) * 1e6)
        elif v.mode == "hold" and t_us >= v.hold_until_us:
            v.mode = v.next_mode
        v.in_m3_h = rate if v.mode == "fill" else 0.0
        v.out_m3_h = rate if v.mode == "draw" else 0.0

    def _disperse(self, dt: float, t_us: int) -> None:
        from_deg, speed = self.wind_now()
        leaks = [(ls.leak.chemical, ls.src, ls.rate(t_us)) for ls in self._leaks.values()]
        for ch in self._gas:
            target = 0.0
            pos = ch.gas_pos
            if pos is not None:
                for chem, src, q in leaks:
                    if self._sees(ch.sensor, chem):
                        c = plume_g_m3(q, src, pos, from_deg, speed)
                        unit = "%VOL" if ch.sensor.kind is SensorKind.OXYGEN else ch.sensor.unit
                        target += to_detector_unit(c, chem, unit, ch.sensor.chemical)
            ch.gas_lagged += lag_alpha(dt, ch.gas_tau_s) * (target - ch.gas_lagged)
        self._plume = any(c.gas_lagged > 1e-9 for c in self._gas)  # detectors still settling

    @staticmethod
    def _sees(s: Sensor, gas: Chemical) -> bool:
        if s.kind is SensorKind.OXYGEN:
            return True
        if s.kind is SensorKind.GAS_COMBUSTIBLE:
            return gas.flammable or (s.chemical is not None and s.chemical.id == gas.id)
        return s.chemical is None or s.chemical.id == gas.id

    # ------------------------------------------------------------------ readings

    def _read(self, ch: _Channel, ts_us: int, out: list[Reading]) -> None:
        rng = self._rng
        noise = rng._n.pop() if rng._n else rng.normal()
        value = ch.true_value() + ch.sigma * noise
        lo, hi = ch.lo, ch.hi
        span = hi - lo
        # a low cut-off shows zero; otherwise the loop current saturates just beyond the range (NAMUR NE 43)
        if value < lo:
            value = lo if ch.zero_suppress else max(value, ch.sat_lo)
        elif value > hi:
            value = min(value, ch.sat_hi)
        quality = Quality.GOOD
        if ch.faults:
            faulty = apply_faults(
                ch.faults,
                value,
                quality,
                ts_us=ts_us,
                lo=lo,
                hi=hi,
                period_s=ch.sensor.period_s,
                uniform=rng.uniform(),
                sign=1.0 if rng.uniform() < 0.5 else -1.0,
            )
            if faulty is None:
                self.counters["dropout"] += 1
                return
            value, quality = faulty
        if value < lo or value > hi:
            quality = Quality.BAD
            # a faulty transmitter cannot drive its loop beyond the NE 43 failure currents either
            value = min(max(value, lo - _FAIL_LOW * span), hi + _FAIL_HIGH * span)
        if ch.decimals is not None:
            value = round(value, ch.decimals)
        out.append(Reading(ch.tag, ts_us, value, quality))

    def _tick(self, t_us: int, out: list[Reading]) -> None:
        events = self._events
        was_down = set(self._outages) if self._outages else set()
        while self._event_i < len(events) and self.start_us + int(events[self._event_i].at_s * 1e6) <= t_us:
            self._apply(events[self._event_i])
            self._event_i += 1
        for name in [n for n, back in self._outages.items() if back <= t_us]:
            del self._outages[name]
        if was_down or self._outages:
            now_down = set(self._outages)
            self._outage_changes.extend(OutageChange(t_us, n, False) for n in sorted(was_down - now_down))
            self._outage_changes.extend(OutageChange(t_us, n, True) for n in sorted(now_down - was_down))
        self._advance(t_us)
        outages = self._outages
        rng = self._rng
        normals = rng._n  # refilled in place by rng.normal()
        append = out.append
        new = tuple.__new__  # Reading(...) without its Python-level __new__
        good, bad = Quality.GOOD, Quality.BAD
        for ch in self._channels:
            if ch.faults:
                ch.faults = [f for f in ch.faults if f.end_us is None or f.end_us > t_us]
            while ch.next_us <= t_us:
                ts = ch.next_us
                ch.next_us += ch.period_us
                if outages and ch.endpoint in outages:
                    self.counters["outage"] += 1
                    continue
                if ch.faults:
                    self._read(ch, ts, out)
                    continue
                # _read without faults, inline (the same numbers in the same order)
                value = ch.true_value() + ch.sigma * (normals.pop() if normals else rng.normal())
                lo, hi = ch.lo, ch.hi
                quality = good
                if value < lo:
                    value = lo if ch.zero_suppress else max(value, ch.sat_lo)
                    if value < lo:
                        quality = bad  # saturated: within the NE 43 failure limits already
                elif value > hi:
                    value = min(value, ch.sat_hi)
                    quality = bad
                if ch.decimals is not None:
                    value = round(value, ch.decimals)
                append(new(Reading, (ch.tag, ts, value, quality)))

    def steps(self, duration_s: float, step_s: float = 1.0) -> Iterator[tuple[int, list[Reading]]]:
        """Advance ``duration_s`` of simulated time, yielding (now_us, readings of that step).

        Readings carry simulated timestamps in (previous now, now]; each sensor
        reports at its ``period_s``; dropout faults and endpoint outages
        suppress readings. Calls continue from where the previous call ended.
        ``duration_s`` and ``step_s`` are rounded up to whole ticks (`tick_us`),
        so the values do not depend on ``step_s``.
        """
        tick = self.tick_us
        end_us = self.now_us + -(-int(duration_s * 1e6) // tick) * tick
        step_us = max(1, -(-int(step_s * 1e6) // tick)) * tick
        while self.now_us < end_us:
            stop = min(self.now_us + step_us, end_us)
            out: list[Reading] = []
            while self.now_us < stop:
                self._tick(self.now_us + tick, out)
            self.counters["readings"] += len(out)
            yield self.now_us, out

    def readings(self, duration_s: float) -> Iterator[Reading]:
        """The readings of the next ``duration_s`` simulated seconds, one by one."""
        for _, batch in self.steps(duration_s, step_s=60.0):
            yield from batch

    def opcua_sensors(self, endpoint: str) -> list[Sensor]:
        return [
            s
            for s in self.plant.sensors()
            if isinstance(s.binding, OpcUaBinding) and s.binding.endpoint == endpoint
        ]
