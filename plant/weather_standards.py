"""Official weather warnings: the kinds, colours, exchange format and effects on hazard sources.

Sources and marks ([V] verified from the cited text, [U] hazmon's reading or choice):

- 14 kinds of meteorological warning signal, each in four colours (blue, yellow, orange,
  red): 中国气象局《气象灾害预警信号及防御指南》 [V] (kinds and colours only; the table
  below does not claim which kind has which colours, a warning carries its own).
- Exchange format: GB/T 35965.1-2018 应急信息交互协议 第1部分: 预警信息, a profile of the
  OASIS Common Alerting Protocol 1.2; identifiers carry the 6-digit administrative region
  code (GB/T 2260) [V].
- Colour from the CAP ``severity``: Minor→blue, Moderate→yellow, Severe→orange,
  Extreme→red [U] (hazmon's reading of how the profile lines CAP severity up with the four
  colours; the colour word of the Chinese headline, when present, wins).
- A bureau's linked order under a yellow lightning warning: major hazard sources keep
  24-hour recorded monitoring of pressure, temperature, level and leak alarms, stop outdoor
  work and keep 24-hour duty [V] (an example order, not a national rule).
- `EFFECTS` (which kind at which colour raises which advisory for which kind of hazard
  source, and the extra duties) is hazmon's default [U], overridable per plant.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum, StrEnum

from hazmon.plant.standards import Level
from hazmon.plant.yamlnode import Node, req

__all__ = [
    "CAP_NS",
    "EFFECTS",
    "SEVERITY_COLOUR",
    "Colour",
    "Effect",
    "SourceKind",
    "WarningKind",
    "parse_weather",
]

CAP_NS = "urn:oasis:names:tc:emergency:cap:1.2"
"""The CAP 1.2 XML namespace (OASIS CAP 1.2, 2010) [V]."""


class WarningKind(StrEnum):
    """The 14 meteorological warning signals [V]. The value is the stable key."""

    LIGHTNING = "lightning"
    RAINSTORM = "rainstorm"
    GALE = "gale"
    DROUGHT = "drought"
    TYPHOON = "typhoon"
    HEAT = "heat"
    ROAD_ICING = "road_icing"
    FOG = "fog"
    COLD_WAVE = "cold_wave"
    HAIL = "hail"
    FROST = "frost"
    HAZE = "haze"
    SANDSTORM = "sandstorm"
    BLIZZARD = "blizzard"

    @property
    def zh(self) -> str:
        return _KIND_ZH[self]

    @classmethod
    def from_text(cls, text: str) -> WarningKind | None:
        """The kind named in an event or headline text (Chinese name or English key), or None."""
        low = text.lower()
        for kind, zh in _KIND_ZH.items():
            if zh in text or kind.value.replace("_", " ") in low.replace("_", " "):
                return kind
        return None


_KIND_ZH: dict[WarningKind, str] = {
    WarningKind.LIGHTNING: "雷电",
    WarningKind.RAINSTORM: "暴雨",
    WarningKind.GALE: "大风",
    WarningKind.DROUGHT: "干旱",
    WarningKind.TYPHOON: "台风",
    WarningKind.HEAT: "高温",
    WarningKind.ROAD_ICING: "道路结冰",
    WarningKind.FOG: "大雾",
    WarningKind.COLD_WAVE: "寒潮",
    WarningKind.HAIL: "冰雹",
    WarningKind.FROST: "霜冻",
    WarningKind.HAZE: "霾",
    WarningKind.SANDSTORM: "沙尘暴",
    WarningKind.BLIZZARD: "暴雪",
}


class Colour(IntEnum):
    """A warning's colour; a larger value is more severe [V]."""

    BLUE = 1
    YELLOW = 2
    ORANGE = 3
    RED = 4

    @property
    def zh(self) -> str:
        return {1: "蓝色", 2: "黄色", 3: "橙色", 4: "红色"}[self.value]

    @classmethod
    def from_text(cls, text: str) -> Colour | None:
        """The colour word (蓝色/黄色/橙色/红色, or blue/yellow/orange/red) in a text, or None."""
        low = text.lower()
        for c in cls:
            if c.zh in text or c.name.lower() in low:
                return c
        return None


SEVERITY_COLOUR: dict[str, Colour] = {
    "Minor": Colour.BLUE,
    "Moderate": Colour.YELLOW,
    "Severe": Colour.ORANGE,
    "Extreme": Colour.RED,
}
"""CAP 1.2 ``severity`` → colour [U] (hazmon's reading; ``Unknown`` gives no colour)."""


class SourceKind(StrEnum):
    """What a hazard source holds, for the effects table (from its chemicals) [U]."""

    ANY = "any"
    FLAMMABLE = "flammable"  # an LEL or a GB 18218 flammable class (LPG, methanol…)
    TOXIC = "toxic"  # not flammable, with a MAC, an IDLH or a toxic class (chlorine…)


