"""The bureau's own emergency plan pages (应急预案) in Debian's Chromium.

The plans are bureau.yaml's (parsed by `hazmon.bureau.config.load_config`); the pages start,
confirm and end through `hazmon.bureau.plan_api`'s functions — the API's — so what the test
reads back from ``bureau_own_plan_*`` is the plans' own record.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from hazmon.bureau.config import BureauConfig, load_config
from hazmon.bureau.plan_api import start_plan
from hazmon.plant import Plant
from tests.console.conftest import shot
from tests.console.helpers import rows
from tests.console.test_bureau_browser import CLOCK, Server, _seed, sign_in

YAML = """\
id: nj-city
name: 南京市应急管理局
region: {code: "320100", level: city}
plans:
  - id: city-hazchem
    name: 南京市危险化学品事故应急预案
    start:
      - {level: II, alarm: {min_tier: red, grades: [I]}}
    steps:
      - {id: report, text: 向市政府报告}
  - id: liuhe-chem
    name: 六合区化工园区事故应急预案
    region: {code: "320116", level: county}
    start: [{level: III, manual: {}}]
    steps:
      - {id: dispatch, text: 派出工作组赶赴现场}
      - {id: evacuate, text: 组织周边群众疏散, owner: duty-officer}
  - id: jn-plan
    name: 江宁区预案
    region: {code: "320115", level: county}
    start: [{level: IV, manual: {}}]
    steps:
      - {id: check, text: 核查}
