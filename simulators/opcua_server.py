"""Serve simulated sensors from an OPC UA server (asyncua), as the plant's DCS would.

One server per OPC UA endpoint of the plant file, listening on the endpoint's
URL. Its namespace is registered first, so it is index 2 and the node ids of
the plant file (``ns=2;s=LT-101``) resolve. The address space is

    Objects / <enterprise id> / <hazard source id> / <sensor tag>

Each sensor variable (Double) carries the ``EngineeringUnits`` (UNECE code,
OPC UA Part 8) and ``EURange`` properties; each written value carries a
StatusCode from the reading's quality (Good / Uncertain / Bad) and its
simulated source timestamp.

Security follows the endpoint: ``none`` (no security), ``sign`` or
``sign_and_encrypt`` (Basic256Sha256). The server's certificate and key are
generated on first start under ``data_dir/opcua/<endpoint>/`` and reused
afterwards; when the endpoint names a ``server_certificate`` file that does not
exist yet, the certificate (DER) is copied there for the collector to trust.
With ``username`` set, clients must log in with it and the password from the
``password_env`` environment variable; anonymous access is then refused.
"""

from __future__ import annotations

import shutil
import socket
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import structlog
from asyncua import ua as _ua
from asyncua.crypto.cert_gen import setup_self_signed_certificate
from asyncua.crypto.permission_rules import User, UserRole
from asyncua.server.server import Server
from cryptography.x509.oid import ExtendedKeyUsageOID

from hazmon.plant.asyncua_internals import ValueAttribute, value_attribute
from hazmon.plant.model import OpcUaBinding, OpcUaEndpoint, Plant, Sensor
from hazmon.plant.reading import Quality, Reading

__all__ = ["NAMESPACE_URI", "OpcUaServerError", "SimOpcUaServer", "unece_unit_id"]

log = structlog.get_logger("hazmon.simulators")

# asyncua's generated type hints (Int16, String, DateTime aliases) do not accept
# plain Python values under mypy --strict; the module is used untyped here, at the edge.
ua: Any = _ua

NAMESPACE_URI = "urn:hazmon:simulator"

# UNECE Recommendation 20 common codes for the units hazmon accepts (OPC UA Part 8 §5.6.3).
_UNECE = {
    "m": "MTR",
    "mm": "MMT",
    "%": "P1",
    "°C": "CEL",
    "degC": "CEL",
    "K": "KEL",
    "MPa": "MPA",
    "kPa": "KPA",
    "bar": "BAR",
    "Pa": "PAL",
    "%LEL": "P1",
    "ppm": "59",
    "mg/m3": "GP",
    "%VOL": "P1",
    "m3/h": "MQH",
    "Nm3/h": "MQH",
    "t/h": "E18",
    "kg/h": "E93",
    "t": "TNE",
    "kg": "KGM",
}
_UNECE_URI = "http://www.opcfoundation.org/UA/units/un/cefact"
_STATUS = {
    Quality.GOOD: ua.StatusCode(ua.StatusCodes.Good),
    Quality.UNCERTAIN: ua.StatusCode(ua.StatusCodes.Uncertain),
    Quality.BAD: ua.StatusCode(ua.StatusCodes.Bad),
}
_POLICIES = {
    "none": [ua.SecurityPolicyType.NoSecurity],
    "sign": [ua.SecurityPolicyType.Basic256Sha256_Sign],
    "sign_and_encrypt": [ua.SecurityPolicyType.Basic256Sha256_SignAndEncrypt],
}


_CURRENT_READ = 0x01  # AccessLevel bits (OPC UA Part 3 §8.57)
_HISTORY_READ = 0x04


class OpcUaServerError(Exception):
    """The server cannot be set up (port taken, bad node id, missing password)."""


def unece_unit_id(code: str) -> int:
    """OPC UA UnitId of a UNECE common code (Part 8: up to three chars packed into an Int32)."""
    uid = 0
    for ch in code.upper()[:3]:
        uid = (uid << 8) | ord(ch)
    return uid


def _copy_if_missing(src: Path, dst: Path) -> None:
    if not dst.exists():
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)


class _Users:
    """Accept exactly one username/password; anonymous sessions are refused."""

    def __init__(self, username: str, password: str) -> None:
        self.username, self.password = username, password

    def get_user(
        self, iserver: Any, username: str | None = None, password: str | None = None, certificate: Any = None
    ) -> User | None:
        if username == self.username and password == self.password:
            return User(role=UserRole.User)
        return None


