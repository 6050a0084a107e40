"""A hazard source of the plant file (``hazard_sources[i]``) as pydantic schemas.

The hazard source with its chemicals, sensors (binding, limits), vote groups, location and the
``tiers:`` section are checked here, key by key and across keys (`hazmon.plant.yamlmodel`): a
sensor's unit fits its kind, limits lie in the measuring range in the order hh > h > l > ll, a
binding fits its endpoint (OPC UA node or MQTT topic), a vote group names sensors of its own
hazard source. `hazmon.plant.config` compares hazard sources with each other (ids, tags,
bindings).
"""

from __future__ import annotations

import dataclasses
import itertools
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, ValidationInfo, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from hazmon.plant.hazard_classes import HAZARD_CATEGORIES, hazard_category
from hazmon.plant.model import (
    UNITS,
    HazardSource,
    Inventory,
    Limits,
    Location,
    MqttBinding,
    MqttBroker,
    OpcUaBinding,
    OpcUaEndpoint,
    Sensor,
    SensorKind,
    VoteGroup,
)
from hazmon.plant.sections import EquipmentIn, Id, Pair, ResponsibleIn, known_chemical
from hazmon.plant.standards import TIER_TABLE, Chemical, Grade, Level, Tier, chemical
from hazmon.plant.yamlmodel import (
    SECTION,
    Flag,
    InMapping,
    NonNegative,
    Number,
    Positive,
    Where,
    Whole,
    YText,
    build,
    check,
    choice,
    pattern,
    validate,
)
from hazmon.plant.yamlnode import ID_PATTERN, Node, fmt_num

__all__ = ["Endpoints", "hazard_source", "tiers"]


@dataclasses.dataclass
class Endpoints:
    """The endpoints the file declares: what a binding may name."""

    opcua: dict[str, OpcUaEndpoint]
    mqtt: dict[str, MqttBroker]
    declared: set[str]  # names written in the file, valid or not: no cascade of errors


Problems = list[tuple[Where, str] | None]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _LimitsIn:
    """A sensor's ``limits:`` (`Limits`); their order and range are the sensor's checks."""

    hh: Number | None = None
    h: Number | None = None
    l: Number | None = None  # noqa: E741 - the standard's name for the low limit
    ll: Number | None = None
    deadband: NonNegative = 0.0
    on_delay_s: NonNegative = 0.0
    off_delay_s: NonNegative = 0.0
    rate_rise_per_min: Positive | None = None
    rate_fall_per_min: Positive | None = None

    def problems(self, rng: tuple[float, float] | None) -> Problems:
        """Limits outside the measuring range ``rng``, and limits out of the order hh > h > l > ll."""
        vals = [
            (k, v)
            for k, v in (("hh", self.hh), ("h", self.h), ("l", self.l), ("ll", self.ll))
            if v is not None
        ]
        out: Problems = []
        if rng is not None:
            lo, hi = fmt_num(rng[0]), fmt_num(rng[1])
            out += [
                ((("limits", k),), f"limit {fmt_num(v)} is outside the measuring range [{lo}, {hi}]")
                for k, v in vals
                if not rng[0] <= v <= rng[1]
            ]
        out += [
            ((("limits", k2),), f"{k2} ({fmt_num(v2)}) must be below {k1} ({fmt_num(v1)})")
            for (k1, v1), (k2, v2) in itertools.pairwise(vals)
            if v1 <= v2
        ]
        return out

    def limits(self) -> Limits:
        return build(Limits, self)


def _endpoints(info: ValidationInfo) -> Endpoints:
    eps = info.context.get("endpoints") if isinstance(info.context, dict) else None
    return eps if isinstance(eps, Endpoints) else Endpoints({}, {}, set())


