"""The ``alarms:`` section of the daemon config, parsed once into frozen settings.

See alarms/README.md for every key. Secrets (webhook key, SMTP and MQTT
passwords, API tokens) never sit in the file: the file names an environment
variable (``*_env``) or, for API tokens, holds only their SHA-256.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import structlog
from pydantic import Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from hazmon.alarms.auth import BUREAU_LEVELS, ROLES, ApiToken, digest, region_level_problem
from hazmon.alarms.escalation import EscalationStep, Policy, Recipient, default_policy
from hazmon.alarms.notifier import RetryPolicy
from hazmon.alarms.notify_email import EmailSettings
from hazmon.alarms.notify_mqtt import MqttSettings
from hazmon.alarms.notify_sms import SmsSettings
from hazmon.alarms.notify_webhook import WebhookSettings
from hazmon.alarms.tokens import ensure_token_file, read_token_file
from hazmon.plant.standards import (
    ALARM_REPEAT_S,
    ALARM_TARGETS,
    SHELVE_MAX_S,
    TIER_TABLE,
    Grade,
    Level,
    Tier,
)
from hazmon.plant.yamlmodel import SECTION, NonNegative, Positive, Whole, validate
from hazmon.plant.yamlnode import ID_PATTERN, ID_WHAT, Node, opt, port_problem, req

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
        trace: keep the latency trace of each alarm's first notification in memory
            (`AlarmService.traces`: finding, handed over, recorded, claimed, sent);
            for ``bench/alarm_latency.py --trace``.
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
    trace: bool = False

    def position_of(self, hazard_source: str) -> str:
        return self.positions.get(hazard_source, self.default_position)


_D = AlarmSettings()
_R = RetryPolicy()


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


def _env(n: Node) -> str | None:
    var = n.text(r"[A-Za-z_][A-Za-z0-9_]*", "an environment variable name")
    if var is None:
        return None
    val = os.environ.get(var)
    if val is None:
        n.problem(f"environment variable {var} is not set")
    return val


def _headers(n: Node) -> tuple[tuple[str, str], ...] | None:
    if not hasattr(n.node, "value") or not isinstance(n.node.value, list):
        n.problem("expected a mapping of header names to values")
        return None
    out: list[tuple[str, str]] = []
    for k, v in n.node.value:
        out.append((str(k.value), str(v.value)))
    return tuple(out)


def _url(n: Node, schemes: tuple[str, ...]) -> str | None:
    u = n.text()
    if u is not None and not any(u.startswith(s + "://") for s in schemes):
        n.problem(f"'{u}' is not a {' or '.join(schemes)} URL")
        return None
    why = port_problem(u) if u is not None else None
    if why is not None:
        n.problem(why)
        return None
    return u


def _port(n: Node) -> int | None:
    p = n.whole(1)
    if p is not None and p > 65535:
        n.problem(f"must be <= 65535, got {p}")
        return None
    return p


def _publish_topic(n: Node) -> str | None:
    """An MQTT topic to publish to: no wildcard, not empty, no NUL.

    MQTT 3.1.1 §4.7.1 and 5.0 §4.7.1: wildcards are for subscriptions only; a broker closes
    the connection of a client that publishes to ``+`` or ``#``, so every alarm on that
    notifier would fail.
    """
    t = n.text()
    if t is None:
        return None
    if not t or "+" in t or "#" in t or "\0" in t:
        n.problem(f"'{t}' is not a topic to publish to (no '+' or '#' wildcard, not empty)")
        return None
    return t


def _webhook(m: dict[str, Node], n: Node) -> WebhookSettings | None:
    url = req(m, "url", n, lambda x: _url(x, ("http", "https")))
    secret = req(m, "secret_env", n, _env)
    timeout = opt(m, "timeout_s", lambda x: x.num(0, exclusive=True), 10.0)
    no_headers: tuple[tuple[str, str], ...] = ()
    headers = opt(m, "headers", _headers, no_headers)
    if url is None or secret is None:
        return None
    return WebhookSettings(url, secret.encode(), timeout, headers)


def _email(m: dict[str, Node], n: Node) -> EmailSettings | None:
    host = req(m, "host", n, Node.text)
    port = opt(m, "port", _port, 587)
    sender = req(m, "from", n, lambda x: x.text(r"[^@\s]+@[^@\s]+", "an e-mail address"))
    starttls = opt(m, "starttls", Node.flag, True)
    tls = opt(m, "tls", Node.flag, False)
    user = opt(m, "username", Node.text, "")
    pw = opt(m, "password_env", _env, "")
    if user and "password_env" not in m:
        n.problem("username given without password_env")
    ca = opt(m, "ca_file", Node.text, "")
    timeout = opt(m, "timeout_s", lambda x: x.num(0, exclusive=True), 10.0)
    if host is None or sender is None:
        return None
    return EmailSettings(host, port, sender, starttls, tls, user or None, pw or None, ca or None, timeout)


def _mqtt(m: dict[str, Node], n: Node) -> MqttSettings | None:
    url = req(m, "url", n, lambda x: _url(x, ("mqtt", "mqtts")))
    topic = opt(m, "topic", _publish_topic, "hazmon/alarms/{region}")
    qos = opt(m, "qos", lambda x: x.choice(("0", "1", "2")), "1")
    retain = opt(m, "retain", Node.flag, False)
    user = opt(m, "username", Node.text, "")
    pw = opt(m, "password_env", _env, "")
    client_id = opt(m, "client_id", Node.text, "")
    timeout = opt(m, "timeout_s", lambda x: x.num(0, exclusive=True), 10.0)
    if url is None:
        return None
    return MqttSettings(url, topic, int(qos), retain, user or None, pw or None, client_id, timeout)


def _sms(m: dict[str, Node], n: Node) -> SmsSettings | None:
    url = req(m, "url", n, lambda x: _url(x, ("http", "https")))
    d = SmsSettings("")
    method = opt(m, "method", lambda x: x.choice(("POST", "GET", "PUT")), d.method)
    body = opt(m, "body", Node.text, d.body)
    ctype = opt(m, "content_type", Node.text, d.content_type)
    headers = opt(m, "headers", _headers, d.headers)
    timeout = opt(m, "timeout_s", lambda x: x.num(0, exclusive=True), 10.0)
    if url is None:
        return None
    return SmsSettings(url, method, body, ctype, headers, timeout)


_KIND_KEYS: dict[str, tuple[set[str], Callable[[dict[str, Node], Node], NotifierSettings | None]]] = {
    "webhook": ({"url", "secret_env", "timeout_s", "headers"}, _webhook),
    "email": (
        {"host", "port", "from", "starttls", "tls", "username", "password_env", "ca_file", "timeout_s"},
        _email,
    ),
    "mqtt": ({"url", "topic", "qos", "retain", "username", "password_env", "client_id", "timeout_s"}, _mqtt),
    "sms": ({"url", "method", "body", "content_type", "headers", "timeout_s"}, _sms),
}


def _recipients(n: Node) -> tuple[Recipient, ...] | None:
    out: list[Recipient] = []
    for item in n.sequence():
        r = item.choice(tuple(r.value for r in Recipient))
        if r is not None:
            out.append(Recipient(r))
    return tuple(out) if out else None


def _child(n: Node, key: str) -> Node | None:
    """The child ``key`` of a mapping node, without recording problems (they come later)."""
    if not isinstance(n.node.value, list):
        return None
    for k, v in n.node.value:
        if getattr(k, "value", None) == key:
            return Node(n.ctx, v, f"{n.path}.{key}")
    return None


def _notifier(n: Node) -> NotifierConfig | None:
    kn = _child(n, "kind")
    if kn is None:
        n.mapping(set())  # reports "expected a mapping" when it is not one
        if isinstance(n.node.value, list):
            n.problem("missing required key 'kind'", f"{n.path}.kind")
        return None
    kind = kn.choice(_KINDS)
    if kind is None:
        return None
    keys, fn = _KIND_KEYS[kind]
    m = n.mapping(keys | {"name", "kind", "recipients"})
    if m is None:
        return None
    name = req(m, "name", n, lambda x: x.text(ID_PATTERN, ID_WHAT))
    recipients = req(m, "recipients", n, _recipients)
    settings = fn(m, n)
    if name is None or recipients is None or settings is None:
        return None
    return NotifierConfig(name, kind, recipients, settings)


def _steps(n: Node) -> tuple[EscalationStep, ...] | None:
    out: list[EscalationStep] = []
    for item in n.sequence():
        m = item.mapping({"after_s", "notify"})
        if m is None:
            continue
        after = req(m, "after_s", item, lambda x: x.num(0))
        who = req(m, "notify", item, _recipients)
        if after is not None and who is not None:
            out.append(EscalationStep(after, who))
    if [s.after_s for s in out] != sorted(s.after_s for s in out):
        n.problem("steps must be in order of after_s")
        return None
    return tuple(out)


def _escalation(n: Node) -> dict[Tier, tuple[EscalationStep, ...]] | None:
    m = n.mapping(set(_TIER_NAMES))
    if m is None:
        return None
    out = default_policy()
    for name, child in m.items():
        steps = _steps(child)
        if steps is not None:
            out[_TIER_NAMES[name]] = steps
    return out


def _positions(n: Node) -> dict[str, str] | None:
    if not hasattr(n.node, "value") or not isinstance(n.node.value, list):
        n.problem("expected a mapping of position -> list of hazard source ids")
        return None
    out: dict[str, str] = {}
    m = n.mapping({str(k.value) for k, _ in n.node.value})
    for pos, child in (m or {}).items():
        for item in child.sequence():
            hs = item.text(ID_PATTERN, ID_WHAT)
            if hs is not None:
                if hs in out:
                    item.problem(f"hazard source '{hs}' is already at position '{out[hs]}'")
                out[hs] = pos
    return out


def _token(n: Node) -> ApiToken | None:
    m = n.mapping({"name", "role", "level", "region", "sha256", "token_env"})
    if m is None:
        return None
    name = req(m, "name", n, lambda x: x.text(ID_PATTERN, ID_WHAT))
    role = req(m, "role", n, lambda x: x.choice(ROLES))
    level = opt(m, "level", lambda x: x.choice(BUREAU_LEVELS), "")
    region = opt(m, "region", lambda x: x.text(r"[1-9][0-9]{5}", "a 6-digit region code"), "")
    if "sha256" in m and "token_env" in m:
        n.problem("give sha256 or token_env, not both")
    sha: str | None = None
    if "sha256" in m:
        sha = m["sha256"].text(r"[0-9a-fA-F]{64}", "a hex SHA-256 digest")
    elif "token_env" in m:
        tok = _env(m["token_env"])
        sha = digest(tok) if tok else None
    else:
        n.problem("missing sha256 (or token_env)", f"{n.path}.sha256")
    if role == "bureau" and (not level or not region):
        n.problem("a bureau token needs level and region")
        return None
    why = region_level_problem(level, region) if level and region else None
    if why is not None:
        m["region"].problem(why)
        return None
    if role is not None and role != "bureau" and (level or region):
        n.problem(f"level and region are for bureau tokens, not {role}")
    if name is None or role is None or sha is None:
        return None
    return ApiToken(name, role, sha.lower(), level or None, region or None)


def _tokens(m: dict[str, Node], n: Node, create_files: bool) -> tuple[list[ApiToken], str]:
    """API tokens from ``tokens`` (digests) and ``token_file`` (plain, created when missing).

    With ``create_files=False`` (``hazmon run --check``) a missing token file is not
    created: a check changes nothing, and the daemon creates it when it starts.
    """
    tokens: list[ApiToken] = []
    if "tokens" in m:
        for item in m["tokens"].sequence():
            t = _token(item)
            if t is not None:
                if any(o.sha256 == t.sha256 for o in tokens):
                    item.problem(f"token of '{t.name}' is the same as another token's")
                tokens.append(t)
    token_file = ""
    if "token_file" in m:
        tf = m["token_file"].text()
        if tf is not None:
            p = Path(tf) if Path(tf).is_absolute() else Path(n.ctx.file).parent / tf
            token_file = str(p)
            try:
                if not create_files and not p.exists():
                    return tokens, token_file
                if ensure_token_file(p):
                    log.warning("created alarm API token file with one token per role", path=str(p))
                for pt in read_token_file(p):
                    if any(o.sha256 == pt.api_token().sha256 for o in tokens):
                        m["token_file"].problem(f"token of '{pt.name}' is the same as another token's")
                    tokens.append(pt.api_token())
            except (OSError, ValueError) as e:
                m["token_file"].problem(str(e))
    return tokens, token_file


def parse_settings(n: Node, create_files: bool = True) -> AlarmSettings | None:
    """Parse the ``alarms:`` section (problems are recorded on ``n``).

    ``create_files=False``: a missing token file is left missing (a check writes nothing).
    """
    m = n.mapping(
        {
            "locale",
            "escalation",
            "flood",
            "repeat_s",
            "shelve_max_s",
            "positions",
            "default_position",
            "retry",
            "notifiers",
            "tokens",
            "api_url",
            "assessment_check_s",
            "token_file",
            "synchronous_commit",
            "own_thread",
            "trace",
        }
    )
    if m is None:
        return None
    d = AlarmSettings()
    locale = opt(m, "locale", lambda x: x.choice(("zh", "en")), d.locale)
    escalation = opt(m, "escalation", _escalation, default_policy())
    flood = (validate(m["flood"], _Flood) if "flood" in m else None) or _Flood()
    repeat = opt(m, "repeat_s", lambda x: x.num(0), d.repeat_s)
    shelve_max = opt(m, "shelve_max_s", lambda x: x.num(0, exclusive=True), d.shelve_max_s)
    positions = opt(m, "positions", _positions, dict(d.positions))
    default_position = opt(m, "default_position", lambda x: x.text(ID_PATTERN, ID_WHAT), d.default_position)
    r = (validate(m["retry"], _Retry) if "retry" in m else None) or _Retry()
    retry = RetryPolicy(
        attempts=r.attempts, backoff_s=r.backoff_s, max_backoff_s=r.max_backoff_s, timeout_s=r.timeout_s
    )
    notifiers: list[NotifierConfig] = []
    if "notifiers" in m:
        for item in m["notifiers"].sequence():
            nc = _notifier(item)
            if nc is not None:
                if any(o.name == nc.name for o in notifiers):
                    item.problem(f"notifier name '{nc.name}' used twice")
                notifiers.append(nc)
    tokens, token_file = _tokens(m, n, create_files)
    api_url = opt(m, "api_url", lambda x: _url(x, ("http", "https")), "")
    check = opt(m, "assessment_check_s", lambda x: x.num(0, exclusive=True), d.assessment_check_s)
    if not re.fullmatch(ID_PATTERN, default_position):
        n.problem("default_position is not an id")
    return AlarmSettings(
        locale=locale,
        escalation=escalation,
        flood_count=flood.count,
        flood_window_s=flood.window_s,
        flood_summary_delay_s=flood.summary_delay_s,
        repeat_s=repeat,
        shelve_max_s=shelve_max,
        positions=positions,
        default_position=default_position,
        retry=retry,
        notifiers=tuple(notifiers),
        tokens=tuple(tokens),
        api_url=api_url.rstrip("/"),
        assessment_check_s=check,
        token_file=token_file,
        synchronous_commit=opt(m, "synchronous_commit", Node.flag, True),
        own_thread=opt(m, "own_thread", Node.flag, True),
        trace=opt(m, "trace", Node.flag, False),
    )
