from __future__ import annotations

from typing import Any

import psycopg
from playwright.sync_api import Page

from tests.console.server import PASSWORDS, ConsoleServer


def sign_in(
    page: Page, server: ConsoleServer, name: str, password: str | None = None, path: str = "/alarms"
) -> None:
    page.goto(server.url + path)
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", PASSWORDS[name] if password is None else password)
    page.click("#signin button[type=submit]")
    page.wait_for_load_state()


def rows(dsn: str, sql: str, *params: object) -> list[tuple[Any, ...]]:
    with psycopg.connect(dsn, autocommit=True) as c:
        return c.execute(sql, params).fetchall()  # type: ignore[arg-type]
