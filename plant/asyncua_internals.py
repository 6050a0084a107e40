"""The one place hazmon touches asyncua below its public API, for the version it was written for.

Both the collector and the simulator step past asyncua's documented API where it costs
too much under 10,000 items at 1 Hz:

- the collector sends its own Publish requests on the client's secure channel
  (``Client.uaclient.protocol.send_request``) and reads the raw responses with asyncua's
  binary decoder (``struct_from_binary`` over a ``Buffer``), so a full queue delays the next
  Publish instead of asyncua's loop dropping values; it also calls the low-level service
  methods of ``Client.uaclient`` (Read, HistoryRead, CreateMonitoredItems) with whole
  parameter sets;
- the simulator writes values straight into the Value attribute of its nodes in the
  server's address space (``Server.iserver.aspace[node].attributes[Value]``: an
  ``AttributeValue`` with ``value`` and ``datachange_callbacks``), and calls those callbacks
  as ``Server.write_attribute_value`` does.

None of these is promised to stay as it is between asyncua releases. pyproject.toml pins
``asyncua>=2.1,<2.2``; `problems` lists what differs in the installed asyncua from what this
module was written for, and tests/plant/test_asyncua_internals.py fails with that list,
naming the installed version. To move to another asyncua: read the release's changes to the
names below, adapt this module, then widen `WRITTEN_FOR` and the pin together.

This module lives in the ground (`hazmon.plant`) because both components use it and no
component may import another. It only names attributes; it opens no connection itself.
"""

from __future__ import annotations

import importlib.metadata
import inspect
from collections.abc import Callable
from typing import Any, Protocol

from asyncua import ua as _ua
from asyncua.client.client import Client
from asyncua.client.ua_client import UaClient, UASocketProtocol
from asyncua.common.utils import Buffer
from asyncua.server.address_space import AddressSpace, AttributeValue, NodeData
from asyncua.server.server import Server
from asyncua.ua.ua_binary import struct_from_binary as _struct_from_binary
from asyncua.ua.uatypes import MAX_OPC_FILETIME

__all__ = [
    "MAX_OPC_FILETIME",
    "WRITTEN_FOR",
    "Buffer",
    "ValueAttribute",
    "create_monitored_items",
    "decode",
    "history_read",
    "installed_version",
    "problems",
    "read",
    "send_request",
    "value_attribute",
]

WRITTEN_FOR = ("2.1",)  # asyncua major.minor releases whose internals this module was read against

ua: Any = _ua  # asyncua's generated types do not type-check under --strict
_decode: Callable[[Any, Buffer], Any] = _struct_from_binary


class ValueAttribute(Protocol):
    """The Value attribute of a node in asyncua's address space (``AttributeValue``)."""

    value: Any  # the current ua.DataValue
    datachange_callbacks: dict[int, Callable[..., Any]]  # handle -> async callback(handle, DataValue)


def installed_version() -> str:
    """The version of the installed asyncua distribution."""
    return importlib.metadata.version("asyncua")


def decode(cls: Any, data: bytes | Buffer) -> Any:
    """An instance of the ua type ``cls`` read from binary ``data`` (asyncua's decoder).

    Given a `Buffer`, its ``cur_pos`` is left after what was read.
    """
    return _decode(cls, data if isinstance(data, Buffer) else Buffer(data))


async def send_request(client: Client, request: Any, wait_s: float | None = None) -> Buffer:
    """One request on the client's secure channel; the raw response (a ServiceFault raises).

    ``wait_s``: the client's timeout when None; 0 waits as long as the server takes.
    """
    proto = client.uaclient.protocol
    if proto is None:
        raise ConnectionError("connection is closed")
    data: Buffer = await proto.send_request(request, wait_s)
    return data


async def read(client: Client, params: Any) -> list[Any]:
    """The Read service with a whole ``ua.ReadParameters``: one DataValue per node."""
    out: list[Any] = await client.uaclient.read(params)
    return out