_MQTT_KEYS = ("topic", "field", "payload")


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _BindingIn:
    """A sensor's ``binding:``: an OPC UA node or an MQTT topic of a declared endpoint."""

    endpoint: YText
    node: YText | None = None
    topic: YText | None = None
    field: YText | None = None  # default "v" ("" for payload: number)
    payload: Annotated[YText, BeforeValidator(choice("json", "batch", "number"))] | None = None

    @model_validator(mode="after")
    def _fits_its_endpoint(self, info: ValidationInfo) -> _BindingIn:
        eps, ep = _endpoints(info), self.endpoint
        out: Problems = []
        if ep in eps.opcua:
            out += [
                ((k,), f"'{k}' is for MQTT bindings; endpoint '{ep}' is OPC UA")
                for k in _MQTT_KEYS
                if getattr(self, k) is not None
            ]
            out.append(_matches(self.node, "node", r"(ns=\d+;)?[isgb]=.+", "an OPC UA node id (ns=2;s=...)"))
        elif ep in eps.mqtt:
            bad = self.node is not None
            out.append(
                (("node",), f"'node' is for OPC UA bindings; endpoint '{ep}' is MQTT") if bad else None
            )
            out.append(_matches(self.topic, "topic", r"[^#+\s]+", "an MQTT topic without wildcards"))
        elif ep not in eps.declared:
            out.append(
                (("endpoint",), f"endpoint '{ep}' is not declared under endpoints.opcua or endpoints.mqtt")
            )
        check(*out)
        return self

    def binding(self, eps: Endpoints) -> OpcUaBinding | MqttBinding | None:
        """The binding (None: its endpoint is declared but broken, a problem told there)."""
        if self.endpoint in eps.opcua and self.node is not None:
            return OpcUaBinding(self.endpoint, self.node)
        if self.endpoint in eps.mqtt and self.topic is not None:
            payload = self.payload or "json"
            fld = self.field if self.field is not None else "" if payload == "number" else "v"
            return MqttBinding(self.endpoint, self.topic, fld, payload)
        return None


def _matches(v: str | None, key: str, regex: str, what: str) -> tuple[Where, str] | None:
    if v is None:
        return ((InMapping(key),), f"missing required key '{key}'")
    try:
        pattern(regex, what)(v)
    except ValueError as e:
        return ((key,), str(e))
    return None


_KINDS = tuple(k.value for k in SensorKind)


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _SensorIn:
    """One item of a hazard source's ``sensors:`` (`Sensor`)."""

    tag: Annotated[YText, AfterValidator(pattern(ID_PATTERN, "a tag (letters, digits, '_', '-', '.')"))]
    kind: Annotated[YText, BeforeValidator(choice(*_KINDS))]
    unit: YText
    range: Pair
    period_s: Positive
    binding: _BindingIn
    limits: _LimitsIn | None = None
    chemical: Annotated[YText, AfterValidator(known_chemical)] | None = None
    equipment: YText | None = None
    position: Pair | None = None
    description: YText = ""
    key: Flag = False

    @model_validator(mode="after")
    def _consistent(self) -> _SensorIn:
        kind, lo, hi = SensorKind(self.kind), *self.range
        chem = chemical(self.chemical) if self.chemical is not None else None
        units = ", ".join(sorted(UNITS[kind]))
        out: Problems = [
            (("unit",), f"unit '{self.unit}' is not valid for a {kind.value} sensor (use one of: {units})")
            if self.unit not in UNITS[kind]
            else None,
            (("range",), f"range low ({fmt_num(lo)}) must be below high ({fmt_num(hi)})")
            if lo >= hi
            else None,
        ]
        if self.limits is not None:
            out += self.limits.problems(self.range if lo < hi else None)
        gas = kind in (SensorKind.GAS_COMBUSTIBLE, SensorKind.GAS_TOXIC)
        if gas and chem is None:
            out.append(
                ((InMapping("chemical"),), f"a {kind.value} sensor needs 'chemical' (the gas it detects)")
            )
        elif kind is SensorKind.GAS_COMBUSTIBLE and chem is not None and not chem.flammable:
            out.append((("chemical",), f"'{chem.id}' has no LEL: it cannot be measured in %LEL"))
        elif (
            kind is SensorKind.GAS_TOXIC
            and chem is not None
            and chem.oel_mg_m3 is None
            and chem.idlh_ppm is None
        ):
            out.append((("chemical",), f"'{chem.id}' has no OEL or IDLH: give limits explicitly"))
        check(*out)
        return self

    def sensor(self, hazard_source: str, eps: Endpoints) -> Sensor | None:
        binding = self.binding.binding(eps)
        if binding is None:
            return None
        return build(
            Sensor,
            self,
            kind=SensorKind(self.kind),
            binding=binding,
            hazard_source=hazard_source,
            limits=Limits() if self.limits is None else self.limits.limits(),
            limits_given=self.limits is not None,
            chemical=None if self.chemical is None else chemical(self.chemical),
            equipment=self.equipment or None,
        )