class SimOpcUaServer:
    """An OPC UA server serving the sensors bound to one endpoint.

    Args:
        endpoint: the endpoint as in the plant file.
        plant: the plant (its sensors bound to this endpoint are served).
        data_dir: where certificates are generated and kept.
        password: the login password (default: from the endpoint's password_env).
        history_s: how long the server keeps every value of its nodes for HistoryRead (in
            memory, lost with the server); 0 keeps none, like a gateway without a historian.
    """

    def __init__(
        self,
        endpoint: OpcUaEndpoint,
        plant: Plant,
        data_dir: str | Path,
        password: str | None = None,
        history_s: float = 0.0,
    ) -> None:
        self.endpoint = endpoint
        self.name = endpoint.name
        self.plant = plant
        self.sensors: list[Sensor] = [
            s
            for s in plant.sensors()
            if isinstance(s.binding, OpcUaBinding) and s.binding.endpoint == endpoint.name
        ]
        self.data_dir = Path(data_dir)
        self.password = password
        self.history_s = history_s
        self._server: Server | None = None
        self._nodes: dict[str, ua.NodeId] = {}
        self._attrs: dict[str, ValueAttribute] = {}  # tag -> the Value attribute of its node
        self._last: dict[str, Reading] = {}
        self.counters: dict[str, int] = {"writes": 0, "readings": 0, "starts": 0, "stops": 0}

    @property
    def running(self) -> bool:
        return self._server is not None

    async def _certificates(self) -> tuple[Path, Path]:
        d = self.data_dir / "opcua" / self.name
        d.mkdir(parents=True, exist_ok=True)
        cert, key = d / "server-cert.der", d / "server-key.pem"
        host = urlparse(self.endpoint.url).hostname or "127.0.0.1"
        await setup_self_signed_certificate(
            key,
            cert,
            f"{NAMESPACE_URI}:{self.name}",
            host if host not in ("0.0.0.0", "") else socket.gethostname(),
            [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH],
            {"commonName": f"hazmon simulator {self.name}", "organizationName": "hazmon"},
        )
        target = self.endpoint.server_certificate
        if target:
            _copy_if_missing(cert, Path(target))
        return cert, key

    async def start(self) -> None:
        """Build the address space (last values included) and listen.

        Raises:
            OpcUaServerError: a node id is not a ``ns=2;s=...``-style id, the
                password is missing, or the port cannot be bound.
        """
        if self._server is not None:
            return
        ep = self.endpoint
        users = None
        if ep.username:
            import os  # noqa: PLC0415

            pw = self.password if self.password is not None else os.environ.get(ep.password_env or "")
            if pw is None:
                raise OpcUaServerError(f"opcua {self.name}: username set but ${ep.password_env} is not set")
            users = _Users(ep.username, pw)
        server = Server(user_manager=users)  # type: ignore[arg-type]
        await server.init()
        server.set_endpoint(ep.url)
        server.set_server_name(f"hazmon simulator ({self.plant.enterprise.id} / {self.name})")
        await server.set_application_uri(f"{NAMESPACE_URI}:{self.name}")
        server.set_security_policy(_POLICIES.get(ep.security, _POLICIES["none"]))
        server.set_identity_tokens([ua.UserNameIdentityToken] if ep.username else [ua.AnonymousIdentityToken])
        if ep.security != "none":
            cert, key = await self._certificates()
            await server.load_certificate(str(cert))
            await server.load_private_key(str(key))
        idx = await server.register_namespace(NAMESPACE_URI)
        await self._build(server, idx)
        try:
            await server.start()
        except OSError as e:
            raise OpcUaServerError(f"opcua {self.name}: cannot listen on {ep.url}: {e}") from e
        self._server = server
        self.counters["starts"] += 1
        if self.history_s > 0:
            await server.historize_node_data_change(
                [server.get_node(n) for n in self._nodes.values()], period=timedelta(seconds=self.history_s)
            )
        if self._last:
            await self._write(self._last.values())
        log.info(
            "opcua server started",
            endpoint=self.name,
            url=ep.url,
            security=ep.security,
            nodes=len(self._nodes),
        )

    async def _build(self, server: Server, idx: int) -> None:
        ent = self.plant.enterprise
        root = await server.nodes.objects.add_object(ua.NodeId(ent.id, idx), ua.QualifiedName(ent.id, idx))
        by_hs: dict[str, Any] = {}
        started = datetime.now(UTC)
        for s in self.sensors:
            assert isinstance(s.binding, OpcUaBinding)
            try:
                nid = ua.NodeId.from_string(s.binding.node)
            except Exception as e:  # asyncua raises several kinds for a malformed id
                raise OpcUaServerError(
                    f"opcua {self.name}: sensor {s.tag}: bad node id {s.binding.node!r}"
                ) from e
            if nid.NamespaceIndex != idx:
                raise OpcUaServerError(
                    f"opcua {self.name}: sensor {s.tag}: node {s.binding.node} is not in ns={idx}"
                    " (the simulator's namespace)"
                )
            hs = by_hs.get(s.hazard_source)
            if hs is None:
                hs = await root.add_object(
                    ua.NodeId(f"{ent.id}/{s.hazard_source}", idx), ua.QualifiedName(s.hazard_source, idx)
                )
                by_hs[s.hazard_source] = hs
            var = await hs.add_variable(
                nid, ua.QualifiedName(s.tag, idx), float(s.range[0]), ua.VariantType.Double
            )
            await var.write_attribute(
                ua.AttributeIds.Description,
                ua.DataValue(ua.Variant(ua.LocalizedText(s.description or s.tag))),
            )
            if self.history_s > 0:  # what a client checks before HistoryRead (Part 3 §5.6.2)
                access = ua.Variant(_CURRENT_READ | _HISTORY_READ, ua.VariantType.Byte)
                for attr in (ua.AttributeIds.AccessLevel, ua.AttributeIds.UserAccessLevel):
                    await var.write_attribute(attr, ua.DataValue(access))
                await var.write_attribute(ua.AttributeIds.Historizing, ua.DataValue(ua.Variant(True)))
            code = _UNECE.get(s.unit, "")
            eu = ua.EUInformation(
                NamespaceUri=_UNECE_URI,
                UnitId=unece_unit_id(code) if code else -1,
                DisplayName=ua.LocalizedText(s.unit),
                Description=ua.LocalizedText(s.unit),
            )
            await var.add_property(
                ua.NodeId(f"{s.tag}.EngineeringUnits", idx), ua.QualifiedName("EngineeringUnits", 0), eu
            )
            await var.add_property(
                ua.NodeId(f"{s.tag}.EURange", idx),
                ua.QualifiedName("EURange", 0),
                ua.Range(Low=float(s.range[0]), High=float(s.range[1])),
            )
            # until the first reading the value is unknown (since the server started: asyncua's
            # history keeps values by source timestamp and fails on one without)
            await server.write_attribute_value(
                nid,
                ua.DataValue(
                    ua.Variant(float(s.range[0]), ua.VariantType.Double),
                    ua.StatusCode(ua.StatusCodes.BadWaitingForInitialData),
                    SourceTimestamp=started,
                ),
            )
            self._nodes[s.tag] = nid
            self._attrs[s.tag] = value_attribute(server, nid)

    async def stop(self) -> None:
        if self._server is not None:
            server, self._server = self._server, None
            await server.stop()
            self.counters["stops"] += 1
            log.info("opcua server stopped", endpoint=self.name)

    async def send(self, readings: Sequence[Reading]) -> None:
        """Write the newest reading of each sensor (a server holds current values, not history)."""
        nodes = self._nodes
        newest = {r.tag: r for r in readings if r.tag in nodes}
        self.counters["readings"] += len(readings)
        self._last.update(newest)
        if self._server is not None:
            await self._write(newest.values())

    async def _write(self, readings: Iterable[Reading]) -> None:
        """Write a tick's values into the address space in one pass.

        What ``Server.write_attribute_value`` does per node, without its three
        coroutine levels, node lookup and type check per value: the Value
        attributes of our own nodes are looked up once per server start (they
        are Doubles by construction). The semantics are the same: the value,
        its StatusCode, source and server timestamps; a Bad value is written
        as null (Part 4 §7.7.1, as asyncua does); subscribed clients get a data
        change for every write.
        """
        if self._server is None:
            return
        attrs = self._attrs
        now = datetime.now(UTC)
        status, double, null = _STATUS, ua.VariantType.Double, ua.VariantType.Null
        variant, datavalue, fromts, bad = ua.Variant, ua.DataValue, datetime.fromtimestamp, Quality.BAD
        n = 0
        for r in readings:
            q = r.quality
            dv = datavalue(
                variant(None, null) if q is bad else variant(float(r.value), double),
                status[q],
                SourceTimestamp=fromts(r.ts_us / 1e6, UTC),
                ServerTimestamp=now,
            )
            av = attrs[r.tag]
            av.value = dv
            n += 1
            if av.datachange_callbacks:  # a client subscribes to this node
                for handle, callback in list(av.datachange_callbacks.items()):
                    try:
                        await callback(handle, dv)
                    except Exception:  # asyncua logs and goes on, so do we
                        log.exception("opcua data change callback failed", endpoint=self.name, tag=r.tag)
        self.counters["writes"] += n
