"""The bureau's console in Debian's Chromium: a real aiohttp server, the bureau API's functions, a real DB.

Rows come through the bureau's own ingest (as the API tests do) and its warning rules (`tick`);
the console's clock is the test's ``NOW``, so nothing depends on the wall clock.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections.abc import Coroutine, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import psycopg
import pytest
from playwright.sync_api import BrowserContext, Page, expect

from hazmon.bureau.api import BureauApi, build_routes
from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.bureau.warning_repository import tick
from hazmon.collector import Metrics
from hazmon.console import hash_password
from hazmon.console.bureau_pages import BureauConsole, build_bureau_console
from hazmon.http import HttpServer
from hazmon.plant import Plant
from hazmon.plant.bureau_standards import WarningSettings
from hazmon.plant.web_users import BureauConsoleSettings, BureauUser, UserRegion
from tests.bureau.helpers import CITY, T0, Enterprise
from tests.console.conftest import shot
from tests.console.helpers import rows

T = TypeVar("T")
NOW = T0 + timedelta(hours=2)  # both enterprises silent since T0: each has a warning
CLOCK = NOW + timedelta(minutes=5)
PASSWORDS = {
    "南京市应急局值班员": "city-officer-1",
    "江宁区应急局": "county-viewer-1",
    "六合区应急局": "county-officer-1",
}


def _users() -> tuple[BureauUser, ...]:
    def u(name: str, role: str, code: str, level: str) -> BureauUser:
        return BureauUser(name, role, hash_password(PASSWORDS[name], log_n=10), UserRegion(code, level))

    return (
        u("南京市应急局值班员", "officer", "320100", "city"),
        u("江宁区应急局", "viewer", "320115", "county"),
        u("六合区应急局", "officer", "320116", "county"),
    )


class Server:
    """The bureau's API and console on one HTTP server, on a thread and loop of their own."""

    def __init__(self, dsn: str, refresh_s: int = 300) -> None:
        self.dsn, self.refresh_s = dsn, refresh_s  # 300: no page polls behind a test's back
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.console: BureauConsole | None = None
        self.http: HttpServer | None = None
        self.url = ""
        self.steps = 0  # the downlink sender's wake-ups
        self.console_kw: dict[str, Any] = {}  # more of build_bureau_console's arguments (plans)

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout=60)

    def wake(self) -> None:
        self.steps += 1

    async def _start(self) -> None:
        api = BureauApi(self.dsn, [], on_step=self.wake, clock=lambda: CLOCK)
        settings = BureauConsoleSettings(
            session_idle_s=600, session_max_s=3600, refresh_s=self.refresh_s, users=_users()
        )
        self.console = build_bureau_console(
            settings, api, "南京市应急管理局", clock=lambda: CLOCK, **self.console_kw
        )
        self.http = HttpServer("127.0.0.1", 0, Metrics(), lambda: (True, {}))
        self.http.mount(build_routes(api))
        self.http.mount(self.console.routes())
        port = await self.http.start()
        self.url = f"http://127.0.0.1:{port}/console"

    def start(self) -> Server:
        self.thread.start()
        self.run(self._start())
        return self

    def stop(self) -> None:
        if self.http is not None:
            self.run(self.http.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        self.loop.close()


def _seed(dsn: str, plant: Plant) -> None:
    ing = Ingestor(CITY, IngestLimits())
    liuhe = Enterprise(plant, "liuhe-chem", "320116")
    jiangning = Enterprise(plant, "jn-chem", "320115")
    with psycopg.connect(dsn, autocommit=True) as conn:
        for ent in (liuhe, jiangning):
            ing.handle(conn, *ent.wire(ent.envelope(ent.registration())), T0)
            ing.handle(conn, *ent.wire(ent.envelope(ent.alarm(1, 1))), T0)  # one red alarm each
        tag = conn.execute(
            "SELECT tag FROM bureau_sensor WHERE enterprise_id = 'liuhe-chem' ORDER BY source_id, tag LIMIT 1"
        ).fetchone()
        assert tag is not None
        conn.cursor().executemany(
            "INSERT INTO bureau_aggregate (enterprise_id, sensor, bucket, count, min, mean, max, last)"
            " VALUES ('liuhe-chem', %s, %s, 1, %s, %s, %s, %s)",
            [
                (tag[0], NOW - timedelta(minutes=10 * i), v, v, v, v)
                for i in range(30)
                for v in [50 + 10 * math.sin(i / 4)]
            ],
        )
    with psycopg.connect(dsn) as conn:
        assert {c.action for c in tick(conn, WarningSettings(), NOW)} == {"raise"}


@pytest.fixture
def bureau(db_dsn: str, example_plant: Plant) -> Iterator[Server]:
    _seed(db_dsn, example_plant)
    s = Server(db_dsn).start()
    yield s
    s.stop()


def sign_in(page: Page, server: Server, name: str, path: str = "/region") -> None:
    page.goto(server.url + path)
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORDS[name])
    page.click("#signin button[type=submit]")
    page.wait_for_load_state()


