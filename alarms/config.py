"""The ``alarms:`` section of the daemon config, parsed once into frozen settings.

See alarms/README.md for every key. Secrets (webhook key, SMTP and MQTT
passwords, API tokens) never sit in the file: the file names an environment
variable (``*_env``) or, for API tokens, holds only their SHA-256.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Literal

import structlog
from pydantic import AfterValidator, BeforeValidator, Field, model_validator
from pydantic.dataclasses import dataclass as pydantic_dataclass

from hazmon.alarms.auth import BUREAU_LEVELS, ROLES, ApiToken, digest, region_level_problem
from hazmon.alarms.escalation import EscalationStep, Policy, Recipient, default_policy
from hazmon.alarms.notifier import RetryPolicy
from hazmon.alarms.notify_email import EmailSettings
from hazmon.alarms.notify_mqtt import MqttSettings
from hazmon.alarms.notify_sms import SmsSettings
from hazmon.alarms.notify_webhook import WebhookSettings
from hazmon.alarms.tokens import ensure_token_file, read_token_file
from hazmon.plant.sections import Id
from hazmon.plant.standards import (
    ALARM_REPEAT_S,
    ALARM_TARGETS,
    SHELVE_MAX_S,
    TIER_TABLE,
    Grade,
    Level,
    Tier,
)
from hazmon.plant.yamlmodel import (
    SECTION,
    Flag,
    InMapping,
    NonNegative,
    Positive,
    Where,
    Whole,
    YText,
    build,
    check,
    choice,
    pattern,
    validate,
)
from hazmon.plant.yamlnode import Node, port_problem

__all__ = ["AlarmSettings", "NotifierConfig", "parse_settings"]

log = structlog.get_logger("hazmon.alarms")

NotifierSettings = WebhookSettings | EmailSettings | MqttSettings | SmsSettings

_TIER_NAMES = {t.colour: t for t in Tier}
_KINDS = ("webhook", "email", "mqtt", "sms")


@dataclass(frozen=True, slots=True)
class NotifierConfig:
    name: str
    kind: str
    recipients: tuple[Recipient, ...]
    settings: NotifierSettings


@dataclass(frozen=True, slots=True)
class AlarmSettings:
    """Everything the alarm service needs besides the plant and the database.

    Attributes:
        locale: zh | en: which language comes first in messages.
        escalation: steps per tier (defaults: `hazmon.plant.standards.ESCALATION_DEFAULTS`).
        flood_count / flood_window_s: more than count new alarms within the window is a flood.
        flood_summary_delay_s: the flood summary waits this long to gather alarms.
        repeat_s: unacknowledged active alarms are notified again this often (0: never).
        shelve_max_s: longest shelving allowed.
        positions: hazard source id -> operator position (KPIs); others: default_position.
        retry: attempts and backoff of the one retry stage.
        notifiers: the delivery channels and the recipients each serves.
        tokens: API users.
        api_url: public URL of the alarm API, quoted in messages ('' to leave out).
        token_file: YAML file of plain tokens (created with one per role when missing).
        synchronous_commit: alarm events are flushed to disk before anything is sent
            (default). False trades that for latency: a PostgreSQL crash (not a hazmon
            crash) could then lose the last ~0.6 s of alarm events.
        assessment_check_s: how often assessment status is re-read from the database.
        own_thread: the service's database and notification work runs on an event loop
            of its own, in a thread of its own (default), so an event loop busy with
            ingest does not hold up alarms; False: on the caller's loop.
    """

    locale: str = "zh"
    escalation: Policy = field(default_factory=default_policy)
    tiers: dict[Level, dict[Grade, Tier]] = field(
        default_factory=lambda: {k: dict(v) for k, v in TIER_TABLE.items()}
    )
    flood_count: int = ALARM_TARGETS.flood_count
    flood_window_s: float = ALARM_TARGETS.flood_window_s
    flood_summary_delay_s: float = 30.0
    repeat_s: float = ALARM_REPEAT_S
    shelve_max_s: float = SHELVE_MAX_S
    positions: dict[str, str] = field(default_factory=dict)
    default_position: str = "control-room"
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    notifiers: tuple[NotifierConfig, ...] = ()
    tokens: tuple[ApiToken, ...] = ()
    api_url: str = ""
    assessment_check_s: float = 3600.0
    token_file: str = ""
    synchronous_commit: bool = True
    own_thread: bool = True

    def position_of(self, hazard_source: str) -> str:
        return self.positions.get(hazard_source, self.default_position)


_D = AlarmSettings()
_R = RetryPolicy()
_SMS = SmsSettings("")


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _Flood:
    """``flood:``: more than count new alarms within window_s is a flood."""

    count: Annotated[Whole, Field(ge=1)] = _D.flood_count
    window_s: Positive = _D.flood_window_s
    summary_delay_s: NonNegative = _D.flood_summary_delay_s


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _Retry:
    """``retry:``: the one retry stage of every notifier (`RetryPolicy`)."""

    attempts: Annotated[Whole, Field(ge=1)] = _R.attempts
    backoff_s: NonNegative = _R.backoff_s
    max_backoff_s: NonNegative = _R.max_backoff_s
    timeout_s: Positive = _R.timeout_s


def _env_value(var: str) -> str:
    val = os.environ.get(var)
    if val is None:
        raise ValueError(f"environment variable {var} is not set")
    return val


# the value of the environment variable the file names (read once, at load)
Env = Annotated[
    YText,
    AfterValidator(pattern(r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable name")),
    AfterValidator(_env_value),
]


def _url(*schemes: str) -> AfterValidator:
    def check(u: str) -> str:
        if not any(u.startswith(s + "://") for s in schemes):
            raise ValueError(f"'{u}' is not a {' or '.join(schemes)} URL")
        why = port_problem(u)
        if why is not None:
            raise ValueError(why)
        return u

    return AfterValidator(check)


def _publish_topic(t: str) -> str:
    """An MQTT topic to publish to: no wildcard, not empty, no NUL.

    MQTT 3.1.1 §4.7.1 and 5.0 §4.7.1: wildcards are for subscriptions only; a broker closes
    the connection of a client that publishes to ``+`` or ``#``, so every alarm on that
    notifier would fail.
    """
    if not t or "+" in t or "#" in t:
        raise ValueError(f"'{t}' is not a topic to publish to (no '+' or '#' wildcard, not empty)")
    return t


def _some(who: tuple[str, ...]) -> tuple[str, ...]:
    if not who:
        raise ValueError("expected at least one recipient")
    return who


Recipients = Annotated[
    tuple[Annotated[YText, BeforeValidator(choice(*(r.value for r in Recipient)))], ...],
    AfterValidator(_some),
]


def _header_pairs(v: object) -> object:
    if not isinstance(v, dict):
        raise ValueError("expected a mapping of header names to values")
    return list(v.items())


Headers = Annotated[tuple[tuple[str, YText], ...], BeforeValidator(_header_pairs)]
EnvOrNone = Annotated[Env | None, Field(alias="password_env")]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _NotifierIn:
    """What every item of ``notifiers:`` gives: its name and whom it serves."""

    name: Id
    recipients: Recipients


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _WebhookIn(_NotifierIn):
    kind: Literal["webhook"]
    url: Annotated[YText, _url("http", "https")]
    secret_env: Env
    timeout_s: Positive = 10.0
    headers: Headers = ()

    def settings(self) -> WebhookSettings:
        return build(WebhookSettings, self, secret=self.secret_env.encode())


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _EmailIn(_NotifierIn):
    kind: Literal["email"]
    host: YText
    sender: Annotated[YText, AfterValidator(pattern(r"[^@\s]+@[^@\s]+", "an e-mail address"))] = Field(
        alias="from"
    )
    port: Annotated[Whole, Field(ge=1, le=65535)] = 587
    starttls: Flag = True
    tls: Flag = False
    username: YText | None = None
    password: EnvOrNone = None
    ca_file: YText | None = None
    timeout_s: Positive = 10.0

    @model_validator(mode="after")
    def _password_with_username(self) -> _EmailIn:
        check(
            ((), "username given without password_env") if self.username and self.password is None else None
        )
        return self

    def settings(self) -> EmailSettings:
        return build(EmailSettings, self)


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _MqttIn(_NotifierIn):
    kind: Literal["mqtt"]
    url: Annotated[YText, _url("mqtt", "mqtts")]
    topic: Annotated[YText, AfterValidator(_publish_topic)] = "hazmon/alarms/{region}"
    qos: Annotated[YText, BeforeValidator(choice("0", "1", "2"))] = "1"
    retain: Flag = False
    username: YText | None = None
    password: EnvOrNone = None
    client_id: YText = ""
    timeout_s: Positive = 10.0

    def settings(self) -> MqttSettings:
        return build(MqttSettings, self, qos=int(self.qos))


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _SmsIn(_NotifierIn):
    kind: Literal["sms"]
    url: Annotated[YText, _url("http", "https")]
    method: Annotated[YText, BeforeValidator(choice("POST", "GET", "PUT"))] = _SMS.method
    body: YText = _SMS.body
    content_type: YText = _SMS.content_type
    headers: Headers = _SMS.headers
    timeout_s: Positive = 10.0

    def settings(self) -> SmsSettings:
        return build(SmsSettings, self)


Notifier = Annotated[_WebhookIn | _EmailIn | _MqttIn | _SmsIn, Field(discriminator="kind")]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _StepIn:
    after_s: NonNegative
    notify: Recipients


def _in_order(steps: tuple[_StepIn, ...]) -> tuple[_StepIn, ...]:
    if [s.after_s for s in steps] != sorted(s.after_s for s in steps):
        raise ValueError("steps must be in order of after_s")
    return steps


Steps = Annotated[tuple[_StepIn, ...], AfterValidator(_in_order)]


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _EscalationIn:
    """``escalation:``: the steps of each tier the file gives (the others: the defaults)."""

    red: Steps | None = None
    orange: Steps | None = None
    yellow: Steps | None = None
    blue: Steps | None = None

    def policy(self) -> dict[Tier, tuple[EscalationStep, ...]]:
        out = default_policy()
        for tier in Tier:
            steps: tuple[_StepIn, ...] | None = getattr(self, tier.colour)
            if steps is not None:
                out[tier] = tuple(
                    EscalationStep(s.after_s, tuple(Recipient(r) for r in s.notify)) for s in steps
                )
        return out


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _TokenIn:
    """One item of ``tokens:``: an API user, with the SHA-256 of its token (or the token's variable)."""

    name: Id
    role: Annotated[YText, BeforeValidator(choice(*ROLES))]
    level: Annotated[YText, BeforeValidator(choice(*BUREAU_LEVELS))] = ""
    region: Annotated[YText, AfterValidator(pattern(r"[1-9][0-9]{5}", "a 6-digit region code"))] = ""
    sha256: Annotated[YText, AfterValidator(pattern(r"[0-9a-fA-F]{64}", "a hex SHA-256 digest"))] = ""
    token_env: Env | None = None

    @model_validator(mode="after")
    def _consistent(self) -> _TokenIn:
        where = self.region_level_problem()
        check(
            ((), "give sha256 or token_env, not both")
            if self.sha256 and self.token_env is not None
            else None,
            ((InMapping("sha256"),), "missing sha256 (or token_env)")
            if not self.sha256 and self.token_env is None
            else None,
            ((), "a bureau token needs level and region")
            if self.role == "bureau" and not (self.level and self.region)
            else ((("region",), where) if where else None),
            ((), f"level and region are for bureau tokens, not {self.role}")
            if self.role != "bureau" and (self.level or self.region)
            else None,
        )
        return self

    def region_level_problem(self) -> str | None:
        return region_level_problem(self.level, self.region) if self.level and self.region else None

    def token(self) -> ApiToken:
        sha = self.sha256.lower() if self.sha256 else digest(self.token_env or "")
        return ApiToken(self.name, self.role, sha, self.level or None, self.region or None)


@pydantic_dataclass(frozen=True, slots=True, config=SECTION)
class _AlarmsIn:
    """The ``alarms:`` section (`AlarmSettings` is what the service reads)."""

    locale: Annotated[YText, BeforeValidator(choice("zh", "en"))] = _D.locale
    escalation: _EscalationIn = Field(default_factory=_EscalationIn)
    flood: _Flood = Field(default_factory=_Flood)
    repeat_s: NonNegative = _D.repeat_s
    shelve_max_s: Positive = _D.shelve_max_s
    # operator position -> the hazard sources it watches (KPIs); others: default_position
    positions: dict[str, tuple[Id, ...]] = Field(default_factory=dict)
    default_position: Id = _D.default_position
    retry: _Retry = Field(default_factory=_Retry)
    notifiers: tuple[Notifier, ...] = ()
    tokens: tuple[_TokenIn, ...] = ()
    api_url: Annotated[YText, _url("http", "https")] = ""
    assessment_check_s: Positive = _D.assessment_check_s
    token_file: YText = ""
    synchronous_commit: Flag = True
    own_thread: Flag = True

    @model_validator(mode="after")
    def _unique(self) -> _AlarmsIn:
        out: list[tuple[Where, str] | None] = []
        names: set[str] = set()
        for i, n in enumerate(self.notifiers):
            out.append(
                ((("notifiers", i),), f"notifier name '{n.name}' used twice") if n.name in names else None
            )
            names.add(n.name)
        digests: set[str] = set()
        for i, t in enumerate(self.tokens):
            sha = t.token().sha256
            same = f"token of '{t.name}' is the same as another token's"
            out.append(((("tokens", i),), same) if sha in digests else None)
            digests.add(sha)
        at: dict[str, str] = {}
        for pos, sources in self.positions.items():
            for j, hs in enumerate(sources):
                where = (("positions", pos, j),)
                out.append(
                    (where, f"hazard source '{hs}' is already at position '{at[hs]}'") if hs in at else None
                )
                at[hs] = pos
        check(*out)
        return self


def _token_file(n: Node, tf: str, tokens: list[ApiToken], create_files: bool) -> str:
    """Adds the plain tokens of ``token_file`` (created with one per role when missing) to ``tokens``.

    With ``create_files=False`` (``hazmon run --check``) a missing token file is not
    created: a check changes nothing, and the daemon creates it when it starts.
    """
    p = Path(tf) if Path(tf).is_absolute() else Path(n.ctx.file).parent / tf
    try:
        if not create_files and not p.exists():
            return str(p)
        if ensure_token_file(p):
            log.warning("created alarm API token file with one token per role", path=str(p))
        for pt in read_token_file(p):
            if any(o.sha256 == pt.api_token().sha256 for o in tokens):
                n.problem(f"token of '{pt.name}' is the same as another token's")
            tokens.append(pt.api_token())
    except (OSError, ValueError) as e:
        n.problem(str(e))
    return str(p)


def parse_settings(n: Node, create_files: bool = True) -> AlarmSettings | None:
    """Parse the ``alarms:`` section (problems are recorded on ``n``).

    ``create_files=False``: a missing token file is left missing (a check writes nothing).
    """
    a = validate(n, _AlarmsIn)
    if a is None:
        return None
    tokens = [t.token() for t in a.tokens]
    token_file = ""
    if a.token_file:
        tf_node = next(
            Node(n.ctx, v, f"{n.path}.token_file") for k, v in n.node.value if k.value == "token_file"
        )
        token_file = _token_file(tf_node, a.token_file, tokens, create_files)
    return build(
        AlarmSettings,
        a,
        escalation=a.escalation.policy(),
        flood_count=a.flood.count,
        flood_window_s=a.flood.window_s,
        flood_summary_delay_s=a.flood.summary_delay_s,
        positions={hs: pos for pos, sources in a.positions.items() for hs in sources},
        retry=build(RetryPolicy, a.retry),
        notifiers=tuple(
            NotifierConfig(c.name, c.kind, tuple(Recipient(r) for r in c.recipients), c.settings())
            for c in a.notifiers
        ),
        tokens=tuple(tokens),
        api_url=a.api_url.rstrip("/"),
        token_file=token_file,
    )
