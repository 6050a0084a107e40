"""Sign-in, sessions, CSRF and the alarm actions in a real headless Chromium against a real server and DB."""

from __future__ import annotations

from playwright.sync_api import BrowserContext, Page, expect

from tests.console.conftest import shot
from tests.console.helpers import rows, sign_in
from tests.console.server import ConsoleServer


def test_sign_in_acknowledge_persisted_and_audited(page: Page, server: ConsoleServer) -> None:
    sign_in(page, server, "王强")
    assert page.url.endswith("/console/alarms")
    row = page.locator("table.alarms tbody tr").first
    expect(row).to_contain_text("氯气")  # zh by default
    expect(row.locator(".badge")).to_have_text("红")
    shot(page, "alarms")
    row.locator("button.ack").click()
    page.wait_for_url("**/console/alarms")
    expect(page.locator("table.alarms tbody tr").first.locator(".state")).to_contain_text("报警已确认 · 王强")
    # persisted through the alarm service's own path: the alarm's audit trail names the user
    alarm_id = server.alarms.alarms()[0].id  # type: ignore[union-attr]
    acked = rows(server.dsn, "SELECT actor FROM alarm_event WHERE alarm_id = %s AND kind = 'acked'", alarm_id)
    assert acked == [("王强",)]
    audit = rows(server.dsn, "SELECT actor, action, target FROM console_audit ORDER BY id")
    assert ("王强", "signin", "") in audit
    assert ("王强", "alarm_ack", f"alarm/{alarm_id}") in audit
    # the alarm's page shows its whole history, the acknowledgement included
    page.click(f"#alarm-{alarm_id} a >> nth=-1")
    expect(page.locator("#history .kind-acked")).to_have_text("确认")
    expect(page.locator("#acked-by")).to_have_text("王强")
    page.fill("form[action$='/comment'] input[name=comment]", "现场已确认，阀门关闭")
    page.click("#comment")
    expect(page.locator("#history")).to_contain_text("现场已确认，阀门关闭")
    shot(page, "alarm")
    # the alarm becomes a hidden danger in one step, linked both ways
    page.click("#to-danger button")
    page.wait_for_url("**/console/dangers/*")
    expect(page.locator("#danger-state")).to_have_text("已发现")
    page.go_back()
    page.reload()
    expect(page.locator("#linked-dangers li")).to_have_count(1)
    linked = rows(server.dsn, "SELECT alarm_id, found_by FROM hidden_danger")
    assert linked == [(alarm_id, "alarm")]


def test_english_and_phone_screen(browser_phone: Page, server: ConsoleServer) -> None:
    page = browser_phone
    sign_in(page, server, "张建国")
    page.click("#lang")
    expect(page.locator("h1")).to_contain_text("Active alarms")
    expect(page.locator("table.alarms tbody tr").first).to_contain_text("chlorine")
    # the table becomes stacked cards: the header row is hidden on a phone
    expect(page.locator("table.alarms thead")).to_be_hidden()
    shot(page, "alarms-phone-en")


def test_csrf_less_and_wrong_token_posts_refused(
    page: Page, context: BrowserContext, server: ConsoleServer
) -> None:
    sign_in(page, server, "王强")
    alarm_id = server.alarms.alarms()[0].id  # type: ignore[union-attr]
    url = f"{server.url}/alarms/{alarm_id}/ack"
    # the browser's own cookie goes with these posts (same context): only the token is missing or wrong
    r = context.request.post(url, form={"comment": "no token"}, max_redirects=0)
    assert r.status == 403 and "表单" in r.text()
    r = context.request.post(url, form={"comment": "x", "csrf": "not-this-sessions-token"}, max_redirects=0)
    assert r.status == 403
    assert server.console.counters["csrf_refused"] == 2  # type: ignore[union-attr]
    assert rows(server.dsn, "SELECT count(*) FROM alarm_event WHERE kind = 'acked'") == [(0,)]
    assert rows(server.dsn, "SELECT detail FROM console_audit WHERE action = 'csrf_refused' ORDER BY id") == [
        ("missing",),
        ("wrong",),
    ]
    # a form the page itself rendered still works
    page.goto(f"{server.url}/alarms/{alarm_id}")
    page.click("#ack")
    expect(page.locator("#acked-by")).to_have_text("王强")


def test_wrong_password_refused(page: Page, server: ConsoleServer) -> None:
    sign_in(page, server, "王强", password="not-the-password")
    expect(page.locator("#error")).to_have_text("用户名或密码错误")
    sign_in(page, server, "无此人", password="whatever-pass")
    expect(page.locator("#error")).to_be_visible()
    assert "/console/signin" in page.url
    assert rows(server.dsn, "SELECT count(*) FROM console_session") == [(0,)]
    assert server.console.counters["signin_refused"] == 2  # type: ignore[union-attr]
    assert [r[0] for r in rows(server.dsn, "SELECT action FROM console_audit")] == ["signin_refused"] * 2
    shot(page, "signin-refused")


