"""The plant: enterprise, hazard sources, sensors, bindings. Frozen, typed, parsed once.

`hazmon.plant.config.load` builds these from the plant YAML file; nothing else
constructs them from raw dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import StrEnum

from hazmon.plant.plans import Plan
from hazmon.plant.standards import TIER_TABLE, Chemical, Grade, Level, Tier
from hazmon.plant.supervision_standards import DEFAULT_TIMEZONE, SupervisionSettings
from hazmon.plant.weather_rules import Tighten
from hazmon.plant.weather_standards import EFFECTS as WEATHER_EFFECTS
from hazmon.plant.weather_standards import Effect as WeatherEffect

__all__ = [
    "UNITS",
    "BureauContact",
    "Enterprise",
    "Equipment",
    "HazardSource",
    "Inventory",
    "Limits",
    "MqttBinding",
    "MqttBroker",
    "OpcUaBinding",
    "OpcUaEndpoint",
    "Person",
    "Plant",
    "Region",
    "Responsible",
    "Sensor",
    "SensorKind",
    "VoteGroup",
]


class SensorKind(StrEnum):
    LEVEL = "level"
    TEMPERATURE = "temperature"
    PRESSURE = "pressure"
    GAS_COMBUSTIBLE = "gas_combustible"
    GAS_TOXIC = "gas_toxic"
    OXYGEN = "oxygen"
    FLOW = "flow"
    WEIGHT = "weight"

    @property
    def is_gas(self) -> bool:
        return self in (SensorKind.GAS_COMBUSTIBLE, SensorKind.GAS_TOXIC, SensorKind.OXYGEN)


UNITS: dict[SensorKind, frozenset[str]] = {
    SensorKind.LEVEL: frozenset({"m", "mm", "%"}),
    SensorKind.TEMPERATURE: frozenset({"°C", "degC", "K"}),
    SensorKind.PRESSURE: frozenset({"MPa", "kPa", "bar", "Pa"}),
    SensorKind.GAS_COMBUSTIBLE: frozenset({"%LEL"}),
    SensorKind.GAS_TOXIC: frozenset({"ppm", "mg/m3"}),
    SensorKind.OXYGEN: frozenset({"%VOL"}),
    SensorKind.FLOW: frozenset({"m3/h", "t/h", "kg/h", "Nm3/h"}),
    SensorKind.WEIGHT: frozenset({"t", "kg"}),
}
"""Units accepted per sensor kind; the loader refuses any other."""


@dataclass(frozen=True, slots=True)
class Region:
    province: str
    city: str
    county: str
    code: str  # 6-digit administrative division code (GB/T 2260)

    @property
    def province_code(self) -> str:
        return self.code[:2] + "0000"

    @property
    def city_code(self) -> str:
        return self.code[:4] + "00"


@dataclass(frozen=True, slots=True)
class Person:
    name: str
    phone: str = ""
    email: str = ""


@dataclass(frozen=True, slots=True)
class Responsible:
    """The three responsible persons (包保责任人) of a hazard source."""

    principal: Person  # 主要负责人
    technical: Person  # 技术负责人
    operational: Person  # 操作负责人


@dataclass(frozen=True, slots=True)
class BureauContact:
    level: str  # county | city | province
    name: str
    phone: str = ""
    email: str = ""


@dataclass(frozen=True, slots=True)
class Enterprise:
    id: str
    name: str
    name_en: str
    region: Region
    locale: str = "zh"
    timezone: str = DEFAULT_TIMEZONE  # IANA name: the plant's local day (duty periods, daily commitment)


@dataclass(frozen=True, slots=True)
class OpcUaEndpoint:
    name: str
    url: str
    mode: str = "subscribe"  # subscribe | poll
    security: str = "none"  # none | sign | sign_and_encrypt (Basic256Sha256)
    certificate: str | None = None
    private_key: str | None = None
    server_certificate: str | None = None
    username: str | None = None
    password_env: str | None = None  # the password is read from this environment variable


@dataclass(frozen=True, slots=True)
class MqttBroker:
    name: str
    url: str  # mqtt://host:port or mqtts://host:port
    protocol: str = "5"  # 5 | 3.1.1
    client_id: str = "hazmon"
    qos: int = 1
    session_expiry_s: int = 86_400
    username: str | None = None
    password_env: str | None = None
    ca_file: str | None = None
    shared_group: str | None = None  # MQTT 5 shared subscription group for scale-out


@dataclass(frozen=True, slots=True)
class OpcUaBinding:
    endpoint: str
    node: str  # OPC UA node id, e.g. "ns=2;s=LT-101"


@dataclass(frozen=True, slots=True)
class MqttBinding:
    endpoint: str
    topic: str
    field: str = "v"  # dotted path into a JSON payload; "" for a plain number
    payload: str = "json"  # json | batch | number


@dataclass(frozen=True, slots=True)
class Limits:
    """Absolute limits of one sensor, in its unit, with their alarm behaviour.

    HH / LL are second-level limits, H / L first-level (see `level_of`).
    """

    hh: float | None = None
    h: float | None = None
    l: float | None = None  # noqa: E741 - the standard's name for the low limit
    ll: float | None = None
    deadband: float = 0.0
    on_delay_s: float = 0.0
    off_delay_s: float = 0.0
    rate_rise_per_min: float | None = None
    rate_fall_per_min: float | None = None

    @staticmethod
    def level_of(name: str) -> Level:
        return Level.SECOND if name in ("hh", "ll") else Level.FIRST

    def items(self) -> list[tuple[str, float]]:
        """The set limits as (name, value), most severe high first."""
        pairs = (("hh", self.hh), ("h", self.h), ("l", self.l), ("ll", self.ll))
        return [(n, v) for n, v in pairs if v is not None]


@dataclass(frozen=True, slots=True)
class Sensor:
    tag: str
    kind: SensorKind
    unit: str
    range: tuple[float, float]
    period_s: float
    binding: OpcUaBinding | MqttBinding
    hazard_source: str
    description: str = ""
    limits: Limits = field(default_factory=Limits)
    limits_given: bool = False  # False: defaults from the standards table apply to gas sensors
    chemical: Chemical | None = None
    equipment: str | None = None
    position: tuple[float, float] | None = None  # site coordinates, m (east, north)
    key: bool = False  # shown on the control-room overview


@dataclass(frozen=True, slots=True)
class Inventory:
    chemical: Chemical
    max_t: float  # design maximum quantity q, tonnes


@dataclass(frozen=True, slots=True)
class Equipment:
    """A tank, sphere or vessel; the simulators use it for physics."""

    id: str
    type: str  # tank | sphere | vessel
    chemical: Chemical | None
    capacity_m3: float
    height_m: float
    position: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class VoteGroup:
    id: str
    sensors: tuple[str, ...]
    k: int


@dataclass(frozen=True, slots=True)
class Location:
    """Where a hazard source stands (WGS 84 degrees): weather warnings with an area polygon or circle."""

    lat: float
    lon: float


@dataclass(frozen=True, slots=True)
class HazardSource:
    id: str
    name: str
    people_within_500m: int
    inventory: tuple[Inventory, ...]
    responsible: Responsible
    sensors: tuple[Sensor, ...]
    equipment: tuple[Equipment, ...] = ()
    vote_groups: tuple[VoteGroup, ...] = ()
    kind: str = "storage"  # storage | production
    location: Location | None = None  # optional `location: {lat, lon}`


@dataclass(frozen=True, slots=True)
class Plant:
    """One enterprise, as described by one plant file."""

    path: str
    enterprise: Enterprise
    bureaus: tuple[BureauContact, ...]
    opcua: tuple[OpcUaEndpoint, ...]
    mqtt: tuple[MqttBroker, ...]
    hazard_sources: tuple[HazardSource, ...]
    tiers: dict[Level, dict[Grade, Tier]] = field(
        default_factory=lambda: {k: dict(v) for k, v in TIER_TABLE.items()}
    )
    """Tier by (finding level, grade): `standards.TIER_TABLE` with the plant file's `tiers:` over it."""
    supervision: SupervisionSettings = field(default_factory=SupervisionSettings)
    """Duty check periods and the daily commitment's time (the plant file's `supervision:`)."""
    weather_effects: tuple[WeatherEffect, ...] = WEATHER_EFFECTS
    """Weather warning kind, colour -> advisory level, duties (`weather_standards.EFFECTS` or `weather:`)."""
    plans: tuple[Plan, ...] = ()
    """Emergency plans (应急预案, the plant file's `plans:`)."""
    weather_tighten: tuple[Tighten, ...] = ()
    """Limits tightened while a weather warning is in force (`weather.tighten`)."""

    def sensors(self) -> list[Sensor]:
        return [s for hs in self.hazard_sources for s in hs.sensors]

    def sensor(self, tag: str) -> Sensor:
        for s in self.sensors():
            if s.tag == tag:
                return s
        raise KeyError(tag)

    def hazard_source(self, hs_id: str) -> HazardSource:
        for hs in self.hazard_sources:
            if hs.id == hs_id:
                return hs
        raise KeyError(hs_id)

    def retarget(
        self,
        opcua_urls: dict[str, str] | None = None,
        mqtt_urls: dict[str, str] | None = None,
        topic_prefix: str | None = None,
    ) -> Plant:
        """A copy pointing endpoints elsewhere (tests, demos on other ports).

        Args:
            opcua_urls: endpoint name -> new opc.tcp:// URL.
            mqtt_urls: broker name -> new mqtt:// URL.
            topic_prefix: prepended (with '/') to every MQTT binding topic, so
                parallel tests on one broker never see each other's messages.
        """
        opcua = tuple(replace(e, url=(opcua_urls or {}).get(e.name, e.url)) for e in self.opcua)
        mqtt = tuple(replace(b, url=(mqtt_urls or {}).get(b.name, b.url)) for b in self.mqtt)

        def move(s: Sensor) -> Sensor:
            if topic_prefix and isinstance(s.binding, MqttBinding):
                return replace(s, binding=replace(s.binding, topic=f"{topic_prefix}/{s.binding.topic}"))
            return s

        sources = tuple(replace(hs, sensors=tuple(move(s) for s in hs.sensors)) for hs in self.hazard_sources)
        return replace(self, opcua=opcua, mqtt=mqtt, hazard_sources=sources)
