"""The alarm API's requests and responses as pydantic models, and the OpenAPI built from them.

One definition serves both: `hazmon.alarms.api` validates every request (path, query, body)
with these models and answers 400 naming the field and the reason; `openapi()` generates
the description (OpenAPI 3.1, whose schemas are JSON Schema 2020-12 as pydantic writes them)
from the same models and the same route table `OPERATIONS`, so the two cannot drift.

Bodies are parsed by pydantic's own JSON parser in strict mode: ``true`` or ``"600"`` is not
a number, a body that is not UTF-8, nests too deeply or holds a lone surrogate is not valid
JSON, and free text may not hold a NUL (`hazmon.plant.schema.Text`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator
from pydantic.json_schema import models_json_schema

from hazmon.alarms.lifecycle import AlarmStatus
from hazmon.plant.schema import Strict, Text
from hazmon.plant.standards import Tier

__all__ = [
    "ALL",
    "API_PREFIX",
    "OPERATIONS",
    "PLANT",
    "Alarm",
    "AlarmDetail",
    "AlarmEvent",
    "AlarmList",
    "AlarmPath",
    "AlarmQuery",
    "ApiError",
    "CommentBody",
    "OpenApiDocument",
    "Operation",
    "ShelveBody",
    "openapi",
]

API_PREFIX = "/api/v1"
PLANT = ("operator", "plant_manager")
ALL = ("operator", "plant_manager", "bureau")

_INT64_MAX = 2**63 - 1
_DIGITS = re.compile(r"-?[0-9]{1,19}")


# (Field before BeforeValidator in Annotated: the other order drops minimum/maximum from the schema)
def _whole(v: object) -> object:
    """A path or query value: ASCII digits only (``int()`` would take a trailing newline or space)."""
    if isinstance(v, str) and not _DIGITS.fullmatch(v):
        raise ValueError("not a whole number")
    return v



_STATES = tuple(s.value for s in AlarmStatus)
_TIERS = tuple(t.colour for t in Tier)


def _list_pattern(options: tuple[str, ...]) -> str:
    one = "|".join(re.escape(o) for o in options)
    return f"^({one})(,({one}))*$"


# ----------------------------------------------------------------------------- requests


class AlarmPath(BaseModel):
    """The ``{id}`` of ``/alarms/{id}...``: a positive whole number, digits only."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[int, Field(ge=1, le=_INT64_MAX, description="alarm id"), BeforeValidator(_whole)]


class AlarmQuery(BaseModel):
    """The query of ``GET /alarms`` (every key optional; unknown keys are refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    state: Annotated[
        str | None, Field(pattern=_list_pattern(_STATES), description="comma list of states")
    ] = None
    tier: Annotated[
        str | None, Field(pattern=_list_pattern(_TIERS), description="comma list of tiers")
    ] = None
    hazard_source: Text | None = None
    sensor: Text | None = None
    condition: Text | None = None
    active: Annotated[
        bool | None, Field(description="true: only alarms showing active; false: only the others")
    ] = None
    limit: Annotated[
        int, Field(ge=1, le=10_000, description="most alarms returned"), BeforeValidator(_whole)
    ] = 500


class CommentBody(BaseModel):
    """Body of every action but shelve: an optional comment for the audit trail."""

    model_config = Strict

    comment: Text = ""


class ShelveBody(CommentBody):
    """Body of ``shelve``: how long (seconds, at most the configured ``shelve_max_s``) and why."""

    duration_s: Annotated[float, Field(gt=0, allow_inf_nan=False, description="seconds")]
    reason: Text

    @field_validator("reason")
    @classmethod
    def _reason_given(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("shelving needs a reason")
        return v.strip()


# ----------------------------------------------------------------------------- responses


class ApiError(BaseModel):
    """Every refusal: 400 (request not valid), 401, 403, 404, 409."""

    error: str


class Alarm(BaseModel):
    """One alarm as the API shows it."""

    id: int
    hazard_source: str
    sensor: str
    condition: str
    position: str
    region_code: str
    state: Literal[_STATES]  # type: ignore[valid-type]
    tier: Literal[_TIERS]  # type: ignore[valid-type]
    tier_zh: str
    level: str
    active: bool
    acked: bool
    latching: bool
    shelved_until_us: int | None
    shelve_reason: str | None
    suppressed: bool
    out_of_service: bool
    bureau_step: str | None
    activations: int
    activated_at_us: int | None
    acked_at_us: int | None
    acked_by: str | None
    value: float | None
    limit: float | None
    message_en: str
    message_zh: str


class AlarmEvent(BaseModel):
    """One entry of an alarm's audit trail."""

    id: int
    at_us: int
    at: str
    kind: str
    actor: str
    comment: str
    data: dict[str, Any] | None


class AlarmDetail(Alarm):
    """One alarm with its audit trail, oldest first."""

    events: list[AlarmEvent]


