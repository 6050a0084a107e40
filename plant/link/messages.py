"""The enterprise ↔ bureau link, schema version 1: the envelope and every payload, as pydantic v2 models.

These models are the one source of truth: the JSON Schema files under ``schema/v1/`` are
generated from them (`json_schemas`, ``python -m hazmon.plant.link``) and a test keeps the
committed files equal to what the models generate. Both ends import them: the enterprise
daemon (``hazmon.uplink``) builds and sends, a bureau validates with `parse_envelope`.

Directions: ``up`` (enterprise → bureau): registration, assessments, alarm_event, aggregates,
heartbeat, feedback, plan_event, hidden_danger, duty_check, commitment, supervision_progress;
``down`` (bureau → enterprise): bureau_step, bureau_warning, supervision.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal
from uuid import UUID

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hazmon.plant.schema import Strict, Text, describe

__all__ = [
    "ALARM_EVENT_KINDS",
    "DOWN_KINDS",
    "SCHEMA_VERSION",
    "UP_KINDS",
    "AggregateItem",
    "Aggregates",
    "AlarmEvent",
    "AssessmentItem",
    "AssessmentRegister",
    "BureauStep",
    "BureauWarning",
    "Chemical",
    "CommitmentReport",
    "DangerPlanInfo",
    "DutyCheckReport",
    "EndpointHeartbeat",
    "EnterpriseInfo",
    "Envelope",
    "Feedback",
    "HazardSourceInfo",
    "Heartbeat",
    "HiddenDanger",
    "LinkError",
    "Payload",
    "PersonInfo",
    "PlanEvent",
    "Registration",
    "ResponsibleInfo",
    "SensorInfo",
    "SensorLimits",
    "Supervision",
    "SupervisionProgress",
    "direction_of",
    "parse_envelope",
    "parse_topic",
    "topic",
]

SCHEMA_VERSION = 1
"""The version in every envelope and in the topic (``hazmon/v1/...``)."""

ALARM_EVENT_KINDS: tuple[str, ...] = (
    "raised",
    "updated",
    "tier_changed",
    "cleared",
    "acked",
    "shelved",
    "unshelved",
    "suppressed",
    "unsuppressed",
    "detector_lost",
    "detector_back",
    "consequence",
    "out_of_service",
    "in_service",
    "comment",
    "escalated",
    "notified",
    "notify_failed",
    "bureau_received",
    "bureau_verified",
    "bureau_feedback",
    "bureau_closed",
)
"""Every event kind the alarm service records (``alarm_event.kind``; the alarms' ``EventKind``).

Kept as plain strings so the ground does not import a component; tests/plant/test_link.py
checks it equals ``hazmon.alarms.lifecycle.EventKind``.
"""

UP_KINDS: tuple[str, ...] = (
    "registration",
    "assessments",
    "alarm_event",
    "aggregates",
    "heartbeat",
    "feedback",
    "plan_event",
    "hidden_danger",
    "duty_check",
    "commitment",
    "supervision_progress",
)
DOWN_KINDS: tuple[str, ...] = ("bureau_step", "bureau_warning", "supervision")

EnterpriseId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
"""A plant-file id: also one MQTT topic level (no '/', '+', '#')."""
RegionCode = Annotated[str, Field(pattern=r"^[0-9]{6}$")]
"""GB/T 2260 six-digit administrative division code."""
AlarmId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}:[0-9]+$")]
"""``<enterprise id>:<the enterprise's alarm id>``: one id end to end, never re-numbered."""
DangerId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}:[0-9]+$")]
"""``<enterprise id>:<the enterprise's hidden_danger.id>``: one id end to end, never re-numbered."""
Name = Annotated[str, Field(min_length=1, max_length=200)]
GradeName = Literal["I", "II", "III", "IV"]
Tier = Annotated[int, Field(ge=1, le=4)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Json = dict[str, object]


class _Model(BaseModel):
    # field docstrings become the JSON Schema's descriptions
    model_config = ConfigDict(**Strict, use_attribute_docstrings=True)


# ---------------------------------------------------------------- registration


class PersonInfo(_Model):
    name: Text
    phone: Text = ""
    email: Text = ""


class ResponsibleInfo(_Model):
    """The three responsible persons (包保责任人) of a hazard source."""

    principal: PersonInfo
    technical: PersonInfo
    operational: PersonInfo


class Chemical(_Model):
    id: Name
    name_zh: Text
    cas: Text
    max_t: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    """Design maximum quantity q, tonnes."""
    q_t: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    """Critical quantity Q, tonnes (GB 18218-2018)."""


class SensorLimits(_Model):
    hh: Finite | None = None
    h: Finite | None = None
    l: Finite | None = None  # noqa: E741 - the standard's name for the low limit
    ll: Finite | None = None


class SensorInfo(_Model):
    tag: Name
    kind: Literal[
        "level", "temperature", "pressure", "gas_combustible", "gas_toxic", "oxygen", "flow", "weight"
    ]
    unit: Name
    range_low: Finite
    range_high: Finite
    period_s: Annotated[float, Field(gt=0, allow_inf_nan=False)]
    limits: SensorLimits
    chemical: Name | None = None
    description: Text = ""

    @model_validator(mode="after")
    def _range(self) -> SensorInfo:
        if not self.range_low < self.range_high:
            raise ValueError(f"range_low {self.range_low:g} must be below range_high {self.range_high:g}")
        return self


class HazardSourceInfo(_Model):
    id: EnterpriseId
    name: Text
    kind: Literal["storage", "production"]
    people_within_500m: Annotated[int, Field(ge=0)]
    chemicals: list[Chemical]
    s: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    """S = Σ qᵢ/Qᵢ (a major hazard source when S ≥ 1)."""
    r: Annotated[float, Field(ge=0, allow_inf_nan=False)]
    """R = α · Σ βᵢ·qᵢ/Qᵢ."""
    grade: GradeName | None
    """None: not a major hazard source."""
    grade_verified: bool
    responsible: ResponsibleInfo
    sensors: list[SensorInfo]


class EnterpriseInfo(_Model):
    id: EnterpriseId
    name: Text
    name_en: Text
    province: Text
    city: Text
    county: Text
    region_code: RegionCode
    timezone: Name


class Registration(_Model):
    """What the enterprise is: sent on start and whenever the plant file changes."""

    kind: Literal["registration"] = "registration"
    enterprise: EnterpriseInfo
    hazard_sources: list[HazardSourceInfo]


# ---------------------------------------------------------------- assessment register


class AssessmentItem(_Model):
    hazard_source: EnterpriseId
    report_date: date | None
    """None: no assessment on record."""
    assessor: Text = ""
    r_value: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    grade: GradeName | None = None
    filed_on: date | None = None
    next_due: date
    due_reason: Text
    reassessment_overdue: bool
    filing_overdue: bool
    inventory_changed: bool


class AssessmentRegister(_Model):
    kind: Literal["assessments"] = "assessments"
    as_of: date
    items: list[AssessmentItem]


# ---------------------------------------------------------------- alarms


class AlarmEvent(_Model):
    """One event of an alarm's log, with the alarm as it stands after it."""

    kind: Literal["alarm_event"] = "alarm_event"
    alarm_id: AlarmId
    event_id: Annotated[int, Field(ge=1)]
    """The enterprise's ``alarm_event.id``: increasing per enterprise."""
    event: str
    """One of `ALARM_EVENT_KINDS`."""
    at: AwareDatetime
    actor: Text
    comment: Text = ""
    data: Json = Field(default_factory=dict)
    hazard_source: EnterpriseId
    sensor: Name | None
    condition: Name
    level: Literal["second", "first", "predictive", "fault"]
    tier: Tier
    tier_name: Literal["red", "orange", "yellow", "blue"]
    state: Name
    value: Finite | None = None
    limit_value: Finite | None = None
    message_en: Text = ""
    message_zh: Text = ""

    @field_validator("event")
    @classmethod
    def _event_kind(cls, v: str) -> str:
        if v not in ALARM_EVENT_KINDS:
            raise ValueError(f"{v!r} is not an alarm event kind ({', '.join(ALARM_EVENT_KINDS)})")
        return v


class Feedback(_Model):
    """The enterprise's feedback (反馈) on a bureau's step."""

    kind: Literal["feedback"] = "feedback"
    alarm_id: AlarmId
    at: AwareDatetime
    actor: Text
    comment: Text


class BureauStep(_Model):
    """A bureau's step on an alarm (down): received → verified → closed (消警)."""

    kind: Literal["bureau_step"] = "bureau_step"
    alarm_id: AlarmId
    step: Literal["received", "verified", "closed"]
    at: AwareDatetime
    actor: Text
    comment: Text = ""


class BureauWarning(_Model):
    """A bureau warning (预警) of this enterprise and each change of it (down).

    ``raised`` (pushed, 推送), ``cause_cleared`` / ``recurred`` (the bureau's rules saw the cause
    go away or come back), then the staff's steps ``verified`` (核查), ``fed_back`` (反馈) and
    ``closed`` (消警). One warning keeps its ``warning_id`` through all of them.
    """

    kind: Literal["bureau_warning"] = "bureau_warning"
    warning_id: Annotated[int, Field(ge=1)]
    """The bureau's ``bureau_warning.id``."""
    warning_kind: Literal["silent", "source_silent", "red_unacked", "repeated", "assessment_overdue"]
    colour: Literal["red", "orange", "yellow", "blue"]
    """红 重大 / 橙 较大 / 黄 一般 / 蓝 较低."""
    text_zh: Text
    text_en: Text
    hazard_source: EnterpriseId | None = None
    """The enterprise's hazard source the warning is about; None: the whole enterprise."""
    alarm_id: AlarmId | None = None
    """The enterprise's alarm it is about (``red_unacked``), if any."""
    action: Literal["raised", "cause_cleared", "recurred", "verified", "fed_back", "closed"]
    at: AwareDatetime
    actor: Text
    comment: Text = ""


class PlanEvent(_Model):
    """An emergency plan (应急预案) started, raised in level or ended at the enterprise (up).

    ``drill`` is always written: a drill (演练) says ``true`` and a bureau never takes it for a
    real start.
    """

    kind: Literal["plan_event"] = "plan_event"
    plan_id: EnterpriseId
    plan_name: Name
    activation: Annotated[int, Field(ge=1)]
    """The enterprise's ``plan_activation.id``."""
    event: Literal["started", "level", "ended"]
    level: Literal["I", "II", "III", "IV"]
    drill: bool
    at: AwareDatetime
    actor: Text
    cause: Text = ""


# ---------------------------------------------------------------- supervision (隐患, 包保, 承诺, 挂牌督办)


class DangerPlanInfo(_Model):
    """A signed rectification plan (治理方案) with the 五落实 of Order 16 of 2007."""

    goal: Text = ""
    """治理的目标和任务."""
    measures: Text = ""
    """采取的方法和措施."""
    funds_yuan: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None
    """经费, yuan."""
    materials: Text = ""
    """物资."""
    organisation: Text = ""
    """负责治理的机构."""
    persons: list[Name] = Field(default_factory=list)
    """负责治理的人员."""
    deadline: date | None = None
    """治理的时限: the plant's local date by which it is accepted (销号)."""
    safety_measures: Text = ""
    """安全措施 during rectification."""
    contingency_plan: Text = ""
    """应急预案 during rectification."""
    signed_by: Text = ""
    signed_at: AwareDatetime | None = None


class HiddenDanger(_Model):
    """A hidden danger (隐患) as it stands after one step of its history at the enterprise (up).

    Sent for every step (``seq`` is the step's number in the record's log, 1 = ``report``), so
    the bureau keeps the same history as the plant. ``danger_id`` stays the same end to end.
    """

    kind: Literal["hidden_danger"] = "hidden_danger"
    danger_id: DangerId
    seq: Annotated[int, Field(ge=1)]
    step: Literal["report", "plan", "start", "apply", "accept", "reject", "note", "attach"]
    at: AwareDatetime
    actor: Text
    role: Literal["operator", "plant_manager", "bureau"]
    comment: Text = ""
    title: Text
    """What was found."""
    description: Text = ""
    hazard_source: EnterpriseId | None = None
    """None: the whole enterprise."""
    unit: Text = ""
    """Where: the unit or place (装置 / 部位)."""
    sensor: Name | None = None
    equipment: Name | None = None
    found_by: Literal["inspection", "duty_check", "expert", "bureau", "alarm"]
    alarm_id: AlarmId | None = None
    """The alarm it was raised from (``found_by: alarm``)."""
    level: Literal["general", "major"]
    """一般 / 重大事故隐患."""
    criteria: list[Annotated[int, Field(ge=1, le=20)]] = Field(default_factory=list)
    """For a major one: the items of 安监总管三〔2017〕121号 that make it major."""
    state: Literal["found", "plan", "rectifying", "applied", "accepted"]
    """After this step; ``accepted`` is 销号."""
    plan: DangerPlanInfo | None = None
    deadline: date | None = None
    """The rectification deadline in force."""
    found_at: AwareDatetime

    @model_validator(mode="after")
    def _criteria(self) -> HiddenDanger:
        if self.level == "major" and not self.criteria:
            raise ValueError("criteria: a major hidden danger names the item(s) (1-20) that make it major")
        if self.level == "general" and self.criteria:
            raise ValueError("criteria: only a major hidden danger is judged against the 20 criteria")
        return self


class DutyCheckReport(_Model):
    """A responsible person's check of a hazard source (包保责任人履职, up)."""

    kind: Literal["duty_check"] = "duty_check"
    check_id: Annotated[int, Field(ge=1)]
    """The enterprise's ``duty_check.id``."""
    hazard_source: EnterpriseId
    role: Literal["principal", "technical", "operational"]
    """主要负责人 / 技术负责人 / 操作负责人."""
    person: Name
    at: AwareDatetime
    what: Text
    findings: Text = ""
    recorded_by: Text = ""


class CommitmentReport(_Model):
    """The daily safety commitment (安全承诺, up): each hazard source's state and the special work."""

    kind: Literal["commitment"] = "commitment"
    commitment_id: Annotated[int, Field(ge=1)]
    """The enterprise's ``daily_commitment.id``."""
    day: date
    """The plant's local day."""
    sources: dict[str, Literal["running", "stopped", "maintenance"]]
    special_work: dict[str, Annotated[int, Field(ge=0)]] = Field(default_factory=dict)
    """Kind of special work (GB 30871: hot_work, confined_space, ...) -> number under way."""
    filed_by: Name
    filed_at: AwareDatetime
    note: Text = ""


class Supervision(_Model):
    """A bureau's supervised rectification (挂牌督办) and each step of it (down).

    ``opened`` (挂牌), ``progress_requested``, ``accepted`` (accepted on site), ``closed``
    (销号), ``escalated`` (the deadline passed: the next level up now supervises). One
    supervision keeps its ``supervision_id`` through all of them.
    """

    kind: Literal["supervision"] = "supervision"
    supervision_id: Annotated[int, Field(ge=1)]
    """The bureau's ``bureau_supervision.id``."""
    danger_id: DangerId | None = None
    """The hidden danger supervised; None: the enterprise as a whole."""
    action: Literal["opened", "progress_requested", "accepted", "closed", "escalated"]
    level: Literal["county", "city", "province"]
    """The level supervising after this step."""
    deadline: date
    bureau_person: Name
    """The bureau's person in charge (督办责任人)."""
    title: Text = ""
    at: AwareDatetime
    actor: Text
    comment: Text = ""


class SupervisionProgress(_Model):
    """The enterprise's progress report on a supervision (督办进展, up)."""

    kind: Literal["supervision_progress"] = "supervision_progress"
    supervision_id: Annotated[int, Field(ge=1)]
    progress_id: Annotated[int, Field(ge=1)]
    """The enterprise's ``supervision_progress.id``."""
    danger_id: DangerId | None = None
    at: AwareDatetime
    actor: Text
    comment: Annotated[Text, Field(min_length=1)]
    """What was done since the last report."""
    done: bool = False
    """The enterprise says the rectification is done and asks for acceptance on site."""


# ---------------------------------------------------------------- data and liveness


class AggregateItem(_Model):
    sensor: Name
    count: Annotated[int, Field(ge=0)]
    """Readings received in the window (out-of-range values included)."""
    min: Finite | None
    mean: Finite | None
    max: Finite | None
    last: Finite | None
    worst_quality: Literal["good", "uncertain", "bad", "out_of_range"] | None
    """None when ``count`` is 0; min..last are null when every reading was out of range."""

    @model_validator(mode="after")
    def _consistent(self) -> AggregateItem:
        stats = (self.min, self.mean, self.max, self.last)
        if self.count == 0:
            if any(v is not None for v in stats) or self.worst_quality is not None:
                raise ValueError("count 0 carries no min, mean, max, last or worst_quality")
        elif self.worst_quality is None:
            raise ValueError("worst_quality: required when count > 0")
        elif self.min is None or self.mean is None or self.max is None or self.last is None:
            if any(v is not None for v in stats) or self.worst_quality != "out_of_range":
                raise ValueError(
                    "min, mean, max and last are all given (or all null: only out-of-range values)"
                )
        elif not (self.min <= self.mean <= self.max and self.min <= self.last <= self.max):
            raise ValueError("min <= mean <= max and min <= last <= max must hold")
        return self


class Aggregates(_Model):
    """Per-sensor aggregates of one window (1 minute)."""

    kind: Literal["aggregates"] = "aggregates"
    window_start: AwareDatetime
    window_s: Literal[60] = 60
    items: list[AggregateItem]


class EndpointHeartbeat(_Model):
    endpoint: Name
    protocol: Literal["opcua", "mqtt"]
    connected: bool
    last_reading_at: AwareDatetime | None
    """None: no reading since the daemon started."""


class Heartbeat(_Model):
    """The daemon is alive; per endpoint, whether it reaches the plant (plant silent vs link down)."""

    kind: Literal["heartbeat"] = "heartbeat"
    at: AwareDatetime
    endpoints: list[EndpointHeartbeat]


Payload = Annotated[
    Registration
    | AssessmentRegister
    | AlarmEvent
    | Feedback
    | BureauStep
    | BureauWarning
    | Aggregates
    | Heartbeat
    | PlanEvent
    | HiddenDanger
    | DutyCheckReport
    | CommitmentReport
    | Supervision
    | SupervisionProgress,
    Field(discriminator="kind"),
]


class Envelope(_Model):
    """What travels: one message, its id, who sent it, and the payload."""

    schema_version: Literal[1]
    message_id: UUID
    """Stable: a replay resends the same id, so the receiver stores each message once."""
    seq: Annotated[int, Field(ge=1)]
    """Enterprise-scoped, increasing in send order: the receiver can order and spot gaps."""
    enterprise_id: EnterpriseId
    region_code: RegionCode
    kind: str
    sent_at: AwareDatetime
    payload: Payload

    @field_validator("payload")
    @classmethod
    def _kind(cls, v: Payload, info: ValidationInfo) -> Payload:
        kind = info.data.get("kind")
        if kind is not None and kind != v.kind:
            raise ValueError(f"kind {v.kind!r} differs from the envelope's kind {kind!r}")
        return v


class LinkError(ValueError):
    """A message refused, as one line naming the field and the reason."""


def direction_of(kind: str) -> Literal["up", "down"]:
    """``up`` or ``down`` for a message kind.

    Raises:
        LinkError: an unknown kind.
    """
    if kind in UP_KINDS:
        return "up"
    if kind in DOWN_KINDS:
        return "down"
    raise LinkError(f"kind: unknown message kind {kind!r}")


def parse_envelope(raw: bytes | str, topic: str | None = None) -> Envelope:
    """The envelope in ``raw`` (JSON), checked against its topic when given.

    A receiver refuses an envelope whose enterprise, direction or kind differ from its topic's
    (``hazmon/v1/<enterprise>/<up|down>/<kind>``): the broker's ACL ties the topic to the
    sender's username, the check ties the content to the topic.

    Raises:
        LinkError: one line naming each refused field and why.
    """
    try:
        env = Envelope.model_validate_json(raw)
    except ValidationError as e:
        raise LinkError(describe(e)) from None
    if topic is not None:
        enterprise, direction, kind = parse_topic(topic)
        if env.enterprise_id != enterprise:
            raise LinkError(f"enterprise_id: {env.enterprise_id!r} differs from the topic's {enterprise!r}")
        if env.kind != kind:
            raise LinkError(f"kind: {env.kind!r} differs from the topic's {kind!r}")
        if direction_of(env.kind) != direction:
            raise LinkError(f"kind: {env.kind!r} does not travel {direction}")
    return env


TOPIC_ROOT = f"hazmon/v{SCHEMA_VERSION}"


def topic(enterprise_id: str, kind: str) -> str:
    """``hazmon/v1/<enterprise>/<up|down>/<kind>``: where a message of ``kind`` travels."""
    return f"{TOPIC_ROOT}/{enterprise_id}/{direction_of(kind)}/{kind}"


def parse_topic(t: str) -> tuple[str, str, str]:
    """(enterprise, direction, kind) of a link topic.

    Raises:
        LinkError: not a ``hazmon/v1/<enterprise>/<up|down>/<kind>`` topic.
    """
    parts = t.split("/")
    if len(parts) != 5 or "/".join(parts[:2]) != TOPIC_ROOT or parts[3] not in ("up", "down") or not parts[2]:
        raise LinkError(f"topic: {t!r} is not {TOPIC_ROOT}/<enterprise>/<up|down>/<kind>")
    return parts[2], parts[3], parts[4]
