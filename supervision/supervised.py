"""Is a hidden danger under the bureau's supervision (挂牌督办)? Then its 销号 is the bureau's (pure).

Order 16 of 2007 (《安全生产事故隐患排查治理暂行规定》, on supervised major hidden dangers;
article number recalled, not checked against the text): a major hidden danger put under the
authority's supervision is closed (销号) by the supervising authority after it has accepted the
rectification — not by the enterprise itself. So while a supervision of the record is open
(a ``supervision`` notice ``opened``, ``escalated`` or ``extended`` received and no ``closed``
after it), an ``accept`` taken at the plant (API, CLI, console: `repository.add_step`) is refused
naming the supervising level; the bureau's ``closed`` arriving over the link
(`supervision.bureau.record_notice`) is the record's acceptance and does not pass through here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from hazmon.supervision.dangers import Action, Step

__all__ = ["LEVELS_ZH", "Notice", "open_supervision", "supervised_accept_problems"]

LEVELS_ZH = {"county": "县级", "city": "市级", "province": "省级"}
_OPENING = frozenset({"opened", "escalated", "extended"})


class Notice(NamedTuple):
    """One bureau step received about the record (``supervision_notice``), in the order received."""

    supervision_id: int
    action: str
    level: str
    bureau_person: str = ""


def open_supervision(notices: Iterable[Notice]) -> Notice | None:
    """The latest notice of a supervision of the record still open (not closed), or None."""
    last: dict[int, Notice] = {}
    opened: set[int] = set()
    closed: set[int] = set()
    for n in notices:
        last[n.supervision_id] = n
        if n.action in _OPENING:
            opened.add(n.supervision_id)
        elif n.action == "closed":
            closed.add(n.supervision_id)
    live = [last[i] for i in sorted(opened - closed)]
    return live[-1] if live else None


def supervised_accept_problems(step: Step, notices: Iterable[Notice]) -> list[str]:
    """Why ``step`` may not be taken at the plant because a bureau supervises the record (empty: it may)."""
    if step.action is not Action.ACCEPT:
        return []
    sv = open_supervision(notices)
    if sv is None:
        return []
    zh = LEVELS_ZH.get(sv.level, sv.level)
    who = f", 督办责任人 {sv.bureau_person}" if sv.bureau_person else ""
    return [
        f"accept: this hidden danger is under supervision by the {sv.level} bureau "
        f"(挂牌督办, {zh}, supervision {sv.supervision_id}{who}); its acceptance (销号) is the "
        f"supervising bureau's (Order 16 of 2007), and arrives as the bureau's close over the link — "
        f"该隐患由{zh}应急管理部门挂牌督办，须由督办部门验收销号"
    ]
