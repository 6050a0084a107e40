"""The bureau daemon's console without a browser: mounted by `BureauDaemon`, its users in bureau.yaml.

(A module of its own: the browser module's Playwright loop must not be running under an async test.)
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import aiohttp
import pytest

from hazmon.bureau.config import load_config
from hazmon.bureau_daemon import BureauDaemon
from hazmon.console import hash_password
from hazmon.plant import ConfigError
from hazmon.plant.web_users import BureauConsoleSettings, UserRegion
from tests.bureau.test_daemon import bureau_config
from tests.conftest import free_port
from tests.console.test_bureau_browser import _users


async def test_the_bureau_daemon_serves_its_console(db_dsn: str) -> None:
    cfg = dataclasses.replace(
        bureau_config(db_dsn, free_port()),  # no broker there: the console does not need one
        console=BureauConsoleSettings(users=_users()),
    )
    daemon = BureauDaemon(cfg)
    await daemon.start()
    try:
        base = f"http://127.0.0.1:{daemon.http_port}"
        async with aiohttp.ClientSession() as http:
            async with http.get(base + "/console/region", allow_redirects=False) as r:
                assert r.status == 303 and r.headers["Location"].startswith("/console/signin")
            async with http.get(base + "/console/signin") as r:
                assert r.status == 200 and "南京市应急管理局" in await r.text()
            async with http.get(base + "/metrics") as r:
                assert 'hazmon_console_counters{counter="signins"} 0.0' in await r.text()
    finally:
        await daemon.stop()


def test_the_console_section_of_bureau_yaml(tmp_path: Path) -> None:
    h = hash_password("pw-pw-pw-pw", log_n=10)
    f = tmp_path / "bureau.yaml"
    head = 'id: nj\nname: 南京市应急管理局\nregion: {code: "320100", level: city}\nconsole:\n  users:\n'
    f.write_text(
        head
        + f'    - {{name: 王伟, role: officer, password_hash: "{h}", region: {{code: "320116", level: county}}}}\n'
    )
    cfg = load_config(f)
    (u,) = cfg.console.users
    assert (u.name, u.role, u.scope) == ("王伟", "officer", UserRegion("320116", "county").scope)
    bad = {
        "role: chief": "console.users[0].role: 'chief' is not one of: viewer, officer",
        "role: viewer": "console.users[0].region: city 330100 is not inside this bureau's region",
    }
    for role, why in bad.items():
        f.write_text(
            head
            + f'    - {{name: a, {role}, password_hash: "{h}", region: {{code: "330100", level: city}}}}\n'
        )
        with pytest.raises(ConfigError) as e:
            load_config(f)
        assert f"{f}:6: {why}" in str(e.value), str(e.value)


def test_the_example_bureau_has_a_demo_officer_and_viewer() -> None:
    from hazmon.console import verify
    from tests.conftest import ROOT

    cfg = load_config(ROOT / "examples" / "bureau.yaml")
    officer, viewer = cfg.console.users
    assert (officer.role, viewer.role) == ("officer", "viewer")
    assert verify("demo-bureau-officer-1", officer.password_hash)  # the published demo passwords
    assert verify("demo-bureau-viewer-1", viewer.password_hash)


async def test_the_database_away_is_a_503_page_not_a_traceback() -> None:
    from hazmon.bureau.api import BureauApi
    from hazmon.collector import Metrics
    from hazmon.console.bureau_pages import build_bureau_console
    from hazmon.http import HttpServer

    away = f"postgresql://hazmon@127.0.0.1:{free_port()}/nothing"  # nothing listens there
    console = build_bureau_console(
        BureauConsoleSettings(users=_users()), BureauApi(away, []), "南京市应急管理局"
    )
    http = HttpServer("127.0.0.1", 0, Metrics(), lambda: (True, {}))
    http.mount(console.routes())
    port = await http.start()
    try:
        base = f"http://127.0.0.1:{port}/console"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as s:  # 127.0.0.1
            async with s.get(base + "/signin") as r:
                assert r.status == 200  # the form needs no database
                pre = r.cookies["hazmon_pre"].value
            form = {"csrf": pre, "username": "江宁区应急局", "password": "county-viewer-1"}
            async with s.post(base + "/signin", data=form, allow_redirects=False) as r:
                assert r.status == 503 and "数据库暂不可用" in await r.text()
            assert console.counters["csrf_refused"] == 0  # it got as far as the session
            s.cookie_jar.update_cookies({"hazmon_session": "x" * 43})
            async with s.get(base + "/region", allow_redirects=False) as r:
                assert r.status == 503
    finally:
        await http.stop()
