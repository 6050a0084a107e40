"""Chinese names of alarm conditions and states, for the Chinese half of every message.

The English halves use the stable keys (``gas_second``, ``active_unacked``); a Chinese
reader gets words, never those keys. A key missing here (a condition added later)
falls back to a Chinese "other" wording that still names it, so nothing is lost.
"""

from __future__ import annotations

__all__ = ["CONDITION_ZH", "STATE_ZH", "condition_zh", "state_zh", "value_zh"]

CONDITION_ZH = {
    "hh": "高高限报警",
    "h": "高限报警",
    "l": "低限报警",
    "ll": "低低限报警",
    "rate": "变化速率超限",
    "predict_hh": "预测将达高高限",
    "predict_ll": "预测将达低低限",
    "gas_first": "气体一级报警",
    "gas_second": "气体二级报警",
    "vote_confirmed": "表决确认的气体泄漏",
    "vote_unconfirmed": "未经表决确认的气体报警",
    "stuck": "仪表卡死",
    "spike": "信号尖峰",
    "out_of_range": "超出量程",
    "bad_quality": "质量坏值",
    "stale": "数据中断",
    "chattering": "报警抖动",
    "assessment_overdue": "评估逾期",
    "filing_overdue": "备案逾期",
    "system": "系统故障",
    "link_lost": "通信链路中断",
    "rectification_overdue": "隐患整改逾期",
    "duty_check_overdue": "包保责任人检查逾期",
    "commitment_missing": "安全承诺未按时填报",
    "weather_warning": "气象预警",
    "bureau_warning": "应急管理部门预警",
}

STATE_ZH = {
    "normal": "正常",
    "active_unacked": "报警未确认",
    "active_acked": "报警已确认",
    "rtn_unacked": "已恢复未确认",
    "shelved": "已搁置",
    "suppressed": "已抑制",
    "out_of_service": "已停用",
}


def condition_zh(key: str) -> str:
    return CONDITION_ZH.get(key, f"其他报警（{key}）")


def state_zh(key: str) -> str:
    return STATE_ZH.get(key, f"其他状态（{key}）")


def value_zh(v: float | None) -> str:
    """A number as written in a message; "无" when there is none."""
    return "无" if v is None else f"{v:g}"
