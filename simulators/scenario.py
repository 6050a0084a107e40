"""Scenarios: a YAML timeline of what happens to the simulated plant.

A scenario file sets the weather (ambient temperature, wind), how the tanks are
operated, and a list of timed events: start or stop a leak, start or stop a
pump, heat a vessel, change the wind, inject a sensor fault, take an endpoint
away. Every scenario is parsed once, with every problem reported as
``file:line: field.path: reason`` (`hazmon.plant.yamlnode`), into the frozen
objects below.

Example::

    name: chlorine-leak
    description: packing leak on V-102, wind from the west
    duration_s: 3600
    wind: {from_deg: 270, speed_m_s: 2.0}
    events:
      - at: 5m
        leak: {id: v102-packing, chemical: chlorine, equipment: V-102,
               rate_g_s: 0.005, ramp_to_g_s: 0.08, ramp_s: 600}
      - at: 40m
        stop_leak: v102-packing
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

from hazmon.plant.standards import CHEMICALS, Chemical
from hazmon.plant.yamlnode import (
    ID_PATTERN,
    ID_WHAT,
    ConfigError,
    Node,
    Problem,
    opt,
    parse_document,
    parse_file,
    req,
)

__all__ = [
    "FAULT_KINDS",
    "Ambient",
    "Event",
    "Fault",
    "Heat",
    "Leak",
    "Meter",
    "Outage",
    "Pump",
    "Scenario",
    "StopLeak",
    "Wind",
    "format_timeline",
    "load_scenario",
    "parse_duration",
    "parse_scenario",
    "parse_scenario_text",
    "scenario_names",
    "timeline",
]

FAULT_KINDS = ("stuck", "drift", "spikes", "dropout", "out_of_range", "bad_quality")
"""Sensor faults a scenario can inject (see `hazmon.simulators.faults`)."""

_DURATION = re.compile(r"(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s)?")


@dataclass(frozen=True, slots=True)
class Ambient:
    """Day/night air temperature: mean ± swing, warmest at ``peak_hour`` local time."""

    mean_c: float = 20.0
    swing_c: float = 6.0
    peak_hour: float = 15.0
    utc_offset_h: float = 8.0  # China Standard Time
    weather_c: float = 0.5  # slow random weather wander (standard deviation, °C)


@dataclass(frozen=True, slots=True)
class Wind:
    """Wind: the direction it blows FROM (degrees clockwise from north) and its speed."""

    from_deg: float = 270.0
    speed_m_s: float = 2.0
    meander_deg: float = 3.0


@dataclass(frozen=True, slots=True)
class Meter:
    """A flow meter measuring the total inflow (``into``) or outflow (``out_of``) of equipment."""

    tag: str
    equipment: tuple[str, ...]
    direction: str  # into | out_of


@dataclass(frozen=True, slots=True)
class Leak:
    """A release at a point (or at an equipment's position), in g/s, optionally ramping."""

    id: str
    chemical: Chemical
    rate_g_s: float
    at: tuple[float, float] | None = None
    equipment: str | None = None
    ramp_to_g_s: float | None = None
    ramp_s: float = 0.0


@dataclass(frozen=True, slots=True)
class StopLeak:
    id: str


@dataclass(frozen=True, slots=True)
class Pump:
    """Set an equipment's pumps (m³/h); ``auto`` False takes it out of automatic operation."""

    equipment: str
    in_m3_h: float | None = None
    out_m3_h: float | None = None
    auto: bool | None = None


@dataclass(frozen=True, slots=True)
class Heat:
    """Extra heating of an equipment (fire nearby, lost cooling water), °C per hour; 0 ends it."""

    equipment: str
    c_per_h: float


@dataclass(frozen=True, slots=True)
class Fault:
    """A sensor fault for ``duration_s`` (None: until the end).

    ``amount`` means: drift - units per hour; spikes - spike height as a fraction
    of the span; out_of_range - "high" (1) or "low" (-1) side; bad_quality - the
    quality (1 uncertain, 2 bad). ``every_s`` is the mean time between spikes.
    """

    sensor: str
    kind: str
    duration_s: float | None = None
    amount: float = 0.0
    every_s: float = 30.0


@dataclass(frozen=True, slots=True)
class Outage:
    """An endpoint (OPC UA server or MQTT connection) goes away for ``duration_s``."""

    endpoint: str
    duration_s: float


Action = Leak | StopLeak | Pump | Heat | Fault | Outage | Wind | Ambient


@dataclass(frozen=True, slots=True)
class Event:
    at_s: float
    action: Action


@dataclass(frozen=True, slots=True)
class Scenario:
    """A parsed scenario."""

    name: str
    description: str = ""
    duration_s: float = 86_400.0
    ambient: Ambient = field(default_factory=Ambient)
    wind: Wind = field(default_factory=Wind)
    auto_operation: bool = True
    initial: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)  # eq -> (level, temp)
    meters: tuple[Meter, ...] = ()
    events: tuple[Event, ...] = ()
    source: str = "<string>"


