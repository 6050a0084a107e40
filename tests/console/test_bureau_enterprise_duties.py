"""The bureau's enterprise page: each responsible person's check done / due / OVERDUE by the periods
the registration now carries, and 挂牌督办 on the whole enterprise — in Debian's Chromium.

The registrations and duty checks come in through the bureau's ingest (as on the link); the
periods are the example plant's defaults (principal and technical a quarter, operational a week:
`hazmon.plant.supervision_standards.DUTY_ROLES`), judged in the plant's local time.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.plant import Plant
from hazmon.plant.link import DutyCheckReport, Registration
from tests.bureau.helpers import CITY, T0, Enterprise
from tests.console.conftest import shot
from tests.console.helpers import rows
from tests.console.test_bureau_browser import CLOCK, Server, _seed, sign_in

TODAY = CLOCK.astimezone(ZoneInfo("Asia/Shanghai")).date()  # Sunday 2026-03-01 in Shanghai
OPS = "cl2-tankfarm/operational"


class Link:
    def __init__(self, dsn: str, plant: Plant) -> None:
        self.dsn, self.ing = dsn, Ingestor(CITY, IngestLimits())
        self.ents = {e: Enterprise(plant, e, c) for e, c in (("liuhe-chem", "320116"), ("jn-chem", "320115"))}
        for e in self.ents.values():
            e.seq = 2  # registration and first alarm

    def send(self, eid: str, payload: Any) -> None:
        ent = self.ents[eid]
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            assert self.ing.handle(conn, *ent.wire(ent.envelope(payload)), T0).status == "stored"


def _check(n: int, role: str, person: str, at: Any) -> DutyCheckReport:
    return DutyCheckReport(
        check_id=n, hazard_source="cl2-tankfarm", role=role, person=person, at=at, what="巡查"
    )


@pytest.fixture
def link(db_dsn: str, example_plant: Plant) -> Link:
    _seed(db_dsn, example_plant)
    lk = Link(db_dsn, example_plant)
    lk.send("liuhe-chem", _check(4, "technical", "李明", T0))
    # Jiangning's daemon is older: its registration carries no periods
    old = lk.ents["jn-chem"].registration().model_dump(mode="json")
    for h in old["hazard_sources"]:
        h.pop("duty_periods")
    lk.send("jn-chem", Registration.model_validate(old, strict=False))
    with psycopg.connect(db_dsn, autocommit=True) as conn:  # the bureau has known Liuhe's for a month
        conn.execute(
            "UPDATE bureau_enterprise SET registered_at = %s WHERE enterprise_id = 'liuhe-chem'",
            (CLOCK - timedelta(days=30),),
        )
    return lk


@pytest.fixture
def bureau(link: Link, db_dsn: str) -> Iterator[Server]:
    s = Server(db_dsn).start()
    yield s
    s.stop()


def test_each_roles_check_is_done_due_or_overdue_and_a_late_check_clears_it(
    page: Page, bureau: Server, link: Link
) -> None:
    sign_in(page, bureau, "六合区应急局", "/enterprises/liuhe-chem")
    duty = page.locator("#duty-last")
    # operational: weekly; last week (Mon 02-23 .. Sun 03-01 is this week) ended without a check
    expect(duty.locator(f"tr[data-duty='{OPS}'] .duty-status")).to_have_text("逾期未履职 (2026-02-22)")
    expect(duty.locator(f"tr[data-duty='{OPS}']")).to_contain_text("每周")
    # technical: checked this quarter by 李明; principal: quarterly, not yet, due by the quarter's end
    expect(duty.locator("tr[data-duty='cl2-tankfarm/technical'] .duty-status")).to_have_text("本期已履职")
    expect(duty.locator("tr[data-duty='cl2-tankfarm/technical']")).to_contain_text("李明")
    expect(duty.locator("tr[data-duty='cl2-tankfarm/principal'] .duty-status")).to_have_text(
        "本期待履职 → 2026-03-31"
    )
    shot(page, "bureau-enterprise-duties")
    page.click("#lang")
    expect(duty.locator(f"tr[data-duty='{OPS}'] .duty-status")).to_have_text("OVERDUE (2026-02-22)")
    page.click("#lang")
    # the operational responsible person checks today (reported on the link): done, the overdue cleared
    link.send("liuhe-chem", _check(5, "operational", "赵刚", CLOCK - timedelta(hours=1)))
    page.reload()
    expect(duty.locator(f"tr[data-duty='{OPS}'] .duty-status")).to_have_text("本期已履职")
    expect(duty.locator(f"tr[data-duty='{OPS}']")).to_contain_text("赵刚")
    assert rows(
        bureau.dsn,
        "SELECT person FROM bureau_duty_check WHERE enterprise_id = 'liuhe-chem' AND role = 'operational'",
    ) == [("赵刚",)]


def test_an_officer_supervises_the_whole_enterprise_and_another_county_cannot(
    page: Page, context: BrowserContext, bureau: Server
) -> None:
    sign_in(page, bureau, "六合区应急局", "/enterprises/liuhe-chem")
    page.click("#open-enterprise-supervision summary")
    form = page.locator("#open-enterprise")
    form.locator("input[name=deadline]").fill((TODAY + timedelta(days=10)).isoformat())
    form.locator("input[name=bureau_person]").fill("陈科长")
    form.locator("input[name=comment]").fill("包保责任人履职不到位")
    form.locator("button[type=submit]").click()
    page.wait_for_url("**/supervisions/*")
    sid = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#supervision-state")).to_have_text("督办中")
    assert rows(
        bureau.dsn,
        "SELECT enterprise_id, danger_id, level, bureau_person, opened_by FROM bureau_supervision WHERE id = %s",
        sid,
    ) == [("liuhe-chem", None, "county", "陈科长", "六合区应急局")]
    page.goto(bureau.url + "/enterprises/liuhe-chem")
    expect(page.locator(f"#supervisions [data-supervision='{sid}']")).to_be_visible()
    # the other county's enterprise: a 404, and a forged form opens nothing
    r = page.goto(bureau.url + "/enterprises/jn-chem")
    assert r is not None and r.status == 404
    csrf = page.locator("#signout").locator("xpath=..").locator("input[name=csrf]").input_value()
    r = context.request.post(
        bureau.url + "/supervisions",
        form={"csrf": csrf, "enterprise_id": "jn-chem", "deadline": TODAY.isoformat(), "bureau_person": "x"},
    )
    assert r.status == 404
    assert rows(bureau.dsn, "SELECT count(*) FROM bureau_supervision") == [(1,)]
    assert rows(bureau.dsn, "SELECT action, target FROM console_audit WHERE action = 'supervision_open'") == [
        ("supervision_open", f"supervision/{sid}")
    ]


def test_an_older_sender_shows_no_status_and_a_viewer_no_form_on_a_phone(
    browser_phone: Page, bureau: Server
) -> None:
    page = browser_phone
    sign_in(page, bureau, "江宁区应急局", "/enterprises/jn-chem")
    expect(page.locator(f"#duty-last tr[data-duty='{OPS}'] .duty-status")).to_have_text("周期未报")
    expect(page.locator("#open-enterprise")).to_have_count(0)
    assert "liuhe-chem" not in page.content()
    r = page.goto(bureau.url + "/enterprises/liuhe-chem")
    assert r is not None and r.status == 404
    page.goto(bureau.url + "/enterprises/jn-chem")
    widths = page.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth]")
    assert max(widths) <= 390, widths
    shot(page, "bureau-enterprise-duties-phone")
