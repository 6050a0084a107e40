"""The supervision figures through the API and the CLI, as JSON, CSV (for Excel) and .xlsx."""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import json
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from pathlib import Path

import aiohttp
import openpyxl
import psycopg
import pytest

from hazmon.bureau.api import ApiUser, BureauApi, build_routes
from hazmon.bureau.export import BOM, Column, to_csv, to_xlsx
from hazmon.cli import main
from hazmon.collector import Metrics
from hazmon.http import HttpServer
from hazmon.plant.regions import Scope
from tests.bureau.supervision_rows import seed

NOW = datetime(2024, 6, 1, tzinfo=UTC)
TOKENS = {
    "tok-city": ApiUser("city", "viewer", "", Scope("320100", "city")),
    "tok-liuhe": ApiUser("liuhe", "viewer", "", Scope("320116", "county")),
}


def test_csv_has_a_bom_chinese_headers_and_no_formulas() -> None:
    cols = (
        Column("name", "企业名称", "enterprise"),
        Column("n", "数量", "count", "int"),
        Column("r", "整改率", "rate", "rate"),
    )
    rows = [{"name": "=HYPERLINK(1)", "n": 3, "r": 2 / 3}, {"name": "恒信,化工", "n": 0, "r": None}]
    data = to_csv(cols, rows)
    assert data.startswith(BOM.encode("utf-8"))  # EF BB BF: Excel reads UTF-8
    text = data.decode("utf-8-sig")
    assert text.endswith("\r\n")
    parsed = list(csv.reader(io.StringIO(text, newline="")))
    assert parsed == [
        ["企业名称 (enterprise)", "数量 (count)", "整改率 (rate)"],
        ["'=HYPERLINK(1)", "3", "0.6667"],  # never a formula in Excel
        ["恒信,化工", "0", ""],  # no rate: an empty cell, not 0
    ]
    assert to_csv(cols, [], "zh").decode("utf-8-sig") == "企业名称,数量,整改率\r\n"
    assert to_csv(cols, [], "en").decode("utf-8-sig") == "enterprise,count,rate\r\n"


def test_xlsx_has_headers_numbers_and_percentages() -> None:
    cols = (
        Column("name", "企业名称", "enterprise"),
        Column("day", "日期", "day"),
        Column("r", "整改率", "rate", "rate"),
    )
    data = to_xlsx(
        cols, [{"name": "@SUM(A1)", "day": date(2024, 2, 29), "r": 0.5}], title="2024-02", lang="zh"
    )
    wb = openpyxl.load_workbook(io.BytesIO(data))
    ws = wb["2024-02"]
    assert [c.value for c in ws[1]] == ["企业名称", "日期", "整改率"]
    assert ws["A2"].value == "'@SUM(A1)"
    assert ws["B2"].value == datetime(2024, 2, 29)
    assert ws["C2"].value == 0.5 and ws["C2"].number_format == "0.0%"


@pytest.fixture
async def api(db_dsn: str) -> AsyncIterator[str]:
    with psycopg.connect(db_dsn, autocommit=True) as c:
        seed(c)
    users = [
        ApiUser(u.name, u.role, hashlib.sha256(t.encode()).hexdigest(), u.scope) for t, u in TOKENS.items()
    ]
    http = HttpServer("127.0.0.1", 0, Metrics(), lambda: (True, {}))
    http.mount(build_routes(BureauApi(db_dsn, users, clock=lambda: NOW)))
    port = await http.start()
    yield f"http://127.0.0.1:{port}/api/v1/figures/supervision"
    await http.stop()


async def _get(url: str, token: str) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as s, s.get(url, headers={"Authorization": f"Bearer {token}"}) as r:
        return r.status, r.headers.get("Content-Type", ""), await r.read()


async def test_json_for_the_tokens_region(api: str) -> None:
    st, _, body = await _get(f"{api}?period=2024-02", "tok-city")
    assert st == 200, body
    f = json.loads(body)
    assert (f["period"], f["period_zh"], f["region"]) == (
        "2024-02",
        "2024年2月",
        {"code": "320100", "level": "city"},
    )
    assert (f["start"], f["end"]) == ("2024-01-31T16:00:00+00:00", "2024-02-29T16:00:00+00:00")
    t = f["total"]
    assert (t["enterprises"], t["screened"], t["found"], t["found_major"], t["rectified"]) == (2, 2, 4, 1, 2)
    assert t["rectification_rate"] == 0.5 and t["rectification_rate_major"] == 0.0
    assert [e["enterprise_id"] for e in f["enterprises"]] == ["A", "B"]
    assert [r["region_code"] for r in f["regions"]["county"]] == ["320115", "320116"]
    st, _, body = await _get(f"{api}?period=2024-Q1&region=320116", "tok-city")
    assert st == 200
    assert [e["enterprise_id"] for e in json.loads(body)["enterprises"]] == ["A", "D"]


