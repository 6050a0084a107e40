"""The bureau's long lists in Debian's Chromium: 10,000 seeded rows each in a real database, paged and
filtered on the server; bad query strings answered with a message; the alarm list live; a phone.

The seeded rows follow a formula (row ``i`` of 0..9999), so each expected page and count is worked
out here from the formula, not read back from the database the page reads.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import psycopg
import pytest
from playwright.sync_api import Browser, Page, Response, expect

from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.plant import Plant
from tests.bureau.helpers import CITY, T0, Enterprise
from tests.console.conftest import shot
from tests.console.helpers import rows
from tests.console.test_bureau_browser import Server, _seed, sign_in

N = 10_000

_SEED = """
INSERT INTO bureau_enterprise (enterprise_id, region_code, name, registration, registered_at, updated_at,
                               last_message_at)
SELECT format('s%%s', lpad(i::text, 5, '0')), CASE WHEN i %% 2 = 0 THEN '320116' ELSE '320115' END,
       format('种子企业%%s', i), '{}'::jsonb, %(t0)s, %(t0)s, %(t0)s
FROM generate_series(0, %(n)s - 1) i;

INSERT INTO bureau_alarm (alarm_id, enterprise_id, source_id, sensor, condition, level, tier, tier_name, state,
                          raised_at, updated_at, cleared_at, bureau_step, message_zh, message_en)
SELECT format('s%%s:%%s', lpad((i %% 200)::text, 5, '0'), i), format('s%%s', lpad((i %% 200)::text, 5, '0')),
       'hs-1', 'PT-1', 'HH', 'second', 4 - i %% 4, (ARRAY['red', 'orange', 'yellow', 'blue'])[1 + i %% 4],
       'normal', %(t0)s - (i + 1) * interval '1 minute', %(t0)s,
       CASE WHEN i %% 5 = 0 THEN %(t0)s END, CASE WHEN i %% 5 = 0 THEN 'closed' END,
       format('压力高报 #%%s', i), format('pressure high #%%s', i)
FROM generate_series(0, %(n)s - 1) i;

INSERT INTO bureau_warning (cause_key, kind, colour, enterprise_id, region_code, since, raised_at, state,
                            closed_at, updated_at, text_zh, text_en)
SELECT format('seed:%%s', i), 'silent', 1 + i %% 4, format('s%%s', lpad((i %% 200)::text, 5, '0')),
       CASE WHEN i %% 2 = 0 THEN '320116' ELSE '320115' END,
       %(t0)s - (i + 1) * interval '1 minute', %(t0)s - (i + 1) * interval '1 minute',
       (ARRAY['pushed', 'verified', 'fed_back', 'closed'])[1 + (i / 4) %% 4],
       CASE WHEN (i / 4) %% 4 = 3 THEN %(t0)s END, %(t0)s, format('预警 #%%s', i), format('warning #%%s', i)
FROM generate_series(0, %(n)s - 1) i;
"""


def _alarm_id(i: int) -> str:
    return f"s{i % 200:05d}:{i}"


@pytest.fixture
def big(db_dsn: str, example_plant: Plant) -> Iterator[Server]:
    """The two enterprises of the browser tests (one alarm and one warning each) and 10,000 of each list."""
    _seed(db_dsn, example_plant)
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        for sql in _SEED.split(";")[:-1]:  # three statements (one per table)
            conn.execute(sql, {"t0": T0, "n": N})
    s = Server(db_dsn).start()
    yield s
    s.stop()


def _total(page: Page, n: str) -> None:
    """The pager's count says exactly ``n`` records (not a number merely ending in it)."""
    expect(page.locator("#total")).to_have_text(re.compile(rf"^{n} 条 "))


def _ids(page: Page, table: str, attr: str) -> list[str]:
    return [
        str(x)
        for x in page.locator(f"#{table} tbody tr").evaluate_all(f"rs => rs.map(r => r.dataset.{attr})")
    ]


