"""Pure builders: link messages (`hazmon.plant.link`) from the plant, its grading and the registry's data.

No I/O: every function takes what it reports (and the time) as arguments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import Literal

from hazmon.plant.assessment import AssessmentStatus
from hazmon.plant.grading import grade_source
from hazmon.plant.limits import effective_limits
from hazmon.plant.link import (
    AggregateItem,
    Aggregates,
    AlarmEvent,
    AssessmentItem,
    AssessmentRegister,
    Chemical,
    DutyPeriods,
    EndpointHeartbeat,
    EnterpriseInfo,
    HazardSourceInfo,
    Heartbeat,
    PersonInfo,
    Registration,
    ResponsibleInfo,
    SensorInfo,
    SensorLimits,
)
from hazmon.plant.model import Limits, Person, Plant, Sensor
from hazmon.plant.reading import Quality
from hazmon.plant.standards import Grade

__all__ = ["aggregate", "alarm_event", "alarm_id", "assessments", "heartbeat", "registration"]

_GRADE = {Grade.ONE: "I", Grade.TWO: "II", Grade.THREE: "III", Grade.FOUR: "IV"}
_QUALITY: dict[Quality, Literal["good", "uncertain", "bad", "out_of_range"]] = {
    Quality.GOOD: "good",
    Quality.UNCERTAIN: "uncertain",
    Quality.BAD: "bad",
    Quality.OUT_OF_RANGE: "out_of_range",
}


def alarm_id(enterprise_id: str, local_id: int) -> str:
    """The alarm's id on the link: the enterprise's alarm id prefixed by the enterprise id."""
    return f"{enterprise_id}:{local_id}"


def _person(p: Person) -> PersonInfo:
    return PersonInfo(name=p.name, phone=p.phone, email=p.email)


def _sensor(s: Sensor, override: Limits | None) -> SensorInfo:
    lim = effective_limits(s, override)
    return SensorInfo(
        tag=s.tag,
        kind=s.kind.value,
        unit=s.unit,
        range_low=float(s.range[0]),
        range_high=float(s.range[1]),
        period_s=float(s.period_s),
        limits=SensorLimits(hh=lim.hh, h=lim.h, l=lim.l, ll=lim.ll),
        chemical=s.chemical.id if s.chemical is not None else None,
        description=s.description,
    )


def registration(plant: Plant, overrides: dict[str, Limits] | None = None) -> Registration:
    """The enterprise, its hazard sources (chemicals, S, R, grade, responsible persons) and sensors.

    Sensor limits are those the rules use (`effective_limits`): ``overrides`` (sensor tag →
    an assessment's agreed limits), else the plant file's, else the standard's gas defaults.
    """
    e = plant.enterprise
    sources = []
    for hs in plant.hazard_sources:
        g = grade_source(hs)
        sources.append(
            HazardSourceInfo(
                id=hs.id,
                name=hs.name,
                kind=hs.kind,  # type: ignore[arg-type]  # the plant loader allows only these
                people_within_500m=hs.people_within_500m,
                chemicals=[
                    Chemical(
                        id=i.chemical.id,
                        name_zh=i.chemical.name_zh,
                        cas=i.chemical.cas,
                        max_t=float(i.max_t),
                        q_t=float(i.chemical.q_t),
                    )
                    for i in hs.inventory
                ],
                s=g.s,
                r=g.r,
                grade=_GRADE[g.grade] if g.grade is not None else None,  # type: ignore[arg-type]
                grade_verified=g.verified,
                responsible=ResponsibleInfo(
                    principal=_person(hs.responsible.principal),
                    technical=_person(hs.responsible.technical),
                    operational=_person(hs.responsible.operational),
                ),
                sensors=[_sensor(s, (overrides or {}).get(s.tag)) for s in hs.sensors],
                duty_periods=DutyPeriods.model_validate(  # the plant file's supervision.checks
                    {role: p.value for role, p in plant.supervision.periods}
                ),
            )
        )
    return Registration(
        enterprise=EnterpriseInfo(
            id=e.id,
            name=e.name,
            name_en=e.name_en,
            province=e.region.province,
            city=e.region.city,
            county=e.region.county,
            region_code=e.region.code,
            timezone=e.timezone,
        ),
        hazard_sources=sources,
    )


def assessments(statuses: Sequence[tuple[str, AssessmentStatus]], today: date) -> AssessmentRegister:
    """The assessment register: (hazard source id, its status on ``today``) for each source."""
    items = []
    for hs_id, st in statuses:
        rec = st.record
        items.append(
            AssessmentItem(
                hazard_source=hs_id,
                report_date=rec.report_date if rec else None,
                assessor=rec.assessor if rec else "",
                r_value=float(rec.r_value) if rec else None,
                grade=_GRADE[rec.grade] if rec else None,  # type: ignore[arg-type]
                filed_on=rec.filed_on if rec else None,
                next_due=st.next_due,
                due_reason=st.due_reason,
                reassessment_overdue=st.reassessment_overdue,
                filing_overdue=st.filing_overdue,
                inventory_changed=st.inventory_changed,
            )
        )
    return AssessmentRegister(as_of=today, items=items)


def alarm_event(enterprise_id: str, alarm: dict[str, object], event: dict[str, object]) -> AlarmEvent:
    """An alarm event from an ``alarm`` row and one of its ``alarm_event`` rows (column → value).

    Raises:
        pydantic.ValidationError: a row the schema refuses (an unknown event kind...).
    """
    return AlarmEvent.model_validate(
        {
            "alarm_id": alarm_id(enterprise_id, int(alarm["id"])),  # type: ignore[call-overload]
            "event_id": event["id"],
            "event": event["kind"],
            "at": event["at"],
            "actor": event["actor"],
            "comment": event.get("comment") or "",
            "data": event.get("data") or {},
            **{
                k: alarm.get(k)
                for k in (
                    "hazard_source",
                    "sensor",
                    "condition",
                    "level",
                    "tier",
                    "tier_name",
                    "state",
                    "value",
                    "limit_value",
                )
            },
            "message_en": alarm.get("message_en") or "",
            "message_zh": alarm.get("message_zh") or "",
        },
        strict=False,
    )


def aggregate(
    window_start: datetime, readings: Mapping[str, Iterable[tuple[float, Quality]]], tags: Iterable[str]
) -> Aggregates:
    """1-minute aggregates of ``tags`` from their readings (value, quality) in arrival order.

    A sensor without readings in the window gets ``count`` 0 (silence is reported, not left out).
    Values of quality ``OUT_OF_RANGE`` are not measurements: they are counted in
    ``worst_quality`` but kept out of min/mean/max/last (as in the rollups).
    """
    items = []
    for tag in tags:
        rows = list(readings.get(tag, ()))
        values = [v for v, q in rows if q != Quality.OUT_OF_RANGE]
        if not rows:
            items.append(
                AggregateItem(
                    sensor=tag, count=0, min=None, mean=None, max=None, last=None, worst_quality=None
                )
            )
            continue
        worst = _QUALITY[max(q for _, q in rows)]
        if not values:  # only out-of-range values: nothing measured
            items.append(
                AggregateItem(
                    sensor=tag, count=len(rows), min=None, mean=None, max=None, last=None, worst_quality=worst
                )
            )
            continue
        lo, hi = min(values), max(values)
        items.append(
            AggregateItem(
                sensor=tag,
                count=len(rows),
                min=lo,
                mean=min(max(sum(values) / len(values), lo), hi),  # float rounding stays inside
                max=hi,
                last=values[-1],
                worst_quality=worst,
            )
        )
    return Aggregates(window_start=window_start, items=items)


def heartbeat(at: datetime, endpoints: Iterable[tuple[str, str, bool, datetime | None]]) -> Heartbeat:
    """A heartbeat: (endpoint name, protocol, connected, last reading time) per endpoint."""
    return Heartbeat(
        at=at,
        endpoints=[
            EndpointHeartbeat(endpoint=n, protocol=p, connected=c, last_reading_at=t)  # type: ignore[arg-type]
            for n, p, c, t in endpoints
        ],
    )
