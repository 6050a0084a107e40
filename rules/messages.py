# ruff: noqa: PLR0917 - private helpers take parallel arrays (rows, times, values) positionally
"""Bilingual wording of findings (English and Chinese), one function per kind of finding."""

from __future__ import annotations

import math
import re

from hazmon.plant.model import Sensor, SensorKind

__all__ = ["fault_text", "limit_text", "predict_text", "rate_text", "reason_zh", "vote_text"]

_KIND_EN = {
    SensorKind.LEVEL: "level",
    SensorKind.TEMPERATURE: "temperature",
    SensorKind.PRESSURE: "pressure",
    SensorKind.GAS_COMBUSTIBLE: "combustible gas",
    SensorKind.GAS_TOXIC: "toxic gas",
    SensorKind.OXYGEN: "oxygen",
    SensorKind.FLOW: "flow",
    SensorKind.WEIGHT: "weight",
}
_KIND_ZH = {
    SensorKind.LEVEL: "液位",
    SensorKind.TEMPERATURE: "温度",
    SensorKind.PRESSURE: "压力",
    SensorKind.GAS_COMBUSTIBLE: "可燃气体浓度",
    SensorKind.GAS_TOXIC: "有毒气体浓度",
    SensorKind.OXYGEN: "氧含量",
    SensorKind.FLOW: "流量",
    SensorKind.WEIGHT: "重量",
}
_LIMIT_EN = {"hh": "HH", "h": "H", "l": "L", "ll": "LL"}
_LIMIT_ZH = {"hh": "高高限", "h": "高限", "l": "低限", "ll": "低低限"}
_GAS_EN = {"hh": "second alarm level", "h": "first alarm level"}
_GAS_ZH = {"hh": "二级报警值", "h": "一级报警值"}


def _num(x: float | None) -> str:
    if x is None or math.isnan(x):
        return "?"
    return f"{x:.4g}"


def _what(s: Sensor) -> tuple[str, str]:
    en, zh = _KIND_EN[s.kind], _KIND_ZH[s.kind]
    if s.chemical is not None and s.kind is SensorKind.GAS_TOXIC:
        en = s.chemical.name_en.lower()
        zh = s.chemical.name_zh + "浓度"
    return f"{s.tag} {en}", f"{s.tag} {zh}"


def limit_text(s: Sensor, name: str, active: bool, value: float, limit: float, gas: bool) -> tuple[str, str]:
    """HH / H / L / LL (or gas first / second level) raised or cleared."""
    what_en, what_zh = _what(s)
    v, lim, u = _num(value), _num(limit), s.unit
    high = name in ("hh", "h")
    if gas and high:
        lvl_en, lvl_zh = _GAS_EN[name], _GAS_ZH[name]
        if active:
            return (
                f"{what_en} {v} {u} reached the {lvl_en} {lim} {u}",
                f"{what_zh} {v} {u}，达到{lvl_zh} {lim} {u}",
            )
        return (
            f"{what_en} back below the {lvl_en} {lim} {u} ({v} {u})",
            f"{what_zh}已低于{lvl_zh} {lim} {u}（{v} {u}），报警解除",
        )
    lim_en, lim_zh = _LIMIT_EN[name], _LIMIT_ZH[name]
    if active:
        dir_en, dir_zh = ("above", "高于") if high else ("below", "低于")
        return (
            f"{what_en} {v} {u} is {dir_en} {lim_en} {lim} {u}",
            f"{what_zh} {v} {u}，{dir_zh}{lim_zh} {lim} {u}",
        )
    dir_en, dir_zh = ("below", "回落至") if high else ("above", "回升至")
    return (
        f"{what_en} back {dir_en} {lim_en} {lim} {u} ({v} {u})",
        f"{what_zh}已{dir_zh}{lim_zh} {lim} {u} {'以下' if high else '以上'}（{v} {u}），报警解除",
    )


def rate_text(s: Sensor, active: bool, rate_per_min: float, limit: float) -> tuple[str, str]:
    what_en, what_zh = _what(s)
    u = s.unit
    rising = rate_per_min >= 0
    if active:
        return (
            f"{what_en} is {'rising' if rising else 'falling'} at {_num(abs(rate_per_min))} {u}/min "
            f"(maximum {_num(limit)} {u}/min)",
            f"{what_zh}{'上升' if rising else '下降'}速率 {_num(abs(rate_per_min))} {u}/min，"
            f"超过允许值 {_num(limit)} {u}/min",
        )
    return (
        f"{what_en} rate of change back within {_num(limit)} {u}/min",
        f"{what_zh}变化速率已恢复正常（≤ {_num(limit)} {u}/min）",
    )


def predict_text(
    s: Sensor, name: str, active: bool, level: float, slope_per_min: float, limit: float, eta_s: float
) -> tuple[str, str]:
    """A trend expected to reach HH / LL within the horizon (or no longer expected to)."""
    what_en, what_zh = _what(s)
    u = s.unit
    lim_en, lim_zh = _LIMIT_EN[name], _LIMIT_ZH[name]
    if active:
        mins = max(1, round(eta_s / 60.0))
        dir_en, dir_zh = ("rising", "上升") if slope_per_min >= 0 else ("falling", "下降")
        return (
            f"{what_en} will reach {lim_en} {_num(limit)} {u} in about {mins} min "
            f"(now {_num(level)} {u}, {dir_en} {_num(abs(slope_per_min))} {u}/min)",
            f"{what_zh}预计约 {mins} 分钟后达到{lim_zh} {_num(limit)} {u}"
            f"（当前 {_num(level)} {u}，{dir_zh} {_num(abs(slope_per_min))} {u}/min）",
        )
    return (
        f"{what_en} no longer expected to reach {lim_en} {_num(limit)} {u} soon (now {_num(level)} {u})",
        f"{what_zh}趋势解除，预计近期不会达到{lim_zh} {_num(limit)} {u}（当前 {_num(level)} {u}）",
    )


