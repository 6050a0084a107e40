"""`hazmon opcua browse`: the variables of a server with node ids, units and ranges.

Walks the Objects folder (async API), reads each variable's ``EngineeringUnits``
and ``EURange`` properties, and can print them as sensor entries to paste into
the plant file (kind and limits are left for the engineer to fill in).
"""

from __future__ import annotations

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


def format_sensors(found: list[Variable], endpoint: str) -> str:
    """Plant-file sensor entries; ``kind``, ``period_s`` and limits need the engineer's review."""
    lines = ["sensors:"]
    for v in found:
        rng = (
            f"[{v.range[0]:g}, {v.range[1]:g}]" if v.range else "[0, 100]  # CHECK: no EURange on the server"
        )
        lines += [
            f"  - tag: {v.name}",
            "    kind: level  # CHECK: level | temperature | pressure | gas_combustible | gas_toxic | ...",
            f'    unit: "{v.unit}"' + ("" if v.unit else "  # CHECK: no EngineeringUnits on the server"),
            f"    range: {rng}",
            "    period_s: 1  # CHECK",
            f"    description: {v.path}",
            f'    binding: {{endpoint: {endpoint}, node: "{v.node}"}}',
        ]
    return "\n".join(lines)
