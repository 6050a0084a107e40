"""The bureau's supervision pages (挂牌督办) in Debian's Chromium, on the bureau's own tables and functions.

The enterprises' hidden dangers, duty checks, commitments and progress reports come in through the
bureau's ingest (as on the link); the pages' steps go through `supervision_repository` (the API's
path), so what the test reads back from the database is the workflow's own record.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from hazmon.bureau import supervision_repository as repo
from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.plant import Plant
from hazmon.plant.link import CommitmentReport, DutyCheckReport, HiddenDanger, SupervisionProgress
from hazmon.plant.regions import Scope
from tests.bureau.helpers import CITY, T0, Enterprise
from tests.console.conftest import shot
from tests.console.helpers import rows
from tests.console.test_bureau_browser import CLOCK, Server, _seed, sign_in

TZ = ZoneInfo("Asia/Shanghai")
TODAY = CLOCK.astimezone(TZ).date()


def _danger(ent: Enterprise, n: int, title: str) -> HiddenDanger:
    return HiddenDanger.model_validate(
        {
            "danger_id": f"{ent.id}:{n}",
            "seq": 1,
            "step": "report",
            "at": T0,
            "actor": "王强",
            "role": "plant_manager",
            "title": title,
            "hazard_source": "cl2-tankfarm",
            "found_by": "inspection",
            "level": "major",
            "criteria": [15],
            "state": "found",
            "found_at": T0,
        }
    )


class Link:
    """The two enterprises sending on (their registration and first alarm were seq 1 and 2)."""

    def __init__(self, dsn: str, plant: Plant) -> None:
        self.dsn, self.ing = dsn, Ingestor(CITY, IngestLimits())
        self.ents = {e: Enterprise(plant, e, c) for e, c in (("liuhe-chem", "320116"), ("jn-chem", "320115"))}
        for e in self.ents.values():
            e.seq = 2

    def send(self, eid: str, payload: Any) -> None:
        ent = self.ents[eid]
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            assert self.ing.handle(conn, *ent.wire(ent.envelope(payload)), T0).status == "stored"


@pytest.fixture
def link(db_dsn: str, example_plant: Plant) -> Link:
    _seed(db_dsn, example_plant)
    lk = Link(db_dsn, example_plant)
    lk.send("liuhe-chem", _danger(lk.ents["liuhe-chem"], 7, "V-101 爆破片未投用"))
    lk.send("jn-chem", _danger(lk.ents["jn-chem"], 3, "江宁储罐区可燃气体报警器失效"))
    lk.send(
        "liuhe-chem",
        DutyCheckReport(
            check_id=4, hazard_source="cl2-tankfarm", role="technical", person="李明", at=T0, what="安全阀"
        ),
    )
    lk.send(
        "liuhe-chem",
        CommitmentReport(
            commitment_id=9,
            day=TODAY,
            sources={"cl2-tankfarm": "running"},
            special_work={"hot_work": 1},
            filed_by="张建国",
            filed_at=T0,
        ),
    )
    return lk


@pytest.fixture
def bureau(link: Link, db_dsn: str) -> Iterator[Server]:
    s = Server(db_dsn).start()
    yield s
    s.stop()


def _csrf(page: Page) -> str:
    return page.locator("#signout").locator("xpath=..").locator("input[name=csrf]").input_value()


def test_a_county_officer_supervises_a_major_danger_to_closure(
    page: Page, bureau: Server, link: Link
) -> None:
    sign_in(page, bureau, "六合区应急局", "/enterprises/liuhe-chem")
    # the enterprise page: its hidden dangers, the commitment of today and the duty record
    expect(page.locator("#dangers [data-danger='liuhe-chem:7']")).to_contain_text("V-101 爆破片未投用")
    expect(page.locator("#commitment-today")).to_contain_text("今日已承诺")
    expect(page.locator("#commitments")).to_contain_text("cl2-tankfarm: 运行")
    expect(page.locator("#duty-last")).to_contain_text("技术负责人")
    expect(page.locator("#duty-last")).to_contain_text("李明")
    assert "jn-chem" not in page.content()
    shot(page, "bureau-enterprise-supervision")
    # open 挂牌督办 on it, at the county's level
    page.click("#dangers details.open-supervision summary")
    form = page.locator("#open-liuhe-chem-7")
    form.locator("input[name=deadline]").fill((TODAY + timedelta(days=5)).isoformat())
    form.locator("input[name=bureau_person]").fill("陈科长")
    form.locator("input[name=comment]").fill("限期整改")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/supervisions/*")
    sid = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#supervision-state")).to_have_text("督办中")
    expect(page.locator("#supervision-level")).to_have_text("县级")
    # accepting waits for the enterprise to report it done: only "request progress" is offered
    expect(page.locator("#step-accept")).to_have_count(0)
    page.fill("#step-form input[name=comment]", "请三日内报告进展")
    page.click("#step-request_progress")
    expect(page.locator("#supervision-state")).to_have_text("已催报进展")
    expect(page.locator("#history")).to_contain_text("请三日内报告进展")
    # the enterprise reports it done (on the link); the next step is acceptance on site, then 销号
    link.send(
        "liuhe-chem",
        SupervisionProgress(
            supervision_id=sid, progress_id=1, danger_id="liuhe-chem:7", at=CLOCK, actor="张建国",
            comment="已更换爆破片", done=True,
        ),
    )  # fmt: skip
    page.reload()
    expect(page.locator("#history")).to_contain_text("已更换爆破片")
    shot(page, "bureau-supervision")
    page.click("#step-accept")
    expect(page.locator("#supervision-state")).to_have_text("已验收")
    # 销号 needs the enterprise's application for acceptance of the record (its `apply` on the link)
    expect(page.locator("#step-close")).to_have_count(0)
    applied = _danger(link.ents["liuhe-chem"], 7, "V-101 爆破片未投用").model_copy(
        update={"seq": 2, "step": "apply", "state": "applied", "at": CLOCK, "actor": "张建国"}
    )
    link.send("liuhe-chem", applied)
    page.reload()
    page.click("#step-close")
    expect(page.locator("#supervision-state")).to_have_text("已销号")
    expect(page.locator("#step-form")).to_have_count(0)
    assert rows(
        bureau.dsn,
        "SELECT step, actor, origin FROM bureau_supervision_event WHERE supervision_id = %s ORDER BY id",
        sid,
    ) == [
        ("opened", "六合区应急局", "bureau"),
        ("progress_requested", "六合区应急局", "bureau"),
        ("progress", "张建国", "enterprise"),
        ("accepted", "六合区应急局", "bureau"),
        ("closed", "六合区应急局", "bureau"),
    ]
    down = rows(
        bureau.dsn, "SELECT payload->>'action' FROM bureau_downlink WHERE kind = 'supervision' ORDER BY seq"
    )
    assert down == [("opened",), ("progress_requested",), ("accepted",), ("closed",)]
    audit = rows(
        bureau.dsn, "SELECT action FROM console_audit WHERE target = %s ORDER BY id", f"supervision/{sid}"
    )
    assert audit == [
        ("supervision_open",),
        ("supervision_request_progress",),
        ("supervision_accept",),
        ("supervision_close",),
    ]
    assert bureau.steps == 4


def _open(dsn: str, scope: Scope, danger_id: str, deadline: date, days_ago: int) -> int:
    """A supervision opened ``days_ago`` days before the console's clock (through the API's function)."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        got = repo.open_supervision(
            conn, scope, actor="市局", danger_id=danger_id, enterprise_id=None, deadline=deadline,
            bureau_person="周处长", comment="", now=CLOCK - timedelta(days=days_ago), tz=TZ,
        )  # fmt: skip
    assert isinstance(got, dict), got
    return int(got["id"])