def test_ten_thousand_alarms_page_and_filter_on_the_server(page: Page, big: Server) -> None:
    sign_in(page, big, "南京市应急局值班员", "/alarms")
    assert page.url.endswith("/console/alarms")
    _total(page, f"{N + 2}")
    # newest first: the two ingested at T0, then seeded row i at T0 - (i + 1) min
    assert _ids(page, "alarm-list", "alarm") == ["jn-chem:1", "liuhe-chem:1"] + [
        _alarm_id(i) for i in range(48)
    ]
    assert len(page.content().encode()) < 60_000, "a page of 50 alarms stays small"
    page.click("#next")
    page.wait_for_url(re.compile(r".*/alarms\?.*page=2"))
    expect(page.locator("#page")).to_have_text("2")
    assert _ids(page, "alarm-list", "alarm") == [_alarm_id(i) for i in range(48, 98)]
    shot(page, "bureau-alarms-list")
    # open red alarms: red is i % 4 == 0, closed i % 5 == 0 → 2,000, and the two ingested (red, open)
    page.select_option("#filters select[name=state]", "open")
    page.select_option("#filters select[name=colour]", "red")
    page.click("#apply-filters")
    _total(page, "2002")
    assert "page=1" in page.url or "page=" not in page.url
    assert _ids(page, "alarm-list", "alarm")[2:5] == [_alarm_id(4), _alarm_id(8), _alarm_id(12)]
    # the county, then a text: one alarm
    page.fill("#filters input[name=county]", "320115")
    page.click("#apply-filters")
    _total(page, "1")  # jn-chem:1 (seeded red ones are all even: 320116)
    page.goto(big.url + "/alarms?q=%231234&size=20")
    assert _ids(page, "alarm-list", "alarm") == [_alarm_id(1234)]
    # the filters stay in the pager's links
    page.goto(big.url + "/alarms?state=closed&colour=blue&size=20")
    _total(page, "500")  # i % 4 == 3 and i % 5 == 0: i % 20 == 15
    href = page.locator("#next").get_attribute("href") or ""
    assert "state=closed" in href and "colour=blue" in href and "size=20" in href and "page=2" in href


def test_ten_thousand_enterprises_and_warnings(page: Page, big: Server) -> None:
    sign_in(page, big, "南京市应急局值班员", "/enterprises?size=20&page=2")
    _total(page, f"{N + 2}")
    # by id: jn-chem, liuhe-chem, s00000, ...; page 2 of 20 starts at s00018
    assert _ids(page, "enterprise-list", "enterprise") == [f"s{i:05d}" for i in range(18, 38)]
    shot(page, "bureau-enterprises-list")
    page.fill("#filters input[name=county]", "320115")
    page.fill("#filters input[name=q]", "种子企业12")
    page.click("#apply-filters")
    # odd i named 种子企业12…: 12x (5) and 12xx (50)
    _total(page, "55")
    page.goto(big.url + "/warnings?state=closed&colour=orange")
    # closed: (i // 4) % 4 == 3; orange: colour 3, i % 4 == 2 → i % 16 == 14
    _total(page, "625")
    assert _ids(page, "warning-list", "enterprise")[:2] == ["s00014", "s00030"]
    assert len(page.content().encode()) < 60_000
    shot(page, "bureau-warnings-list")


BAD = [
    ("/alarms?colour=purple", "colour: 'purple' is not one of red, orange, yellow, blue"),
    ("/alarms?page=abc", "page: 'abc' is not a page number"),
    ("/alarms?page=9999", "page: 9999 is past the last page (201)"),
    ("/alarms?size=7", "size: '7' is not one of 20, 50, 100"),
    ("/alarms?county=3201", "county: '3201' is not a 6-digit county code"),
    ("/alarms?state=open&state=closed", "state: given 2 times"),
    ("/warnings?state=lost", "state: 'lost' is not one of open, pushed, verified, fed_back, closed"),
    ("/enterprises?sort=name", "sort: not a parameter of this page"),
    ("/alarms/rows?enterprise=../x", "enterprise: '../x' is not an enterprise id"),
]


def test_a_bad_query_is_a_message_on_the_page(page: Page, big: Server) -> None:
    sign_in(page, big, "南京市应急局值班员", "/enterprises?size=20")
    for query, reason in BAD:
        r = page.goto(big.url + query)
        assert r is not None and r.status == 400, query
        expect(page.locator("#message")).to_have_text("查询条件有误")
        expect(page.locator("main .error")).to_contain_text(reason)


