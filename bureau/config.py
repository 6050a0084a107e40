"""The bureau daemon's config file (``bureau.yaml``), parsed once into frozen, typed objects.

::

    id: hz-city                       # this bureau (letters, digits, '_', '-', '.')
    name: 杭州市应急管理局
    region: {code: "330100", level: city}     # GB/T 2260 code at its level (hazmon.plant.regions)
    database: {dsn: "", storage_mode: auto}   # "" -> $HAZMON_DSN
    broker:
      url: mqtts://broker.bureau.example:8883 # mqtt:// or mqtts:// (TLS)
      username: bureau
      password_env: HAZMON_BUREAU_MQTT_PASSWORD
      ca_file: /etc/hazmon/broker-ca.pem
      group: hazmon-bureau            # shared subscription: $share/<group>/hazmon/v1/+/up/#
      client_id: hazmon-bureau-1      # one per worker process (each keeps its own session)
      session_expiry_s: 604800        # the broker keeps the session (and unacknowledged messages)
    http: {host: 127.0.0.1, port: 9200}
    tokens:                           # API users: a token from an environment variable or its SHA-256
      - {name: duty-officer, token_env: HAZMON_BUREAU_TOKEN_OFFICER, role: officer,
         region: {code: "330100", level: city}}
      - {name: xihu-viewer, sha256: 5e88...,  role: viewer, region: {code: "330106", level: county}}
    limits: {max_skew_s: 300, max_message_bytes: 262144, flood_rate_per_s: 5, flood_burst: 20000}
    ingest: {max_messages: 200, max_wait_s: 0.05, fast_max_messages: 20, receive_maximum: 1000,
             park_s: 60, park_retry_s: 0.5}     # how each worker takes the feed (BatchSettings)
    https_link: {enabled: true, port: 8443, cert_file: ..., key_file: ..., enterprises: [...]}  # below
    console:                          # the web console's users (hazmon.console.bureau_pages)
      users:
        - {name: 王伟, role: officer, password_hash: "scrypt$15$8$1$...",
           region: {code: "330100", level: city}}
    notify: {channels: [...], recipients: [...]}   # who of the staff is told of a new warning (below)
    parent: {url: mqtts://broker.nation.example:8883, username: js-province}  # federation (below)
    children: [{id: nj-city, region: {code: "320100", level: city}}]
    supervision: {min_level: {general: county, major: city}, escalate_after_days: 0}  # 挂牌督办

Every problem of the file is reported as ``file:line: field.path: reason``
(`hazmon.plant.yamlmodel`). A token's region must lie inside the bureau's own.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from hazmon.bureau.https_link_config import HttpsLink
from hazmon.bureau.plan_config import BureauPlan
from hazmon.bureau.supervision_config import SupervisionSection
from hazmon.bureau.warning_config import Warnings, to_settings
from hazmon.plant.bureau_standards import WarningSettings
from hazmon.plant.link.broker import BrokerAddress
from hazmon.plant.link.federation import RESERVED_CHILD_IDS
from hazmon.plant.regions import Scope, prefix
from hazmon.plant.web_users import BureauConsoleSettings, UserRegion
from hazmon.plant.yamlmodel import (
    SECTION,
    Flag,
    NonNegative,
    Number,
    Positive,
    Whole,
    YText,
    check,
    choice,
    pattern,
    validate,
)
from hazmon.plant.yamlnode import Node, expand_env, parse_file, port_problem
from hazmon.store import dsn_from_env

__all__ = [
    "BatchSettings",
    "BrokerSettings",
    "BureauConfig",
    "Channel",
    "ChildSettings",
    "DatabaseSettings",
    "HttpSettings",
    "Limits",
    "Notify",
    "NotifyRecipient",
    "ParentSettings",
    "RegionSettings",
    "TokenSettings",
    "inside",
    "load_config",
    "parse_config",
]

_ID = r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}"
_VAR = r"[A-Za-z_][A-Za-z0-9_]*"
Id = Annotated[YText, AfterValidator(pattern(_ID, "an id (letters, digits, '_', '-', '.')"))]
Sha256 = Annotated[YText, AfterValidator(pattern(r"[0-9a-fA-F]{64}", "a hex SHA-256 digest"))]
VarName = Annotated[YText, AfterValidator(pattern(_VAR, "an environment variable name"))]


def _mqtt_url(url: str) -> str:
    url = expand_env(url)  # ${NAME} / ${NAME:-default}, once at load
    u = urlsplit(url)
    if u.scheme not in ("mqtt", "mqtts") or not u.hostname:
        raise ValueError(f"'{url}' is not mqtt://host[:port] or mqtts://host[:port]")
    why = port_problem(url)
    if why is not None:
        raise ValueError(why)
    return url


def _dsn(dsn: str) -> str:
    why = port_problem(dsn) if "://" in dsn else None
    if why is not None:
        raise ValueError(why.replace(dsn, "the dsn"))  # not the password the URL may hold
    return dsn


def _child_id(v: str) -> str:
    if v in RESERVED_CHILD_IDS:
        raise ValueError(f"'{v}' is reserved in the link's topics")
    return v


def inside(outer: Scope, inner: Scope) -> bool:
    """Whether everything ``inner`` covers lies inside ``outer`` (a county inside its city)."""
    return prefix(inner).startswith(prefix(outer))


RegionSettings = UserRegion  # `{code, level}`: one definition for the bureau, its tokens and users


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class DatabaseSettings:
    dsn: Annotated[YText, AfterValidator(expand_env), AfterValidator(_dsn)] = (
        ""  # "" -> $HAZMON_DSN, else the local default
    )
    storage_mode: Annotated[YText, BeforeValidator(choice("auto", "plain", "timescaledb"))] = "auto"
    migrate: Flag = True  # apply migrations on start

    def resolved_dsn(self) -> str:
        return self.dsn or dsn_from_env()


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class BrokerSettings(BrokerAddress):
    url: Annotated[YText, AfterValidator(_mqtt_url)] = "mqtt://127.0.0.1:1883"
    username: YText | None = None
    password_env: VarName | None = None
    ca_file: YText | None = None
    group: Id = "hazmon-bureau"
    client_id: Id = "hazmon-bureau"
    session_expiry_s: Annotated[Whole, Field(ge=0)] = 604_800
    keepalive_s: Annotated[Whole, Field(ge=5)] = 30
    retry_max_s: Positive = 30.0

    @model_validator(mode="after")
    def _password_needs_user(self) -> BrokerSettings:
        check(
            (("password_env",), "a password needs a username")
            if self.password_env is not None and self.username is None
            else None
        )
        return self


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class HttpSettings:
    host: YText = "127.0.0.1"
    port: Annotated[Whole, Field(ge=0, le=65535)] = 9200  # 0: a free port (tests)


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class TokenSettings:
    name: Id
    role: Annotated[YText, BeforeValidator(choice("viewer", "officer"))]
    region: RegionSettings
    token_env: VarName | None = None
    sha256: Sha256 | None = None

    @model_validator(mode="after")
    def _one_secret(self) -> TokenSettings:
        if self.token_env is not None and self.sha256 is not None:
            check((("sha256", "token_env"), "give sha256 or token_env, not both"))
        if self.token_env is None and self.sha256 is None:
            check(((), "missing sha256 (or token_env)"))
        if self.token_env is not None and not os.environ.get(self.token_env):
            check((("token_env",), f"environment variable {self.token_env} is not set"))
        return self

    def digest(self) -> str:
        """The hex SHA-256 of the bearer token (read from ``token_env`` when given)."""
        if self.sha256 is not None:
            return self.sha256.lower()
        return hashlib.sha256(os.environ.get(self.token_env or "", "").encode()).hexdigest()


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class Limits:
    max_skew_s: Annotated[float, Field(gt=0, allow_inf_nan=False)] = 300.0
    max_message_bytes: Annotated[Whole, Field(ge=1024)] = 256 * 1024
    # per enterprise (token bucket, per worker): hazmon.bureau.flood; the burst holds a 72 h backlog
    flood_rate_per_s: Positive = 5.0
    flood_burst: Annotated[Whole, Field(ge=1)] = 20_000


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class BatchSettings:
    """The ``ingest:`` section: how a worker takes the feed (`hazmon.bureau.subscriber`).

    The bulk lane's batch size and wait, the fast lane's, the in-flight bound each MQTT session
    asks the broker for (MQTT 5 Receive Maximum), and how long a message of a not yet registered
    enterprise is parked (`hazmon.bureau.batch`).
    """

    # the defaults as measured in bench/bureau.py at the national size (bureau/README.md, Scale):
    # 400 and 4,000 stored a backlog 1.5x and drained an outage 1.4x faster than 200 and 1,000
    max_messages: Annotated[Whole, Field(ge=1, le=10_000)] = 400  # aggregates messages in one transaction
    max_wait_s: Annotated[Number, Field(ge=0, le=5)] = 0.05  # after a batch's first message
    fast_max_messages: Annotated[Whole, Field(ge=1, le=1_000)] = 20
    receive_maximum: Annotated[Whole, Field(ge=1, le=65_535)] = 4000  # unacknowledged per session
    park_s: Annotated[Number, Field(ge=0, le=3600)] = 60.0  # a not yet registered enterprise's
    park_retry_s: Annotated[Number, Field(ge=0.01, le=60)] = 0.5

    @model_validator(mode="after")
    def _window_holds_a_batch(self) -> BatchSettings:
        check(
            (("receive_maximum",), f"{self.receive_maximum} is below max_messages ({self.max_messages}):"
             " the broker would never let a batch fill")
            if self.receive_maximum < self.max_messages
            else None,
        )  # fmt: skip
        return self


# ---------------------------------------------------------------- notify:
# The bureau config's ``notify:`` section: who of the bureau's staff is told of a new warning, and how.
#
# ::
#
#     notify:
#       channels:                        # how to reach people (the alarm notifiers, wired by the roof)
#         - {name: mail, kind: email, host: smtp.example.gov.cn, port: 587, from: hazmon@example.gov.cn,
#            username: hazmon, password_env: HAZMON_SMTP_PASSWORD}
#         - {name: duty-hook, kind: webhook, url: "https://duty.example.gov.cn/hook",
#            secret_env: HAZMON_HOOK_SECRET}
#         - {name: platform, kind: mqtt, url: "mqtts://platform.example.gov.cn:8883",
#            topic: "bureau/{region}"}
#       recipients:                      # each region's staff: a warning of an enterprise in it is sent
#         - {name: liuhe-duty, channel: mail, address: duty@liuhe.example.gov.cn,
#            region: {code: "320116", level: county}, colours: [red, orange, yellow]}
#         - {name: city-hook, channel: duty-hook, region: {code: "320100", level: city},
#            colours: [red, orange]}
#       retry: {attempts: 6, backoff_s: 2, max_backoff_s: 300}
#       every_s: 5                       # how often the queue is looked at (a new warning wakes it at once)
#
# A recipient's ``address`` is the e-mail address (required for ``email``); for ``webhook`` and
# ``mqtt`` it defaults to the channel's URL or topic (``{region}`` becomes the warning's region
# code). ``colours`` default to all four. Secrets come from the environment variables named.

COLOURS = ("red", "orange", "yellow", "blue")
_Colour = Annotated[YText, BeforeValidator(choice(*COLOURS))]


def _url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    if urlsplit(url).scheme not in schemes or not urlsplit(url).hostname:
        return f"'{url}' is not a {' or '.join(s + '://' for s in schemes)} URL"
    return port_problem(url)


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class Channel:
    """One way to reach people: ``email`` (SMTP), ``webhook`` (signed JSON POST) or ``mqtt``."""

    name: Id
    kind: Annotated[YText, BeforeValidator(choice("email", "webhook", "mqtt"))]
    host: YText | None = None  # email
    port: Annotated[Whole, Field(ge=1, le=65535)] = 587
    sender: YText = Field(default="hazmon@localhost", alias="from")
    starttls: Flag = True
    tls: Flag = False
    username: YText | None = None
    password_env: VarName | None = None
    ca_file: YText | None = None  # email: the CA of the server's TLS certificate (default: the system's)
    url: YText | None = None  # webhook, mqtt
    secret_env: VarName | None = None  # webhook
    topic: YText = "hazmon/bureau/warnings/{region}"  # mqtt
    timeout_s: Positive = 10.0

    @model_validator(mode="after")
    def _fits_kind(self) -> Channel:
        k = self.kind
        check(
            (("host",), "an email channel needs host") if k == "email" and not self.host else None,
            (("url",), f"a {k} channel needs url") if k != "email" and not self.url else None,
            (("url",), why)
            if k != "email" and self.url and (why := _url_problem(self.url, _SCHEMES[k]))
            else None,
            (("secret_env",), "a webhook channel needs secret_env (its HMAC key)")
            if k == "webhook" and not self.secret_env
            else None,
            (("topic",), f"'{self.topic}' is not a topic to publish to (no '+' or '#')")
            if k == "mqtt" and ("+" in self.topic or "#" in self.topic or not self.topic)
            else None,
            *(
                ((f,), f"environment variable {v} is not set")
                for f, v in (("password_env", self.password_env), ("secret_env", self.secret_env))
                if v is not None and os.environ.get(v) is None
            ),
        )
        return self

    def secret(self, field: str) -> str | None:
        """The value of the environment variable ``field`` names (read when connecting)."""
        var = getattr(self, field)
        return None if var is None else os.environ.get(var)


_SCHEMES = {"webhook": ("http", "https"), "mqtt": ("mqtt", "mqtts")}


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class NotifyRecipient:
    """Staff of one region: told of every new warning of an enterprise in ``region`` in ``colours``."""

    name: Id
    channel: Id
    region: RegionSettings
    address: YText | None = None
    colours: tuple[_Colour, ...] = COLOURS

    @property
    def scope(self) -> Scope:
        return self.region.scope


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class NotifyRetry:
    attempts: Annotated[Whole, Field(ge=1)] = 6
    backoff_s: NonNegative = 2.0
    max_backoff_s: NonNegative = 300.0


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class Notify:
    """The ``notify:`` section (see the module docstring)."""

    channels: tuple[Channel, ...] = ()
    recipients: tuple[NotifyRecipient, ...] = ()
    retry: NotifyRetry = NotifyRetry()
    every_s: Positive = 5.0

    @model_validator(mode="after")
    def _names(self) -> Notify:
        kinds = {c.name: c.kind for c in self.channels}
        problems: list[tuple[object, str] | None] = []
        for i, c in enumerate(self.channels):
            if [x.name for x in self.channels].index(c.name) != i:
                problems.append(((("channels", i, "name"),), f"channel name '{c.name}' given twice"))
        seen: set[str] = set()
        for i, r in enumerate(self.recipients):
            if r.name in seen:
                problems.append(((("recipients", i, "name"),), f"recipient name '{r.name}' given twice"))
            seen.add(r.name)
            if r.channel not in kinds:
                problems.append(
                    ((("recipients", i, "channel"),), f"no channel named '{r.channel}' (channels: "
                     f"{', '.join(kinds) or 'none'})")
                )  # fmt: skip
            elif kinds[r.channel] == "email" and not r.address:
                problems.append(((("recipients", i, "address"),), "an email recipient needs address"))
        check(*problems)  # type: ignore[arg-type]
        return self


# ---------------------------------------------------------------- parent: and children: (federation)
# A bureau forwards what it stores to its parent bureau (province -> nation), and a parent lists
# the children that may forward to it (hazmon.bureau.forward, bureau/README.md "Federation"):
#
#     parent:                          # this bureau's parent (absent: nothing is forwarded)
#       url: mqtts://broker.nation.example:8883
#       username: js-province          # this bureau at the parent: its ACL prefix hazmon/v1/fed/<username>/
#       password_env: HAZMON_PARENT_MQTT_PASSWORD
#       ca_file: /etc/hazmon/nation-ca.pem
#       batch: 100                     # messages in flight before waiting for their PUBACKs
#       ack_timeout_s: 10              # no PUBACK by then: reconnect and replay from the outbox
#     children:                        # bureaus forwarding to this one, and the region each may speak for
#       - {id: js-province, region: {code: "320000", level: province}}


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class ParentSettings(BrokerAddress):
    """The ``parent:`` section: the parent bureau's broker and how this bureau forwards to it."""

    url: Annotated[YText, AfterValidator(_mqtt_url)]
    username: Annotated[Id, AfterValidator(_child_id)]
    password_env: VarName | None = None
    ca_file: YText | None = None
    cert_file: YText | None = None  # client certificate (mutual TLS), with key_file
    key_file: YText | None = None
    client_id: Id | None = None  # default hazmon-fed-<username>
    protocol: Annotated[YText, BeforeValidator(choice("5", "3.1.1"))] = "5"
    session_expiry_s: Annotated[Whole, Field(ge=0)] = 604_800
    keepalive_s: Annotated[Whole, Field(ge=5)] = 30
    batch: Annotated[Whole, Field(ge=1, le=10_000)] = 100
    ack_timeout_s: Annotated[float, Field(ge=0.1, allow_inf_nan=False)] = 10.0
    poll_interval_s: Annotated[float, Field(ge=0.01, allow_inf_nan=False)] = 1.0
    retry_max_s: Positive = 30.0

    @model_validator(mode="after")
    def _pairs(self) -> ParentSettings:
        check(
            (("cert_file", "key_file"), "cert_file and key_file go together")
            if (self.cert_file is None) != (self.key_file is None)
            else None,
            (("password_env",), f"environment variable {self.password_env} is not set")
            if self.password_env is not None and os.environ.get(self.password_env) is None
            else None,
        )
        return self

    @property
    def sender_id(self) -> str:
        return self.client_id or f"hazmon-fed-{self.username}"


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class ChildSettings:
    """One entry of ``children:``: a child bureau's username at this broker and the region it speaks for."""

    id: Annotated[Id, AfterValidator(_child_id)]
    region: RegionSettings

    @property
    def scope(self) -> Scope:
        return self.region.scope


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class BureauConfig:
    id: Id
    name: YText
    region: RegionSettings
    database: DatabaseSettings = DatabaseSettings()
    broker: BrokerSettings = BrokerSettings()
    http: HttpSettings = HttpSettings()
    tokens: tuple[TokenSettings, ...] = ()
    limits: Limits = Limits()
    ingest: BatchSettings = BatchSettings()  # how each worker takes the feed (hazmon.bureau.subscriber)
    warnings: Warnings = field(default_factory=Warnings)
    console: BureauConsoleSettings = field(default_factory=BureauConsoleSettings)  # no users: no console
    notify: Notify = field(default_factory=Notify)
    https_link: HttpsLink = field(default_factory=HttpsLink)  # the link over HTTPS (https_link_config)
    parent: ParentSettings | None = None  # forward what is stored to the parent bureau (federation)
    children: tuple[ChildSettings, ...] = ()  # bureaus that forward to this one
    plans: tuple[BureauPlan, ...] = ()  # the bureau's own emergency plans (hazmon.bureau.plan_config)
    supervision: SupervisionSection = field(default_factory=SupervisionSection)  # 挂牌督办

    @model_validator(mode="after")
    def _children_inside(self) -> BureauConfig:
        problems: list[tuple[Any, str] | None] = []
        seen: set[str] = set()
        for i, c in enumerate(self.children):
            if not inside(self.region.scope, c.region.scope):
                why = (
                    f"{c.region.level} {c.region.code} is not inside this bureau's "
                    f"{self.region.level} {self.region.code}"
                )
                problems.append(((("children", i, "region"),), why))
            if c.id in seen:
                problems.append(((("children", i, "id"),), f"child id '{c.id}' given twice"))
            seen.add(c.id)
        check(*problems)
        return self

    @model_validator(mode="after")
    def _plans_fit(self) -> BureauConfig:
        """Each plan: a unique id, its region inside the bureau's, recipients of ``notify.recipients``."""
        problems: list[tuple[Any, str] | None] = []
        known = {r.name for r in self.notify.recipients}
        seen: set[str] = set()
        for i, p in enumerate(self.plans):
            if p.id in seen:
                problems.append(((("plans", i, "id"),), f"plan id '{p.id}' is used twice"))
            seen.add(p.id)
            if p.region is not None and not inside(self.region.scope, p.region.scope):
                why = f"{p.region.level} {p.region.code} is not inside this bureau's region"
                problems.append(((("plans", i, "region"),), why))
            for j, r in enumerate(p.notify):
                if r not in known:
                    why = f"no recipient '{r}' in notify.recipients ({', '.join(sorted(known)) or 'none'})"
                    problems.append(((("plans", i, "notify", j),), why))
        check(*problems)
        return self

    @model_validator(mode="after")
    def _tokens_inside(self) -> BureauConfig:
        problems: list[tuple[Any, str] | None] = []
        names: set[str] = set()
        for i, t in enumerate(self.tokens):
            if not inside(self.region.scope, t.region.scope):
                problems.append(
                    (
                        (("tokens", i, "region"),),  # the list index is a place in the file too
                        f"{t.region.level} {t.region.code} is not inside this bureau's "
                        f"{self.region.level} {self.region.code}",
                    )
                )
            if t.name in names:
                problems.append(((("tokens", i, "name"),), f"token name '{t.name}' given twice"))
            names.add(t.name)
        for i, u in enumerate(self.console.users):
            if not inside(self.region.scope, u.region.scope):
                where = ("console", "users", i, "region")
                why = f"{u.region.level} {u.region.code} is not inside this bureau's region"
                problems.append(((where,), why))
        check(*problems)
        return self

    @property
    def scope(self) -> Scope:
        return self.region.scope

    @property
    def warning_settings(self) -> WarningSettings:
        """The warning rules' frozen settings (`hazmon.bureau.warnings.evaluate`, the figures)."""
        return to_settings(self.warnings)


def parse_config(n: Node) -> BureauConfig | None:
    """The bureau config from the document's root node (problems recorded on ``n``)."""
    return validate(n, BureauConfig)


def load_config(path: str | Path) -> BureauConfig:
    """``bureau.yaml``, checked.

    Raises:
        hazmon.plant.ConfigError: every problem of the file, as ``file:line: field.path: reason``.
    """
    return parse_file(Path(path), parse_config)