_BY_CATEGORY = ("category", "q_t", "beta", "cas")


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _InventoryIn:
    """One item of a hazard source's ``chemicals:`` (`Inventory`).

    A chemical Table 1 does not name is graded by its Table 2 category (GB 18218-2018 §4.1.2
    [unverified]); with several hazards the category of the lowest Q is the one to name (see
    hazard_classes). Q (Table 2) and β (Table 4) are written in the plant file and checked
    against `hazmon.plant.hazard_classes`: a verified value must match; an unverified one is
    taken from the file and the grading is reported as unverified.
    """

    chemical: YText
    max_t: Positive
    category: YText | None = None
    q_t: Positive | None = None
    beta: Positive | None = None
    cas: YText | None = None

    @model_validator(mode="after")
    def _graded(self) -> _InventoryIn:
        key, given = self.chemical, [k for k in _BY_CATEGORY if getattr(self, k) is not None]
        if chemical(key) is not None:
            remove = ", ".join(given)
            why = f"'{key}' is in hazmon.plant.standards, which gives its Q and β: remove {remove}"
            check(((given[0],), why) if given else None)
            return self
        if self.category is None:
            check(
                (
                    ("chemical",),
                    f"unknown chemical '{key}' (use a hazmon id or CAS number of hazmon.plant.standards, or "
                    "give its GB 18218-2018 Table 2 category with q_t and beta)",
                )
            )
        hc = hazard_category(self.category or "")
        codes = ", ".join(c.code for c in HAZARD_CATEGORIES)
        out: Problems = [
            None
            if hc
            else (
                ("category",),
                f"'{self.category}' is not a GB 18218-2018 Table 2 category (one of: {codes})",
            ),
            None if self.q_t else ((InMapping("q_t"),), "missing required key 'q_t'"),
            None if self.beta else ((InMapping("beta"),), "missing required key 'beta'"),
        ]
        if hc is not None:
            for k, v, table, verified, what in (
                ("q_t", self.q_t, hc.q_t, hc.q_verified, "Q (Table 2) = {} t"),
                ("beta", self.beta, hc.beta, hc.beta_verified, "β (Table 4) = {}"),
            ):
                if verified and v is not None and v != table:
                    gives = f"GB 18218-2018 gives {what.format(fmt_num(table))} for {hc.code} ({hc.name_zh})"
                    out.append(((k,), f"{gives}, got {fmt_num(v)}"))
        check(*out)
        return self

    def inventory(self) -> Inventory:
        c = chemical(self.chemical)
        if c is None:  # graded by its category (checked above)
            hc = hazard_category(self.category or "")
            assert hc is not None and self.q_t is not None and self.beta is not None
            c = Chemical(
                id=self.chemical,
                name_en=self.chemical,
                name_zh=self.chemical,
                cas=self.cas or "",
                q_t=self.q_t,
                beta=self.beta,
                beta_class=f"GB 18218-2018 Table 2/4 {hc.code} {hc.name_zh} (given in the plant file)",
                lel_pct=None,
                uel_pct=None,
                molar_mass=None,
                mac=None,
                pc_twa=None,
                pc_stel=None,
                idlh_ppm=None,
                grading_verified=hc.q_verified and hc.beta_verified,
                category=hc.code,
            )
        return Inventory(c, self.max_t)


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _VoteIn:
    """One item of a hazard source's ``vote_groups:``: k of these sensors (`VoteGroup`)."""

    id: Id
    sensors: tuple[YText, ...]
    k: Annotated[Whole, Field(ge=1)]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _LocationIn:
    """``location: {lat, lon}`` in WGS 84 degrees (weather warnings' polygons and circles)."""

    lat: Annotated[Number, Field(ge=-90, le=90)]
    lon: Annotated[Number, Field(ge=-180, le=180)]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _HazardSourceIn:
    """One item of ``hazard_sources:`` (`HazardSource`)."""

    id: Id
    name: YText
    people_within_500m: Annotated[Whole, Field(ge=0)]
    chemicals: tuple[_InventoryIn, ...]
    responsible: ResponsibleIn
    kind: Annotated[YText, BeforeValidator(choice("storage", "production"))] = "storage"
    sensors: tuple[_SensorIn, ...] = ()
    equipment: tuple[EquipmentIn, ...] = ()
    vote_groups: tuple[_VoteIn, ...] = ()
    location: _LocationIn | None = None

    @model_validator(mode="after")
    def _refs_inside(self) -> _HazardSourceIn:
        out: Problems = [
            (("chemicals",), "a hazard source needs at least one chemical") if not self.chemicals else None
        ]
        seen: set[str] = set()
        for i, c in enumerate(self.chemicals):
            cid = c.inventory().chemical.id
            out.append(((("chemicals", i),), f"chemical '{cid}' listed twice") if cid in seen else None)
            seen.add(cid)
        eq = {e.id for e in self.equipment}
        for i, s in enumerate(self.sensors):
            if s.equipment is not None and s.equipment not in eq:
                where = ("sensors", i, InMapping("equipment"))
                out.append(((where,), f"equipment '{s.equipment}' is not declared in this hazard source"))
        tags = {s.tag for s in self.sensors}
        for i, g in enumerate(self.vote_groups):
            out += [
                ((("vote_groups", i, "sensors", j),), f"sensor '{t}' is not a sensor of this hazard source")
                for j, t in enumerate(g.sensors)
                if t not in tags
            ]
            if g.k > len(g.sensors):
                out.append(
                    (
                        (("vote_groups", i, "k"),),
                        f"k ({g.k}) is larger than the number of sensors ({len(g.sensors)})",
                    )
                )
        check(*out)
        return self


