"""The enterprise ↔ bureau link: versioned message types and their JSON Schema files (see README.md)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from pydantic import BaseModel

from hazmon.plant.link.messages import (
    ALARM_EVENT_KINDS,
    DOWN_KINDS,
    SCHEMA_VERSION,
    UP_KINDS,
    AggregateItem,
    Aggregates,
    AlarmEvent,
    AssessmentItem,
    AssessmentRegister,
    BureauStep,
    BureauWarning,
    Chemical,
    CommitmentReport,
    DangerPlanInfo,
    DutyCheckReport,
    EndpointHeartbeat,
    EnterpriseInfo,
    Envelope,
    Feedback,
    HazardSourceInfo,
    Heartbeat,
    HiddenDanger,
    LinkError,
    Payload,
    PersonInfo,
    PlanEvent,
    Registration,
    ResponsibleInfo,
    SensorInfo,
    SensorLimits,
    Supervision,
    SupervisionProgress,
    direction_of,
    parse_envelope,
    parse_topic,
    topic,
)

__all__ = [
    "ALARM_EVENT_KINDS",
    "DOWN_KINDS",
    "SCHEMA_FILES",
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
    "json_schemas",
    "parse_envelope",
    "parse_topic",
    "schema_dir",
    "topic",
    "write_schemas",
]

SCHEMA_FILES: dict[str, type[BaseModel]] = {
    "envelope.json": Envelope,
    "registration.json": Registration,
    "assessments.json": AssessmentRegister,
    "alarm_event.json": AlarmEvent,
    "aggregates.json": Aggregates,
    "heartbeat.json": Heartbeat,
    "feedback.json": Feedback,
    "bureau_step.json": BureauStep,
    "bureau_warning.json": BureauWarning,
    "plan_event.json": PlanEvent,
    "hidden_danger.json": HiddenDanger,
    "duty_check.json": DutyCheckReport,
    "commitment.json": CommitmentReport,
    "supervision.json": Supervision,
    "supervision_progress.json": SupervisionProgress,
}
"""File name under ``schema/v<N>/`` → the model it is generated from."""


def json_schemas() -> dict[str, str]:
    """File name → the JSON Schema text the models generate (what ``schema/v1/`` must hold)."""
    out = {}
    for name, model in SCHEMA_FILES.items():
        doc = {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://hazmon.example/link/v{SCHEMA_VERSION}/{name}",
            **model.model_json_schema(mode="validation"),
        }
        out[name] = json.dumps(doc, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    return out


def schema_dir() -> Path:
    """The shipped ``schema/v<N>/`` folder."""
    return Path(str(resources.files("hazmon.plant.link").joinpath("schema", f"v{SCHEMA_VERSION}")))


def write_schemas(folder: Path | None = None) -> list[Path]:
    """Write `json_schemas` into ``folder`` (default: the package's ``schema/v<N>/``)."""
    d = folder or schema_dir()
    d.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in json_schemas().items():
        (d / name).write_text(text, encoding="utf-8")
        written.append(d / name)
    return written
