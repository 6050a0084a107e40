"""延期 on the bureau's supervision page (Debian's Chromium): the officer of the supervising level
extends the deadline through `supervision_repository.step` (the API's); a deadline not later, one in
the past, or an officer of another level is refused on the page and nothing is written."""

from __future__ import annotations

from datetime import timedelta

from playwright.sync_api import BrowserContext, Page, expect

from hazmon.plant.regions import Scope
from tests.bureau.helpers import CITY
from tests.console.helpers import rows
from tests.console.test_bureau_browser import Server, sign_in
from tests.console.test_bureau_supervision_pages import TODAY, _csrf, _open, bureau, link  # noqa: F401

LIUHE = Scope("320116", "county")


def _events(dsn: str, sid: int) -> list[tuple[str, str]]:
    return [
        (str(r[0]), str(r[1]))
        for r in rows(
            dsn,
            "SELECT step, deadline::text FROM bureau_supervision_event WHERE supervision_id = %s ORDER BY id",
            sid,
        )
    ]


def _extend(page: Page, deadline: str, comment: str = "") -> None:
    page.click("#extend summary")
    field = page.locator("#extend-form input[name=deadline]")
    field.evaluate("e => e.removeAttribute('min')", None)  # the server judges, not the browser
    field.fill(deadline)
    page.fill("#extend-form input[name=comment]", comment)
    page.click("#step-extend")


def test_the_supervising_level_extends_and_bad_deadlines_are_refused(
    page: Page,
    bureau: Server,  # noqa: F811 - the fixture imported above
) -> None:
    sid = _open(bureau.dsn, CITY, "liuhe-chem:7", TODAY + timedelta(days=3), 1)
    sign_in(page, bureau, "南京市应急局值班员", f"/supervisions/{sid}")
    # not later than the deadline in force
    _extend(page, (TODAY + timedelta(days=2)).isoformat())
    expect(page.locator("ul.error")).to_contain_text("新期限须晚于原期限")
    assert _events(bureau.dsn, sid) == [("opened", (TODAY + timedelta(days=3)).isoformat())]
    # a good one: the deadline moves, the history and the message down to the enterprise say so
    page.goto(f"{bureau.url}/supervisions/{sid}")
    new = (TODAY + timedelta(days=30)).isoformat()
    _extend(page, new, "设备到货延迟，同意延期")
    page.wait_for_url(f"**/supervisions/{sid}")
    expect(page.locator("#history")).to_contain_text("延期")
    expect(page.locator("#history")).to_contain_text("设备到货延迟，同意延期")
    expect(page.locator("dl.facts").first).to_contain_text(new)
    assert _events(bureau.dsn, sid)[-1] == ("extended", new)
    assert rows(bureau.dsn, "SELECT deadline::text FROM bureau_supervision WHERE id = %s", sid) == [(new,)]
    down = rows(
        bureau.dsn,
        "SELECT payload->>'deadline', payload->>'previous_deadline' FROM bureau_downlink"
        " WHERE kind = 'supervision' AND payload->>'action' = 'extended'",
    )
    assert down == [(new, (TODAY + timedelta(days=3)).isoformat())]
    assert bureau.steps >= 1


def test_a_deadline_in_the_past_is_refused(page: Page, bureau: Server) -> None:  # noqa: F811
    sid = _open(bureau.dsn, CITY, "liuhe-chem:7", TODAY - timedelta(days=3), 20)  # overdue already
    sign_in(page, bureau, "南京市应急局值班员", f"/supervisions/{sid}")
    _extend(page, (TODAY - timedelta(days=1)).isoformat())
    expect(page.locator("ul.error")).to_contain_text("整改期限早于今天")
    page.goto(f"{bureau.url}/supervisions/{sid}")
    page.click("#lang")
    _extend(page, (TODAY - timedelta(days=1)).isoformat())
    expect(page.locator("ul.error")).to_contain_text("is in the past")
    assert [e[0] for e in _events(bureau.dsn, sid)] == ["opened"]


def test_only_the_supervising_level_has_the_form_and_may_extend(
    page: Page,
    context: BrowserContext,
    bureau: Server,  # noqa: F811
) -> None:
    sid = _open(bureau.dsn, LIUHE, "liuhe-chem:7", TODAY + timedelta(days=3), 1)  # the county supervises
    sign_in(page, bureau, "南京市应急局值班员", f"/supervisions/{sid}")
    expect(page.locator("#supervision-level")).to_have_text("县级")
    expect(page.locator("#extend-form")).to_have_count(0)  # the city is above: not its extension
    r = context.request.post(
        f"{bureau.url}/supervisions/{sid}/step",
        form={"csrf": _csrf(page), "step": "extend", "deadline": (TODAY + timedelta(days=30)).isoformat()},
    )
    assert r.status == 409
    assert "仅县级督办单位可以延期" in r.text() and "county级" not in r.text()
    r = context.request.post(
        f"{bureau.url}/supervisions/{sid}/step",
        form={"step": "extend", "deadline": (TODAY + timedelta(days=30)).isoformat()},
    )
    assert r.status == 403  # no CSRF token
    assert [e[0] for e in _events(bureau.dsn, sid)] == ["opened"]
    # the county officer of the supervising level has it
    page.click("#signout")
    sign_in(page, bureau, "六合区应急局", f"/supervisions/{sid}")
    expect(page.locator("#extend-form")).to_have_count(1)
