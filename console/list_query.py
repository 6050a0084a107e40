"""A list page's query string: its filters, the page and the page size, checked before any query.

Every parameter a list page takes is named here with its check; anything else, a value that
fails its check or a parameter given twice is a problem named with its place and reason
(``colour: 'purple' is not one of red, orange, yellow, blue``), shown on the page with status
400 — never a 500 and never silently ignored. The accepted values go back into the pager's
links (`ListArgs.link`), so page 2 keeps the filters of page 1.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlencode

from multidict import MultiMapping

__all__ = ["PAGE_SIZES", "Check", "ListArgs", "choice", "choices", "pager", "parse_list", "pattern", "text"]

PAGE_SIZES = (20, 50, 100)
MAX_PAGE = 100_000
Check = Callable[[str], str | None]  # the reason the value is refused, or None


def choice(options: Sequence[str]) -> Check:
    return lambda v: None if v in options else f"'{v[:40]}' is not one of {', '.join(options)}"


def choices(options: Sequence[str]) -> Check:
    """A comma list of ``options`` (``red,orange``)."""

    def check(v: str) -> str | None:
        bad = [x for x in v.split(",") if x not in options]
        return None if not bad else f"'{bad[0][:40]}' is not one of {', '.join(options)}"

    return check


def pattern(regex: str, what: str) -> Check:
    rx = re.compile(regex)
    return lambda v: None if rx.fullmatch(v) else f"'{v[:40]}' is not {what}"


def text(max_len: int = 100) -> Check:
    why = f"at most {max_len} printable characters"
    return lambda v: None if len(v) <= max_len and v.isprintable() else why


@dataclass(frozen=True, slots=True)
class ListArgs:
    """The accepted filters (empty ones left out), the page (from 1), the page size and the problems."""

    filters: dict[str, str]
    page: int
    size: int
    problems: list[str]

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    def link(self, page: int) -> str:
        """The query string of ``page`` with these filters and page size."""
        return urlencode({**self.filters, "size": self.size, "page": page})

    def value(self, name: str) -> str:
        return self.filters.get(name, "")


def parse_list(query: MultiMapping[str], checks: Mapping[str, Check], default_size: int = 50) -> ListArgs:
    """Check ``query`` against ``checks`` (plus ``page`` and ``size``); every problem is listed."""
    problems: list[str] = []
    filters: dict[str, str] = {}
    page, size = 1, default_size
    known = [*checks, "page", "size"]
    for name in dict.fromkeys(query.keys()):
        values = query.getall(name)
        if name not in known:
            problems.append(f"{name[:40]}: not a parameter of this page (one of {', '.join(known)})")
            continue
        if len(values) > 1:
            problems.append(f"{name}: given {len(values)} times")
            continue
        v = values[0].strip()
        if name == "page":
            if not (v.isdigit() and len(v) <= 6 and 1 <= int(v) <= MAX_PAGE):
                problems.append(f"page: '{v[:40]}' is not a page number (1 to {MAX_PAGE})")
            else:
                page = int(v)
        elif name == "size":
            if v not in [str(s) for s in PAGE_SIZES]:
                problems.append(f"size: '{v[:40]}' is not one of {', '.join(map(str, PAGE_SIZES))}")
            else:
                size = int(v)
        elif v:
            why = checks[name](v)
            if why is None:
                filters[name] = v
            else:
                problems.append(f"{name}: {why}")
    return ListArgs(filters, page, size, problems)


def pager(args: ListArgs, total: int, window: int = 2) -> dict[str, object]:
    """What the pager template shows: the pages around this one, the first and the last, with links."""
    pages = max(1, -(-total // args.size))
    around = range(max(1, args.page - window), min(pages, args.page + window) + 1)
    shown = sorted({1, pages, *around})
    return {
        "page": args.page,
        "pages": pages,
        "total": total,
        "links": [(p, args.link(p)) for p in shown],
        "prev": args.link(args.page - 1) if args.page > 1 else None,
        "next": args.link(args.page + 1) if args.page < pages else None,
    }
