"""asyncua below its public API, checked: the installed release is the one the internals module was written for.

`hazmon.plant.asyncua_internals` is the one place the collector and the simulator reach into
asyncua's private parts (the client's secure channel, the binary decoder, the server's address
space). When asyncua changes, this test is the one that fails, naming the installed version and
each name that moved, before a collector silently stops collecting.
"""

from __future__ import annotations

import pytest
from asyncua import Client, Server, ua
from asyncua.client.ua_client import UaClient

from hazmon.plant import asyncua_internals as internals
from testkit import free_port


def test_the_installed_asyncua_has_every_private_name_hazmon_uses() -> None:
    found = internals.problems()
    assert found == [], (
        f"asyncua {internals.installed_version()} is not what hazmon.plant.asyncua_internals was written for "
        f"(asyncua {internals.WRITTEN_FOR}): " + "; ".join(found)
    )


def test_another_release_is_named_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    """The check itself: another version and a changed shape are each reported, by name."""
    monkeypatch.setattr(internals, "installed_version", lambda: "2.2.0")
    assert any("asyncua 2.2.0 installed" in p for p in internals.problems())

    def history_read(self: UaClient, params: object) -> object:  # no longer a coroutine
        return None

    monkeypatch.setattr(UaClient, "history_read", history_read)
    assert any("UaClient.history_read is no longer a coroutine function" in p for p in internals.problems())

    async def read(self: UaClient, nodes: object) -> object:  # renamed parameter
        return None

    monkeypatch.setattr(UaClient, "read", read)
    assert any("UaClient.read takes ['self', 'nodes']" in p for p in internals.problems())


async def test_the_internals_work_against_a_real_server() -> None:
    """Each helper on a live asyncua server and client: a raw Read, a value written in place."""
    port = free_port()
    server = Server()
    await server.init()
    server.set_endpoint(f"opc.tcp://127.0.0.1:{port}/t")
    idx = await server.register_namespace("urn:test")
    var = await server.nodes.objects.add_variable(ua.NodeId("X", idx), "X", 1.5)
    async with server:
        attr = internals.value_attribute(server, var.nodeid)
        assert attr.value.Value.Value == 1.5
        client = Client(f"opc.tcp://127.0.0.1:{port}/t")
        async with client:
            req = ua.ReadRequest()
            req.Parameters.NodesToRead = [
                ua.ReadValueId(NodeId=var.nodeid, AttributeId=ua.AttributeIds.Value)
            ]
            res = internals.decode(ua.ReadResponse, await internals.send_request(client, req))
            assert res.Results[0].Value.Value == 1.5
            dv = ua.DataValue(ua.Variant(2.5, ua.VariantType.Double))
            attr.value = dv  # written in place, as the simulator does
            (got,) = await internals.read(
                client,
                ua.ReadParameters(
                    NodesToRead=[ua.ReadValueId(NodeId=var.nodeid, AttributeId=ua.AttributeIds.Value)]
                ),
            )
            assert got.Value.Value == 2.5