def _warning(dsn: str, eid: str) -> int:
    got = rows(dsn, "SELECT id FROM bureau_warning WHERE enterprise_id = %s AND kind = 'silent'", eid)
    assert len(got) == 1, got
    return int(got[0][0])


def test_city_officer_verifies_a_warning_and_steps_an_alarm(page: Page, bureau: Server) -> None:
    sign_in(page, bureau, "南京市应急局值班员")
    assert page.url.endswith("/console/region")
    for box in ("#ranking", "#warnings", "#alarms", "#silent"):
        for eid in ("liuhe-chem", "jn-chem"):
            expect(page.locator(f"{box} [data-enterprise='{eid}']").first).to_be_visible()
    shot(page, "bureau-region")
    wid = _warning(bureau.dsn, "liuhe-chem")
    page.click(f"#warnings a[href$='/warnings/{wid}']")
    expect(page.locator("#warning-state")).to_have_text("已推送")
    page.fill("#step-form input[name=comment]", "电话核实：通信中断")
    page.click("#step-verify")
    expect(page.locator("#warning-state")).to_have_text("已核查")
    expect(page.locator("#history")).to_contain_text("电话核实：通信中断")
    shot(page, "bureau-warning")
    assert rows(bureau.dsn, "SELECT state FROM bureau_warning WHERE id = %s", wid) == [("verified",)]
    last = "SELECT event, actor, comment FROM bureau_warning_event WHERE warning_id = %s ORDER BY id DESC LIMIT 1"
    assert rows(bureau.dsn, last, wid) == [("verify", "南京市应急局值班员", "电话核实：通信中断")]
    assert rows(bureau.dsn, "SELECT actor, target FROM console_audit WHERE action = 'warning_verify'") == [
        ("南京市应急局值班员", f"warning/{wid}")
    ]
    # the next step is feedback now; the enterprise page, then its alarm and the bureau's step
    expect(page.locator("#step-feedback")).to_be_visible()
    page.goto(f"{bureau.url}/enterprises/liuhe-chem")
    expect(page.locator("#trends svg polyline").first).to_be_attached()
    expect(page.locator("#sources tbody tr").first).to_be_visible()
    shot(page, "bureau-enterprise")
    page.click("#alarms a[href$='/alarms/liuhe-chem:1']")
    page.click("#step-received")
    expect(page.locator("#bureau-step")).to_have_text("已接收")
    expect(page.locator("#step-received")).to_have_count(0)  # the next steps only: verified, closed
    shot(page, "bureau-alarm")
    assert rows(
        bureau.dsn,
        "SELECT event, actor FROM bureau_alarm_event WHERE alarm_id = 'liuhe-chem:1' AND origin = 'bureau'",
    ) == [("bureau_received", "南京市应急局值班员")]
    down = rows(
        bureau.dsn,
        "SELECT enterprise_id, kind, payload->>'step' FROM bureau_downlink WHERE kind = 'bureau_step'",
    )
    assert down == [("liuhe-chem", "bureau_step", "received")]  # on its way down to the enterprise
    # the warning's verification went down too (the plant's advisory alarm shows it)
    assert rows(
        bureau.dsn,
        "SELECT count(*) FROM bureau_downlink WHERE kind = 'bureau_warning' AND (payload->>'warning_id')::int = %s"
        " AND payload->>'action' = 'verified'",
        wid,
    ) == [(1,)]
    assert bureau.steps == 1


