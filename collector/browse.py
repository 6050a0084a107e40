"""`hazmon opcua browse`: the variables of a server with node ids, units and ranges.

Walks the Objects folder (async API), reads each variable's ``EngineeringUnits``
and ``EURange`` properties, and can print them as sensor entries to paste into
the plant file (kind and limits are left for the engineer to fill in).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any

from asyncua import ua as _ua
from asyncua.client.client import Client

__all__ = ["Variable", "browse", "format_sensors", "format_table"]

ua: Any = _ua


@dataclass(frozen=True, slots=True)
class Variable:
    node: str
    name: str
    path: str
    unit: str
    range: tuple[float, float] | None


async def _props(node: Any) -> tuple[str, tuple[float, float] | None]:
    unit, rng = "", None
    for p in await node.get_properties():
        bn = (await p.read_browse_name()).Name
        if bn == "EngineeringUnits":
            eu = await p.read_value()
            unit = getattr(getattr(eu, "DisplayName", None), "Text", "") or ""
        elif bn == "EURange":
            r = await p.read_value()
            rng = (float(r.Low), float(r.High))
    return unit, rng


async def browse(url: str, timeout_s: float = 10.0, max_depth: int = 8) -> list[Variable]:
    """Every variable under Objects (the server's own ``Server`` object is skipped)."""
    out: list[Variable] = []
    client = Client(url, timeout=timeout_s)
    async with client:

        async def walk(node: Any, path: str, depth: int) -> None:
            if depth > max_depth:
                return
            for child in await node.get_children(refs=ua.ObjectIds.HierarchicalReferences):
                nid = child.nodeid
                if nid.NamespaceIndex == 0:
                    continue  # the server's own objects
                cls = await child.read_node_class()
                name = (await child.read_browse_name()).Name
                if cls == ua.NodeClass.Variable:
                    if name in ("EngineeringUnits", "EURange"):
                        continue
                    unit, rng = await _props(child)
                    out.append(Variable(nid.to_string(), name, f"{path}/{name}", unit, rng))
                elif cls == ua.NodeClass.Object:
                    await walk(child, f"{path}/{name}", depth + 1)

        await walk(client.nodes.objects, "", 0)
    return out


def format_table(found: list[Variable]) -> str:
    lines = [f"{'node id':<28} {'unit':<6} {'range':<18} path"]
    for v in found:
        rng = f"[{v.range[0]:g}, {v.range[1]:g}]" if v.range else "-"
        lines.append(f"{v.node:<28} {v.unit or '-':<6} {rng:<18} {v.path}")
    lines.append(f"{len(found)} variable(s)")
    return "\n".join(lines)


_KIND_OF_UNIT = {
    "m": "level", "mm": "level", "%": "level",
    "°C": "temperature", "degC": "temperature", "K": "temperature",
    "MPa": "pressure", "kPa": "pressure", "bar": "pressure", "Pa": "pressure",
    "%LEL": "gas_combustible", "ppm": "gas_toxic", "mg/m3": "gas_toxic", "%VOL": "oxygen",
    "m3/h": "flow", "t/h": "flow", "kg/h": "flow", "Nm3/h": "flow", "t": "weight", "kg": "weight",
}  # fmt: skip
"""The sensor kind a unit implies (the plant file's units per kind)."""

_UNIT_ALIASES = {"℃": "°C", "m³/h": "m3/h", "mg/m³": "mg/m3", "%vol": "%VOL", "%lel": "%LEL", "LEL": "%LEL"}
_NOT_ID = re.compile(r"[^A-Za-z0-9_.\-]+")


def _ident(text: str) -> str:
    """``text`` as a plant-file id/tag (letters, digits, '_', '-', '.'); "" when nothing is left."""
    return _NOT_ID.sub("-", text).strip("-_.")


def _tags(found: list[Variable]) -> list[str]:
    """A unique tag per variable: its display name, or with its folders when the name repeats."""
    parts = [[_ident(p) for p in v.path.strip("/").split("/")] for v in found]
    for v, ps in zip(found, parts, strict=True):
        ps[-1] = ps[-1] or _ident(v.node.split(";")[-1]) or "var"  # a name with no id letter (氯气)
    tags: list[str] = []
    for v, ps in zip(found, parts, strict=True):
        kept = [p for p in ps if p] or [_ident(v.node) or "var"]
        tags.append(kept[-1])
    for depth in range(2, 1 + max((len(p) for p in parts), default=1)):
        counts = Counter(tags)
        tags = [
            "-".join([p for p in ps if p][-depth:]) or t if counts[t] > 1 else t
            for t, ps in zip(tags, parts, strict=True)
        ]
    counts, seen = Counter(tags), Counter[str]()
    out = []
    for t in tags:  # still the same (two variables of one name in one folder): numbered
        seen[t] += 1
        out.append(f"{t}-{seen[t]}" if counts[t] > 1 else t)
    return out


def format_sensors(found: list[Variable], endpoint: str, url: str = "opc.tcp://127.0.0.1:4840") -> str:
    """A plant file that `hazmon check` accepts, built from what the server tells.

    What the server cannot know (enterprise, region, chemicals and amounts, people, responsible
    persons, kinds without a unit, the gas a detector measures, reporting periods, limits) is a
    placeholder with a ``# TODO`` comment; `hazmon check` lists every TODO as a warning. Tags are
    the variables' display names, with their folders joined in front when a name repeats.
    """
    ep = _ident(endpoint) or "dcs"
    lines = [
        f"# Plant file from `hazmon opcua browse {url} --write-sensors`: {len(found)} variable(s).",
        "# Every line marked TODO is a placeholder the server cannot know: fill it in, then remove the TODO.",
        "enterprise:",
        "  id: my-enterprise  # TODO: the enterprise's id",
        "  name: 企业名称  # TODO: the enterprise's registered name",
        '  region: {province: 省, city: 市, county: 县, code: "110101"}  # TODO: county, 6-digit code',
        "endpoints:",
        f'  opcua: [{{name: {ep}, url: "{url}"}}]',
        "hazard_sources:",
    ]
    tags = _tags(found)
    groups: dict[str, list[tuple[Variable, str]]] = {}
    for v, tag in zip(found, tags, strict=True):
        folder = v.path.rsplit("/", 1)[0].strip("/") or "plant"
        groups.setdefault(folder, []).append((v, tag))
    used: set[str] = set()
    for folder, members in groups.items():
        hid = _ident(folder.rsplit("/", 1)[-1]) or "hazard-source"
        if hid in used:
            hid = _ident(folder.replace("/", "-")) or f"hazard-source-{len(used) + 1}"
        used.add(hid)
        lines += [
            f"  - id: {hid}  # TODO: one hazard source (重大危险源) per unit; from folder /{folder}",
            f"    name: {folder.rsplit('/', 1)[-1] or hid}  # TODO: its name",
            "    people_within_500m: 0  # TODO: people within 500 m (gives alpha, GB 18218-2018 Table 5)",
            "    chemicals: [{chemical: chlorine, max_t: 1}]  # TODO: chemicals, design maximum (t)",
            "    responsible:  # TODO: the responsible persons (包保责任人)",
            "      principal: {name: 主要负责人}",
            "      technical: {name: 技术负责人}",
            "      operational: {name: 操作负责人}",
            "    sensors:",
        ]
        for v, tag in members:
            lines += _sensor_lines(v, tag, ep)
    return "\n".join(lines)


def _sensor_lines(v: Variable, tag: str, endpoint: str) -> list[str]:
    unit = _UNIT_ALIASES.get(v.unit.strip(), v.unit.strip())
    kind = _KIND_OF_UNIT.get(unit)
    out = [f"      - tag: {tag}" + ("" if tag == v.name else f"  # display name {v.name!r}")]
    if kind is None:
        said = f"server says unit {v.unit!r}" if v.unit else "no EngineeringUnits on the server"
        out += [
            f"        kind: level  # TODO: {said}: level | temperature | pressure | gas_combustible | ...",
            '        unit: "%"  # TODO: the unit',
        ]
    else:
        out += [f"        kind: {kind}", f'        unit: "{unit}"']
    if kind in ("gas_toxic", "gas_combustible"):
        gas = "chlorine" if kind == "gas_toxic" else "methane"
        out.append(f"        chemical: {gas}  # TODO: the gas this detector measures")
    rng = f"[{v.range[0]:g}, {v.range[1]:g}]" if v.range and v.range[0] < v.range[1] else None
    out += [
        f"        range: {rng}" if rng else "        range: [0, 100]  # TODO: no EURange on the server",
        "        period_s: 1  # TODO: how often it reports",
        f"        description: {json.dumps(v.path, ensure_ascii=False)}",
        f"        binding: {{endpoint: {endpoint}, node: {json.dumps(v.node, ensure_ascii=False)}}}",
    ]
    return out
