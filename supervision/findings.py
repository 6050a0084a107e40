"""Supervision -> alarms: findings for overdue rectifications, missed duty checks, missing commitments.

`supervision_findings(state, now)` is pure. It compares what holds at ``now``
with what the alarms were last told (``state.told``) and returns only the
changes, with the new ``told`` to keep: a rectification overdue by a day gives
exactly one finding per record and deadline, however often it is called; a
cleared condition (accepted, a new deadline, a late check, a commitment filed)
gives one ``active=False`` finding. The caller hands the findings to the alarm
service (through the daemon, like the rules' findings) and then stores ``told``
(`hazmon.supervision.repository.save_told`), so a restart repeats nothing.

Alarm identity (the alarms key a finding by hazard source, sensor, condition):

* rectification: (the record's hazard source, or the enterprise id for an
  enterprise-wide one; ``hidden-danger/<id>``; ``rectification_overdue``) —
  level ``first`` for a major hidden danger, ``fault`` for a general one;
* duty check: (hazard source; ``duty/<role>``; ``duty_check_overdue``), level ``fault``;
* daily commitment: (the enterprise id; None; ``commitment_missing``), level ``fault``.

Tiers then come from the alarms' tier table with the hazard source's grade (the
most severe grade of the plant for enterprise-wide ones), and escalation follows.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from hazmon.plant.findings import Condition, Finding
from hazmon.plant.standards import Level
from hazmon.plant.supervision_standards import DUTY_ROLES, SupervisionSettings
from hazmon.supervision.dangers import Danger, DangerLevel, overdue_episodes
from hazmon.supervision.duty import Commitment, DutyCheck, DutyStatus, commitment_status, duty_status

DutyRow = tuple[str, str, str, DutyStatus]
"""(hazard source, duty role, responsible person, status)."""

__all__ = ["SupervisionState", "Sweep", "Told", "supervision_findings", "to_us"]


def to_us(t: datetime) -> int:
    return int(t.timestamp() * 1_000_000)


@dataclass(frozen=True, slots=True)
class Told:
    """What the alarms were last told about one key: active or not, and for which deadline."""

    active: bool
    episode: str  # the deadline / missed period end / missing day, ISO text
    level: Level = Level.FAULT  # the level it was raised with (its clearing finding carries it too)


@dataclass(frozen=True, slots=True)
class SupervisionState:
    """Everything the findings depend on (loaded by the repository).

    Attributes:
        enterprise: enterprise id.
        tz: the plant's time zone.
        settings: duty periods and the commitment time.
        sources: hazard source id -> role -> responsible person's name.
        started: when supervision began for this enterprise (periods ending before are not counted).
        dangers: every hidden danger, folded.
        checks: every duty check.
        commitments: every daily commitment.
        told: alarm key (`key_text`) -> what the alarms were last told.
    """

    enterprise: str
    tz: ZoneInfo
    settings: SupervisionSettings
    sources: Mapping[str, Mapping[str, str]]
    started: datetime
    dangers: tuple[Danger, ...] = ()
    checks: tuple[DutyCheck, ...] = ()
    commitments: tuple[Commitment, ...] = ()
    told: Mapping[str, Told] = field(default_factory=dict)

    def duties(self, now: datetime, hazard_source: str | None = None) -> list[DutyRow]:
        """Each hazard source's three duties at ``now``: (source, role, person, status)."""
        return [
            (
                hs,
                role,
                people[role],
                duty_status(
                    hs,
                    role,
                    self.settings.period(role),
                    checks=self.checks,
                    started=self.started,
                    now=now,
                    tz=self.tz,
                ),
            )
            for hs, people in self.sources.items()
            if hazard_source in (None, hs)
            for role in DUTY_ROLES
        ]


@dataclass(frozen=True, slots=True)
class Sweep:
    findings: list[Finding]
    told: dict[str, Told]


def key_text(hazard_source: str, sensor: str | None, condition: Condition) -> str:
    return f"{hazard_source}|{sensor or ''}|{condition.value}"


@dataclass(frozen=True, slots=True)
class _Active:
    finding: Finding
    episode: str


