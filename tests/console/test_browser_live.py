"""The active-alarm list refreshes itself (a little script polls a server-rendered fragment), and
a session that ends while the page is open lands on the sign-in page at the next poll."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from hazmon.console import ConsoleSettings
from hazmon.plant import Plant
from tests.alarms.helpers import T0, gas
from tests.console.helpers import sign_in
from tests.console.server import ConsoleServer, users


@pytest.fixture
def server(example_plant: Plant, db_dsn: str) -> Iterator[ConsoleServer]:
    """The console with the alarm list polling every second."""
    s = ConsoleServer(example_plant, db_dsn, ConsoleSettings(session_idle_s=600, refresh_s=1, users=users()))
    s.start()
    yield s
    s.stop()


def test_a_new_alarm_appears_without_reload_then_an_expired_session_signs_out(
    page: Page, server: ConsoleServer
) -> None:
    sign_in(page, server, "王强")
    expect(page.locator("table.alarms tbody tr")).to_have_count(1)
    page.evaluate("window.__same_page = true")  # gone if the browser loads the page again
    assert server.alarms is not None
    server.run(server.alarms.handle([gas(T0 + 1_000_000, tag="AT-102")], T0 + 1_000_000))
    expect(page.locator("table.alarms tbody tr")).to_have_count(2, timeout=15_000)
    expect(page.locator("table.alarms")).to_contain_text("AT-102")
    assert page.evaluate("window.__same_page === true")  # swapped in by the poll, not reloaded
    # the session expires while the page is open: the next poll gets 401 and the page reloads to sign-in
    server.advance(server.settings.session_idle_s + 1)
    page.wait_for_url("**/console/signin**", timeout=15_000)
    expect(page.locator("#expired")).to_be_visible()
