"""Load a plant file into frozen `Plant` objects, reporting every problem at once.

Each problem reads ``file:line: field.path: reason``. Loading never stops at the
first problem; `ConfigError` carries them all, in file order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import yaml

from hazmon.plant import sections
from hazmon.plant.model import (
    HazardSource,
    MqttBroker,
    OpcUaBinding,
    OpcUaEndpoint,
    Plant,
    Sensor,
)
from hazmon.plant.plans import Plan, parse_plans
from hazmon.plant.sources import Endpoints, hazard_source
from hazmon.plant.sources import tiers as tier_table
from hazmon.plant.standards import TIER_TABLE
from hazmon.plant.supervision_standards import (
    SupervisionSettings,
    parse_supervision,
)
from hazmon.plant.weather_rules import Tighten, parse_tightening
from hazmon.plant.weather_standards import EFFECTS, parse_weather
from hazmon.plant.yamlnode import (
    ConfigError,
    Node,
    Problem,
    opt,
    parse_document,
    parse_file,
    req,
)

__all__ = ["ConfigError", "Problem", "load", "loads"]


def _plant(root: Node) -> Plant | None:  # noqa: PLR0912 - one branch per top-level section
    m = root.mapping(
        {"enterprise", "bureaus", "endpoints", "hazard_sources", "tiers", "supervision", "weather", "plans"}
    )
    if m is None:
        return None
    ent = req(m, "enterprise", root, sections.enterprise)
    bureaus = sections.bureaus(m["bureaus"]) if "bureaus" in m else []
    eps = Endpoints({}, {}, set())
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
            hs = hazard_source(item, eps)
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
    tiers = tier_table(m["tiers"]) if "tiers" in m else None
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