def _seconds(n: Node) -> float | None:
    """A duration: a number of seconds or text like ``90s``, ``5m``, ``1h30m``."""
    v = n.scalar()
    if isinstance(v, bool):
        n.problem("expected a duration (seconds, or like 5m, 1h30m)")
        return None
    if isinstance(v, int | float):
        if v < 0:
            n.problem(f"must be >= 0, got {v}")
            return None
        return float(v)
    if isinstance(v, str):
        try:
            return parse_duration(v)
        except ValueError:
            pass
    n.problem(f"'{v}' is not a duration (seconds, or like 90s, 5m, 1h30m, 1d)")
    return None


def parse_duration(text: str) -> float:
    """Seconds in ``90``, ``90s``, ``5m``, ``1h30m``, ``1d``.

    Raises:
        ValueError: not a duration.
    """
    t = text.strip()
    try:
        v = float(t)
    except ValueError:
        days = 0.0
        if "d" in t:
            d, _, t = t.partition("d")
            days = float(d)
        m = _DURATION.fullmatch(t)
        if not m or not (any(m.groups()) or days):
            raise ValueError(f"'{text}' is not a duration (seconds, or like 90s, 5m, 1h30m, 1d)") from None
        h, mi, s = (float(g) if g else 0.0 for g in m.groups())
        return days * 86_400 + h * 3600 + mi * 60 + s
    if v < 0:
        raise ValueError(f"'{text}' is negative")
    return v


def _chemical(n: Node) -> Chemical | None:
    s = n.text()
    if s is None:
        return None
    for c in CHEMICALS:
        if c.id == s:
            return c
    n.problem(f"unknown chemical '{s}' (known: {', '.join(c.id for c in CHEMICALS)})")
    return None


def _ambient(n: Node, base: Ambient) -> Ambient | None:
    m = n.mapping({"mean_c", "swing_c", "peak_hour", "utc_offset_h", "weather_c"})
    if m is None:
        return None
    return Ambient(
        mean_c=opt(m, "mean_c", Node.num, base.mean_c),
        swing_c=opt(m, "swing_c", lambda x: x.num(0), base.swing_c),
        peak_hour=opt(m, "peak_hour", lambda x: x.num(0), base.peak_hour),
        utc_offset_h=opt(m, "utc_offset_h", Node.num, base.utc_offset_h),
        weather_c=opt(m, "weather_c", lambda x: x.num(0), base.weather_c),
    )


def _wind(n: Node, base: Wind) -> Wind | None:
    m = n.mapping({"from_deg", "speed_m_s", "meander_deg"})
    if m is None:
        return None
    return Wind(
        from_deg=opt(m, "from_deg", Node.num, base.from_deg) % 360.0,
        speed_m_s=opt(m, "speed_m_s", lambda x: x.num(0.1), base.speed_m_s),
        meander_deg=opt(m, "meander_deg", lambda x: x.num(0), base.meander_deg),
    )