"""


@pytest.fixture
def cfg(tmp_path: Path) -> BureauConfig:
    f = tmp_path / "bureau.yaml"
    f.write_text(YAML, encoding="utf-8")
    return load_config(f)


class PlanServer(Server):
    """The test's bureau server with bureau.yaml's plans on its console."""

    def __init__(self, dsn: str, cfg: BureauConfig) -> None:
        super().__init__(dsn)
        self.cfg, self.woken = cfg, 0
        self.console_kw = {"plans": cfg.plans, "bureau_scope": cfg.scope, "wake_plans": self.wake_plans}

    def wake_plans(self) -> None:
        self.woken += 1


@pytest.fixture
def bureau(db_dsn: str, example_plant: Plant, cfg: BureauConfig) -> Iterator[PlanServer]:
    _seed(db_dsn, example_plant)
    s = PlanServer(db_dsn, cfg)
    s.start()
    yield s
    s.stop()


def _csrf(page: Page) -> str:
    return page.locator("#signout").locator("xpath=..").locator("input[name=csrf]").input_value()


def test_a_county_officer_drills_then_starts_a_plan_and_works_its_checklist(
    page: Page, context: BrowserContext, bureau: PlanServer
) -> None:
    sign_in(page, bureau, "六合区应急局", "/plans")
    expect(page.locator("section.plan")).to_have_count(1)  # its county's plan only
    plan = page.locator("#plan-liuhe-chem")
    expect(plan.locator(".activations")).to_contain_text("无")
    # a drill (演练) first
    plan.locator("button[name=drill][value='1']").click()
    page.wait_for_url("**/plans/activations/*")
    drill = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#activation-state")).to_have_text("演练中")
    expect(page.locator("#activation-level")).to_have_text("III")
    page.locator("#confirm-dispatch input[name=note]").fill("工作组已出发")
    page.locator("#confirm-dispatch button").click()
    expect(page.locator("#checklist tr[data-step='dispatch']")).to_contain_text("✔ 六合区应急局")
    expect(page.locator("#checklist tr[data-step='dispatch']")).to_contain_text("工作组已出发")
    # the evacuation step is the duty officer's: refused, with the reason, nothing written
    page.locator("#confirm-evacuate button").click()
    expect(page.locator("main .error")).to_contain_text("confirmed by duty-officer, not 六合区应急局")
    page.goto(f"{bureau.url}/plans/activations/{drill}")
    shot(page, "bureau-plan-activation")
    page.click("#end-activation")
    expect(page.locator("#activation-state")).to_have_text("已结束")
    expect(page.locator("#end-form")).to_have_count(0)
    expect(page.locator("#confirm-evacuate")).to_have_count(0)
    # now for real: a start by hand at level II
    page.goto(bureau.url + "/plans")
    plan.locator("select[name=level]").select_option("II")
    plan.locator("button[name=drill][value='0']").click()
    page.wait_for_url("**/plans/activations/*")
    real = int(page.url.rsplit("/", 1)[1])
    expect(page.locator("#activation-state")).to_have_text("已启动")
    expect(page.locator("#activation-level")).to_have_text("II")
    # started twice: refused
    r = context.request.post(
        f"{bureau.url}/plans/liuhe-chem/start", form={"csrf": _csrf(page), "level": "III", "drill": "0"}
    )
    assert r.status == 409 and "already started" in r.text()
    page.goto(bureau.url + "/plans")
    expect(plan.locator(f"tr[data-activation='{drill}']")).to_contain_text("已结束")
    expect(plan.locator(f"tr[data-activation='{real}']")).to_contain_text("已启动")
    shot(page, "bureau-plans")
    assert rows(
        bureau.dsn,
        "SELECT id, level, drill, started_by, ended_by FROM bureau_own_plan_activation ORDER BY id",
    ) == [(drill, 3, True, "六合区应急局", "六合区应急局"), (real, 2, False, "六合区应急局", None)]
    assert rows(
        bureau.dsn, "SELECT activation_id, step_id, confirmed_by, note FROM bureau_own_plan_step"
    ) == [(drill, "dispatch", "六合区应急局", "工作组已出发")]
    assert rows(bureau.dsn, "SELECT action FROM console_audit WHERE action LIKE 'plan%%' ORDER BY id") == [
        ("plan_drill",),
        ("plan_step",),
        ("plan_end",),
        ("plan_start",),
    ]
    assert bureau.woken == 2  # the runner woken to tell each start


def test_another_countys_plan_is_a_404_and_a_viewer_has_no_button(
    page: Page, context: BrowserContext, bureau: PlanServer
) -> None:
    jn = next(p for p in bureau.cfg.plans if p.id == "jn-plan")
    with psycopg.connect(bureau.dsn) as conn:
        got = start_plan(conn, jn, "江宁值班", "officer", None, False, CLOCK)
    assert isinstance(got, dict), got
    aid = got["activation"]
    sign_in(page, bureau, "六合区应急局", "/plans")
    assert "jn-plan" not in page.content() and "江宁区预案" not in page.content()
    r = page.goto(f"{bureau.url}/plans/activations/{aid}")
    assert r is not None and r.status == 404
    csrf = _csrf(page)
    for path in (f"/plans/activations/{aid}/end", f"/plans/activations/{aid}/steps", "/plans/jn-plan/start"):
        r = context.request.post(bureau.url + path, form={"csrf": csrf, "step": "check"})
        assert r.status == 404, path
    r = context.request.post(bureau.url + "/plans/liuhe-chem/start", form={"drill": "1"})
    assert r.status == 403  # no CSRF token
    page.click("#signout")
    # the Jiangning viewer sees its plan and the activation, without a button
    sign_in(page, bureau, "江宁区应急局", f"/plans/activations/{aid}")
    expect(page.locator("#activation-state")).to_have_text("已启动")
    expect(page.locator("#checklist form")).to_have_count(0)
    expect(page.locator("#end-form")).to_have_count(0)
    page.goto(bureau.url + "/plans")
    expect(page.locator("section.plan")).to_have_count(1)
    expect(page.locator("form.plan-start")).to_have_count(0)
    assert "liuhe-chem" not in page.content()
    # the city officer sees the three plans
    page.click("#signout")
    sign_in(page, bureau, "南京市应急局值班员", "/plans")
    expect(page.locator("section.plan")).to_have_count(3)
    expect(page.locator("#plan-city-hazchem")).to_contain_text("仅按条件自动启动")
    assert rows(bureau.dsn, "SELECT count(*) FROM bureau_own_plan_activation") == [(1,)]
    assert rows(bureau.dsn, "SELECT ended_at FROM bureau_own_plan_activation") == [(None,)]


def test_the_plan_pages_fit_a_phone(browser_phone: Page, bureau: PlanServer) -> None:
    liuhe = next(p for p in bureau.cfg.plans if p.id == "liuhe-chem")
    with psycopg.connect(bureau.dsn) as conn:
        got = start_plan(conn, liuhe, "六合区应急局", "officer", None, True, CLOCK)
    assert isinstance(got, dict), got
    page = browser_phone
    sign_in(page, bureau, "六合区应急局", "/plans")
    for path, name in (
        ("/plans", "bureau-plans-phone"),
        (f"/plans/activations/{got['activation']}", "bureau-plan-activation-phone"),
    ):
        page.goto(bureau.url + path)
        widths = page.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth]")
        assert max(widths) <= 390, (path, widths)
        shot(page, name)
