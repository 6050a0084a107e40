"""Notification texts in Chinese and English (pure).

One message may carry several alarms of one hazard source (grouping) or a flood
summary. The locale decides which language comes first; both are always there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

from hazmon.alarms.escalation import Recipient
from hazmon.alarms.zh import condition_zh, state_zh, value_zh
from hazmon.plant.model import Plant
from hazmon.plant.standards import Tier

__all__ = ["AlarmInfo", "detector_note", "render"]

_CST = timezone(timedelta(hours=8), "CST")

_PURPOSE_ZH = {"escalation": "报警", "repeat": "重复提醒", "flood_summary": "报警泛滥汇总"}
_PURPOSE_EN = {"escalation": "alarm", "repeat": "reminder", "flood_summary": "alarm flood summary"}

_FAULT_EN = {
    "stale": "no data",
    "bad_quality": "bad quality",
    "out_of_range": "out of range",
    "stuck": "frozen",
}
_FAULT_ZH = {
    "stale": "数据中断",
    "bad_quality": "信号质量坏",
    "out_of_range": "超出量程",
    "stuck": "数值冻结",
}


def detector_note(sensor: str | None, fault: str) -> tuple[str, str]:
    """(en, zh) of an active alarm whose detector stopped reporting (``fault``: its condition)."""
    what_en = ", ".join(_FAULT_EN.get(f, f) for f in fault.split(","))
    what_zh = "、".join(_FAULT_ZH.get(f, "故障") for f in fault.split(","))
    return (
        f"DETECTOR NO LONGER REPORTING: {sensor} ({what_en}); the alarm stays active, check on site",
        f"探测器已停止上报：{sensor}（{what_zh}），报警继续有效，请现场确认",
    )


@dataclass(frozen=True, slots=True)
class AlarmInfo:
    """What a message says about one alarm."""

    id: int
    hazard_source: str
    sensor: str | None
    condition: str
    tier: int
    state: str
    activated_at_us: int | None
    value: float | None
    limit: float | None
    message_en: str
    message_zh: str
    detector_fault: str = ""  # the detector stopped reporting while the alarm was active

    def to_json(self) -> dict[str, Any]:
        t = Tier(self.tier)
        note = detector_note(self.sensor, self.detector_fault) if self.detector_fault else None
        return {
            "id": self.id,
            "hazard_source": self.hazard_source,
            "sensor": self.sensor,
            "condition": self.condition,
            "tier": t.colour,
            "tier_zh": t.zh,
            "state": self.state,
            "activated_at": _iso(self.activated_at_us),
            "value": self.value,
            "limit": self.limit,
            "message_en": self.message_en,
            "message_zh": self.message_zh,
            "detector_reporting": not self.detector_fault,
            "detector_en": note[0] if note else None,
            "detector_zh": note[1] if note else None,
        }


def _iso(us: int | None) -> str | None:
    return None if us is None else datetime.fromtimestamp(us / 1e6, UTC).isoformat().replace("+00:00", "Z")


def _local(us: int | None) -> str:
    return "-" if us is None else datetime.fromtimestamp(us / 1e6, _CST).strftime("%Y-%m-%d %H:%M:%S")


def _source_name(plant: Plant, code: str) -> str:
    return next((h.name for h in plant.hazard_sources if h.id == code), code)


def render(
    plant: Plant,
    alarms: Sequence[AlarmInfo],
    recipient: str,
    purpose: str,
    *,
    locale: str,
    api_url: str = "",
    flood_total: int | None = None,
) -> tuple[str, str, str, dict[str, Any]]:
    """(subject, text, short text, JSON payload) of one message."""
    ent = plant.enterprise
    top = max((a.tier for a in alarms), default=1)
    t = Tier(top)
    rcp = Recipient(recipient)
    n = len(alarms) if flood_total is None else flood_total
    what_zh = _PURPOSE_ZH.get(purpose, purpose)
    what_en = _PURPOSE_EN.get(purpose, purpose)
    sources = sorted({a.hazard_source for a in alarms})
    src_zh = "、".join(_source_name(plant, s) for s in sources)
    subj_zh = f"【{t.zh}色预警】{ent.name} {src_zh} {what_zh} {n} 条"
    subj_en = f"[{t.colour.upper()}] {ent.name_en}: {', '.join(sources)} {what_en} ({n})"
    lines_zh = [f"{subj_zh}（致{rcp.zh}）"]
    lines_en = [f"{subj_en} (to {rcp.value.replace('_', ' ')})"]
    for a in alarms:
        at = Tier(a.tier)
        where = a.sensor or a.hazard_source
        lines_zh.append(
            f"- [{at.zh}] {where} {condition_zh(a.condition)} {a.message_zh or ''} 值 {value_zh(a.value)} "
            f"限值 {value_zh(a.limit)} 始于 {_local(a.activated_at_us)} 状态 {state_zh(a.state)} (#{a.id})"
        )
        lines_en.append(
            f"- [{at.colour}] {where} {a.condition} {a.message_en or ''} value {a.value} limit {a.limit} "
            f"since {_local(a.activated_at_us)} state {a.state} (#{a.id})"
        )
        if a.detector_fault:
            en, zh = detector_note(a.sensor, a.detector_fault)
            lines_zh.append(f"  ！{zh}")
            lines_en.append(f"  ! {en}")
    if flood_total is not None and flood_total > len(alarms):
        lines_zh.append(f"… 另有 {flood_total - len(alarms)} 条")
        lines_en.append(f"... and {flood_total - len(alarms)} more")
    if api_url:
        lines_zh.append(f"确认: {api_url}")
        lines_en.append(f"Acknowledge: {api_url}")
    zh_first = locale.startswith("zh")
    subject = f"{subj_zh} / {subj_en}" if zh_first else f"{subj_en} / {subj_zh}"
    blocks = ["\n".join(lines_zh), "\n".join(lines_en)]
    text = "\n\n".join(blocks if zh_first else blocks[::-1]) + "\n"
    first = alarms[0] if alarms else None
    short_zh = f"{t.zh}色预警 {ent.name} {src_zh}: " + (
        (first.message_zh or f"{first.sensor or first.hazard_source} {condition_zh(first.condition)}")
        if first
        else ""
    )
    if first is not None and first.detector_fault:
        short_zh += "（探测器已停止上报）"
    short = short_zh + (f" 等{n}条" if n > 1 else "")
    payload = {
        "purpose": purpose,
        "enterprise": {
            "id": ent.id,
            "name": ent.name,
            "name_en": ent.name_en,
            "region_code": ent.region.code,
        },
        "tier": t.colour,
        "tier_zh": t.zh,
        "count": n,
        "subject": subject,
        "alarms": [a.to_json() for a in alarms],
    }
    return subject, text, short, payload