def _danger_active(state: SupervisionState, d: Danger, now: datetime) -> _Active | None:
    eps = overdue_episodes(d, state.tz, now)
    if not eps or eps[-1][2] is not None:
        return None
    deadline, since, _ = eps[-1]
    days = int((now - since).total_seconds() // 86_400)  # whole days past the local midnight after it
    major = d.level is DangerLevel.MAJOR
    what_en = "major hidden danger" if major else "hidden danger"
    what_zh = "重大事故隐患" if major else "一般事故隐患"
    return _Active(
        Finding(
            d.report.hazard_source or state.enterprise,
            f"hidden-danger/{d.id}",
            Condition.RECTIFICATION_OVERDUE,
            Level.FIRST if major else Level.FAULT,
            True,
            to_us(now),
            value=float(days),
            message_en=(
                f"Rectification of {what_en} #{d.id} ({d.report.title}) not accepted by its deadline "
                f"{deadline}; state {d.state.value}, {days} day(s) overdue"
            ),
            message_zh=f"{what_zh} #{d.id}（{d.report.title}）整改逾期：期限 {deadline}，已逾期 {days} 天",
        ),
        deadline.isoformat(),
    )


def _current(state: SupervisionState, now: datetime) -> dict[str, _Active]:
    out: dict[str, _Active] = {}
    for d in state.dangers:
        a = _danger_active(state, d, now)
        if a is not None:
            out[key_text(a.finding.hazard_source, a.finding.sensor, a.finding.condition)] = a
    for hs, people in state.sources.items():
        for role in DUTY_ROLES:
            st = duty_status(
                hs,
                role,
                state.settings.period(role),
                checks=state.checks,
                started=state.started,
                now=now,
                tz=state.tz,
            )
            if st.status != "overdue" or st.missed_deadline is None:
                continue
            missed = st.missed_deadline.astimezone(state.tz)
            zh = DUTY_ROLES[role].zh
            f = Finding(
                hs,
                f"duty/{role}",
                Condition.DUTY_CHECK_OVERDUE,
                Level.FAULT,
                True,
                to_us(now),
                message_en=(
                    f"{hs}: no {role} responsible person's check ({people.get(role, '?')}) in the "
                    f"{st.period.value} that ended {missed:%Y-%m-%d %H:%M}"
                ),
                message_zh=f"{hs} {zh}（{people.get(role, '?')}）未在 {missed:%Y-%m-%d %H:%M} 前完成本期检查",
            )
            out[key_text(hs, f.sensor, f.condition)] = _Active(f, missed.isoformat())
    cs = commitment_status(state.commitments, state.settings.commitment_due, state.started, now, state.tz)
    if cs.missing_day is not None and cs.missing_since is not None:
        due = state.settings.commitment_due
        f = Finding(
            state.enterprise,
            None,
            Condition.COMMITMENT_MISSING,
            Level.FAULT,
            True,
            to_us(now),
            message_en=f"Daily safety commitment for {cs.missing_day} not filed by {due:%H:%M}",
            message_zh=f"{cs.missing_day} 安全承诺未在 {due:%H:%M} 前填报",
        )
        out[key_text(state.enterprise, None, f.condition)] = _Active(f, cs.missing_day.isoformat())
    return out


def _parse_key(k: str) -> tuple[str, str | None, Condition]:
    hs, sensor, cond = k.split("|")
    return hs, sensor or None, Condition(cond)


def supervision_findings(state: SupervisionState, now: datetime) -> Sweep:
    """The findings to hand to the alarms at ``now``, and what they will then have been told."""
    if now.tzinfo is None:
        raise ValueError("now: must carry a time zone")
    current = _current(state, now)
    told = dict(state.told)
    out: list[Finding] = []
    for k, a in sorted(current.items()):
        was = told.get(k)
        if was is None or not was.active or was.episode != a.episode:
            out.append(a.finding)
            told[k] = Told(True, a.episode, a.finding.level)
    for k, was in sorted(state.told.items()):
        if was.active and k not in current:
            hs, sensor, cond = _parse_key(k)
            out.append(
                Finding(
                    hs,
                    sensor,
                    cond,
                    was.level,
                    False,
                    to_us(now),
                    message_en=f"{cond.value} cleared ({sensor or hs})",
                    message_zh=f"{sensor or hs} 已消除",
                )
            )
            told[k] = Told(False, was.episode, was.level)
    return Sweep(out, told)
