"""`hazmon alarms ...` against a real alarm API, and demo tokens from a token file."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from hazmon.alarms import AlarmService, parse_settings
from hazmon.alarms.auth import TokenBook
from hazmon.plant import Plant
from hazmon.plant.yamlnode import parse_document
from tests.alarms.helpers import T0, assess_all, bearer, gas, webhook_settings
from tests.alarms.receivers import HttpReceiver
from tests.conftest import EXAMPLE_PLANT, ROOT, free_port

pytestmark = pytest.mark.slow


async def hazmon(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    p = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "hazmon",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, **(env or {})},
    )
    out, err = await p.communicate()
    return p.returncode or 0, out.decode(), err.decode()


@pytest.fixture
async def served(example_plant: Plant, db_dsn: str) -> AsyncIterator[tuple[str, AlarmService]]:
    hook = HttpReceiver()
    await hook.start()
    assess_all(example_plant, db_dsn)
    svc = AlarmService(example_plant, webhook_settings(f"http://127.0.0.1:{hook.port}/h", repeat_s=0), db_dsn)
    await svc.start()
    await svc.handle([gas(T0)], T0)
    app = web.Application()
    app.add_routes(svc.routes())
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield f"http://127.0.0.1:{port}", svc
    await runner.cleanup()
    await svc.close()
    await hook.stop()


async def test_cli_list_ack_shelve_show(served: tuple[str, Any]) -> None:
    url, svc = served
    env = {"HAZMON_API": url, "HAZMON_TOKEN": bearer("op1")}
    aid = str(svc.alarms()[0].id)
    rc, out, _ = await hazmon("alarms", "list", "--tier", "red", env=env)
    assert rc == 0
    assert "gas_second" in out and "AT-101" in out and out.strip().endswith("1 alarm(s)")
    rc, out, _ = await hazmon("alarms", "ack", aid, "-m", "on site", env=env)
    assert (rc, out.strip()) == (0, f"alarm {aid}: state active_acked, bureau step -")
    rc, out, _ = await hazmon("alarms", "shelve", aid, "--for", "30m", "--reason", "calibration", env=env)
    assert (rc, out.strip()) == (0, f"alarm {aid}: state shelved, bureau step -")
    rc, out, err = await hazmon("alarms", "bureau", aid, "received", env=env)
    assert rc == 1 and "HTTP 403: role operator may not do this" in err
    rc, out, _ = await hazmon("alarms", "show", aid, env=env)
    assert rc == 0
    kinds = [line.split()[2] for line in out.splitlines() if line.startswith("    20")]
    assert [k for k in kinds if k != "notified"] == ["raised", "acked", "shelved"]
    rc, _, err = await hazmon("alarms", "list", env={"HAZMON_API": url, "HAZMON_TOKEN": "wrong"})
    assert rc == 1 and "HTTP 401: invalid token" in err


async def test_tokens_file_is_created_and_printed(tmp_path: Path, example_plant: Plant, db_dsn: str) -> None:
    cfg = tmp_path / "hazmon.yaml"
    cfg.write_text(
        f"plant: {EXAMPLE_PLANT}\nhttp: {{host: 127.0.0.1, port: 8470}}\n"
        "alarms:\n  token_file: secrets/alarm-tokens.yaml\n"
    )
    rc, out, err = await hazmon("alarms", "tokens", "-c", str(cfg))
    assert rc == 0, err
    tf = tmp_path / "secrets" / "alarm-tokens.yaml"
    assert oct(tf.stat().st_mode & 0o777) == "0o600"
    lines = out.splitlines()
    api = "http://127.0.0.1:8470/api/v1"
    assert lines[0] == f"alarm API: {api}/alarms   (OpenAPI: {api}/openapi.json)"
    names = [ln.split()[0] for ln in lines[2:7]]
    assert names == ["operator", "plant-manager", "county-bureau", "city-bureau", "province-bureau"]
    tokens = {ln.split()[0]: ln.split()[-1] for ln in lines[2:7]}
    # the same tokens are what the daemon accepts (parsed from the same config)
    settings = parse_document("token_file: secrets/alarm-tokens.yaml\n", str(cfg), parse_settings)
    svc = AlarmService(example_plant, settings, db_dsn)
    book = TokenBook(svc.tokens)
    county = book.find(tokens["county-bureau"])
    assert county is not None and (county.role, county.level, county.region) == ("bureau", "county", "320116")
    assert county.sees("320116") and not county.sees("320111")
    city = book.find(tokens["city-bureau"])
    assert city is not None and city.sees("320111")  # another county of the same city
    _, out2, _ = await hazmon("alarms", "tokens", "-c", str(cfg))
    assert out2 == out  # printed again, not regenerated


async def test_list_with_config_takes_the_api_address_from_it(
    served: tuple[str, Any], tmp_path: Path
) -> None:
    # README: `hazmon alarms list -c examples/hazmon.yaml` (the address from the daemon's http section)
    url, _ = served
    port = url.rsplit(":", 1)[1]
    cfg = tmp_path / "hazmon.yaml"
    cfg.write_text(f"plant: {EXAMPLE_PLANT}\nhttp: {{host: 127.0.0.1, port: {port}}}\n")
    env = {"HAZMON_API": "http://127.0.0.1:9", "HAZMON_TOKEN": bearer("op1")}  # -c wins over the env
    for flag in ("-c", "--config"):
        rc, out, err = await hazmon("alarms", "list", flag, str(cfg), env=env)
        assert rc == 0, err
        assert "AT-101" in out and out.strip().endswith("1 alarm(s)")
    rc, out, err = await hazmon("alarms", "show", "1", "-c", str(cfg), "--json", env=env)
    assert rc == 0, err
    rc, _, err = await hazmon("alarms", "list", "-c", str(tmp_path / "missing.yaml"), env=env)
    assert rc == 1 and "missing.yaml" in err and "Traceback" not in err
    no_token = {k: v for k, v in os.environ.items() if k != "HAZMON_TOKEN"}
    p = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hazmon", "alarms", "list", "-c", str(cfg),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=no_token,
    )  # fmt: skip
    _, err_b = await p.communicate()
    assert p.returncode == 1 and "no token: pass --token or set HAZMON_TOKEN" in err_b.decode()


async def test_tokens_prints_a_command_that_works_as_printed(
    tmp_path: Path, example_plant: Plant, db_dsn: str
) -> None:
    port = free_port()
    cfg = tmp_path / "hazmon.yaml"
    cfg.write_text(
        f"plant: {EXAMPLE_PLANT}\nhttp: {{host: 127.0.0.1, port: {port}}}\n"
        "alarms:\n  token_file: alarm-tokens.yaml\n"
    )
    root = ROOT
    env = {k: v for k, v in os.environ.items() if k not in ("HAZMON_API", "HAZMON_TOKEN")}
    env["PATH"] = "/usr/bin:/bin"  # no hazmon on the PATH, as on a fresh checkout
    p = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hazmon", "alarms", "tokens", "-c", str(cfg),
        cwd=root, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out_b, err_b = await p.communicate()
    assert p.returncode == 0, err_b.decode()
    (line,) = [ln for ln in out_b.decode().splitlines() if ln.startswith("try:")]
    command = line.removeprefix("try:").strip()
    assert "<" not in command  # no placeholder left to fill in
    settings = parse_document(f"token_file: {tmp_path / 'alarm-tokens.yaml'}\n", str(cfg), parse_settings)
    assess_all(example_plant, db_dsn)
    svc = AlarmService(example_plant, settings, db_dsn)
    await svc.start()
    await svc.handle([gas(T0)], T0)
    app = web.Application()
    app.add_routes(svc.routes())
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        sh = await asyncio.create_subprocess_exec(
            "/bin/sh", "-c", command,
            cwd=root, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        )  # fmt: skip
        out_b, err_b = await sh.communicate()
    finally:
        await runner.cleanup()
        await svc.close()
    assert sh.returncode == 0, (command, err_b.decode())
    assert out_b.decode().strip().endswith("1 alarm(s)")
