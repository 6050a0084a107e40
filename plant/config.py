"""Load a plant file into frozen `Plant` objects, reporting every problem at once.

Each problem reads ``file:line: field.path: reason``. Loading never stops at the
first problem; `ConfigError` carries them all, in file order.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from hazmon.plant import sections
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
    Plant,
    Sensor,
    SensorKind,
    VoteGroup,
)
from hazmon.plant.plans import Plan, parse_plans
from hazmon.plant.standards import TIER_TABLE, Chemical, Grade, Level, Tier, chemical
from hazmon.plant.supervision_standards import (
    SupervisionSettings,
    parse_supervision,
)
from hazmon.plant.weather_rules import Tighten, parse_tightening
from hazmon.plant.weather_standards import EFFECTS, parse_weather
from hazmon.plant.yamlnode import (
    ID_PATTERN,
    ID_WHAT,
    ConfigError,
    Node,
    Problem,
    fmt_num,
    opt,
    parse_document,
    parse_file,
    req,
)

__all__ = ["ConfigError", "Problem", "load", "loads"]


def _chemical_ref(n: Node) -> Chemical | None:
    key = n.text()
    if key is None:
        return None
    c = chemical(key)
    if c is None:
        n.problem(f"unknown chemical '{key}' (use a hazmon id or CAS number of hazmon.plant.standards)")
    return c


def _limits(n: Node, rng: tuple[float, float] | None) -> Limits | None:
    names = ("hh", "h", "l", "ll")
    m = n.mapping({*names, "deadband", "on_delay_s", "off_delay_s", "rate_rise_per_min", "rate_fall_per_min"})
    if m is None:
        return None
    vals: dict[str, float | None] = {k: opt(m, k, Node.num, None) for k in names}
    if rng is not None:
        for k, v in vals.items():
            if v is not None and not rng[0] <= v <= rng[1]:
                lo, hi = fmt_num(rng[0]), fmt_num(rng[1])
                m[k].problem(f"limit {fmt_num(v)} is outside the measuring range [{lo}, {hi}]")
    order = [(k, v) for k, v in vals.items() if v is not None]
    for (k1, v1), (k2, v2) in itertools.pairwise(order):
        if v1 <= v2:
            m[k2].problem(f"{k2} ({fmt_num(v2)}) must be below {k1} ({fmt_num(v1)})")
    return Limits(
        vals["hh"],
        vals["h"],
        vals["l"],
        vals["ll"],
        opt(m, "deadband", lambda x: x.num(0.0), 0.0),
        opt(m, "on_delay_s", lambda x: x.num(0.0), 0.0),
        opt(m, "off_delay_s", lambda x: x.num(0.0), 0.0),
        opt(m, "rate_rise_per_min", lambda x: x.num(0.0, exclusive=True), None),
        opt(m, "rate_fall_per_min", lambda x: x.num(0.0, exclusive=True), None),
    )


@dataclass
class _Endpoints:
    opcua: dict[str, OpcUaEndpoint]
    mqtt: dict[str, MqttBroker]
    declared: set[str]  # names written in the file, valid or not: no cascade of errors


def _binding(n: Node, eps: _Endpoints) -> OpcUaBinding | MqttBinding | None:
    m = n.mapping({"endpoint", "node", "topic", "field", "payload"})
    if m is None:
        return None
    ep = req(m, "endpoint", n, Node.text)
    if ep is None:
        return None
    if ep in eps.opcua:
        for k in ("topic", "field", "payload"):
            if k in m:
                m[k].problem(f"'{k}' is for MQTT bindings; endpoint '{ep}' is OPC UA")
        node = req(m, "node", n, lambda x: x.text(r"(ns=\d+;)?[isgb]=.+", "an OPC UA node id (ns=2;s=...)"))
        return None if node is None else OpcUaBinding(ep, node)
    if ep in eps.mqtt:
        if "node" in m:
            m["node"].problem(f"'node' is for OPC UA bindings; endpoint '{ep}' is MQTT")
        topic = req(m, "topic", n, lambda x: x.text(r"[^#+\s]+", "an MQTT topic without wildcards"))
        payload = opt(m, "payload", lambda x: x.choice(("json", "batch", "number")), "json")
        fld = opt(m, "field", Node.text, "" if payload == "number" else "v")
        return None if topic is None else MqttBinding(ep, topic, fld, payload)
    if ep not in eps.declared:
        m["endpoint"].problem(f"endpoint '{ep}' is not declared under endpoints.opcua or endpoints.mqtt")
    return None


def _sensor(n: Node, hs_id: str, eps: _Endpoints) -> Sensor | None:
    m = n.mapping(
        {
            "tag",
            "kind",
            "unit",
            "range",
            "period_s",
            "binding",
            "limits",
            "chemical",
            "equipment",
            "position",
            "description",
            "key",
        }
    )
    if m is None:
        return None
    tag = req(m, "tag", n, lambda x: x.text(ID_PATTERN, "a tag (letters, digits, '_', '-', '.')"))
    kind_s = req(m, "kind", n, lambda x: x.choice(tuple(k.value for k in SensorKind)))
    kind = SensorKind(kind_s) if kind_s else None
    unit = req(m, "unit", n, Node.text)
    if kind is not None and unit is not None and unit not in UNITS[kind]:
        m["unit"].problem(
            f"unit '{unit}' is not valid for a {kind.value} sensor "
            f"(use one of: {', '.join(sorted(UNITS[kind]))})"
        )
        unit = None
    rng = req(m, "range", n, Node.pair)
    if rng is not None and rng[0] >= rng[1]:
        m["range"].problem(f"range low ({fmt_num(rng[0])}) must be below high ({fmt_num(rng[1])})")
        rng = None
    period = req(m, "period_s", n, lambda x: x.num(0.0, exclusive=True))
    binding: OpcUaBinding | MqttBinding | None = None
    if "binding" in m:
        binding = _binding(m["binding"], eps)
    else:
        n.problem("missing required key 'binding'", f"{n.path}.binding")
    limits = opt(m, "limits", lambda x: _limits(x, rng), Limits())
    chem = opt(m, "chemical", _chemical_ref, None)
    if kind in (SensorKind.GAS_COMBUSTIBLE, SensorKind.GAS_TOXIC) and "chemical" not in m:
        n.problem(f"a {kind.value} sensor needs 'chemical' (the gas it detects)", f"{n.path}.chemical")
    if kind is SensorKind.GAS_COMBUSTIBLE and chem is not None and not chem.flammable:
        m["chemical"].problem(f"'{chem.id}' has no LEL: it cannot be measured in %LEL")
    if kind is SensorKind.GAS_TOXIC and chem is not None and chem.oel_mg_m3 is None and chem.idlh_ppm is None:
        m["chemical"].problem(f"'{chem.id}' has no OEL or IDLH: give limits explicitly")
    if tag is None or kind is None or unit is None or rng is None or period is None or binding is None:
        return None
    return Sensor(
        tag=tag,
        kind=kind,
        unit=unit,
        range=rng,
        period_s=period,
        binding=binding,
        hazard_source=hs_id,
        description=opt(m, "description", Node.text, ""),
        limits=limits,
        limits_given="limits" in m,
        chemical=chem,
        equipment=opt(m, "equipment", Node.text, "") or None,
        position=opt(m, "position", Node.pair, None),
        key=opt(m, "key", Node.flag, False),
    )


_BY_CATEGORY = ("category", "q_t", "beta", "cas")


def _inventory(n: Node) -> Inventory | None:
    m = n.mapping({"chemical", "max_t", *_BY_CATEGORY})
    if m is None:
        return None
    given = [k for k in _BY_CATEGORY if k in m]
    key = req(m, "chemical", n, Node.text)
    c = chemical(key) if key is not None else None
    if key is not None and c is not None and given:
        m[given[0]].problem(
            f"'{key}' is in hazmon.plant.standards, which gives its Q and β: remove {', '.join(given)}"
        )
    elif key is not None and c is None and "category" not in m:
        m["chemical"].problem(
            f"unknown chemical '{key}' (use a hazmon id or CAS number of hazmon.plant.standards, or give "
            "its GB 18218-2018 Table 2 category with q_t and beta)"
        )
    elif key is not None and c is None:
        c = _by_category(n, m, key)
    q = req(m, "max_t", n, lambda x: x.num(0.0, exclusive=True))
    return None if c is None or q is None else Inventory(c, q)


def _by_category(n: Node, m: dict[str, Node], key: str) -> Chemical | None:
    """A chemical Table 1 does not name, graded by its Table 2 category (GB 18218-2018 §4.1.2 [unverified]).

    With several hazards the category of the lowest Q is the one to name (see hazard_classes).

    Q (Table 2) and β (Table 4) are written in the plant file and checked against
    `hazmon.plant.hazard_classes`: a verified value must match; an unverified one is taken
    from the file and the grading is reported as unverified.
    """
    code = m["category"].text()
    hc = hazard_category(code) if code is not None else None
    if code is not None and hc is None:
        m["category"].problem(
            f"'{code}' is not a GB 18218-2018 Table 2 category "
            f"(one of: {', '.join(c.code for c in HAZARD_CATEGORIES)})"
        )
    q_t = req(m, "q_t", n, lambda x: x.num(0.0, exclusive=True))
    beta = req(m, "beta", n, lambda x: x.num(0.0, exclusive=True))
    if hc is None or q_t is None or beta is None:
        return None
    ok = True
    for k, given, table, verified, what in (
        ("q_t", q_t, hc.q_t, hc.q_verified, "Q (Table 2) = {} t"),
        ("beta", beta, hc.beta, hc.beta_verified, "β (Table 4) = {}"),
    ):
        if verified and given != table:
            m[k].problem(
                f"GB 18218-2018 gives {what.format(fmt_num(table))} for {hc.code} ({hc.name_zh}), "
                f"got {fmt_num(given)}"
            )
            ok = False
    if not ok:
        return None
    return Chemical(
        id=key,
        name_en=key,
        name_zh=key,
        cas=opt(m, "cas", Node.text, ""),
        q_t=q_t,
        beta=beta,
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


def _vote_group(n: Node, tags: set[str]) -> VoteGroup | None:
    m = n.mapping({"id", "sensors", "k"})
    if m is None:
        return None
    gid = req(m, "id", n, lambda x: x.text(ID_PATTERN, ID_WHAT))
    sensors: list[str] = []
    if "sensors" in m:
        for item in m["sensors"].sequence():
            t = item.text()
            if t is not None and t not in tags:
                item.problem(f"sensor '{t}' is not a sensor of this hazard source")
            elif t is not None:
                sensors.append(t)
    else:
        n.problem("missing required key 'sensors'", f"{n.path}.sensors")
    k = req(m, "k", n, lambda x: x.whole(1))
    if k is not None and "sensors" in m and k > len(m["sensors"].sequence()):
        m["k"].problem(f"k ({k}) is larger than the number of sensors ({len(sensors)})")
    if gid is None or k is None:
        return None
    return VoteGroup(gid, tuple(sensors), k)


def _location(n: Node) -> Location | None:
    """`location: {lat, lon}` in WGS 84 degrees (weather warnings' polygons and circles)."""
    m = n.mapping({"lat", "lon"})
    if m is None:
        return None
    lat = req(m, "lat", n, lambda x: x.num(-90.0))
    lon = req(m, "lon", n, lambda x: x.num(-180.0))
    if lat is not None and lat > 90:
        m["lat"].problem(f"must be <= 90, got {lat:g}")
        return None
    if lon is not None and lon > 180:
        m["lon"].problem(f"must be <= 180, got {lon:g}")
        return None
    return None if lat is None or lon is None else Location(lat, lon)


def _hazard_source(n: Node, eps: _Endpoints) -> HazardSource | None:
    m = n.mapping(
        {
            "id",
            "name",
            "kind",
            "people_within_500m",
            "chemicals",
            "responsible",
            "sensors",
            "equipment",
            "vote_groups",
            "location",
        }
    )
    if m is None:
        return None
    location = opt(m, "location", _location, None)
    hid = req(m, "id", n, lambda x: x.text(ID_PATTERN, ID_WHAT))
    name = req(m, "name", n, Node.text)
    kind = opt(m, "kind", lambda x: x.choice(("storage", "production")), "storage")
    people = req(m, "people_within_500m", n, lambda x: x.whole(0))
    inv: list[Inventory] = []
    if "chemicals" in m:
        seen: set[str] = set()
        for item in m["chemicals"].sequence():
            i = _inventory(item)
            if i and i.chemical.id in seen:
                item.problem(f"chemical '{i.chemical.id}' listed twice")
            elif i:
                seen.add(i.chemical.id)
                inv.append(i)
        if not m["chemicals"].sequence():
            m["chemicals"].problem("a hazard source needs at least one chemical")
    else:
        n.problem("missing required key 'chemicals'", f"{n.path}.chemicals")
    resp = req(m, "responsible", n, sections.responsible)
    equipment = [
        e
        for e in (sections.equipment(x) for x in (m["equipment"].sequence() if "equipment" in m else []))
        if e
    ]
    eq_ids = {e.id for e in equipment}
    sensors: list[Sensor] = []
    for item in m["sensors"].sequence() if "sensors" in m else []:
        s = _sensor(item, hid or "", eps)
        if s is not None:
            if s.equipment is not None and s.equipment not in eq_ids:
                item.problem(
                    f"equipment '{s.equipment}' is not declared in this hazard source",
                    f"{item.path}.equipment",
                )
            sensors.append(s)
    tags = {s.tag for s in sensors}
    groups = [
        g
        for g in (_vote_group(x, tags) for x in (m["vote_groups"].sequence() if "vote_groups" in m else []))
        if g
    ]
    if hid is None or name is None or people is None or resp is None:
        return None
    return HazardSource(
        hid, name, people, tuple(inv), resp, tuple(sensors), tuple(equipment), tuple(groups), kind, location
    )


def _plant(root: Node) -> Plant | None:  # noqa: PLR0912 - one branch per top-level section
    m = root.mapping(
        {"enterprise", "bureaus", "endpoints", "hazard_sources", "tiers", "supervision", "weather", "plans"}
    )
    if m is None:
        return None
    ent = req(m, "enterprise", root, sections.enterprise)
    bureaus = sections.bureaus(m["bureaus"]) if "bureaus" in m else []
    eps = _Endpoints({}, {}, set())
    if "endpoints" in m:
        em = m["endpoints"].mapping({"opcua", "mqtt"}) or {}
        names: dict[str, Node] = {}
        parsers: tuple[tuple[str, Callable[[Node], OpcUaEndpoint | MqttBroker | None]], ...] = (
            ("opcua", sections.opcua_endpoint),
            ("mqtt", sections.mqtt_broker),
        )
        for key, parse in parsers:
            for item in em[key].sequence() if key in em else []:
                declared = _tag_of(item.node, "name")
                if declared is not None:
                    eps.declared.add(declared)
                ep = parse(item)
                if ep is None:
                    continue
                if ep.name in names:
                    item.problem(
                        f"endpoint name '{ep.name}' is used twice (first at line {names[ep.name].line})",
                        f"{item.path}.name",
                    )
                    continue
                names[ep.name] = item
                if isinstance(ep, OpcUaEndpoint):
                    eps.opcua[ep.name] = ep
                else:
                    eps.mqtt[ep.name] = ep
    sources: list[HazardSource] = []
    if "hazard_sources" not in m:
        root.problem("missing required key 'hazard_sources'", "hazard_sources")
    else:
        seen_hs: dict[str, int] = {}
        first_tag: dict[str, int] = {}
        bound = _Bound()
        for item in m["hazard_sources"].sequence():
            hs = _hazard_source(item, eps)
            if hs is None:
                continue
            if hs.id in seen_hs:
                item.problem(
                    f"hazard source id '{hs.id}' is used twice (first at line {seen_hs[hs.id]})",
                    f"{item.path}.id",
                )
            seen_hs[hs.id] = item.line
            for s_node, s in _sensor_nodes(item, hs):
                if s.tag in first_tag:
                    s_node.problem(
                        f"duplicate tag '{s.tag}' (first at line {first_tag[s.tag]})", f"{s_node.path}.tag"
                    )
                else:  # (a duplicate tag's node maps to the other sensor: its binding is not compared)
                    first_tag[s.tag] = s_node.line
                    bound.check(s_node, s)
            sources.append(hs)
    if ent is None:
        return None
    tiers = _tiers(m["tiers"]) if "tiers" in m else None
    supervision = opt(m, "supervision", parse_supervision, SupervisionSettings())
    weather = opt(m, "weather", parse_weather, EFFECTS)
    plans, tighten = _plans_and_tightening(root, m, sources)
    return Plant(
        root.ctx.file,
        ent,
        tuple(bureaus),
        tuple(eps.opcua.values()),
        tuple(eps.mqtt.values()),
        tuple(sources),
        tiers if tiers is not None else {k: dict(v) for k, v in TIER_TABLE.items()},
        supervision,
        weather,
        plans,
        tighten,
    )


def _plans_and_tightening(
    root: Node, m: dict[str, Node], sources: list[HazardSource]
) -> tuple[tuple[Plan, ...], tuple[Tighten, ...]]:
    """``plans:`` and ``weather.tighten`` (both checked against the hazard sources and sensors)."""
    tags = {s.tag for h in sources for s in h.sensors}
    wm = m["weather"].node if "weather" in m else None
    tighten = next(
        (parse_tightening(Node(root.ctx, v, "weather.tighten"), tags) for k, v in getattr(wm, "value", [])
         if getattr(k, "value", None) == "tighten" and isinstance(wm, yaml.MappingNode)),
        (),
    )  # fmt: skip
    no_plans: tuple[Plan, ...] = ()
    plans = opt(
        m, "plans", lambda x: parse_plans(x, {h.id: {s.tag for s in h.sensors} for h in sources}), no_plans
    )
    return plans, tighten


def _tiers(n: Node) -> dict[Level, dict[Grade, Tier]] | None:
    """`tiers:` — level -> grade (1-4) -> red|orange|yellow|blue, over `standards.TIER_TABLE`."""
    levels = tuple(lv.value for lv in TIER_TABLE)
    m = n.mapping(set(levels))
    if m is None:
        return None
    out = {k: dict(v) for k, v in TIER_TABLE.items()}
    colours = {t.colour: t for t in Tier}
    for level_name, ln in m.items():
        gm = ln.mapping({"1", "2", "3", "4"})
        for g, gn in (gm or {}).items():
            c = gn.choice(tuple(colours))
            if c is not None:
                out[Level(level_name)][Grade(int(g))] = colours[c]
    return out


class _Bound:
    """What each sensor reads from; a source value bound to two sensors is a problem.

    One OPC UA node of one endpoint feeds one sensor. One MQTT topic of one broker feeds
    one sensor, unless every sensor on it is ``payload: batch`` (entries carry their tag):
    the collector could only route the topic's messages to one of them.
    """

    def __init__(self) -> None:
        self.nodes: dict[tuple[str, str], tuple[str, int]] = {}
        self.topics: dict[tuple[str, str], tuple[str, int, str, str]] = {}

    def check(self, s_node: Node, s: Sensor) -> None:
        b = s.binding
        bn = _child_node(s_node, "binding")
        if isinstance(b, OpcUaBinding):
            key = (b.endpoint, b.node)
            if key in self.nodes:
                tag, line = self.nodes[key]
                at = _child_node(bn, "node")
                at.problem(
                    f"OPC UA node '{b.node}' of endpoint '{b.endpoint}' is already bound to sensor "
                    f"'{tag}' (line {line}): one node feeds one sensor"
                )
            else:
                self.nodes[key] = (s.tag, s_node.line)
            return
        tkey = (b.endpoint, b.topic)
        if tkey in self.topics:
            tag, line, payload, fld = self.topics[tkey]
            if payload == "batch" and b.payload == "batch":
                return
            one_field = fld == b.field and b.field and "batch" not in (payload, b.payload)
            same = f" and field '{b.field}'" if one_field else ""
            at = _child_node(bn, "topic")
            at.problem(
                f"MQTT topic '{b.topic}'{same} of endpoint '{b.endpoint}' is already bound to sensor "
                f"'{tag}' (line {line}): only payload: batch topics carry several sensors"
            )
        else:
            self.topics[tkey] = (s.tag, s_node.line, b.payload, b.field)


def _child_node(n: Node, key: str) -> Node:
    """The child ``key`` of mapping node ``n`` (``n`` itself when there is none), for a problem's line."""
    if isinstance(n.node, yaml.MappingNode):
        for k, v in n.node.value:
            if getattr(k, "value", None) == key:
                return Node(n.ctx, v, f"{n.path}.{key}")
    return n


def _sensor_nodes(hs_node: Node, hs: HazardSource) -> Iterator[tuple[Node, Sensor]]:
    m = hs_node.node.value if isinstance(hs_node.node, yaml.MappingNode) else []
    for k, v in m:
        if getattr(k, "value", None) == "sensors" and isinstance(v, yaml.SequenceNode):
            by_tag = {s.tag: s for s in hs.sensors}
            for i, sn in enumerate(v.value):
                node = Node(hs_node.ctx, sn, f"{hs_node.path}.sensors[{i}]")
                tag = _tag_of(sn)
                if tag is not None and tag in by_tag:
                    yield node, by_tag[tag]


def _tag_of(node: yaml.Node, key: str = "tag") -> str | None:
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if getattr(k, "value", None) == key and isinstance(v, yaml.ScalarNode):
                return str(v.value)
    return None


def loads(text: str, file: str = "<string>") -> Plant:
    """Parse plant YAML text.

    Raises:
        ConfigError: with every problem found, each as ``file:line: path: reason``.
    """
    return parse_document(text, file, _plant)


def load(path: str | Path) -> Plant:
    """Load a plant file. See `loads`."""
    return parse_file(path, _plant)