def _leak(n: Node) -> Leak | None:
    m = n.mapping({"id", "chemical", "rate_g_s", "at", "equipment", "ramp_to_g_s", "ramp_s"})
    if m is None:
        return None
    lid = req(m, "id", n, lambda x: x.text(ID_PATTERN, ID_WHAT))
    chem = req(m, "chemical", n, _chemical)
    rate = req(m, "rate_g_s", n, lambda x: x.num(0))
    at = opt(m, "at", lambda x: x.pair(), None)
    eq = opt(m, "equipment", lambda x: x.text(ID_PATTERN, ID_WHAT), None)
    if at is None and eq is None:
        n.problem("a leak needs 'at: [east, north]' or 'equipment'")
        return None
    if lid is None or chem is None or rate is None:
        return None
    return Leak(
        lid,
        chem,
        rate,
        at=at,
        equipment=eq,
        ramp_to_g_s=opt(m, "ramp_to_g_s", lambda x: x.num(0), None),
        ramp_s=opt(m, "ramp_s", _seconds, 0.0),
    )


def _pump(n: Node) -> Pump | None:
    m = n.mapping({"equipment", "in_m3_h", "out_m3_h", "auto"})
    if m is None:
        return None
    eq = req(m, "equipment", n, lambda x: x.text(ID_PATTERN, ID_WHAT))
    if eq is None:
        return None
    return Pump(
        eq,
        in_m3_h=opt(m, "in_m3_h", lambda x: x.num(0), None),
        out_m3_h=opt(m, "out_m3_h", lambda x: x.num(0), None),
        auto=opt(m, "auto", Node.flag, None),
    )


def _heat(n: Node) -> Heat | None:
    m = n.mapping({"equipment", "c_per_h"})
    if m is None:
        return None
    eq = req(m, "equipment", n, lambda x: x.text(ID_PATTERN, ID_WHAT))
    rate = req(m, "c_per_h", n, Node.num)
    return None if eq is None or rate is None else Heat(eq, rate)


def _fault(n: Node) -> Fault | None:
    m = n.mapping({"sensor", "kind", "duration_s", "amount", "every_s", "side", "quality"})
    if m is None:
        return None
    tag = req(m, "sensor", n, Node.text)
    kind = req(m, "kind", n, lambda x: x.choice(FAULT_KINDS))
    if tag is None or kind is None:
        return None
    amount = opt(m, "amount", Node.num, 0.0)
    if kind == "out_of_range":
        amount = -1.0 if opt(m, "side", lambda x: x.choice(("high", "low")), "high") == "low" else 1.0
    elif kind == "bad_quality":
        amount = (
            1.0 if opt(m, "quality", lambda x: x.choice(("uncertain", "bad")), "bad") == "uncertain" else 2.0
        )
    elif kind == "spikes" and amount == 0.0:
        amount = 0.3
    return Fault(
        tag,
        kind,
        duration_s=opt(m, "duration_s", _seconds, None),
        amount=amount,
        every_s=opt(m, "every_s", lambda x: x.num(0.001, exclusive=True), 30.0),
    )


def _outage(n: Node) -> Outage | None:
    m = n.mapping({"endpoint", "duration_s"})
    if m is None:
        return None
    ep = req(m, "endpoint", n, lambda x: x.text(ID_PATTERN, ID_WHAT))
    d = req(m, "duration_s", n, _seconds)
    return None if ep is None or d is None else Outage(ep, d)


def _stop_leak(n: Node) -> StopLeak | None:
    s = n.text(ID_PATTERN, ID_WHAT)
    return None if s is None else StopLeak(s)


_ACTIONS = ("leak", "stop_leak", "pump", "heat", "fault", "outage", "wind", "ambient")