_FAULT = {
    "stuck": ("value has not changed for {d}", "数值 {d} 未变化（卡死）"),
    "spike": ("spikes in the signal (robust outlier)", "信号出现尖峰（异常跳变）"),
    "out_of_range": ("reading {v} {u} is outside the measuring range", "读数 {v} {u} 超出量程"),
    "bad_quality": ("transmitter or link reports bad quality", "变送器或通信报告质量为坏值"),
    "stale": ("no data: {r}", "数据中断：{rz}"),
    "chattering": (
        "alarm is chattering ({n} activations within {w} s)",
        "报警频繁抖动（{w} 秒内触发 {n} 次）",
    ),
}
_CLEARED = {
    "stuck": ("value is moving again", "数值恢复变化"),
    "spike": ("no spike for a while", "一段时间内未再出现尖峰"),
    "out_of_range": ("reading back within the measuring range ({v} {u})", "读数恢复到量程内（{v} {u}）"),
    "bad_quality": ("quality good again", "质量恢复正常"),
    "stale": ("data resumed", "数据恢复"),
    "chattering": ("alarm no longer chattering", "报警抖动已停止"),
}


# Why a sensor is stale, as the collector (collector/stale.py, its MQTT and OPC UA sources) and the
# rules' own staleness (rules/engine.py) word it; an error text from a library stays quoted.
_REASONS_ZH = (
    (re.compile(r"no reading for (\S+) s \((\S+) x (\S+) s\)"), "{0} 秒无读数（{1} × {2} 秒）"),
    (re.compile(r"no reading for (\S+) x (\S+) s"), "{0} × {1} 秒无读数"),
    (re.compile(r"no reading"), "无读数"),
    (re.compile(r"endpoint (\S+) unavailable: (.*)", re.DOTALL), "端点 {0} 不可用：“{1}”"),
    (re.compile(r"endpoint (\S+) disconnected"), "端点 {0} 连接断开"),
    (re.compile(r"broker (\S+) disconnected: (.*)", re.DOTALL), "消息代理 {0} 连接断开：“{1}”"),
    (re.compile(r"broker (\S+) disconnected"), "消息代理 {0} 连接断开"),
)


_REFUSED = re.compile(r"node (\S+) of (\S+) refused by the server: (\S+); (.*)", re.DOTALL)


def reason_zh(reason: str) -> str:
    """The Chinese of a stale reason; one not known here is quoted in a Chinese sentence."""
    refused = _REFUSED.fullmatch(reason.strip())
    if refused is not None:  # the collector's why (hazmon.collector StaleTracker.explain), then the silence
        node, source, status, rest = refused.groups()
        return f"节点“{node}”（{source}）被服务器拒绝：“{status}”；" + reason_zh(rest)
    for pattern, zh in _REASONS_ZH:
        m = pattern.fullmatch(reason.strip())
        if m is not None:
            return zh.format(*m.groups())
    return f"原因：“{reason}”" if reason else "无读数"


def fault_text(s: Sensor, kind: str, active: bool, value: float, detail: str = "") -> tuple[str, str]:
    """A sensor fault (or chattering) raised or cleared; the sensor's values are not trusted while active."""
    en, zh = (_FAULT if active else _CLEARED)[kind]
    fill = {"v": _num(value), "u": s.unit, "d": detail, "r": detail, "n": detail.split("/", maxsplit=1)[0]}
    fill["w"] = detail.rsplit("/", maxsplit=1)[-1]
    fill["rz"] = reason_zh(detail) if kind == "stale" else ""
    if kind == "stuck":
        fill["d"] = detail.replace(" min", " 分钟")
    lead_en = f"{s.tag} sensor fault: " if active and kind != "chattering" else f"{s.tag}: "
    lead_zh = f"{s.tag} 仪表故障：" if active and kind != "chattering" else f"{s.tag}："
    return lead_en + en.format(**fill), lead_zh + zh.format(**fill)


def vote_text(group: str, confirmed: bool, active: bool, count: int, k: int, n: int) -> tuple[str, str]:
    if confirmed:
        if active:
            return (
                f"gas release confirmed: {count} of {n} detectors of {group} at or above first level (k={k})",
                f"气体泄漏已确认：{group} 组 {n} 台探测器中 {count} 台达到一级报警值（表决 {k}）",
            )
        return (
            f"gas release no longer confirmed by {group} ({count} of {n} above first level, k={k})",
            f"{group} 组表决确认解除（{n} 台中 {count} 台达到一级报警值，表决 {k}）",
        )
    if active:
        return (
            f"unconfirmed gas alarm: {count} of {n} detectors of {group} at or above first level (k={k})",
            f"气体报警未确认：{group} 组 {n} 台探测器中仅 {count} 台达到一级报警值（表决 {k}）",
        )
    return (
        f"unconfirmed gas alarm of {group} ended ({count} of {n})",
        f"{group} 组未确认气体报警结束（{n} 台中 {count} 台）",
    )