def test_a_county_user_lists_only_its_county(page: Page, big: Server) -> None:
    sign_in(page, big, "江宁区应急局", "/alarms")  # 320115: odd seeded rows and jn-chem
    _total(page, "5001")
    assert "320116" not in page.locator("#alarm-list").inner_html()
    r = page.goto(big.url + "/alarms?county=320116")
    assert r is not None and r.status == 400
    expect(page.locator("main .error")).to_contain_text("county: 320116 is outside your region (320115)")
    page.goto(big.url + "/alarms?enterprise=liuhe-chem")
    _total(page, "0")
    page.goto(big.url + "/alarms/rows?enterprise=liuhe-chem")  # the fragment the page polls
    assert "liuhe" not in page.content()
    page.goto(big.url + "/enterprises?q=liuhe")
    _total(page, "0")
    page.goto(big.url + "/warnings?size=100")
    (jn,) = rows(big.dsn, "SELECT count(*) FROM bureau_warning WHERE enterprise_id = 'jn-chem'")
    _total(page, str(N // 2 + jn[0]))  # the odd seeded rows and jn-chem's own
    assert "320116" not in page.locator("#warning-list").inner_html()


def test_the_lists_on_a_phone(browser_phone: Page, big: Server) -> None:
    page = browser_phone
    sign_in(page, big, "南京市应急局值班员", "/alarms")
    for path, name in (
        ("/alarms", "bureau-alarms-list-phone"),
        ("/enterprises", "bureau-enterprises-list-phone"),
        ("/warnings", "bureau-warnings-list-phone"),
        ("/region", "bureau-region-big-phone"),
        ("/enterprises/liuhe-chem", ""),
        ("/alarms/liuhe-chem:1", ""),
    ):
        page.goto(big.url + path)
        widths = page.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth]")
        assert max(widths) <= 390, (path, widths)  # the page body never scrolls sideways
        if name:
            shot(page, name)
    # the region page shows the first 50 of its long lists, not 10,000
    page.goto(big.url + "/region")
    assert page.locator("#silent li").count() == 50
    expect(page.locator("#silent-total")).to_have_text(str(N + 2))
    assert len(page.content().encode()) < 120_000


def test_a_new_alarm_appears_live_and_a_county_feed_holds_only_its_county(
    page: Page, browser: Browser, db_dsn: str, example_plant: Plant
) -> None:
    _seed(db_dsn, example_plant)
    server = Server(db_dsn, refresh_s=1).start()
    try:
        sign_in(page, server, "六合区应急局", "/alarms")  # county 320116: liuhe-chem only
        fragments: list[Response] = []
        page.on("response", lambda r: fragments.append(r) if "/alarms/rows" in r.url else None)
        expect(page.locator("#alarm-list [data-alarm='liuhe-chem:1']")).to_be_visible()
        page.evaluate("window.__same_page = true")  # gone if the browser loads the page again
        city_ctx = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
        city = city_ctx.new_page()
        sign_in(city, server, "南京市应急局值班员", "/region")
        expect(city.locator("#severe-alarms [data-enterprise='jn-chem']")).to_have_count(1)
        # each enterprise raises a second red alarm (its registration and first alarm were seq 1 and 2)
        ing = Ingestor(CITY, IngestLimits())
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            for eid, county in (("jn-chem", "320115"), ("liuhe-chem", "320116")):
                ent = Enterprise(example_plant, eid, county)
                ent.seq = 2
                ing.handle(conn, *ent.wire(ent.envelope(ent.alarm(2, 1, at=T0))), T0)
        expect(page.locator("#alarm-list [data-alarm='liuhe-chem:2']")).to_be_visible(timeout=15_000)
        expect(city.locator("#severe-alarms a[href$='/alarms/jn-chem:2']")).to_be_visible(timeout=15_000)
        shot(city, "bureau-region-live")
        seen = len(fragments)
        with page.expect_response(lambda r: "/alarms/rows" in r.url, timeout=15_000):
            pass  # one more poll after both alarms are in
        assert page.evaluate("window.__same_page === true")  # swapped in by the poll, not reloaded
        assert len(fragments) > seen >= 1
        for r in fragments:
            assert r.status == 200
            assert "jn-chem" not in r.text() and "320115" not in r.text(), r.url
        assert "jn-chem" not in page.content()
        _total(page, "2")
        city_ctx.close()
    finally:
        server.stop()