def test_logout_ends_the_session(page: Page, context: BrowserContext, server: ConsoleServer) -> None:
    sign_in(page, server, "王强")
    old = {c["name"]: c["value"] for c in context.cookies()}["hazmon_session"]
    page.click("#signout")
    page.wait_for_url("**/console/signin")
    assert rows(server.dsn, "SELECT username, end_reason FROM console_session") == [("王强", "logout")]
    page.goto(server.url + "/alarms")
    assert "/console/signin" in page.url
    # the old cookie, put back, opens nothing: the session ended on the server
    context.add_cookies([{"name": "hazmon_session", "value": old, "url": server.url + "/"}])
    r = context.request.get(server.url + "/alarms", max_redirects=0)
    assert r.status == 303 and "/console/signin" in r.headers["location"]


def test_expired_session_redirects_to_sign_in(page: Page, server: ConsoleServer) -> None:
    sign_in(page, server, "王强")
    expect(page.locator("table.alarms")).to_be_visible()
    server.advance(server.settings.session_idle_s - 5)  # still within the idle time: the session holds
    page.goto(server.url + "/alarms")
    expect(page.locator("table.alarms")).to_be_visible()
    server.advance(server.settings.session_idle_s + 1)  # idle too long
    page.goto(server.url + "/dangers")
    expect(page.locator("#expired")).to_be_visible()
    assert rows(server.dsn, "SELECT end_reason FROM console_session") == [("idle",)]
    # signing in again returns to the page asked for
    page.fill("input[name=username]", "王强")
    page.fill("input[name=password]", "operator-pass-1")
    page.click("#signin button[type=submit]")
    page.wait_for_url("**/console/dangers")


def test_absolute_expiry_even_when_active(page: Page, server: ConsoleServer) -> None:
    sign_in(page, server, "王强")
    for _ in range(server.settings.session_max_s // 500):
        server.advance(500)  # a request every 500 s: never idle
        page.goto(server.url + "/alarms")
    server.advance(500)
    page.goto(server.url + "/alarms")
    expect(page.locator("#expired")).to_be_visible()
    assert rows(server.dsn, "SELECT end_reason FROM console_session") == [("absolute",)]


def test_bureau_user_of_another_county_refused(page: Page, server: ConsoleServer) -> None:
    sign_in(page, server, "浦口区应急局")
    expect(page.locator("#message")).to_have_text("无权执行此操作")
    for path in ("/alarms", "/alarms/rows", "/dangers", "/duty", "/assessments"):
        r = page.request.get(server.url + path, max_redirects=0)
        assert r.status == 403, path


def test_bureau_user_of_the_plants_county_sees_and_comments_but_does_not_acknowledge(
    page: Page, server: ConsoleServer
) -> None:
    sign_in(page, server, "六合区应急局")
    row = page.locator("table.alarms tbody tr").first
    expect(row).to_contain_text("氯气")
    expect(row.locator("button.ack")).to_have_count(0)  # no button for what the role may not do
    alarm_id = server.alarms.alarms()[0].id  # type: ignore[union-attr]
    page.goto(f"{server.url}/alarms/{alarm_id}")
    expect(page.locator("#ack")).to_have_count(0)
    page.fill("form[action$='/comment'] input[name=comment]", "已电话核实")
    page.click("#comment")
    expect(page.locator("#history")).to_contain_text("已电话核实")
    csrf = page.locator("form[action$='/comment'] input[name=csrf]").input_value()
    r = page.request.post(f"{server.url}/alarms/{alarm_id}/ack", form={"csrf": csrf}, max_redirects=0)
    assert r.status == 403  # the token is right, the role is not
    assert rows(server.dsn, "SELECT actor FROM alarm_event WHERE kind IN ('acked', 'comment')") == [
        ("六合区应急局",)
    ]


def test_five_wrong_passwords_lock_the_name_for_a_while(page: Page, server: ConsoleServer) -> None:
    for _ in range(5):
        sign_in(page, server, "王强", password="guess-again")
        expect(page.locator("#error")).to_have_text("用户名或密码错误")
    sign_in(page, server, "王强")  # the right password, but locked
    expect(page.locator("#error")).to_contain_text("15 分钟")
    assert rows(server.dsn, "SELECT count(*) FROM console_session") == [(0,)]
    server.advance(15 * 60)  # the failures age out
    sign_in(page, server, "王强")
    page.wait_for_url("**/console/alarms")
