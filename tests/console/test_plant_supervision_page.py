"""The bureau's supervision of a hidden danger on the plant's record page (real Chromium, real PostgreSQL):
level, deadline, person and the bureau's steps in Chinese and English; the plant manager's progress
form persisted and queued for the uplink; the plant's own 销号 refused while supervised."""

from __future__ import annotations

import uuid
from datetime import date, timedelta

from playwright.sync_api import Page, expect

from hazmon.plant.link import Supervision
from hazmon.store import connect
from hazmon.supervision import bureau as sbureau
from hazmon.supervision import repository as repo
from hazmon.supervision.dangers import Action, Step
from hazmon.supervision_link import enqueue_supervision
from tests.console.helpers import rows, sign_in
from tests.console.server import ConsoleServer
from tests.supervision.test_dangers import full_plan
from tests.supervision.test_repository import _report


def _supervised(server: ConsoleServer) -> int:
    """A major hidden danger applied for acceptance, opened by the county and escalated to the city."""
    plant, t = server.plant, server.now() - timedelta(minutes=30)
    with connect(server.dsn, autocommit=True) as c:
        d = repo.add_danger(c, plant, Step(Action.REPORT, "王强", "operator", t, "", _report().to_json()))
        plan = full_plan(deadline=(t + timedelta(days=30)).date()).to_json()
        for i, (a, who, role, data) in enumerate(
            [(Action.PLAN, "张建国", "plant_manager", plan), (Action.START, "王强", "operator", {}),
             (Action.APPLY, "张建国", "plant_manager", {})]
        ):  # fmt: skip
            repo.add_step(c, plant, d.id, Step(a, who, role, t + timedelta(seconds=i + 1), "", data))
        for i, (action, level) in enumerate([("opened", "county"), ("escalated", "city")]):
            p = Supervision(
                supervision_id=21, danger_id=f"{plant.enterprise.id}:{d.id}", action=action, level=level,  # type: ignore[arg-type]
                deadline=date(2099, 1, 1), bureau_person="陈科长", at=t + timedelta(minutes=i + 1),
                actor="市应急局 陈科长", comment="限期整改" if action == "opened" else "",
            )  # fmt: skip
            assert sbureau.record_notice(c, plant, p, str(uuid.uuid4()))
    return d.id


def test_the_supervision_shows_and_progress_is_filed(page: Page, server: ConsoleServer) -> None:
    did = _supervised(server)
    sign_in(page, server, "张建国", path=f"/dangers/{did}")
    box = page.locator("#supervision-21")
    expect(box.locator(".sv-level")).to_have_text("市级")
    expect(box.locator(".sv-deadline")).to_have_text("2099-01-01")
    expect(box.locator(".sv-person")).to_have_text("陈科长")
    expect(box.locator("tr.from-bureau")).to_have_count(2)
    expect(box.locator("tr.from-bureau").nth(0)).to_contain_text("挂牌督办")
    expect(box.locator("tr.from-bureau").nth(0)).to_contain_text("县级")
    expect(box.locator("tr.from-bureau").nth(1)).to_contain_text("逾期提级")
    assert "city" not in box.inner_text()  # no untranslated level in Chinese
    page.click("#lang")
    box = page.locator("#supervision-21")
    expect(box.locator(".sv-level")).to_have_text("city")
    expect(box.locator("tr.from-bureau").nth(1)).to_contain_text("escalated (overdue)")
    page.click("#lang")
    # the plant's own 销号 is refused while the city supervises: the reason names the level
    page.locator("#step select[name=action]").select_option("accept")
    page.click("#step button[type=submit]")
    expect(page.locator("ul.error")).to_contain_text("by the city bureau")
    expect(page.locator("ul.error")).to_contain_text("市级")
    assert rows(server.dsn, "SELECT state FROM hidden_danger WHERE id = %s", did) == [("applied",)]
    # progress on the supervision, through the same function as the API
    page.goto(f"{server.url}/dangers/{did}")
    form = page.locator("#progress-21")
    form.locator("input[name=comment]").fill("爆破片已更换并试漏合格")
    form.locator("input[name=done]").check()
    form.locator("button[type=submit]").click()
    page.wait_for_url(f"**/console/dangers/{did}")
    expect(page.locator("#supervision-21 tr.ours")).to_contain_text("爆破片已更换并试漏合格")
    expect(page.locator("#supervision-21 tr.ours")).to_contain_text("整改完成")
    got = rows(
        server.dsn, "SELECT id, supervision_id, danger_id, actor, comment, done FROM supervision_progress"
    )
    assert [r[1:] for r in got] == [(21, did, "张建国", "爆破片已更换并试漏合格", True)]
    with connect(server.dsn, autocommit=True) as c:  # the uplink round of the roof
        enqueue_supervision(c, server.plant)
    key = f"supervision_progress:{server.plant.enterprise.id}:{got[0][0]}"
    queued = rows(
        server.dsn, "SELECT kind, payload->>'comment' FROM uplink_outbox WHERE dedupe_key = %s", key
    )
    assert queued == [("supervision_progress", "爆破片已更换并试漏合格")]


def test_progress_without_a_comment_or_of_another_supervision_is_refused(
    page: Page, server: ConsoleServer
) -> None:
    did = _supervised(server)
    sign_in(page, server, "张建国", path=f"/dangers/{did}")
    form = page.locator("#progress-21")
    form.locator("input[name=supervision_id]").evaluate("e => e.value = '99'", None)
    form.locator("input[name=comment]").fill("x")
    form.locator("button[type=submit]").click()
    expect(page.locator("ul.error")).to_contain_text("99 is no supervision of hidden danger")
    page.goto(f"{server.url}/dangers/{did}")
    page.locator("#progress-21 input[name=comment]").evaluate("e => e.removeAttribute('required')", None)
    page.locator("#progress-21 button[type=submit]").click()
    expect(page.locator("ul.error")).to_contain_text("comment: say what was done")
    assert rows(server.dsn, "SELECT count(*) FROM supervision_progress") == [(0,)]


def test_an_operator_sees_the_supervision_but_no_progress_form(page: Page, server: ConsoleServer) -> None:
    did = _supervised(server)
    sign_in(page, server, "王强", path=f"/dangers/{did}")
    expect(page.locator("#supervision-21 .sv-level")).to_have_text("市级")
    expect(page.locator("#progress-21")).to_have_count(0)
