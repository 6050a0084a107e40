"""The plant's supervision pages in a real headless Chromium: the register of 10,000 records paged and
filtered on the server, a record's plan (五落实) and next step, duty checks, the daily commitment,
assessments due."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import psycopg
from playwright.sync_api import Page, expect

from tests.console.conftest import shot
from tests.console.helpers import rows, sign_in
from tests.console.server import ConsoleServer

# the smallest valid PNG: 1 x 1 pixel
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


def _fill_register(dsn: str, n: int, now: datetime) -> None:
    """``n`` records (every 10th major, every 7th on the LPG spheres), each with its report step, in SQL."""
    with psycopg.connect(dsn, autocommit=True) as c:
        c.execute(
            """INSERT INTO hidden_danger (enterprise_id, hazard_source, title, level, found_by, criteria, state,
                   found_at, updated_at, last_seq)
               SELECT 'hx-chem', CASE WHEN i %% 7 = 0 THEN 'lpg-spheres' ELSE 'cl2-tankfarm' END,
                      CASE WHEN i = 4242 THEN '法兰泄漏 编号4242' ELSE '巡检发现 第' || i || '项' END,
                      CASE WHEN i %% 10 = 0 THEN 'major' ELSE 'general' END, 'inspection',
                      CASE WHEN i %% 10 = 0 THEN '{15}'::smallint[] ELSE '{}'::smallint[] END, 'found',
                      %(t)s - i * interval '1 minute', %(t)s, 1
               FROM generate_series(1, %(n)s) AS i""",
            {"t": now, "n": n},
        )
        c.execute(
            """INSERT INTO hidden_danger_step (danger_id, seq, action, actor, role, at, data)
               SELECT id, 1, 'report', '王强', 'operator', found_at,
                      jsonb_build_object('title', title, 'level', level, 'found_by', found_by,
                                         'hazard_source', hazard_source, 'criteria', to_jsonb(criteria))
               FROM hidden_danger"""
        )


def test_register_of_10000_pages_and_filters_on_the_server(page: Page, server: ConsoleServer) -> None:
    _fill_register(server.dsn, 10_000, server.now() - timedelta(hours=1))
    sign_in(page, server, "王强", path="/dangers")
    expect(page.locator("#total")).to_contain_text("10000")
    expect(page.locator("#page")).to_contain_text("1 / 200")
    assert page.locator("tr.danger-row").count() == 50
    size = len(page.content().encode())
    assert size < 60_000, f"one page of the register is {size} bytes"  # a slow link gets one page, not 10,000
    shot(page, "dangers")
    page.click("#next")
    expect(page.locator("#page")).to_contain_text("2 / 200")
    first = page.locator("tr.danger-row td").first.inner_text()
    assert first == "9950"  # newest first: 10000..9951 on page 1
    # filters go to the server as a query and the pages keep them
    page.select_option("select[name=level]", "major")
    page.select_option("select[name=hazard_source]", "lpg-spheres")
    page.click("#apply-filters")
    expect(page.locator("#total")).to_contain_text("142")  # multiples of 70 up to 10000
    assert "level=major" in page.url and "hazard_source=lpg-spheres" in page.url
    page.click("#next")
    expect(page.locator("#page")).to_contain_text("2 / 3")
    assert page.locator("tr.danger-row").count() == 50
    page.goto(server.url + "/dangers?q=4242")
    expect(page.locator("#total")).to_contain_text("1 ")
    expect(page.locator("tr.danger-row")).to_contain_text("法兰泄漏")


def test_major_hidden_danger_report_plan_and_start(page: Page, server: ConsoleServer) -> None:
    sign_in(page, server, "张建国", path="/dangers")
    page.click("details summary")
    page.fill("#report input[name=title]", "V-101 爆破片未投用")
    page.select_option("#report select[name=level]", "major")
    page.fill("#report input[name=criteria]", "15")
    page.select_option("#report select[name=hazard_source]", "cl2-tankfarm")
    page.click("#report button[type=submit]")
    page.wait_for_url("**/console/dangers/*")
    expect(page.locator("#danger-state")).to_have_text("已发现")
    expect(page.locator("#plan-checks li.bad")).to_have_count(6)  # no plan yet: every part missing
    # a plan missing parts is refused with every missing part named; nothing is written
    page.fill("#plan-form textarea[name=measures]", "更换爆破片")
    page.click("#plan-form button[type=submit]")
    expect(page.locator("ul.error")).to_contain_text("goal and tasks")
    expect(page.locator("ul.error")).to_contain_text("contingency plan")
    page.go_back()
    page.reload()
    deadline = (server.now() + timedelta(days=90)).date().isoformat()
    for name, value in (
        ("goal", "消除超压风险"),
        ("measures", "更换爆破片并投用"),
        ("safety_measures", "降低储量，专人监护"),
        ("contingency_plan", "液氯泄漏专项预案"),
    ):
        page.fill(f"#plan-form textarea[name={name}]", value)
    page.fill("#plan-form input[name=funds]", "85000")
    page.fill("#plan-form input[name=materials]", "爆破片 2 套")
    page.fill("#plan-form input[name=organisation]", "设备部")
    page.fill("#plan-form input[name=persons]", "李明, 王强")
    page.fill("#plan-form input[name=deadline]", deadline)
    page.click("#plan-form button[type=submit]")
    expect(page.locator("#danger-state")).to_have_text("已制定方案")
    expect(page.locator("#plan-checks li.ok")).to_have_count(6)
    page.select_option("#step select[name=action]", "start")
    page.fill("#step input[name=comment]", "开始整改")
    page.click("#step button[type=submit]")
    expect(page.locator("#danger-state")).to_have_text("整改中")
    expect(page.locator("#steps")).to_contain_text("张建国 (plant_manager)")
    shot(page, "danger")
    steps = rows(server.dsn, "SELECT action, actor, role FROM hidden_danger_step ORDER BY seq")
    assert steps == [
        ("report", "张建国", "plant_manager"),
        ("plan", "张建国", "plant_manager"),
        ("start", "张建国", "plant_manager"),
    ]
    plan = rows(server.dsn, "SELECT funds_yuan, persons, deadline::text FROM hidden_danger_plan")
    assert plan == [(85000, ["李明", "王强"], deadline)]


def test_duty_check_commitment_and_assessments(page: Page, server: ConsoleServer) -> None:
    sign_in(page, server, "张建国", path="/duty")
    shot(page, "duty-before")
    page.click("details summary")
    page.select_option("#check select[name=hazard_source]", "cl2-tankfarm")
    page.select_option("#check select[name=role]", "technical")
    page.fill("#check input[name=what]", "安全阀、液位报警联锁")
    page.click("#check button[type=submit]")
    page.wait_for_url("**/console/duty")
    expect(page.locator("#recent-checks")).to_contain_text("安全阀、液位报警联锁")
    checks = rows(server.dsn, "SELECT hazard_source, role, person, recorded_by FROM duty_check")
    assert checks == [("cl2-tankfarm", "technical", "李明", "张建国")]  # the person named in the plant file
    page.select_option("#commitment select[name=source_lpg-spheres]", "maintenance")
    page.fill("#commitment input[name=work_hot_work]", "1")
    page.click("#commitment button[type=submit]")
    expect(page.locator("#commitment-status")).to_contain_text("今日已承诺")
    filed = rows(
        server.dsn, "SELECT committed_by, sources->>'lpg-spheres', special_work FROM daily_commitment"
    )
    assert filed == [("张建国", "maintenance", {"hot_work": 1})]
    audit = {r[0] for r in rows(server.dsn, "SELECT action FROM console_audit WHERE actor = '张建国'")}
    assert {"signin", "duty_check", "commitment"} <= audit
    shot(page, "duty")
    page.click("nav a[href$='/assessments']")
    expect(page.locator("#assessments tbody tr")).to_have_count(3)
    shot(page, "assessments")


def test_an_operator_may_not_file_the_commitment(page: Page, server: ConsoleServer) -> None:
    sign_in(page, server, "王强", path="/duty")
    expect(page.locator("#commitment")).to_have_count(0)  # no form for an operator
    csrf = page.locator("#check input[name=csrf]").input_value()
    r = page.request.post(server.url + "/commitment", form={"csrf": csrf}, max_redirects=0)
    assert r.status == 403
    assert rows(server.dsn, "SELECT count(*) FROM daily_commitment") == [(0,)]


def test_a_photo_attached_and_a_renamed_file_refused(
    page: Page, server: ConsoleServer, tmp_path: Path
) -> None:
    sign_in(page, server, "王强", path="/dangers")
    page.click("details summary")
    page.fill("#report input[name=title]", "罐区围堰排水阀未关")
    page.click("#report button[type=submit]")
    page.wait_for_url("**/console/dangers/*")
    photo = tmp_path / "after.png"
    photo.write_bytes(PNG)
    page.set_input_files("#attach input[type=file]", str(photo))
    page.fill("#attach input[name=comment]", "整改后照片")
    page.click("#attach button[type=submit]")
    expect(page.locator("#attachments li")).to_have_count(1)
    expect(page.locator("#steps")).to_contain_text("整改后照片")
    href = page.locator("#attachments a").get_attribute("href") or ""
    r = page.request.get(server.url.removesuffix("/console") + href, max_redirects=0)
    assert r.status == 200 and r.body() == PNG and r.headers["content-type"] == "image/png"
    fake = tmp_path / "report.pdf"
    fake.write_bytes(b"this is not a PDF at all")
    page.set_input_files("#attach input[type=file]", str(fake))
    page.click("#attach button[type=submit]")
    expect(page.locator("ul.error")).to_be_visible()
    assert rows(server.dsn, "SELECT filename FROM hidden_danger_attachment") == [("after.png",)]


def test_a_bad_register_query_is_a_message_not_ignored(page: Page, server: ConsoleServer) -> None:
    sign_in(page, server, "王强", path="/dangers")
    for query, reason in (
        ("/dangers?state=lost", "state: 'lost' is not one of found, plan, rectifying, applied, accepted"),
        ("/dangers?hazard_source=nowhere", "hazard_source: 'nowhere' is not one of"),
        ("/dangers?page=0", "page: '0' is not a page number"),
        ("/dangers?page=3", "page: 3 is past the last page (1)"),
        ("/dangers?level=major&level=general", "level: given 2 times"),
        ("/dangers?colour=red", "colour: not a parameter of this page"),
    ):
        r = page.goto(server.url + query)
        assert r is not None and r.status == 400, query
        expect(page.locator("main .error")).to_contain_text(reason)