@dataclass(frozen=True, slots=True)
class Effect:
    """What a warning of `kind` at `min_colour` or above does at a hazard source of `source`.

    Attributes:
        kind: the warning kind.
        source: which hazard sources it applies to.
        min_colour: the lowest colour that has the effect.
        level: the level of the advisory finding (the plant's tier table makes it a tier).
        duties: extra duties to confirm while the warning is in force (English keys).
    """

    kind: WarningKind
    source: SourceKind
    min_colour: Colour
    level: Level
    duties: tuple[str, ...]


DUTIES_ZH: dict[str, str] = {
    "24h_monitoring": "24小时记录监测压力、温度、液位和泄漏报警",
    "stop_outdoor_work": "停止户外作业",
    "24h_duty": "24小时值班",
    "responsible_check": "主要负责人/技术负责人/操作负责人到岗检查",
    "cooling_check": "检查喷淋冷却系统",
    "lightning_protection_check": "检查防雷接地设施",
    "drainage_check": "检查排水和围堰",
}
"""Chinese text of each duty key [U] (the first three follow the linked order cited above)."""

_LINKED = ("24h_monitoring", "stop_outdoor_work", "24h_duty")

EFFECTS: tuple[Effect, ...] = (
    # The example linked order [V]: yellow lightning and above, every major hazard source.
    Effect(WarningKind.LIGHTNING, SourceKind.ANY, Colour.YELLOW, Level.PREDICTIVE, _LINKED),
    # hazmon's defaults [U]: orange and above at sources of flammable or toxic gas are first level.
    Effect(
        WarningKind.LIGHTNING,
        SourceKind.FLAMMABLE,
        Colour.ORANGE,
        Level.FIRST,
        (*_LINKED, "responsible_check", "lightning_protection_check"),
    ),
    Effect(WarningKind.HEAT, SourceKind.ANY, Colour.YELLOW, Level.PREDICTIVE, ("24h_monitoring",)),
    Effect(
        WarningKind.HEAT,
        SourceKind.FLAMMABLE,
        Colour.ORANGE,
        Level.FIRST,
        (*_LINKED, "responsible_check", "cooling_check"),
    ),
    Effect(
        WarningKind.HEAT,
        SourceKind.TOXIC,
        Colour.ORANGE,
        Level.FIRST,
        (*_LINKED, "responsible_check", "cooling_check"),
    ),
    Effect(WarningKind.TYPHOON, SourceKind.ANY, Colour.YELLOW, Level.PREDICTIVE, _LINKED),
    Effect(WarningKind.GALE, SourceKind.ANY, Colour.ORANGE, Level.PREDICTIVE, _LINKED),
    Effect(
        WarningKind.RAINSTORM, SourceKind.ANY, Colour.ORANGE, Level.PREDICTIVE, (*_LINKED, "drainage_check")
    ),
)
"""hazmon's default effects table; a plant file's `weather:` section may replace it."""


def _effect(n: Node) -> Effect | None:
    m = n.mapping({"kind", "source", "min_colour", "level", "duties"})
    if m is None:
        return None
    kind = req(m, "kind", n, lambda x: x.choice(tuple(k.value for k in WarningKind)))
    source = req(m, "source", n, lambda x: x.choice(tuple(k.value for k in SourceKind)))
    colour = req(m, "min_colour", n, lambda x: x.choice(tuple(c.name.lower() for c in Colour)))
    level = req(m, "level", n, lambda x: x.choice(tuple(lv.value for lv in Level)))
    duties: list[str] = []
    for d in m["duties"].sequence() if "duties" in m else []:
        t = d.text()
        if t is not None and t not in DUTIES_ZH:
            d.problem(f"unknown duty '{t}' (one of: {', '.join(DUTIES_ZH)})")
        elif t is not None:
            duties.append(t)
    if kind is None or source is None or colour is None or level is None:
        return None
    return Effect(WarningKind(kind), SourceKind(source), Colour[colour.upper()], Level(level), tuple(duties))


def parse_weather(n: Node) -> tuple[Effect, ...] | None:
    """The plant file's ``weather:`` section: an effects table replacing `EFFECTS`.

    ::

        weather:
          effects:
            - {kind: heat, source: flammable, min_colour: orange, level: first,
               duties: [24h_duty, cooling_check]}
    """
    m = n.mapping({"effects", "tighten"})  # tighten: hazmon.plant.weather_rules
    if m is None:
        return None
    if "effects" not in m:
        return EFFECTS
    rows = [e for e in (_effect(x) for x in m["effects"].sequence()) if e is not None]
    return tuple(rows)
