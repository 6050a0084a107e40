"""The plant file's sections that are pydantic schemas (`hazmon.plant.yamlmodel`).

Each section's keys, types, bounds, patterns and cross-field checks are written once, in its
schema (`_EnterpriseIn`, `_OpcUaIn`...); the reader builds the model object (`Enterprise`,
`OpcUaEndpoint`...) by keyword. `hazmon.plant.config` calls these readers over the nodes of
the file, so every problem is still ``file:line: field.path: reason``.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from hazmon.plant.model import (
    BureauContact,
    Enterprise,
    Equipment,
    MqttBroker,
    OpcUaEndpoint,
    Person,
    Region,
    Responsible,
)
from hazmon.plant.standards import chemical
from hazmon.plant.supervision_standards import DEFAULT_TIMEZONE, valid_timezone
from hazmon.plant.yamlmodel import (
    SECTION,
    Number,
    Positive,
    Whole,
    YText,
    build,
    check,
    choice,
    pattern,
    validate,
)
from hazmon.plant.yamlnode import ID_PATTERN, ID_WHAT, Node, expand_env, port_problem

__all__ = [
    "EquipmentIn",
    "Id",
    "Pair",
    "ResponsibleIn",
    "bureaus",
    "enterprise",
    "known_chemical",
    "mqtt_broker",
    "opcua_endpoint",
]


_OPC_URL = r"opc\.tcp://[^\s/]+(:\d+)?(/\S*)?"
_MQTT_URL = r"mqtts?://[^\s/:]+(:\d+)?"


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _PersonIn:
    name: YText
    phone: YText = ""
    email: Annotated[YText, AfterValidator(pattern(r"[^@\s]+@[^@\s]+", "an e-mail address"))] = ""

    def person(self) -> Person:
        return build(Person, self)


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class ResponsibleIn:
    """A hazard source's ``responsible:`` mapping: the three responsible persons."""

    principal: _PersonIn
    technical: _PersonIn
    operational: _PersonIn

    def responsible(self) -> Responsible:
        return Responsible(
            principal=self.principal.person(),
            technical=self.technical.person(),
            operational=self.operational.person(),
        )


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _BureausIn:
    """The ``bureaus:`` mapping: contacts per supervising level."""

    county: tuple[_PersonIn, ...] = ()
    city: tuple[_PersonIn, ...] = ()
    province: tuple[_PersonIn, ...] = ()


def _iana(tz: str) -> str:
    if not valid_timezone(tz):
        raise ValueError(f"'{tz}' is not an IANA time zone (e.g. Asia/Shanghai)")
    return tz


Id = Annotated[YText, AfterValidator(pattern(ID_PATTERN, ID_WHAT))]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _RegionIn:
    province: YText
    city: YText
    county: YText
    code: Annotated[YText, AfterValidator(pattern(r"[1-9]\d{5}", "a 6-digit region code"))]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _EnterpriseIn:
    """The ``enterprise:`` section (`Enterprise` is what the rest of hazmon reads)."""

    id: Id
    name: YText
    region: _RegionIn
    name_en: YText | None = None  # None: the name
    locale: Annotated[YText, BeforeValidator(choice("zh", "en"))] = "zh"
    timezone: Annotated[YText, AfterValidator(_iana)] = DEFAULT_TIMEZONE


def enterprise(n: Node) -> Enterprise | None:
    e = validate(n, _EnterpriseIn)
    if e is None:
        return None
    name_en = e.name if e.name_en is None else e.name_en
    return build(Enterprise, e, name_en=name_en, region=build(Region, e.region))


def bureaus(n: Node) -> list[BureauContact]:
    b = validate(n, _BureausIn)
    if b is None:
        return []
    levels = [k.value for k, _ in n.node.value]  # the levels in the order the file gives them
    return [build(BureauContact, p, level=level) for level in levels for p in getattr(b, level)]


def _port_ok(url: str) -> str:
    why = port_problem(url)
    if why is not None:
        raise ValueError(why)
    return url