def test_a_county_user_never_sees_another_county(page: Page, context: BrowserContext, bureau: Server) -> None:
    sign_in(page, bureau, "江宁区应急局")
    html = page.content()
    assert "jn-chem" in html
    assert "liuhe-chem" not in html
    page.click("#lang")  # the county's view, in English
    expect(page.locator("main h1")).to_contain_text("Region at a glance 320115")
    shot(page, "bureau-region-county-en")
    page.click("#lang")  # back to Chinese
    expect(page.locator("main h1")).to_contain_text("辖区概览 320115")
    theirs = _warning(bureau.dsn, "liuhe-chem")
    for path in (f"/warnings/{theirs}", "/enterprises/liuhe-chem", "/alarms/liuhe-chem:1"):
        r = page.goto(bureau.url + path)
        assert r is not None and r.status == 404, path
        assert "liuhe" not in page.locator("main").inner_html()  # (the address bar aside)
    # its own warning: readable, but a viewer has no step button and a post is refused
    mine = _warning(bureau.dsn, "jn-chem")
    page.goto(f"{bureau.url}/warnings/{mine}")
    expect(page.locator("#warning-state")).to_have_text("已推送")
    expect(page.locator("#step-form")).to_have_count(0)
    csrf = page.locator("#signout").locator("xpath=..").locator("input[name=csrf]").input_value()
    r = context.request.post(
        f"{bureau.url}/warnings/{mine}/step", form={"csrf": csrf, "step": "verify"}, max_redirects=0
    )
    assert r.status == 403
    # an officer of the other county reaches the first county's warning no more than a viewer
    r = context.request.post(
        f"{bureau.url}/warnings/{theirs}/step", form={"csrf": csrf, "step": "verify"}, max_redirects=0
    )
    assert r.status == 403
    assert rows(bureau.dsn, "SELECT count(*) FROM bureau_warning_event WHERE event = 'verify'") == [(0,)]


def test_county_officer_gets_404_for_the_other_county_on_posts(
    page: Page, context: BrowserContext, bureau: Server
) -> None:
    sign_in(page, bureau, "六合区应急局")
    theirs = _warning(bureau.dsn, "jn-chem")
    csrf = page.locator("#signout").locator("xpath=..").locator("input[name=csrf]").input_value()
    r = context.request.post(f"{bureau.url}/warnings/{theirs}/step", form={"csrf": csrf, "step": "verify"})
    assert r.status == 404
    r = context.request.post(f"{bureau.url}/alarms/jn-chem:1/step", form={"csrf": csrf, "step": "received"})
    assert r.status == 404
    assert rows(bureau.dsn, "SELECT count(*) FROM bureau_warning_event WHERE event = 'verify'") == [(0,)]
    assert rows(bureau.dsn, "SELECT count(*) FROM bureau_alarm_event WHERE origin = 'bureau'") == [(0,)]


def test_csrf_less_post_refused(page: Page, context: BrowserContext, bureau: Server) -> None:
    sign_in(page, bureau, "南京市应急局值班员")
    wid = _warning(bureau.dsn, "liuhe-chem")
    r = context.request.post(f"{bureau.url}/warnings/{wid}/step", form={"step": "verify"}, max_redirects=0)
    assert r.status == 403
    r = context.request.post(
        f"{bureau.url}/alarms/liuhe-chem:1/step", form={"step": "received"}, max_redirects=0
    )
    assert r.status == 403
    assert rows(bureau.dsn, "SELECT state FROM bureau_warning WHERE id = %s", wid) == [("pushed",)]
    # nothing went down for these posts (only what the warnings' own events enqueued)
    assert rows(
        bureau.dsn,
        "SELECT count(*) FROM bureau_downlink WHERE kind = 'bureau_step' OR payload->>'action' = 'verified'",
    ) == [(0,)]
    assert bureau.console is not None and bureau.console.counters["csrf_refused"] == 2


def test_the_region_on_a_phone(browser_phone: Page, bureau: Server) -> None:
    page = browser_phone
    sign_in(page, bureau, "六合区应急局")
    expect(page.locator("#ranking [data-enterprise='liuhe-chem']")).to_be_visible()
    expect(page.locator("[data-enterprise='jn-chem']")).to_have_count(0)  # another county's
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, width  # nothing wider than the screen
    shot(page, "bureau-region-phone")
    page.goto(f"{bureau.url}/enterprises/liuhe-chem")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "bureau-enterprise-phone")
