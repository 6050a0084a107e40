"""The bureau's official weather warning pages in Debian's Chromium (issue 18).

The enterprises' measures come in through the bureau's ingest as on the link; the bureau's own
CAP document through `weather_measures.store_cap` (the API's intake). The pages read through
`weather_measures.warnings|warning` — the API's functions — with the console's clock as now.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from playwright.sync_api import Page, expect

from hazmon.bureau import weather_measures
from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.plant import Plant
from hazmon.plant.link import WeatherMeasures
from hazmon.weather.cap import Alert, parse
from tests.bureau.helpers import CITY, T0, Enterprise
from tests.console.conftest import shot
from tests.console.helpers import rows
from tests.console.test_bureau_browser import CLOCK, Server, _seed, sign_in

DATA = Path(__file__).resolve().parent.parent / "weather" / "data"
W1 = "32010041600000_20260301160000"  # a city-wide warning both enterprises report
OLD = "32011641600000_20260220080000"  # ended long ago: not listed
ENDED = "32011641600000_20260228080000"  # ended yesterday: listed as ended
CAP = "32011641600000_20260804101500"  # the bureau's own feed (the test file, moved to the test's day)


def _measures(
    ident: str, sent: datetime, duties: list[dict[str, Any]], state: str = "in_force"
) -> WeatherMeasures:
    return WeatherMeasures.model_validate({
        "identifier": ident, "sender": "南京市气象台", "sent": sent, "warning_kind": "lightning",
        "colour": "orange", "headline_zh": f"雷电橙色预警 {ident[-4:]}", "headline_en": f"Orange lightning {ident[-4:]}",
        "region_codes": ["320100"], "hazard_sources": ["cl2-tankfarm"], "state": state,
        "end_reason": "expired" if state == "ended" else "", "duties": duties, "at": sent,
    })  # fmt: skip


def _duty(n: int, duty: str, by: str | None = None) -> dict[str, Any]:
    d: dict[str, Any] = {"id": n, "hazard_source": "cl2-tankfarm", "duty": duty, "started_at": T0}
    if by:
        d |= {"confirmed_by": by, "confirmed_at": T0 + timedelta(minutes=20)}
    return d


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


@pytest.fixture
def link(db_dsn: str, example_plant: Plant) -> Link:
    _seed(db_dsn, example_plant)
    lk = Link(db_dsn, example_plant)
    lk.send("liuhe-chem", _measures(W1, T0, [_duty(1, "24h_duty", "孙涛"), _duty(2, "stop_outdoor_work")]))
    lk.send("jn-chem", _measures(W1, T0, [_duty(5, "24h_duty", "钱伟")]))
    lk.send("liuhe-chem", _measures(ENDED, CLOCK - timedelta(days=1), [_duty(3, "24h_duty")], "ended"))
    lk.send("liuhe-chem", _measures(OLD, CLOCK - timedelta(days=9), [_duty(4, "24h_duty")], "ended"))
    xml = (DATA / "lightning_yellow.xml").read_bytes().replace(b"2026-08-04T", b"2026-03-01T")
    a = parse(xml, "test")
    assert isinstance(a, Alert), a
    with psycopg.connect(db_dsn, autocommit=True) as conn:
        assert weather_measures.store_cap(conn, a, "南京市应急局值班员", CLOCK)
    return lk


@pytest.fixture
def bureau(link: Link, db_dsn: str) -> Iterator[Server]:
    s = Server(db_dsn).start()
    yield s
    s.stop()


def test_the_region_counts_warnings_and_a_warning_lists_each_enterprises_measures(
    page: Page, bureau: Server, link: Link
) -> None:
    sign_in(page, bureau, "南京市应急局值班员")
    # in force: W1 (reported) and the bureau's own CAP warning; Liuhe has not confirmed W1 and not reported CAP
    expect(page.locator("#weather-in-force")).to_have_text("2")
    expect(page.locator("#weather-not-confirmed")).to_have_text("1")
    expect(page.locator("#weather-not-reported")).to_have_text("1")
    page.click("#weather-summary a")
    page.wait_for_url("**/weather-warnings")
    listed = page.locator("#weather-list tbody tr")
    expect(listed).to_have_count(3)  # W1, CAP, and the one ended yesterday; not the one of 9 days ago
    expect(page.locator(f"#weather-list [data-identifier='{ENDED}']")).to_contain_text("已解除")
    expect(page.locator(f"#weather-list [data-identifier='{W1}']")).to_contain_text("未落实 1")
    expect(page.locator(f"#weather-list [data-identifier='{CAP}']")).to_contain_text("未报告的企业 1")
    assert OLD not in page.content()
    shot(page, "bureau-weather-warnings")
    page.click(f"#weather-list [data-identifier='{W1}'] a")
    expect(page.locator("#weather-state")).to_have_text("生效中")
    liuhe = page.locator("section[data-enterprise='liuhe-chem']")
    expect(liuhe.locator(".measures")).to_have_text("未落实")
    expect(liuhe.locator("tr[data-duty='1']")).to_contain_text("孙涛")
    expect(liuhe.locator("tr[data-duty='1']")).to_contain_text("2026-03-01 16:20")  # local time (UTC+8)
    expect(liuhe.locator("tr[data-duty='2']")).to_contain_text("停止户外作业")
    expect(liuhe.locator("tr[data-duty='2']")).to_contain_text("✘")
    expect(page.locator("section[data-enterprise='jn-chem'] .measures")).to_have_text("已落实")
    shot(page, "bureau-weather-warning")
    # the enterprise confirms its second duty (a newer message on the link): the page and the region follow
    link.send(
        "liuhe-chem", _measures(W1, T0, [_duty(1, "24h_duty", "孙涛"), _duty(2, "stop_outdoor_work", "孙涛")])
    )
    page.reload()
    expect(liuhe.locator(".measures")).to_have_text("已落实")
    expect(liuhe.locator("tr[data-duty='2']")).to_contain_text("✔ 孙涛")
    assert rows(
        bureau.dsn,
        "SELECT duties_confirmed, duties_total FROM bureau_weather_measures WHERE identifier = %s"
        " AND enterprise_id = 'liuhe-chem'",
        W1,
    ) == [(2, 2)]
    page.goto(bureau.url + "/region")
    expect(page.locator("#weather-not-confirmed")).to_have_text("0")
    # the bureau's own CAP warning: Liuhe's enterprise named by its region code, not reported
    page.goto(f"{bureau.url}/weather-warnings/{CAP}")
    expect(page.locator("#not-reported-count")).to_have_text("1")
    expect(page.locator("#not-reported [data-enterprise='liuhe-chem']")).to_be_visible()
    page.click("#lang")
    expect(page.locator("#weather-state")).to_have_text("In force")
    expect(page.locator("h2").last).to_contain_text("Enterprises not reported")
    page.click("#lang")


def test_another_county_sees_only_its_own_enterprises_and_gets_404_for_the_rest(
    page: Page, bureau: Server
) -> None:
    sign_in(page, bureau, "江宁区应急局", "/weather-warnings")
    expect(page.locator("#weather-list tbody tr")).to_have_count(1)  # W1 only: the others are Liuhe's
    assert "liuhe-chem" not in page.content()
    page.goto(f"{bureau.url}/weather-warnings/{W1}")
    expect(page.locator("section[data-enterprise]")).to_have_count(1)
    expect(page.locator("section[data-enterprise='jn-chem'] tr[data-duty='5']")).to_contain_text("钱伟")
    assert "liuhe-chem" not in page.content() and "孙涛" not in page.content()
    for ident in (CAP, ENDED, "no-such-warning"):
        r = page.goto(f"{bureau.url}/weather-warnings/{ident}")
        assert r is not None and r.status == 404, ident
    page.goto(bureau.url + "/region")
    expect(page.locator("#weather-in-force")).to_have_text("1")
    expect(page.locator("#weather-not-confirmed")).to_have_text("0")


def test_the_weather_pages_fit_a_phone(browser_phone: Page, bureau: Server) -> None:
    page = browser_phone
    sign_in(page, bureau, "六合区应急局", "/weather-warnings")
    for path, name in (
        ("/weather-warnings", "bureau-weather-warnings-phone"),
        (f"/weather-warnings/{W1}", "bureau-weather-warning-phone"),
        ("/region", "bureau-region-weather-phone"),
    ):
        page.goto(bureau.url + path)
        widths = page.evaluate("[document.documentElement.scrollWidth, document.body.scrollWidth]")
        assert max(widths) <= 390, (path, widths)
        shot(page, name)