def _event(n: Node, wind: Wind, ambient: Ambient) -> Event | None:
    m = n.mapping({"at", *_ACTIONS})
    if m is None:
        return None
    at = req(m, "at", n, _seconds)
    given = [k for k in _ACTIONS if k in m]
    if len(given) != 1:
        n.problem(f"an event has exactly one of: {', '.join(_ACTIONS)} (got {len(given)})")
        return None
    k = given[0]
    a: Action | None
    if k == "leak":
        a = _leak(m[k])
    elif k == "stop_leak":
        a = _stop_leak(m[k])
    elif k == "pump":
        a = _pump(m[k])
    elif k == "heat":
        a = _heat(m[k])
    elif k == "fault":
        a = _fault(m[k])
    elif k == "outage":
        a = _outage(m[k])
    elif k == "wind":
        a = _wind(m[k], wind)
    else:
        a = _ambient(m[k], ambient)
    return None if at is None or a is None else Event(at, a)


def _meter_map(n: Node) -> list[Meter]:
    if not hasattr(n.node, "value") or not isinstance(n.node.value, list):
        n.problem("expected a mapping of flow tag -> {into: [...]} or {out_of: [...]}")
        return []
    out: list[Meter] = []
    for k, v in n.node.value:
        child = Node(n.ctx, v, f"{n.path}.{k.value}")
        mm = child.mapping({"into", "out_of"})
        if mm is None:
            continue
        if len(mm) != 1:
            child.problem("give exactly one of 'into' or 'out_of'")
            continue
        direction = next(iter(mm))
        eqs = [e.text(ID_PATTERN, ID_WHAT) for e in mm[direction].sequence()]
        out.append(Meter(str(k.value), tuple(e for e in eqs if e is not None), direction))
    return out


def _initial(n: Node) -> dict[str, tuple[float | None, float | None]]:
    out: dict[str, tuple[float | None, float | None]] = {}
    if not isinstance(n.node.value, list):
        n.problem("expected a mapping of equipment -> {level_m, temp_c}")
        return out
    for k, v in n.node.value:
        child = Node(n.ctx, v, f"{n.path}.{k.value}")
        mm = child.mapping({"level_m", "temp_c"})
        if mm is None:
            continue
        out[str(k.value)] = (
            opt(mm, "level_m", lambda x: x.num(0), None),
            opt(mm, "temp_c", Node.num, None),
        )
    return out


def _scenario(root: Node) -> Scenario | None:
    m = root.mapping(
        {"name", "description", "duration_s", "ambient", "wind", "operation", "initial", "meters", "events"}
    )
    if m is None:
        return None
    name = req(m, "name", root, lambda x: x.text(ID_PATTERN, ID_WHAT))
    ambient = opt(m, "ambient", lambda x: _ambient(x, Ambient()), Ambient())
    wind = opt(m, "wind", lambda x: _wind(x, Wind()), Wind())
    event_nodes: list[Node] = opt(m, "events", Node.sequence, [])
    events = [e for e in (_event(x, wind, ambient) for x in event_nodes) if e]
    events.sort(key=lambda e: e.at_s)  # stable: same-time events keep file order
    if name is None:
        return None
    return Scenario(
        name=name,
        description=opt(m, "description", Node.text, ""),
        duration_s=opt(m, "duration_s", _seconds, 86_400.0),
        ambient=ambient,
        wind=wind,
        auto_operation=opt(m, "operation", lambda x: x.choice(("auto", "manual")), "auto") == "auto",
        initial=opt(m, "initial", _initial, {}),
        meters=tuple(opt(m, "meters", _meter_map, [])),
        events=tuple(events),
        source=root.ctx.file,
    )


def parse_scenario_text(text: str, file: str = "<string>") -> Scenario:
    """Parse scenario YAML text.

    Raises:
        ConfigError: every problem, each as ``file:line: path: reason``.
    """
    return parse_document(text, file, _scenario)


def parse_scenario(path: str | Path) -> Scenario:
    """Parse a scenario file. See `parse_scenario_text`."""
    return parse_file(path, _scenario)


def _builtin_dir() -> Path:
    return Path(str(resources.files("hazmon.simulators").joinpath("scenarios")))


def scenario_names() -> list[str]:
    """Names of the built-in scenarios, sorted."""
    return sorted(p.stem for p in _builtin_dir().glob("*.yaml"))


