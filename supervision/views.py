"""The JSON form of supervision records, one for the CLI (`--json`), the HTTP API and the pages."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from hazmon.supervision.attachments import Attachment
from hazmon.supervision.dangers import Action, Danger, overdue_episodes
from hazmon.supervision.duty import Commitment, DutyCheck

__all__ = ["attachment_json", "check_json", "commitment_json", "danger_json", "is_overdue"]


def is_overdue(d: Danger, tz: ZoneInfo, now: datetime) -> bool:
    """Past its deadline and not accepted at ``now`` (the plant's local days)."""
    eps = overdue_episodes(d, tz, now)
    return bool(eps) and eps[-1][2] is None


def danger_json(d: Danger, tz: ZoneInfo, now: datetime) -> dict[str, Any]:
    return {
        "id": d.id,
        **d.report.to_json(),
        "state": d.state.value,
        "deadline": None if d.deadline is None else d.deadline.isoformat(),
        "overdue": is_overdue(d, tz, now),
        "plan": None if d.plan is None else d.plan.to_json(),
        "steps": [
            {
                "seq": s.seq,
                "action": s.action.value,
                "by": s.actor,
                "role": s.role,
                "at": s.at.isoformat(),
                "comment": s.comment,
                "data": dict(s.data) if s.action not in (Action.REPORT, Action.PLAN) else {},
            }
            for s in d.steps
        ],
    }


def attachment_json(attachment_id: int, a: Attachment) -> dict[str, Any]:
    return {
        "id": attachment_id,
        "filename": a.filename,
        "content_type": a.content_type,
        "size": a.size,
        "sha256": a.sha256,
    }


def check_json(c: DutyCheck) -> dict[str, Any]:
    return {
        "id": c.id,
        "hazard_source": c.hazard_source,
        "role": c.role,
        "person": c.person,
        "at": c.at.isoformat(),
        "what": c.what,
        "findings": c.findings,
        "recorded_by": c.recorded_by,
        "recorded_role": c.recorded_role,
        "dangers": list(c.dangers),
    }


def commitment_json(c: Commitment) -> dict[str, Any]:
    return {
        "day": c.day.isoformat(),
        "by": c.by,
        "at": c.at.isoformat(),
        "sources": dict(c.sources),
        "special_work": dict(c.special_work),
        "note": c.note,
    }
