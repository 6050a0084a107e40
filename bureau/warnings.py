"""Bureau warnings (预警): which causes hold now, and what that changes. Pure: (inputs, now).

`evaluate` looks at what the bureau knows of every enterprise (`Inputs`, loaded by
`hazmon.bureau.warning_repository`) and at the warnings not yet closed, and returns the changes:

- ``raise``: a cause holds and no warning is open for it — a new warning (state ``pushed``);
- ``cause_cleared``: the cause of an open warning went away — recorded, the warning stays
  open until bureau staff close it (消警, `hazmon.bureau.warning_flow`);
- ``recurred``: the cause of an open, cleared warning holds again — the same warning, no second.

One cause, one warning: a cause has a stable key (``silent:<enterprise>``,
``source_silent:<enterprise>:<source>``, ``red_unacked:<alarm>``,
``repeated:<enterprise>:<sensor>``, ``assessment_overdue:<enterprise>:<source>``), and while a
warning with that key is open no second is raised. A silent enterprise does not also raise each
of its sources: their causes are subsumed (neither raised nor cleared while the enterprise is
silent). Running `evaluate` again on the same state returns nothing: restarts are idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from hazmon.plant.bureau_standards import WarningKind, WarningSettings, colour_text
from hazmon.plant.standards import Tier

__all__ = [
    "Action",
    "AlarmIn",
    "AssessmentIn",
    "Cause",
    "Change",
    "EnterpriseIn",
    "Inputs",
    "OpenWarning",
    "RepeatIn",
    "SourceIn",
    "causes",
    "evaluate",
]

Action = Literal["raise", "cause_cleared", "recurred"]


@dataclass(frozen=True, slots=True)
class EnterpriseIn:
    """What the bureau knows of one enterprise's liveness.

    Attributes:
        last_message_at: bureau clock of its last message of any kind (None: never).
        last_heartbeat_at: bureau clock of its last heartbeat (any endpoint).
        endpoints: endpoints its last heartbeats name; ``connected``: how many say connected.
        last_reading_at: the newest ``last_reading_at`` its heartbeats report.
        last_data_at: the end of its newest minute with data (aggregate count > 0).
        sensors: how many sensors it registered (none: no data is expected).
    """

    enterprise_id: str
    name: str
    region_code: str
    registered_at: datetime
    last_message_at: datetime | None = None
    last_heartbeat_at: datetime | None = None
    endpoints: int = 0
    connected: int = 0
    last_reading_at: datetime | None = None
    last_data_at: datetime | None = None
    sensors: int = 0


@dataclass(frozen=True, slots=True)
class SourceIn:
    enterprise_id: str
    source_id: str
    name: str
    last_data_at: datetime | None
    sensors: int


@dataclass(frozen=True, slots=True)
class AlarmIn:
    """A red alarm not acknowledged (and not closed by the bureau)."""

    alarm_id: str
    enterprise_id: str
    source_id: str
    sensor: str | None
    condition: str
    raised_at: datetime


@dataclass(frozen=True, slots=True)
class RepeatIn:
    """How many alarms one sensor raised within the window ending now."""

    enterprise_id: str
    source_id: str
    sensor: str
    count: int
    last_raised_at: datetime


@dataclass(frozen=True, slots=True)
class AssessmentIn:
    enterprise_id: str
    source_id: str
    next_due: date
    reassessment_overdue: bool
    filing_overdue: bool


@dataclass(frozen=True, slots=True)
class Inputs:
    enterprises: tuple[EnterpriseIn, ...] = ()
    sources: tuple[SourceIn, ...] = ()
    red_unacked: tuple[AlarmIn, ...] = ()
    repeats: tuple[RepeatIn, ...] = ()
    assessments: tuple[AssessmentIn, ...] = ()


@dataclass(frozen=True, slots=True)
class OpenWarning:
    """A warning not closed: its id, cause key and whether its cause was seen to go away."""

    warning_id: int
    cause_key: str
    cleared_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class Cause:
    """A cause that holds now."""

    key: str
    kind: WarningKind
    colour: Tier
    enterprise_id: str
    region_code: str
    since: datetime
    text_zh: str
    text_en: str
    source_id: str | None = None
    sensor: str | None = None
    alarm_id: str | None = None
    subsumed: bool = False  # held, but covered by its enterprise's own warning
    detail: dict[str, str | int | float | None] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Change:
    action: Action
    cause_key: str
    at: datetime
    cause: Cause | None = None  # raise and recurred
    warning_id: int | None = None  # cause_cleared and recurred; raise: set once stored


def _fmt(t: datetime | None, tz: ZoneInfo) -> str:
    """Local time to the minute; "—" when never (the texts say "none yet" around it)."""
    return "—" if t is None else t.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def _last_zh(t: datetime | None, tz: ZoneInfo) -> str:
    return "从未收到" if t is None else f"最后{_fmt(t, tz)}"


def _last_en(t: datetime | None, tz: ZoneInfo) -> str:
    return "none ever received" if t is None else f"last {_fmt(t, tz)}"


def _minutes(s: float) -> str:
    return f"{s / 60:g}"


def _latest(*ts: datetime | None) -> datetime | None:
    known = [t for t in ts if t is not None]
    return max(known) if known else None


def _silent(e: EnterpriseIn, s: WarningSettings, now: datetime, tz: ZoneInfo) -> Cause | None:
    limit = timedelta(seconds=s.silent_after_s)
    alive = _latest(e.last_message_at, e.last_heartbeat_at) or e.registered_at
    key = f"silent:{e.enterprise_id}"
    colour = s.colour(WarningKind.SILENT)
    czh, cen = colour_text(colour)
    who_zh, who_en = f"企业{e.name}（{e.enterprise_id}）", f"enterprise {e.name} ({e.enterprise_id})"
    mins = _minutes(s.silent_after_s)
    if now - alive > limit:
        seen = _latest(e.last_message_at, e.last_heartbeat_at)
        return Cause(
            key,
            WarningKind.SILENT,
            colour,
            e.enterprise_id,
            e.region_code,
            alive,
            f"{czh}预警：{who_zh}通信中断（链路中断）：超过{mins}分钟未收到任何消息或心跳"
            f"（{_last_zh(seen, tz)}）。",
            f"{cen} warning: {who_en} link down: no message or heartbeat for more than {mins} min "
            f"({_last_en(seen, tz)}).",
            detail={"mode": "link_down", "last": _fmt(seen, tz)},
        )
    if e.sensors == 0:
        return None
    data = e.last_data_at or e.registered_at
    if now - data <= limit:
        return None
    if e.endpoints and e.connected == 0:
        why_zh = f"心跳正常，但{e.endpoints}个采集接入点全部断开"
        why_en = f"heartbeats arrive but all {e.endpoints} plant endpoints are disconnected"
    else:
        why_zh = f"心跳正常、接入点已连接，但读数{_last_zh(e.last_reading_at, tz)}"
        why_en = (
            f"heartbeats arrive and endpoints are connected, but readings: {_last_en(e.last_reading_at, tz)}"
        )
    return Cause(
        key,
        WarningKind.SILENT,
        colour,
        e.enterprise_id,
        e.region_code,
        data,
        f"{czh}预警：{who_zh}装置数据中断：{why_zh}；超过{mins}分钟无监测数据"
        f"（{_last_zh(e.last_data_at, tz)}）。",
        f"{cen} warning: {who_en} plant silent: {why_en}; no data for more than {mins} min "
        f"({_last_en(e.last_data_at, tz)}).",
        detail={
            "mode": "plant_silent",
            "last": _fmt(e.last_data_at, tz),
            "endpoints": e.endpoints,
            "connected": e.connected,
        },
    )


def causes(inputs: Inputs, settings: WarningSettings, now: datetime) -> dict[str, Cause]:
    """Every cause that holds at ``now``, by cause key."""
    tz = ZoneInfo(settings.timezone)
    out: dict[str, Cause] = {}
    ents = {e.enterprise_id: e for e in inputs.enterprises}
    for e in inputs.enterprises:
        c = _silent(e, settings, now, tz)
        if c is not None:
            out[c.key] = c
    limit = timedelta(seconds=settings.source_silent_after_s)
    for src in inputs.sources:
        ent = ents.get(src.enterprise_id)
        if ent is None or src.sensors == 0:
            continue
        since = src.last_data_at or ent.registered_at
        if now - since <= limit:
            continue
        colour = settings.colour(WarningKind.SOURCE_SILENT)
        czh, cen = colour_text(colour)
        mins = _minutes(settings.source_silent_after_s)
        key = f"source_silent:{src.enterprise_id}:{src.source_id}"
        out[key] = Cause(
            key,
            WarningKind.SOURCE_SILENT,
            colour,
            src.enterprise_id,
            ent.region_code,
            since,
            f"{czh}预警：企业{ent.name}重大危险源{src.name}（{src.source_id}）数据中断：超过{mins}分钟无监测数据"
            f"（{_last_zh(src.last_data_at, tz)}）。",
            f"{cen} warning: hazard source {src.name} ({src.source_id}) of {ent.name}: no data for more than "
            f"{mins} min ({_last_en(src.last_data_at, tz)}).",
            source_id=src.source_id,
            subsumed=f"silent:{src.enterprise_id}" in out,
        )
    for a in inputs.red_unacked:
        ent = ents.get(a.enterprise_id)
        if ent is None or (now - a.raised_at).total_seconds() <= settings.red_unacked_after_s:
            continue
        colour = settings.colour(WarningKind.RED_UNACKED)
        czh, cen = colour_text(colour)
        mins, where = _minutes(settings.red_unacked_after_s), f"{a.source_id}/{a.sensor or '-'}"
        key = f"red_unacked:{a.alarm_id}"
        out[key] = Cause(
            key,
            WarningKind.RED_UNACKED,
            colour,
            a.enterprise_id,
            ent.region_code,
            a.raised_at,
            f"{czh}预警：企业{ent.name}红色报警{a.alarm_id}（{where} {a.condition}）"
            f"发生于{_fmt(a.raised_at, tz)}，"
            f"超过{mins}分钟未确认。",
            f"{cen} warning: red alarm {a.alarm_id} of {ent.name} ({where} {a.condition}), raised "
            f"{_fmt(a.raised_at, tz)}, not acknowledged for more than {mins} min.",
            source_id=a.source_id,
            sensor=a.sensor,
            alarm_id=a.alarm_id,
        )
    hours = f"{settings.repeated_window_s / 3600:g}"
    for r in inputs.repeats:
        ent = ents.get(r.enterprise_id)
        if ent is None or r.count < settings.repeated_count:
            continue
        colour = settings.colour(WarningKind.REPEATED)
        czh, cen = colour_text(colour)
        key = f"repeated:{r.enterprise_id}:{r.sensor}"
        out[key] = Cause(
            key,
            WarningKind.REPEATED,
            colour,
            r.enterprise_id,
            ent.region_code,
            r.last_raised_at,
            f"{czh}预警：企业{ent.name}监测点{r.sensor}（{r.source_id}）{hours}小时内报警{r.count}次。",
            f"{cen} warning: sensor {r.sensor} ({r.source_id}) of {ent.name} alarmed {r.count} times "
            f"in {hours} h.",
            source_id=r.source_id,
            sensor=r.sensor,
            detail={"count": r.count},
        )
    today = now.astimezone(tz).date()
    grace = timedelta(days=settings.assessment_grace_days)
    for asm in inputs.assessments:
        ent = ents.get(asm.enterprise_id)
        late = asm.next_due + grace < today
        if ent is None or not (late or asm.reassessment_overdue or asm.filing_overdue):
            continue
        what_zh = "、".join(
            w
            for w, on in (
                ("重新评估逾期", late or asm.reassessment_overdue),
                ("备案逾期", asm.filing_overdue),
            )
            if on
        )
        what_en = " and ".join(
            w
            for w, on in (("reassessment", late or asm.reassessment_overdue), ("filing", asm.filing_overdue))
            if on
        )
        colour = settings.colour(WarningKind.ASSESSMENT_OVERDUE)
        czh, cen = colour_text(colour)
        key = f"assessment_overdue:{asm.enterprise_id}:{asm.source_id}"
        since = datetime.combine(asm.next_due, datetime.min.time(), tz)
        out[key] = Cause(
            key,
            WarningKind.ASSESSMENT_OVERDUE,
            colour,
            asm.enterprise_id,
            ent.region_code,
            since,
            f"{czh}预警：企业{ent.name}重大危险源{asm.source_id}{what_zh}（应于{asm.next_due.isoformat()}前完成）。",
            f"{cen} warning: hazard source {asm.source_id} of {ent.name}: {what_en} overdue "
            f"(due {asm.next_due.isoformat()}).",
            source_id=asm.source_id,
        )
    return out


def evaluate(
    inputs: Inputs, open_warnings: list[OpenWarning], settings: WarningSettings, now: datetime
) -> list[Change]:
    """The changes that bring the open warnings in line with the causes that hold at ``now``.

    Raises come in cause-key order, so two evaluations of the same state agree.
    """
    held = causes(inputs, settings, now)
    by_key = {w.cause_key: w for w in open_warnings}
    out: list[Change] = []
    for key in sorted(held):
        c, w = held[key], by_key.get(key)
        if w is None:
            if not c.subsumed:
                out.append(Change("raise", key, now, cause=c))
        elif w.cleared_at is not None:
            out.append(Change("recurred", key, now, cause=c, warning_id=w.warning_id))
    for w in sorted(open_warnings, key=lambda x: x.cause_key):
        if w.cause_key not in held and w.cleared_at is None:
            out.append(Change("cause_cleared", w.cause_key, now, warning_id=w.warning_id))
    return out
