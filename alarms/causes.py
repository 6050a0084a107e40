"""One cause, one alarm: a lost link and the stale sensors behind it (pure).

When a source (an OPC UA endpoint, an MQTT broker) goes down, every sensor it feeds
goes stale at once. Raising, escalating and later asking to acknowledge one alarm per
sensor buries the one fact that matters under a flood (EEMUA 191: consequential
alarms are suppressed by design, the cause is annunciated; ISA-18.2 / IEC 62682:
designed suppression). So the link gets **one** ``link_lost`` alarm (hazard source:
the enterprise, ``sensor``: the source's name, its error in the message), and the
stale conditions of its sensors while it is down are its **consequences**: recorded
and shown (status ``suppressed``, ``cause`` = `cause_of_link`), never escalated or
notified, needing no acknowledgement of their own, and cleared with it.

A single sensor going stale while its source is connected still alarms on its own.

The daemon (which knows the sources) reports a source's state with `link_finding`;
the alarm service knows which sensors a source feeds from the plant's bindings
(`link_sources`).
"""

from __future__ import annotations

from hazmon.plant.findings import Condition, Finding
from hazmon.plant.model import Plant
from hazmon.plant.standards import Level

__all__ = ["cause_of_link", "link_finding", "link_sources"]


def link_sources(plant: Plant) -> dict[str, str]:
    """Sensor tag -> the name of the source (endpoint or broker) it is read from."""
    return {s.tag: s.binding.endpoint for s in plant.sensors()}


def cause_of_link(source: str) -> str:
    """The ``cause`` of the consequences of a lost link to ``source``."""
    return f"{Condition.LINK_LOST.value}:{source}"


def link_finding(
    enterprise: str, source: str, *, lost: bool, reason: str, sensors: int, now_us: int
) -> Finding:
    """The finding of a source's link going down (``lost``) or coming back.

    Args:
        enterprise: the plant's enterprise id (the alarm is plant-wide).
        source: the endpoint's or broker's name.
        lost: True when the link went down.
        reason: its error, e.g. ``endpoint dcs unavailable: BadNodeIdUnknown ...``.
        sensors: how many sensors it feeds (their stale conditions are its consequences).
        now_us: when.
    """
    if lost:
        en = f"link to {source} lost, {sensors} sensors without data: {reason}"
        zh = f"数据源 {source} 通信中断，{sensors} 个传感器无数据（错误信息：{reason}）"
    else:
        en = f"link to {source} restored"
        zh = f"数据源 {source} 通信恢复"
    return Finding(
        enterprise, source, Condition.LINK_LOST, Level.FAULT, lost, now_us, message_en=en, message_zh=zh
    )