async def history_read(client: Client, params: Any) -> list[Any]:
    """The HistoryRead service with a whole ``ua.HistoryReadParameters``: one result per node."""
    out: list[Any] = await client.uaclient.history_read(params)
    return out


async def create_monitored_items(client: Client, params: Any) -> list[Any]:
    """CreateMonitoredItems with a whole ``ua.CreateMonitoredItemsParameters``: one result per item."""
    out: list[Any] = await client.uaclient.create_monitored_items(params)
    return out


def value_attribute(server: Server, node: Any) -> ValueAttribute:
    """The Value attribute of ``node`` in the running server's address space."""
    attr: ValueAttribute = server.iserver.aspace[node].attributes[ua.AttributeIds.Value]
    return attr


def _params(fn: Any) -> list[str]:
    return list(inspect.signature(fn).parameters)


def _coroutine(problems: list[str], owner: type, name: str, first: list[str]) -> None:
    fn = getattr(owner, name, None)
    where = f"{owner.__module__}.{owner.__qualname__}.{name}"
    if fn is None:
        problems.append(f"{where} is gone")
    elif not inspect.iscoroutinefunction(fn):
        problems.append(f"{where} is no longer a coroutine function")
    elif _params(fn)[: len(first) + 1] != ["self", *first]:
        problems.append(f"{where} takes {_params(fn)}, expected (self, {', '.join(first)}, ...)")


def problems() -> list[str]:
    """What differs in the installed asyncua from what this module uses ([] when all is as expected).

    Checks the version, then each private name used: that it exists, and has the shape
    (attribute, coroutine and its parameters, callback table) this module relies on.
    """
    out: list[str] = []
    version = installed_version()
    if ".".join(version.split(".")[:2]) not in WRITTEN_FOR:
        out.append(
            f"asyncua {version} installed; hazmon.plant.asyncua_internals was written for {WRITTEN_FOR}"
        )
    # the client: Client.uaclient (set in __init__), UaClient.protocol (set in __init__, None until connected)
    client = Client("opc.tcp://127.0.0.1:4840/")
    if not isinstance(getattr(client, "uaclient", None), UaClient):
        out.append("asyncua Client has no uaclient attribute holding a UaClient")
    elif not hasattr(client.uaclient, "protocol"):
        out.append("asyncua UaClient has no protocol attribute")
    _coroutine(out, UASocketProtocol, "send_request", ["request", "timeout"])
    _coroutine(out, UaClient, "read", ["parameters"])
    _coroutine(out, UaClient, "history_read", ["params"])
    _coroutine(out, UaClient, "create_monitored_items", ["params"])
    if getattr(Buffer(b"\x00\x00", 1), "cur_pos", None) != 1:
        out.append("asyncua Buffer(data, start_pos) does not show its position as cur_pos")
    if _params(_decode)[:2] != ["objtype", "data"]:
        out.append(f"asyncua struct_from_binary takes {_params(_decode)}, expected (objtype, data)")
    # the server: Server.iserver.aspace[node] -> NodeData.attributes[Value] -> AttributeValue
    server = Server()
    aspace = getattr(getattr(server, "iserver", None), "aspace", None)
    if not isinstance(aspace, AddressSpace):
        out.append("asyncua Server has no iserver.aspace holding an AddressSpace")
    if not callable(getattr(AddressSpace, "__getitem__", None)):
        out.append("asyncua AddressSpace cannot be indexed by node id")
    if not isinstance(getattr(NodeData(ua.NodeId(1, 0)), "attributes", None), dict):
        out.append("asyncua NodeData has no attributes dict")
    av = AttributeValue(ua.DataValue())
    if not hasattr(av, "value"):
        out.append("asyncua AttributeValue has no value")
    if not isinstance(getattr(av, "datachange_callbacks", None), dict):
        out.append("asyncua AttributeValue has no datachange_callbacks dict")
    return out