def hazard_source(n: Node, eps: Endpoints) -> HazardSource | None:
    """The hazard source at ``n`` (None when it has problems, recorded on ``n``)."""
    h = validate(n, _HazardSourceIn, {"endpoints": eps})
    if h is None:
        return None
    sensors = [s.sensor(h.id, eps) for s in h.sensors]
    return build(
        HazardSource,
        h,
        inventory=tuple(c.inventory() for c in h.chemicals),
        responsible=h.responsible.responsible(),
        sensors=tuple(s for s in sensors if s is not None),
        equipment=tuple(e.equipment() for e in h.equipment),
        vote_groups=tuple(build(VoteGroup, g) for g in h.vote_groups),
        location=None if h.location is None else build(Location, h.location),
    )


_COLOURS = {t.colour: t for t in Tier}
Colour = Annotated[YText, BeforeValidator(choice(*_COLOURS))]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _GradesIn:
    """The tier of each grade (1-4) at one level."""

    one: Colour | None = Field(default=None, alias="1")
    two: Colour | None = Field(default=None, alias="2")
    three: Colour | None = Field(default=None, alias="3")
    four: Colour | None = Field(default=None, alias="4")


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _TiersIn:
    """``tiers:`` — level -> grade (1-4) -> red|orange|yellow|blue, over `standards.TIER_TABLE`."""

    second: _GradesIn | None = None
    first: _GradesIn | None = None
    predictive: _GradesIn | None = None
    fault: _GradesIn | None = None


def tiers(n: Node) -> dict[Level, dict[Grade, Tier]] | None:
    """The tier table with the file's ``tiers:`` over it (None when it has problems)."""
    t = validate(n, _TiersIn)
    if t is None:
        return None
    out = {k: dict(v) for k, v in TIER_TABLE.items()}
    for level in Level:
        grades: Any = getattr(t, level.value)
        for g, name in zip(Grade, ("one", "two", "three", "four"), strict=True):
            colour = getattr(grades, name) if grades is not None else None
            if colour is not None:
                out[level][g] = _COLOURS[colour]
    return out
