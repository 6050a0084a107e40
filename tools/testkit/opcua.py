"""Bare asyncua load servers: many Double variables, and one tick of new values for all of them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from asyncua import ua
from asyncua.server.server import Server

__all__ = ["big_server", "write_tick"]


async def big_server(n: int, port: int, folders: int = 100) -> tuple[object, int]:
    """A bare asyncua server with ``n`` Double variables ``ns=2;s=S<i>``; (server, namespace index).

    The variables are spread over folders: asyncua adds a reference in time linear in the
    parent's children, so one flat folder of 10,000 takes minutes.
    """
    srv = Server()
    await srv.init()
    srv.set_endpoint(f"opc.tcp://127.0.0.1:{port}/big")
    idx = await srv.register_namespace("urn:hazmon:test:big")
    for f in range(folders):
        await srv.nodes.objects.add_folder(ua.NodeId(f"F{f}", idx), ua.QualifiedName(f"F{f}", idx))
    reqs = []
    for i in range(n):
        attrs = ua.VariableAttributes(
            DisplayName=ua.LocalizedText(f"S{i}"),
            Value=ua.Variant(0.0, ua.VariantType.Double),
            DataType=ua.NodeId(ua.ObjectIds.Double),
            ValueRank=-1,
            AccessLevel=1,
            UserAccessLevel=1,
        )
        reqs.append(
            ua.AddNodesItem(
                ParentNodeId=ua.NodeId(f"F{i % folders}", idx),
                ReferenceTypeId=ua.NodeId(ua.ObjectIds.Organizes),
                RequestedNewNodeId=ua.NodeId(f"S{i}", idx),
                BrowseName=ua.QualifiedName(f"S{i}", idx),
                NodeClass=ua.NodeClass.Variable,
                NodeAttributes=attrs,
                TypeDefinition=ua.NodeId(ua.ObjectIds.BaseDataVariableType),
            )
        )
    res = await srv.iserver.isession.add_nodes(reqs)
    assert all(r.StatusCode.is_good() for r in res)
    await srv.start()
    return srv, idx


async def write_tick(attrs: list[Any], k: int, ts: datetime) -> None:
    """Tick ``k`` of a load: node i gets 20 + ((7k + i) mod 400) / 10, stamped ``ts``.

    ``attrs`` are the nodes' Value attributes. What ``Server.write_attribute_value`` does per node
    (the value, then every data change callback), without its coroutine levels and node lookup
    per value, as the simulator's server does: asyncua's own path could not write 10,000 values a
    second on this machine (0.5-0.7 Hz). The values stay inside the sensors' range [-40, 80] and
    are new every tick: a normal plant, not 10,000 sensor faults a second.
    """
    for i, av in enumerate(attrs):
        dv = ua.DataValue(
            ua.Variant(20 + (k * 7 + i) % 400 / 10, ua.VariantType.Double),
            SourceTimestamp=ts,
            ServerTimestamp=ts,
        )
        av.value = dv
        for handle, callback in list(av.datachange_callbacks.items()):
            await callback(handle, dv)
