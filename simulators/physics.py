"""Physics of the simulated plant: pure functions, no state, no I/O.

* Ambient air temperature over the day, and the first-order thermal lag of a
  vessel (its steady periodic response is used as the starting temperature so a
  run starts without a transient).
* Liquid height from volume for vertical tanks, horizontal cylinders and spheres.
* Vapour pressure of a liquefied gas at its temperature from the DIPPR-101
  correlation in `hazmon.plant.standards.VAPOUR_PRESSURE` (valid up to the
  critical point; the NIST/Poling Antoine fits cover only part of the -40..+60 °C
  storage range, see docs/standards.md).
* Gaussian plume ground-level concentration from a ground-level point source
  (Pasquill-Gifford class D, Briggs open-country sigmas), and conversions from
  g/m³ to the detector's unit.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from hazmon.plant.standards import MOLAR_VOLUME_L, VAPOUR_PRESSURE, Chemical

__all__ = [
    "ATMOSPHERE_PA",
    "ambient_c",
    "gauge_pressure",
    "height_table",
    "lag_alpha",
    "plume_g_m3",
    "steady_lagged_c",
    "thermal_tau_s",
    "to_detector_unit",
]

ATMOSPHERE_PA = 101_325.0
"""Standard atmosphere; gauge pressure = absolute vapour pressure minus this."""

_DAY_S = 86_400.0
_OMEGA = 2.0 * math.pi / _DAY_S


def ambient_c(t_s: float, mean_c: float, swing_c: float, peak_hour: float, utc_offset_h: float) -> float:
    """Air temperature at ``t_s`` (seconds since the epoch, UTC): a daily cosine peaking at ``peak_hour``."""
    local_h = (t_s / 3600.0 + utc_offset_h) % 24.0
    return mean_c + swing_c * math.cos(2.0 * math.pi * (local_h - peak_hour) / 24.0)


def thermal_tau_s(capacity_m3: float) -> float:
    """Thermal time constant of a vessel: bigger vessels follow the air more slowly.

    About 4 h for a 16 m³ tank, 8 h for a 1000 m³ sphere (a simulation choice,
    not a cited number).
    """
    return 3600.0 * (2.0 + 2.0 * math.log10(max(capacity_m3, 1.0)))


def steady_lagged_c(
    t_s: float, tau_s: float, *, mean_c: float, swing_c: float, peak_hour: float, utc_offset_h: float
) -> float:
    """Temperature of a first-order lag driven by `ambient_c` after it has settled.

    The response to a cosine is the same cosine, attenuated by 1/sqrt(1+(ωτ)²)
    and delayed by atan(ωτ)/ω.
    """
    wt = _OMEGA * tau_s
    gain = 1.0 / math.sqrt(1.0 + wt * wt)
    delay_s = math.atan(wt) / _OMEGA
    return mean_c + gain * (ambient_c(t_s - delay_s, 0.0, swing_c, peak_hour, utc_offset_h))


def lag_alpha(dt_s: float, tau_s: float) -> float:
    """Discrete first-order lag factor: y += alpha * (x - y) each step of ``dt_s``."""
    return 1.0 - math.exp(-dt_s / tau_s) if tau_s > 0 else 1.0


def height_table(kind: str, capacity_m3: float, height_m: float, n: int = 401) -> npt.NDArray[np.float64]:
    """Volume (m³) at n evenly spaced liquid heights from 0 to ``height_m``.

    ``kind``: sphere (diameter = height), horizontal (horizontal cylinder,
    diameter = height) or anything else (vertical prism). The shapes are scaled
    so the full height holds ``capacity_m3``.
    """
    h = np.linspace(0.0, height_m, n)
    if kind == "sphere":
        r = height_m / 2.0
        v = math.pi * h * h * (3.0 * r - h) / 3.0
    elif kind == "horizontal":
        r = height_m / 2.0
        theta = 2.0 * np.arccos(np.clip((r - h) / r, -1.0, 1.0))
        v = (r * r / 2.0) * (theta - np.sin(theta))  # segment area per metre of length
    else:
        v = h.copy()
    top = float(v[-1])
    out: npt.NDArray[np.float64] = v * (capacity_m3 / top) if top > 0 else v
    return out


def gauge_pressure(chemical_id: str, temp_c: float) -> float | None:
    """Gauge pressure (Pa) above a liquefied gas at ``temp_c``; None without a correlation."""
    vp = VAPOUR_PRESSURE.get(chemical_id)
    if vp is None:
        return None
    return vp.pa(temp_c + 273.15) - ATMOSPHERE_PA


# Briggs (1973) open-country dispersion coefficients, Pasquill-Gifford class D
# (neutral: overcast or moderate wind), as used by EPA screening models.
_SIGMA_Y_A, _SIGMA_Y_B = 0.08, 0.0001
_SIGMA_Z_A, _SIGMA_Z_B = 0.06, 0.0015
_SOURCE_SIGMA_M = 1.0  # initial size of the release cloud (a leak is not a point)


def plume_g_m3(
    q_g_s: float, src: tuple[float, float], at: tuple[float, float], from_deg: float, speed_m_s: float
) -> float:
    """Ground-level concentration (g/m³) at ``at`` from a ground-level release at ``src``.

    C = Q / (π u σy σz) · exp(-y² / 2σy²), with x the downwind and y the
    crosswind distance; zero upwind. ``from_deg`` is where the wind comes from.
    """
    if q_g_s <= 0.0:
        return 0.0
    to = math.radians(from_deg + 180.0)
    dx, dy = at[0] - src[0], at[1] - src[1]
    ex, ey = math.sin(to), math.cos(to)  # downwind unit vector (east, north)
    x = dx * ex + dy * ey
    if x <= 0.0:
        return 0.0
    y = -dx * ey + dy * ex
    sy = math.hypot(_SIGMA_Y_A * x / math.sqrt(1.0 + _SIGMA_Y_B * x), _SOURCE_SIGMA_M)
    sz = math.hypot(_SIGMA_Z_A * x / math.sqrt(1.0 + _SIGMA_Z_B * x), _SOURCE_SIGMA_M)
    return q_g_s / (math.pi * max(speed_m_s, 0.1) * sy * sz) * math.exp(-(y * y) / (2.0 * sy * sy))


def to_detector_unit(c_g_m3: float, gas: Chemical, unit: str, lel_of: Chemical | None = None) -> float:
    """Convert a concentration of ``gas`` in g/m³ to a detector's unit.

    ``%LEL`` uses the LEL of the gas itself (a catalytic detector reads roughly
    in %LEL of what it sees); ``ppm`` needs the molar mass; ``%VOL`` is the
    volume fraction.
    """
    mg = c_g_m3 * 1000.0
    if unit == "mg/m3":
        return mg
    m = gas.molar_mass or (lel_of.molar_mass if lel_of else None)
    if m is None:
        return 0.0
    ppm = mg * MOLAR_VOLUME_L / m
    if unit == "ppm":
        return ppm
    if unit == "%VOL":
        return ppm / 1e4
    if unit == "%LEL":
        lel = gas.lel_pct or (lel_of.lel_pct if lel_of else None)
        return 0.0 if not lel else (ppm / 1e4) / lel * 100.0
    return 0.0
