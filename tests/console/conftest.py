"""One headless Chromium (Debian's, driven by Playwright) per test module; a console per test.

Never `playwright install` (it downloads a browser): the system's chromium is used, installed
by tools/ensure-browser.sh. A missing browser fails the tests with the command to run.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright

from hazmon.plant import Plant
from tests.conftest import ROOT
from tests.console.server import ConsoleServer

CHROMIUM = os.environ.get("HAZMON_CHROMIUM", "/usr/bin/chromium")
SCREENSHOTS = ROOT / "build" / "screenshots"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        pytest.fail(
            f"no Chromium at {CHROMIUM}: run `tools/ensure-browser.sh` "
            "(apt-get install chromium chromium-driver fonts-wqy-microhei), or set HAZMON_CHROMIUM",
            pytrace=False,
        )
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-dev-shm-usage"]
        )
        yield b
        b.close()


@pytest.fixture
def server(example_plant: Plant, db_dsn: str) -> Iterator[ConsoleServer]:
    s = ConsoleServer(example_plant, db_dsn).start()
    yield s
    s.stop()


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(locale="zh-CN", timezone_id="Asia/Shanghai")
    ctx.set_default_timeout(10_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


def shot(page: Page, name: str) -> None:
    """Keep a screenshot of the page as a test artefact (build/screenshots/<name>.png)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
def browser_phone(browser: Browser) -> Iterator[Page]:
    """A phone-sized page (390 x 844, touch)."""
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    ctx.set_default_timeout(10_000)
    yield ctx.new_page()
    ctx.close()