def test_the_supervision_list_by_due_and_level_and_a_county_sees_only_its_own(
    page: Page, context: BrowserContext, bureau: Server
) -> None:
    late = _open(bureau.dsn, CITY, "liuhe-chem:7", TODAY - timedelta(days=3), 20)  # overdue, city level
    theirs = _open(bureau.dsn, CITY, "jn-chem:3", TODAY + timedelta(days=3), 1)  # due this week, Jiangning
    sign_in(page, bureau, "南京市应急局值班员", "/supervisions?due=overdue")
    expect(page.locator("#supervision-list tbody tr")).to_have_count(1)
    expect(page.locator(f"#supervision-list [data-supervision='{late}']")).to_contain_text("逾期")
    page.goto(bureau.url + "/supervisions?due=week")
    expect(page.locator("#supervision-list tbody tr")).to_have_count(1)
    expect(page.locator(f"#supervision-list [data-supervision='{theirs}']")).to_be_visible()
    page.goto(bureau.url + "/supervisions?level=county")
    expect(page.locator("#supervision-list")).to_contain_text("无")
    page.goto(bureau.url + "/supervisions?level=city&due=open")
    expect(page.locator("#supervision-list tbody tr")).to_have_count(2)
    shot(page, "bureau-supervisions")
    r = page.goto(bureau.url + "/supervisions?due=soon")
    assert r is not None and r.status == 400
    expect(page.locator("main .error")).to_contain_text("due: 'soon' is not one of overdue, week, open")
    # the Liuhe county officer: its own only; the other county's is a 404 on every path
    page.click("#signout")
    sign_in(page, bureau, "六合区应急局", "/supervisions")
    expect(page.locator("#supervision-list tbody tr")).to_have_count(1)
    assert "jn-chem" not in page.content()
    r = page.goto(f"{bureau.url}/supervisions/{theirs}")
    assert r is not None and r.status == 404
    # a city-level supervision: the county officer sees it but the flow lets only a city act on it
    page.goto(f"{bureau.url}/supervisions/{late}")
    expect(page.locator("#supervision-level")).to_have_text("市级")
    expect(page.locator("#step-form")).to_have_count(0)
    csrf = _csrf(page)
    r = context.request.post(
        f"{bureau.url}/supervisions/{theirs}/step", form={"csrf": csrf, "step": "request_progress"}
    )
    assert r.status == 404
    r = context.request.post(
        f"{bureau.url}/supervisions/{late}/step", form={"csrf": csrf, "step": "request_progress"}
    )
    assert r.status == 409
    assert "该督办已由市级督办" in r.text()  # why: the supervision is at city level now (in Chinese)
    r = context.request.post(f"{bureau.url}/supervisions/{late}/step", form={"step": "request_progress"})
    assert r.status == 403  # no CSRF token
    assert rows(bureau.dsn, "SELECT count(*) FROM bureau_supervision_event WHERE step <> 'opened'") == [(0,)]


def test_a_viewer_has_no_step_and_the_pages_fit_a_phone(browser_phone: Page, bureau: Server) -> None:
    sid = _open(bureau.dsn, Scope("320115", "county"), "jn-chem:3", TODAY + timedelta(days=3), 1)
    page = browser_phone
    sign_in(page, bureau, "江宁区应急局", f"/supervisions/{sid}")
    expect(page.locator("#supervision-state")).to_have_text("督办中")
    expect(page.locator("#step-form")).to_have_count(0)
    for path, name in (
        (f"/supervisions/{sid}", "bureau-supervision-phone"),
        ("/supervisions?due=open", "bureau-supervisions-phone"),
        ("/enterprises/jn-chem", "bureau-enterprise-supervision-phone"),
    ):
        page.goto(bureau.url + path)
        widths = page.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth]")
        assert max(widths) <= 390, (path, widths)
        shot(page, name)
