"""The Chinese of the daemon's own conditions (the plant's one system alarm).

The writer and the daemon word these conditions in English (`collector.writer`
``on_system``, `hazmon.daemon` on an unclean previous run); the Chinese half of the
alarm is built here from the same key and message. A message not known here is
quoted whole inside a Chinese sentence, so nothing of it is lost.
"""

from __future__ import annotations

import re

__all__ = ["system_message_zh"]

_SPOOL_FULL = re.compile(r"spool full \((\d+) bytes\): readings are being dropped")
_SPOOL_IO = re.compile(r"spool write failed: (.*)", re.DOTALL)
_UNCLEAN = re.compile(
    r"(recorded: )?the previous daemon run ended without a clean stop \(last seen ([^)]*)\); (.*)"
)
_HELD = re.compile(r"up to (\d+) readings held in memory")


def _unclean(m: re.Match[str]) -> str:
    recorded, at, rest = m.group(1), m.group(2), m.group(3)
    held = _HELD.match(rest)
    what = f"内存中最多 {held.group(1)} 条读数" if held else "内存中数量不明的读数"
    if "ack: received" in rest:
        fate = "已向消息代理确认，但可能未写入数据库"
    else:
        fate = "可能未写入数据库：其中未确认的 QoS 1 消息由消息代理重发，OPC UA 和 QoS 0 读数已丢失"
    when = "未知" if at == "unknown" else at
    text = f"上次守护进程未正常停止（最后记录于 {when}）；{what}{fate}"
    return ("已记录：" if recorded else "系统故障：") + text


def system_message_zh(key: str, active: bool, message: str) -> str:
    """``系统故障：…`` (or ``系统恢复：…`` when the condition ended) for one system condition."""
    lead = "系统故障：" if active else "系统恢复："
    if key == "spool_full":
        m = _SPOOL_FULL.fullmatch(message)
        if m is not None:
            return lead + f"本地缓存已满（{m.group(1)} 字节），读数正在被丢弃"
        if message == "spool has room again":
            return lead + "本地缓存已有空间"
    if key == "spool_io_error":
        m = _SPOOL_IO.fullmatch(message)
        if m is not None:
            return lead + f"本地缓存写入失败：“{m.group(1)}”"
    if key == "unclean_shutdown":
        m = _UNCLEAN.fullmatch(message)
        if m is not None:
            return _unclean(m)
    return lead + f"“{message}”"
