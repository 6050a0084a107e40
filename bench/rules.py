"""Rules engine throughput: one batch for 10,000 / 100,000 / 440,000 sensors, 10-minute window.

For each size N the engine state is warm (every sensor has a full 10-minute
trend window, a full spike ring and an open bucket), then 10 consecutive 1-second
batches of one reading per sensor are evaluated with `hazmon.rules.evaluate`
(10 batches = one whole bucket cycle: with staggered buckets each batch closes
and fits about a tenth of the sensors). 1 % of the sensors sit above their H
limit with the alarm active, so they take the reading-by-reading path.

In the same run a straightforward per-sensor pure-Python implementation of the
same conditions (limits with deadband and delays, rate, lag-half Theil–Sen trend
prediction, spike via median/MAD, stuck, out of range, bad quality), one object
per sensor with lists for its windows, judges the same readings for a sample of
sensors. Printed: both rates (readings per second), the ratio, the time per
batch, and the memory of the windows. Also printed: turning `Reading` objects
into the engine's arrays (what `RulesRunner.process` does) for the largest batch.

Goals: 440,000 sensors < 100 ms per batch on one core; >= 50x the per-sensor
Python rate; window memory < 2 GB at 440,000 sensors.

    .venv/bin/python bench/rules.py [--sizes 10000,100000,440000] [--sample 2000]
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections import deque

import numpy as np

from hazmon.plant.model import Limits, MqttBinding, Sensor, SensorKind
from hazmon.plant.reading import Reading
from hazmon.rules import Batch, RulesSettings, evaluate, initial_state, model_from_sensors
from hazmon.rules.engine import RulesState

T0 = 1_800_000_000_000_000
SEC = 1_000_000
KINDS = [
    (SensorKind.LEVEL, "m", (0.0, 12.0), Limits(10.5, 9.8, 1.5, 1.0, 0.05, 5, 10, 0.1, 0.1)),
    (SensorKind.TEMPERATURE, "°C", (-40.0, 80.0), Limits(50, 45, -20, None, 0.5, 10, 30)),
    (SensorKind.PRESSURE, "MPa", (0.0, 2.5), Limits(1.6, 1.45, 0.1, None, 0.02, 5, 10, 0.05)),
    (SensorKind.GAS_COMBUSTIBLE, "%LEL", (0.0, 100.0), Limits(50, 25, None, None, 1, 3, 30)),
]
MID = {
    SensorKind.LEVEL: 6.0,
    SensorKind.TEMPERATURE: 20.0,
    SensorKind.PRESSURE: 0.8,
    SensorKind.GAS_COMBUSTIBLE: 2.0,
}
NOISE = {
    SensorKind.LEVEL: 0.01,
    SensorKind.TEMPERATURE: 0.1,
    SensorKind.PRESSURE: 0.002,
    SensorKind.GAS_COMBUSTIBLE: 0.3,
}


def make_sensors(n: int) -> list[Sensor]:
    b = MqttBinding("gds", "bench")
    out = []
    for i in range(n):
        kind, unit, rng, lim = KINDS[i % len(KINDS)]
        out.append(Sensor(f"S{i:06d}", kind, unit, rng, 1.0, b, "hs", limits=lim, limits_given=True))
    return out


def base_values(sensors: list[Sensor]) -> tuple[np.ndarray, np.ndarray]:
    mid = np.array([MID[s.kind] for s in sensors])
    noise = np.array([NOISE[s.kind] for s in sensors])
    return mid, noise


def warm(
    st: RulesState, mid: np.ndarray, noise: np.ndarray, rng: np.random.Generator, hot: np.ndarray
) -> None:
    """A full 10-minute window for every sensor, as if it had run for a while."""
    s = st.settings
    n, nslots = st.bmean.shape
    bucket_us = round(s.bucket_s * SEC)
    t_last = T0 - SEC
    cur = (t_last + st.phase_us) // bucket_us  # open bucket of each sensor
    ids = cur[:, None] - nslots + np.arange(nslots)[None, :]  # the closed ones before it
    st.bid[np.arange(n)[:, None], ids % nslots] = ids.astype(np.int32)
    st.bmean[:] = (mid[:, None] + rng.normal(0, 1, (n, nslots)) * noise[:, None] / 3).astype(np.float32)
    st.ring[:] = (mid[:, None] + rng.normal(0, 1, (n, s.spike_samples)) * noise[:, None]).astype(np.float32)
    st.ring_n[:] = s.spike_samples
    st.last_val[:] = mid
    st.last_ts[:] = t_last
    st.ref_val[:] = mid
    st.ref_ts[:] = t_last
    st.cur_b[:] = cur
    st.cur_sum[:] = mid * 3
    st.cur_n[:] = 3
    st.active[1, hot] = True  # H active on the hot sensors


def batches(
    n: int, mid: np.ndarray, noise: np.ndarray, hot: np.ndarray, rng: np.random.Generator
) -> list[Batch]:
    lim_h = np.array([KINDS[i % len(KINDS)][3].h for i in range(n)], dtype=np.float64)
    out = []
    for k in range(10):
        v = mid + rng.normal(0, 1, n) * noise
        v[hot] = lim_h[hot] * 1.02
        ts = np.full(n, T0 + k * SEC, dtype=np.int64)
        out.append(Batch(np.arange(n, dtype=np.int64), ts, v, np.zeros(n, dtype=np.int8)))
    return out


# --------------------------------------------------------------------------- #
# The per-sensor pure-Python implementation of the same conditions             #
# --------------------------------------------------------------------------- #


def _median(xs: list[float]) -> float:
    ys = sorted(xs)
    k = len(ys)
    return ys[k // 2] if k % 2 else (ys[k // 2 - 1] + ys[k // 2]) / 2


class PySensor:
    """One sensor, one object: what a straightforward implementation looks like."""

    def __init__(self, sensor: Sensor, settings: RulesSettings, phase_us: int) -> None:
        self.s = sensor
        self.cfg = settings
        lim = sensor.limits
        self.lim = {"hh": lim.hh, "h": lim.h, "l": lim.l, "ll": lim.ll}
        self.db, self.on, self.off = lim.deadband, lim.on_delay_s * SEC, lim.off_delay_s * SEC
        self.rise, self.fall = lim.rate_rise_per_min, lim.rate_fall_per_min
        self.active = {k: False for k in ("hh", "h", "l", "ll", "rate", "phh", "pll")}
        self.pend: dict[str, int | None] = dict.fromkeys(self.active)
        self.ring: deque[float] = deque(maxlen=settings.spike_samples)
        self.buckets: deque[tuple[int, float]] = deque(maxlen=settings.trend_buckets)
        self.cur_b, self.cur_sum, self.cur_n = -1, 0.0, 0
        self.last_val = math.nan
        self.ref_val, self.ref_ts = math.nan, 0
        self.bad = self.oor = self.stuck = False
        self.phase = phase_us
        span = sensor.range[1] - sensor.range[0]
        self.span = span
        self.lo_ok, self.hi_ok = sensor.range[0] - span / 80, sensor.range[1] + span / 32
        self.findings = 0

    def _sm(self, name: str, raw: bool, t: int, on: float, off: float) -> None:
        act = self.active[name]
        if raw == act:
            self.pend[name] = None
            return
        p = self.pend[name]
        if p is None:
            self.pend[name] = p = t
        if t - p >= (off if act else on):
            self.active[name] = not act
            self.pend[name] = None
            self.findings += 1

    def reading(self, t: int, v: float, q: int) -> None:  # noqa: PLR0912 - straightforward on purpose
        cfg = self.cfg
        if not (self.lo_ok <= v <= self.hi_ok):
            if not self.oor:
                self.oor = True
                self.findings += 1
            return
        if q >= 2:
            if not self.bad:
                self.bad = True
                self.findings += 1
            return
        if abs(v - self.ref_val) > cfg.stuck_tolerance * self.span or math.isnan(self.ref_val):
            self.ref_val, self.ref_ts = v, t
        if self.s.kind in cfg.stuck_kinds and t - self.ref_ts >= cfg.stuck_after_s * SEC and not self.stuck:
            self.stuck = True
            self.findings += 1
        if len(self.ring) == self.ring.maxlen and abs(v - self.last_val) > cfg.spike_min_step * self.span:
            med = _median(list(self.ring))
            mad = _median([abs(x - med) for x in self.ring])
            if abs(v - med) / max(1.4826 * mad, 1e-3 * self.span) > cfg.spike_z:
                return
        for name in ("hh", "h"):
            lim = self.lim[name]
            if lim is not None:
                raw = v >= (lim - self.db if self.active[name] else lim)
                self._sm(name, raw, t, self.on, self.off)
        for name in ("l", "ll"):
            lim = self.lim[name]
            if lim is not None:
                raw = v <= (lim + self.db if self.active[name] else lim)
                self._sm(name, raw, t, self.on, self.off)
        self.last_val = v
        self.ring.append(v)
        b = (t + self.phase) // round(cfg.bucket_s * SEC)
        if b != self.cur_b and self.cur_n:
            self.buckets.append((self.cur_b, self.cur_sum / self.cur_n))
            self._closed(self.cur_b, t)
        if b != self.cur_b:
            self.cur_b, self.cur_sum, self.cur_n = b, 0.0, 0
        self.cur_sum += v
        self.cur_n += 1

    def _closed(self, cb: int, t: int) -> None:
        cfg = self.cfg
        by_id = dict(self.buckets)
        k = max(1, round(cfg.rate_window_s / cfg.bucket_s))
        if (self.rise or self.fall) and cb - k in by_id:
            rate = (by_id[cb] - by_id[cb - k]) / (k * cfg.bucket_s / 60)
            raw = (self.rise is not None and rate > self.rise) or (
                self.fall is not None and -rate > self.fall
            )
            self._sm("rate", raw, t, self.on, self.off)
        if self.s.kind not in cfg.predict_kinds:
            return
        nb = cfg.trend_buckets
        m = nb // 2
        y = [by_id.get(cb - nb + 1 + j) for j in range(nb)]
        slopes = [(y[j + m] - y[j]) / m for j in range(m) if y[j] is not None and y[j + m] is not None]
        if len(slopes) < cfg.min_fill * m:
            return
        slope = _median(slopes)
        agree = sum(1 for d in slopes if d * slope > 0) / len(slopes)
        level = _median([yy + slope * (nb - 1 - j) for j, yy in enumerate(y) if yy is not None])
        resid = [abs(yy - (level - slope * (nb - 1 - j))) for j, yy in enumerate(y) if yy is not None]
        ratio = abs(slope) * (nb - 1) / max(1.4826 * _median(resid), 1e-12)
        bucket_us = cfg.bucket_s * SEC
        for name, lim_name, sign in (("phh", "hh", 1), ("pll", "ll", -1)):
            lim = self.lim[lim_name]
            if lim is None or slope * sign <= 0 or (lim - level) * sign <= 0:
                self._sm(name, False, t, cfg.predict_on_delay_s * SEC, cfg.predict_off_delay_s * SEC)
                continue
            eta = (cb * bucket_us + bucket_us / 2 - self.phase) + (lim - level) / (slope / bucket_us) - t
            raw = agree >= cfg.consistency and ratio >= cfg.fit_ratio and eta <= cfg.horizon_s * SEC
            self._sm(name, raw, t, cfg.predict_on_delay_s * SEC, cfg.predict_off_delay_s * SEC)


def python_rate(st: RulesState, sensors: list[Sensor], bs: list[Batch], sample: int) -> tuple[float, float]:
    """Readings per second (wall clock, CPU time) of the per-sensor implementation on ``sample`` sensors."""
    s = st.settings
    objs = []
    nslots = st.bmean.shape[1]
    for i in range(sample):
        o = PySensor(sensors[i], s, int(st.phase_us[i]))
        for j in range(nslots):
            if st.bid[i, j] >= 0:
                o.buckets.append((int(st.bid[i, j]), float(st.bmean[i, j])))
        o.buckets = deque(sorted(o.buckets), maxlen=nslots)
        o.ring.extend(float(x) for x in st.ring[i])
        o.last_val = o.ref_val = float(st.last_val[i])
        o.ref_ts = int(st.ref_ts[i])
        o.cur_b, o.cur_sum, o.cur_n = int(st.cur_b[i]), float(st.cur_sum[i]), int(st.cur_n[i])
        o.active["h"] = bool(st.active[1, i])
        objs.append(o)
    rows = [(b.ts[:sample].tolist(), b.value[:sample].tolist(), b.quality[:sample].tolist()) for b in bs]
    t, c = time.perf_counter(), time.process_time()
    for ts, vs, qs in rows:
        for o, tt, v, q in zip(objs, ts, vs, qs, strict=True):
            o.reading(tt, v, q)
    dt, dc = time.perf_counter() - t, time.process_time() - c
    return sample * len(bs) / dt, sample * len(bs) / dc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10000,100000,440000")
    ap.add_argument(
        "--sample", type=int, default=2000, help="sensors judged by the per-sensor Python version"
    )
    args = ap.parse_args()
    settings = RulesSettings(trend_s=600.0)
    print(
        f"window: {settings.trend_s:g} s in {settings.trend_buckets} buckets of {settings.bucket_s:g} s, "
        f"spike ring {settings.spike_samples} readings; numpy {np.__version__}"
    )
    print("ms per batch: 'cpu' = this process's CPU time (the machine is shared), 'wall' = elapsed")
    header = (
        f"{'sensors':>8} {'cpu ms':>8} {'wall ms':>8} {'wall max':>8} {'vector/s (cpu)':>15} "
        f"{'python/s (cpu)':>15} {'ratio cpu':>9} {'ratio wall':>10} {'window MB':>10} {'state MB':>9}"
    )
    print(header)
    last: tuple[list[Sensor], Batch] | None = None
    for n in (int(x) for x in args.sizes.split(",")):
        rng = np.random.default_rng(7)
        sensors = make_sensors(n)
        model = model_from_sensors(sensors, settings)
        st = initial_state(model, settings)
        mid, noise = base_values(sensors)
        hot = rng.random(n) < 0.01
        warm(st, mid, noise, rng, hot)
        bs = batches(n, mid, noise, hot, rng)
        py_state = st.copy()
        walls = []
        c0 = time.process_time()
        for b in bs:
            t = time.perf_counter()
            st, _fs = evaluate(st, b, int(b.ts[0]))
            walls.append(time.perf_counter() - t)
        cpu = (time.process_time() - c0) / len(bs)  # CPU time is only fine-grained over longer spans
        wall = statistics.fmean(walls)
        py_wall, py_cpu = python_rate(py_state, sensors, bs, min(args.sample, n))
        print(
            f"{n:>8} {cpu * 1e3:>8.1f} {wall * 1e3:>8.1f} {max(walls) * 1e3:>8.1f} {n / cpu:>15,.0f} "
            f"{py_cpu:>15,.0f} {n / cpu / py_cpu:>8.0f}x {n / wall / py_wall:>9.0f}x "
            f"{st.window_bytes() / 1e6:>10.1f} {st.total_bytes() / 1e6:>9.1f}"
        )
        last = (sensors, bs[0])
    if last is not None:
        sensors, b = last
        index = {s.tag: i for i, s in enumerate(sensors)}
        readings = [Reading(sensors[i].tag, int(b.ts[i]), float(b.value[i])) for i in range(len(sensors))]
        t = time.perf_counter()
        tags, ts, vs, qs = zip(*readings, strict=True)
        idx = np.fromiter((index[x] for x in tags), dtype=np.int64, count=len(tags))
        Batch(idx, np.array(ts, dtype=np.int64), np.array(vs), np.array(qs, dtype=np.int8))
        dt = time.perf_counter() - t
        print(
            f"turning {len(readings):,} Reading objects into arrays (RulesRunner.process): {dt * 1e3:.1f} ms"
        )


if __name__ == "__main__":
    main()
