"""Effective limits of a sensor: plant file, else the standards' gas defaults.

Assessment overrides (recorded with the assessment) take precedence over both;
`effective_limits` applies them when given.
"""

from __future__ import annotations

from dataclasses import replace

from hazmon.plant.model import Limits, Sensor, SensorKind
from hazmon.plant.standards import (
    COMBUSTIBLE_FIRST_PCT_LEL,
    COMBUSTIBLE_SECOND_PCT_LEL,
    OXYGEN_HIGH_PCT_VOL,
    OXYGEN_LOW_PCT_VOL,
    mg_m3_to_ppm,
    ppm_to_mg_m3,
    toxic_setpoints_mg_m3,
)

__all__ = ["default_gas_limits", "effective_limits"]


def default_gas_limits(sensor: Sensor) -> Limits | None:
    """GB/T 50493-2019 §5.5.2 setpoints for a gas sensor, in its unit; None if not a gas sensor.

    First alarm -> H, second alarm -> HH; oxygen low / high -> L / H.
    """
    if sensor.kind is SensorKind.GAS_COMBUSTIBLE:
        return Limits(hh=COMBUSTIBLE_SECOND_PCT_LEL, h=COMBUSTIBLE_FIRST_PCT_LEL)
    if sensor.kind is SensorKind.OXYGEN:
        return Limits(h=OXYGEN_HIGH_PCT_VOL, l=OXYGEN_LOW_PCT_VOL)
    if sensor.kind is SensorKind.GAS_TOXIC and sensor.chemical is not None:
        c = sensor.chemical
        top = sensor.range[1]
        if sensor.unit == "ppm":
            if c.molar_mass is None:
                return None
            m = c.molar_mass
            first, second = toxic_setpoints_mg_m3(c, ppm_to_mg_m3(top, m))
            return Limits(hh=mg_m3_to_ppm(second, m), h=mg_m3_to_ppm(first, m))
        first, second = toxic_setpoints_mg_m3(c, top)
        return Limits(hh=second, h=first)
    return None


def effective_limits(sensor: Sensor, override: Limits | None = None) -> Limits:
    """The limits the rules use for ``sensor``.

    Order of precedence: an assessment override, then the plant file's limits,
    then (for gas sensors without limits in the plant file) the standard's
    defaults, keeping the plant file's deadband and delays.
    """
    if override is not None:
        return override
    if sensor.limits_given and sensor.limits.items():
        return sensor.limits
    d = default_gas_limits(sensor)
    if d is None:
        return sensor.limits
    lim = sensor.limits
    return replace(
        d,
        deadband=lim.deadband,
        on_delay_s=lim.on_delay_s,
        off_delay_s=lim.off_delay_s,
        rate_rise_per_min=lim.rate_rise_per_min,
        rate_fall_per_min=lim.rate_fall_per_min,
    )
