"""A table of figures as CSV (for Excel: UTF-8 with a byte-order mark) or as an .xlsx workbook.

Excel opens a CSV file as the local code page (GBK on a Chinese Windows) unless the file starts
with the UTF-8 byte-order mark: `to_csv` writes it, so 企业 and 整改率 arrive intact. Headers
are Chinese with the English in brackets (``整改率 (rectification rate)``) unless a language is
chosen. Rates are fractions (0.875); in the workbook they are formatted as percentages. A cell
that would start with ``=``, ``+``, ``-`` or ``@`` in a text column is prefixed with ``'`` so
Excel never reads a name typed at an enterprise as a formula (CSV injection, OWASP).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from openpyxl import Workbook
from openpyxl.utils import get_column_letter

__all__ = ["BOM", "Column", "header", "to_csv", "to_xlsx"]

BOM = "\ufeff"
Lang = Literal["zh", "en", "both"]
Cell = str | int | float | date | datetime | None


@dataclass(frozen=True, slots=True)
class Column:
    """One column: the row key, its Chinese and English header, and how to show it."""

    key: str
    zh: str
    en: str
    kind: Literal["text", "int", "rate", "time"] = "text"


def header(c: Column, lang: Lang = "both") -> str:
    if lang == "zh":
        return c.zh
    if lang == "en":
        return c.en
    return f"{c.zh} ({c.en})"


def _safe(v: str) -> str:
    return "'" + v if v[:1] in ("=", "+", "-", "@", "\t", "\r") else v


def _text(c: Column, v: Cell) -> str:
    if v is None:
        return ""
    if isinstance(v, datetime | date):
        return v.isoformat()
    if c.kind == "rate" and isinstance(v, float):
        return f"{v:.4f}"
    if isinstance(v, str):
        return _safe(v)
    return str(v)


def to_csv(columns: Sequence[Column], rows: Iterable[Mapping[str, Cell]], lang: Lang = "both") -> bytes:
    """The rows as CSV (RFC 4180, CRLF), UTF-8 with a BOM, one header line."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\r\n")
    w.writerow([header(c, lang) for c in columns])
    for r in rows:
        w.writerow([_text(c, r.get(c.key)) for c in columns])
    return (BOM + buf.getvalue()).encode("utf-8")


def to_xlsx(
    columns: Sequence[Column],
    rows: Iterable[Mapping[str, Cell]],
    *,
    title: str = "figures",
    lang: Lang = "both",
) -> bytes:
    """The rows as one worksheet of an .xlsx workbook (openpyxl), rates as percentages."""
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.title = title[:31]  # Excel's limit for a sheet name
    ws.append([header(c, lang) for c in columns])
    for r in rows:
        out: list[Cell] = []
        for c in columns:
            v = r.get(c.key)
            if isinstance(v, datetime) and v.tzinfo is not None:
                v = v.replace(tzinfo=None)  # Excel has no time zones: the caller gives local time
            out.append(_safe(v) if isinstance(v, str) else v)
        ws.append(out)
    for i, c in enumerate(columns, start=1):
        letter = get_column_letter(i)
        ws.column_dimensions[letter].width = max(10, min(40, len(header(c, lang)) + 4))
        if c.kind == "rate":
            for cell in ws[letter][1:]:
                cell.number_format = "0.0%"
    ws.freeze_panes = "A2"
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()