@pytest.mark.parametrize(
    ("query", "token", "status", "says"),
    [
        ("period=2024-02&region=320115", "tok-liuhe", 404, "no region 320115"),  # the neighbouring county
        ("period=2024-02&region=320100", "tok-liuhe", 404, "no region 320100"),  # its own city: above it
        ("period=2024-13", "tok-city", 400, "query.period"),
        ("period=2024-02&format=pdf", "tok-city", 400, "query.format"),
        ("period=2024-02&region=32011", "tok-city", 400, "query.region"),
        ("", "tok-city", 400, "query.period"),
        ("period=2024-02", "nobody", 401, "invalid token"),
    ],
)
async def test_refusals_name_the_field(api: str, query: str, token: str, status: int, says: str) -> None:
    st, ctype, body = await _get(f"{api}?{query}", token)
    assert st == status and "application/json" in ctype
    assert says in body.decode()


async def test_csv_and_xlsx_exports(api: str) -> None:
    st, ctype, body = await _get(f"{api}?period=2024-02&format=csv", "tok-city")
    assert st == 200 and ctype.startswith("text/csv")
    assert body[:3] == b"\xef\xbb\xbf"
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    # the city, its two counties, its two enterprises
    assert [
        (r["层级 (level)"], r["行政区划代码 (region code)"], r["企业编号 (enterprise id)"]) for r in rows
    ] == [
        ("市", "320100", ""),
        ("县区", "320115", ""),
        ("县区", "320116", ""),
        ("企业", "320116", "A"),  # enterprises by id
        ("企业", "320115", "B"),
    ]
    a = rows[3]
    assert (
        a["排查隐患数 (hidden dangers found)"],
        a["重大隐患数 (major)"],
        a["整改率 (rectification rate)"],
    ) == (
        "3",
        "1",
        "0.6667",
    )
    assert (a["包保履职率 (duty check completion)"], a["承诺率 (commitment rate)"]) == ("0.7500", "0.1034")
    assert rows[0]["统计期 (period)"] == "2024-02"
    st, ctype, body = await _get(f"{api}?period=2024-Q1&format=xlsx&lang=zh", "tok-liuhe")
    assert st == 200 and ctype.startswith("application/vnd.openxmlformats")
    ws = openpyxl.load_workbook(io.BytesIO(body)).active
    assert ws is not None
    head = [c.value for c in ws[1]]
    assert head[:5] == ["统计期", "层级", "行政区划代码", "企业编号", "企业名称"]
    body_rows = [[c.value for c in r] for r in ws.iter_rows(min_row=2)]
    assert [(r[1], r[3]) for r in body_rows] == [("县区", None), ("企业", "A"), ("企业", "D")]
    rate = head.index("整改率")
    assert body_rows[1][rate] == pytest.approx(3 / 5)  # A in Q1: 5 found, 3 accepted
    assert ws.cell(row=3, column=rate + 1).number_format == "0.0%"


def _hz(*args: str) -> tuple[int, str, str]:
    """The command in this process, its output in strings that stay open.

    hazmon's log handler keeps the stderr it was given: pytest's capsys would close it, and the
    next test's log lines (in the same worker) would fail on the closed stream.
    """
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = main(list(args))
    return rc, out.getvalue(), err.getvalue()


def test_cli_exports_the_bureaus_region(db_dsn: str, tmp_path: Path) -> None:
    with psycopg.connect(db_dsn, autocommit=True) as c:
        seed(c)
    cfg = tmp_path / "bureau.yaml"
    cfg.write_text(
        f"""id: nj-city
name: 南京市应急管理局
region: {{code: "320100", level: city}}
database: {{dsn: "{db_dsn}"}}
broker: {{url: "mqtt://127.0.0.1:1883", client_id: bureau-cli}}
""",
        encoding="utf-8",
    )
    out = tmp_path / "q1.csv"
    rc, stdout, _ = _hz(
        "bureau", "figures", "-c", str(cfg), "--period", "2024-Q1", "--lang", "en", "-o", str(out)
    )
    assert rc == 0
    assert "2024-Q1 (2024年第一季度), region 320100, 3 enterprise(s)" in stdout
    rows = list(csv.DictReader(io.StringIO(out.read_bytes().decode("utf-8-sig"), newline="")))
    assert [(r["level"], r["region code"], r["hidden dangers found"]) for r in rows[:3]] == [
        ("city", "320100", "7"),  # A 5, B 1, D 1
        ("county", "320115", "1"),
        ("county", "320116", "6"),
    ]
    xlsx = tmp_path / "feb.xlsx"
    rc, _, _ = _hz("bureau", "figures", "-c", str(cfg), "--period", "2024-02", "--region", "320116",
                   "--format", "xlsx", "-o", str(xlsx))  # fmt: skip
    assert rc == 0
    ws = openpyxl.load_workbook(xlsx).active
    assert ws is not None and ws.max_row == 3  # the header, the county and A
    rc, _, err = _hz("bureau", "figures", "-c", str(cfg), "--period", "2024-14")
    assert rc == 2 and "--period: '2024-14' is not a period" in err
    rc, _, err = _hz("bureau", "figures", "-c", str(cfg), "--period", "2024", "--region", "110105")
    assert rc == 2 and "110105 is not inside this bureau's region 320100" in err
    rc, _, err = _hz("bureau", "figures", "-c", str(cfg), "--period", "2024", "--format", "xlsx")
    assert rc == 2 and "give the file with -o" in err