# ${ENV} expanded once at load, then the form of the URL, then its port (1-65535)
OpcUrl = Annotated[
    YText,
    AfterValidator(expand_env),
    AfterValidator(pattern(_OPC_URL, "an opc.tcp:// URL")),
    AfterValidator(_port_ok),
]
MqttUrl = Annotated[
    YText,
    AfterValidator(expand_env),
    AfterValidator(pattern(_MQTT_URL, "an mqtt:// or mqtts:// URL")),
    AfterValidator(_port_ok),
]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _OpcUaIn:
    """One item of ``endpoints.opcua`` (`OpcUaEndpoint` is what the collector reads)."""

    name: Id
    url: OpcUrl
    mode: Annotated[YText, BeforeValidator(choice("subscribe", "poll"))] = "subscribe"
    security: Annotated[YText, BeforeValidator(choice("none", "sign", "sign_and_encrypt"))] = "none"
    certificate: YText = ""
    private_key: YText = ""
    server_certificate: YText = ""
    username: YText = ""
    password_env: YText = ""

    @model_validator(mode="after")
    def _keys_for_security(self) -> _OpcUaIn:
        needs = self.security != "none" and not (self.certificate and self.private_key)
        check(
            (("security",), f"security '{self.security}' needs certificate and private_key")
            if needs
            else None
        )
        return self

    def endpoint(self) -> OpcUaEndpoint:
        unset = ("certificate", "private_key", "server_certificate", "username", "password_env")
        return build(OpcUaEndpoint, self, **{k: getattr(self, k) or None for k in unset})


def _qos(q: int) -> int:
    if q > 1:
        raise ValueError(f"qos must be 0 or 1, got {q}")
    return q


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _MqttIn:
    """One item of ``endpoints.mqtt`` (`MqttBroker` is what the collector reads)."""

    name: Id
    url: MqttUrl
    protocol: Annotated[YText, BeforeValidator(choice("5", "3.1.1"))] = "5"
    client_id: YText = "hazmon"
    qos: Annotated[Whole, Field(ge=0), AfterValidator(_qos)] = 1
    session_expiry_s: Annotated[Whole, Field(ge=0)] = 86_400
    username: YText = ""
    password_env: YText = ""
    ca_file: YText = ""
    shared_group: Id = ""

    @model_validator(mode="after")
    def _shared_needs_v5(self) -> _MqttIn:
        bad = bool(self.shared_group) and self.protocol != "5"
        check((("shared_group",), "shared subscriptions need protocol '5'") if bad else None)
        return self

    def broker(self) -> MqttBroker:
        unset = ("username", "password_env", "ca_file", "shared_group")
        return build(MqttBroker, self, **{k: getattr(self, k) or None for k in unset})


def opcua_endpoint(n: Node) -> OpcUaEndpoint | None:
    e = validate(n, _OpcUaIn)
    return None if e is None else e.endpoint()


def mqtt_broker(n: Node) -> MqttBroker | None:
    b = validate(n, _MqttIn)
    return None if b is None else b.broker()


def known_chemical(key: str) -> str:
    if chemical(key) is None:
        raise ValueError(
            f"unknown chemical '{key}' (use a hazmon id or CAS number of hazmon.plant.standards)"
        )
    return key


def _two_items(v: object) -> object:
    if isinstance(v, list) and len(v) != 2:
        raise ValueError(f"expected two numbers [a, b], got {len(v)} items")
    return v


Pair = Annotated[tuple[Number, Number], BeforeValidator(_two_items)]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class EquipmentIn:
    """One item of a hazard source's ``equipment:`` (`Equipment` is what the simulators read)."""

    id: Id
    type: Annotated[YText, BeforeValidator(choice("tank", "sphere", "vessel"))]
    capacity_m3: Positive
    height_m: Positive
    chemical: Annotated[YText, AfterValidator(known_chemical)] | None = None
    position: Pair | None = None

    def equipment(self) -> Equipment:
        return build(Equipment, self, chemical=None if self.chemical is None else chemical(self.chemical))