class AlarmList(BaseModel):
    """``GET /alarms``: the first ``limit`` alarms (most severe, then newest) and how many matched."""

    alarms: list[Alarm]
    count: int


class OpenApiDocument(BaseModel):
    """This description."""

    model_config = ConfigDict(extra="allow")

    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]


# ----------------------------------------------------------------------------- routes


@dataclass(frozen=True, slots=True)
class Operation:
    """One route: what `hazmon.alarms.api` serves and `openapi()` describes."""

    method: Literal["GET", "POST"]
    path: str  # below API_PREFIX
    name: str  # the handler key in hazmon.alarms.api and the operationId
    roles: tuple[str, ...]
    summary: str
    response: type[BaseModel]
    query: type[BaseModel] | None = None
    body: type[BaseModel] | None = None

    @property
    def full_path(self) -> str:
        return API_PREFIX + self.path

    @property
    def has_id(self) -> bool:
        return "{id}" in self.path


_ACTIONS: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("ack", PLANT, "Acknowledge (stops escalation)"),
    ("shelve", PLANT, "Shelve for duration_s with a reason; unshelved automatically"),
    ("unshelve", PLANT, "Unshelve now"),
    ("comment", ALL, "Add a comment to the audit trail"),
    ("out-of-service", ("plant_manager",), "Take out of service"),
    ("in-service", ("plant_manager",), "Return to service"),
    ("bureau/received", ("bureau",), "Bureau: warning received (接收)"),
    ("bureau/verified", ("bureau",), "Bureau: verified with the enterprise (核实)"),
    ("bureau/feedback", ("plant_manager",), "Enterprise feedback to the bureau (企业反馈)"),
    ("bureau/closed", ("bureau",), "Bureau: closed (消警)"),
)

OPERATIONS: tuple[Operation, ...] = (
    Operation("GET", "/openapi.json", "openapi", ALL, "This description", OpenApiDocument),
    Operation("GET", "/alarms", "list", ALL, "List alarms", AlarmList, query=AlarmQuery),
    Operation("GET", "/alarms/{id}", "show", ALL, "One alarm with its events (audit trail)", AlarmDetail),
    *(
        Operation(
            "POST",
            f"/alarms/{{id}}/{name}",
            name,
            roles,
            summary,
            Alarm,
            body=ShelveBody if name == "shelve" else CommentBody,
        )
        for name, roles, summary in _ACTIONS
    ),
)

_ERRORS = {
    "400": "request not valid: the reason names the field (path, query or body)",
    "401": "missing or invalid bearer token",
    "403": "role not allowed, or a bureau outside the plant's region",
    "404": "no such alarm",
    "409": "not allowed in the alarm's state",
}


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter's schema without the ``null`` of ``X | None`` (a parameter is absent, not null)."""
    options = [o for o in schema.get("anyOf", []) if o != {"type": "null"}]
    if len(options) != 1:
        return schema
    out = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
    out.update(options[0])
    return out


def _parameters(op: Operation) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if op.has_id:
        schema = AlarmPath.model_json_schema()["properties"]["id"]
        out.append({"name": "id", "in": "path", "required": True, "schema": schema})
    if op.query is not None:
        js = op.query.model_json_schema()
        required = set(js.get("required", []))
        for name, schema in js["properties"].items():
            param = {"name": name, "in": "query", "required": name in required, "schema": _not_null(schema)}
            out.append(param)
    return out


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.1 description of every route, generated from `OPERATIONS` and the models."""
    bodies = {op.body for op in OPERATIONS if op.body is not None}
    responses = {op.response for op in OPERATIONS} | {ApiError}
    pairs: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        *((m, "validation") for m in sorted(bodies, key=lambda m: m.__name__)),
        *((m, "serialization") for m in sorted(responses, key=lambda m: m.__name__)),
    ]
    refs, defs = models_json_schema(pairs, ref_template="#/components/schemas/{model}")
    error_ref = refs[(ApiError, "serialization")]
    paths: dict[str, Any] = {}
    for op in OPERATIONS:
        doc: dict[str, Any] = {
            "operationId": op.name.replace("/", "_").replace("-", "_"),
            "summary": op.summary,
            "x-roles": list(op.roles),
            "parameters": _parameters(op),
            "responses": {
                "200": {
                    "description": op.response.__doc__.splitlines()[0] if op.response.__doc__ else "ok",
                    "content": {"application/json": {"schema": refs[(op.response, "serialization")]}},
                },
                **{
                    code: {"description": text, "content": {"application/json": {"schema": error_ref}}}
                    for code, text in _ERRORS.items()
                    if code != "404" or op.has_id
                },
            },
        }
        if op.body is not None:
            doc["requestBody"] = {
                "required": op.body is ShelveBody,
                "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
            }
        paths.setdefault(op.full_path, {})[op.method.lower()] = doc
    return {
        "openapi": "3.1.0",
        "info": {"title": "hazmon alarms", "version": "1"},
        "components": {
            "schemas": defs.get("$defs", {}),
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
        "paths": paths,
    }