def load_scenario(name_or_path: str | Path) -> Scenario:
    """A built-in scenario by name, or a scenario file by path.

    Raises:
        ConfigError: the file has problems, or no such scenario exists.
    """
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        return parse_scenario(p)
    builtin = _builtin_dir() / f"{name_or_path}.yaml"
    if builtin.exists():
        return parse_scenario(builtin)
    raise ConfigError(
        [
            Problem(
                str(name_or_path),
                0,
                "(scenario)",
                f"no built-in scenario or file of that name (built-in: {', '.join(scenario_names())})",
            )
        ]
    )


def _span(seconds: float) -> str:
    """A duration for people: ``90 s``, ``10 min``, ``1 h 30 min``."""
    s = round(seconds)
    if s < 120 and s % 60:
        return f"{s} s"
    h, m = divmod(s // 60, 60)
    rest = f" {s % 60} s" if s % 60 else ""
    return (f"{h} h" + (f" {m} min" if m else "") if h else f"{m} min") + rest


def _offset(seconds: float) -> str:
    s = round(seconds)
    return f"+{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"


def _action_text(a: Action) -> str:  # noqa: PLR0911 - one sentence per kind of action
    if isinstance(a, Leak):
        where = a.equipment or (f"({a.at[0]:g}, {a.at[1]:g}) m" if a.at else "?")
        grow = (
            f" growing to {a.ramp_to_g_s:g} g/s over {_span(a.ramp_s)}" if a.ramp_to_g_s is not None else ""
        )
        return f"leak {a.id} starts: {a.chemical.id} at {where}, {a.rate_g_s:g} g/s{grow}"
    if isinstance(a, StopLeak):
        return f"leak {a.id} is isolated (stops)"
    if isinstance(a, Pump):
        parts = [f"in {a.in_m3_h:g} m3/h" if a.in_m3_h is not None else "", ""]
        parts[1] = f"out {a.out_m3_h:g} m3/h" if a.out_m3_h is not None else ""
        if a.auto is not None:
            parts.append("automatic operation" if a.auto else "manual (out of automatic operation)")
        return f"pumps of {a.equipment}: {', '.join(p for p in parts if p)}"
    if isinstance(a, Heat):
        return (
            f"heating of {a.equipment} ends"
            if a.c_per_h == 0
            else f"{a.equipment} heats up at {a.c_per_h:g} °C/h"
        )
    if isinstance(a, Fault):
        until = f" for {_span(a.duration_s)}" if a.duration_s is not None else " (until the end)"
        return f"sensor {a.sensor}: {a.kind.replace('_', ' ')} fault{until}"
    if isinstance(a, Outage):
        return f"endpoint {a.endpoint} goes away for {_span(a.duration_s)}"
    if isinstance(a, Wind):
        return f"wind from {a.from_deg:g}° at {a.speed_m_s:g} m/s"
    return f"air temperature {a.mean_c:g} ± {a.swing_c:g} °C"


def timeline(scenario: Scenario) -> list[tuple[float, str]]:
    """What happens when: (seconds after the start, sentence), the weather first, the end last."""
    out = [(0.0, f"{_action_text(scenario.wind)}; {_action_text(scenario.ambient)}")]
    out += [(e.at_s, _action_text(e.action)) for e in sorted(scenario.events, key=lambda e: e.at_s)]
    out.append((scenario.duration_s, "end of the scenario's events (the plant runs on as it is)"))
    return out


def format_timeline(scenario: Scenario, start_us: int | None = None) -> str:
    """`timeline` as text: ``+H:MM:SS`` from the start, and the UTC clock time when ``start_us`` is given."""
    head = f"scenario {scenario.name}" + (f": {scenario.description}" if scenario.description else "")
    lines = [head]
    for at_s, what in timeline(scenario):
        clock = ""
        if start_us is not None:
            t = datetime.fromtimestamp(start_us / 1e6 + at_s, UTC)
            clock = t.strftime("%H:%M:%SZ") + "  "
        lines.append(f"  {_offset(at_s):>9}  {clock}{what}")
    return "\n".join(lines)
