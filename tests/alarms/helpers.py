"""Shared set-up of the alarm tests: settings, assessments, findings, a fake clock."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import psycopg

from hazmon.alarms.auth import ApiToken, digest
from hazmon.alarms.config import AlarmSettings, NotifierConfig
from hazmon.alarms.escalation import Recipient
from hazmon.alarms.notify_webhook import WebhookSettings
from hazmon.plant import Plant
from hazmon.plant.assessment import AssessmentRecord
from hazmon.plant.findings import Condition, Finding
from hazmon.plant.reading import to_us
from hazmon.plant.standards import Grade, Level
from hazmon.store import add_assessment, connect

S = 1_000_000
T0 = to_us(datetime(2026, 11, 28, 10, 0, tzinfo=UTC))
SECRET = b"webhook-test-secret"

TOKENS = {
    "op1": ("operator", None, None),
    "boss": ("plant_manager", None, None),
    "luhe": ("bureau", "county", "320116"),  # the plant's own county
    "nanjing": ("bureau", "city", "320100"),
    "jiangsu": ("bureau", "province", "320000"),
    "pukou": ("bureau", "county", "320111"),  # another county of the same city: out of region
    "zhejiang": ("bureau", "province", "330000"),
}


def bearer(name: str) -> str:
    return f"token-of-{name}"


def api_tokens() -> tuple[ApiToken, ...]:
    return tuple(ApiToken(n, r, digest(bearer(n)), lv, rg) for n, (r, lv, rg) in TOKENS.items())


def webhook_settings(url: str, **kw: Any) -> AlarmSettings:
    """Every recipient goes to one webhook, so the test sees who is told when."""
    return AlarmSettings(
        notifiers=(NotifierConfig("hook", "webhook", tuple(Recipient), WebhookSettings(url, SECRET)),),
        tokens=api_tokens(),
        **kw,
    )


def assess_all(plant: Plant, dsn: str, grade: dict[str, Grade] | None = None) -> None:
    """A valid, filed assessment for every hazard source (report 2026-01-10, filed 2026-01-15)."""
    with connect(dsn) as c:
        for hs in plant.hazard_sources:
            g = (grade or {}).get(hs.id, Grade.TWO)
            add_assessment(
                c,
                plant.enterprise.id,
                AssessmentRecord(hs.id, date(2026, 1, 10), "Test Assessor", 60.0, g, date(2026, 1, 15)),
            )
        c.commit()


def gas(
    t_us: int,
    active: bool = True,
    tag: str = "AT-101",
    cond: Condition = Condition.GAS_SECOND,
    value: float = 3.2,
) -> Finding:
    level = Level.SECOND if cond in (Condition.GAS_SECOND, Condition.HH, Condition.LL) else Level.FIRST
    if cond in (Condition.STALE, Condition.STUCK, Condition.BAD_QUALITY, Condition.OUT_OF_RANGE):
        level = Level.FAULT
    return Finding(
        "cl2-tankfarm",
        tag,
        cond,
        level,
        active,
        t_us,
        value=value,
        limit=2.0,
        message_en=f"{tag} chlorine {value} mg/m3 above second level 2.0",
        message_zh=f"{tag} 氯气浓度 {value} mg/m³ 超过二级报警值 2.0",
    )


def who_when(payloads: list[dict[str, Any]], sensor: str | None = None) -> list[tuple[str, int, str]]:
    """(recipient, due second after T0, purpose) of each message about ``sensor``."""
    out = []
    for p in payloads:
        if sensor is not None and not any(a["sensor"] == sensor for a in p["alarms"]):
            continue
        due = min(s["due_us"] for s in p["steps"]) if p.get("steps") else T0
        out.append((p["recipient"], (due - T0) // S, p["purpose"]))
    return sorted(out, key=lambda x: (x[1], x[0]))


def rows(dsn: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn) as c:
        return c.execute(sql, params).fetchall()  # type: ignore[arg-type]
