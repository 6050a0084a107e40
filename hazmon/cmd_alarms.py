"""`hazmon alarms list|show|ack|shelve|unshelve|comment|bureau|tokens` over the alarm HTTP API.

The API address comes from ``--url``, else the daemon's ``http`` section when
``-c hazmon.yaml`` is given, else ``$HAZMON_API``, else http://127.0.0.1:8470; the
bearer token from ``--token`` or ``$HAZMON_TOKEN``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import sys
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hazmon.alarms.tokens import ensure_token_file, read_token_file
from hazmon.config import load_config
from hazmon.plant.yamlnode import ConfigError

__all__ = ["register"]

DEFAULT_API = "http://127.0.0.1:8470"
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smhd]?)")
_UNIT_S = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def _duration(text: str) -> float:
    m = _DURATION.fullmatch(text.strip())
    if m is None:
        raise argparse.ArgumentTypeError(f"'{text}' is not a duration like 30m, 2h or 900")
    return float(m.group(1)) * _UNIT_S[m.group(2)]


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-c", "--config", help="daemon config (hazmon.yaml): the API address from its http section"
    )
    p.add_argument(
        "--url", help=f"alarm API base URL (default: -c's http section, $HAZMON_API or {DEFAULT_API})"
    )
    p.add_argument("--token", help="bearer token (default $HAZMON_TOKEN)")
    p.add_argument("--json", action="store_true", help="print the API's JSON")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    a = sub.add_parser(
        "alarms", help="alarms: list, show, acknowledge, shelve, comment, bureau steps, tokens"
    )
    acts = a.add_subparsers(dest="alarms_command", metavar="ACTION", required=True)
    p = acts.add_parser("list", help="list alarms (most severe first)")
    p.add_argument("--state", help="comma list: active_unacked, active_acked, rtn_unacked, shelved, ...")
    p.add_argument("--tier", help="comma list: red, orange, yellow, blue")
    p.add_argument("--hazard-source")
    p.add_argument("--active", action="store_true", help="only alarms showing active")
    _common(p)
    p.set_defaults(handler=_list)
    p = acts.add_parser("show", help="one alarm with its audit trail")
    p.add_argument("id", type=int)
    _common(p)
    p.set_defaults(handler=_show)
    for name, helptext in (
        ("ack", "acknowledge (stops escalation)"),
        ("unshelve", "unshelve now"),
        ("comment", "add a comment to the audit trail"),
    ):
        p = acts.add_parser(name, help=helptext)
        p.add_argument("id", type=int)
        p.add_argument("-m", "--comment", default="", required=name == "comment")
        _common(p)
        p.set_defaults(handler=_action, action=name)
    p = acts.add_parser("shelve", help="shelve for a while with a reason; unshelved automatically")
    p.add_argument("id", type=int)
    p.add_argument("--for", dest="duration", type=_duration, required=True, help="e.g. 30m, 2h")
    p.add_argument("--reason", required=True)
    p.add_argument("-m", "--comment", default="")
    _common(p)
    p.set_defaults(handler=_action, action="shelve")
    p = acts.add_parser(
        "bureau", help="bureau handling step: received, verified, feedback (enterprise), closed"
    )
    p.add_argument("id", type=int)
    p.add_argument("step", choices=("received", "verified", "feedback", "closed"))
    p.add_argument("-m", "--comment", default="")
    _common(p)
    p.set_defaults(handler=_action, action="bureau")
    p = acts.add_parser("tokens", help="print the API address and a token for each role (demo token file)")
    p.add_argument("-c", "--config", required=True, help="daemon config (hazmon.yaml)")
    p.set_defaults(handler=_tokens)


class ApiError(Exception):
    pass


def _base_url(args: argparse.Namespace) -> str:
    if args.url:
        return str(args.url).rstrip("/")
    if args.config:
        try:
            config, _ = load_config(args.config)
        except ConfigError as e:
            raise ApiError(
                f"{args.config}: {len(e.problems)} problem(s) (hazmon run -c {args.config} --check)"
            ) from e
        return f"http://{config.http.host}:{config.http.port}"
    return (os.environ.get("HAZMON_API") or DEFAULT_API).rstrip("/")


def _call(args: argparse.Namespace, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    base = _base_url(args)
    token = args.token or os.environ.get("HAZMON_TOKEN", "")
    if not token:
        cfg = args.config or "examples/hazmon.yaml"
        raise ApiError(
            f"no token: pass --token or set HAZMON_TOKEN "
            f"({_self_command()} alarms tokens -c {cfg} prints them)"
        )
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(
        base + path,
        data=data,
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        try:
            msg = json.loads(e.read()).get("error", e.reason)
        except (json.JSONDecodeError, AttributeError):
            msg = e.reason
        raise ApiError(f"{method} {path}: HTTP {e.code}: {msg}") from e
    except urllib.error.URLError as e:
        raise ApiError(f"cannot reach the alarm API at {base}: {e.reason}") from e


def _t(us: int | None) -> str:
    return "-" if us is None else datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _run(args: argparse.Namespace, fn: Any) -> int:
    try:
        fn()
    except ApiError as e:
        print(f"hazmon alarms: {e}", file=sys.stderr)
        return 1
    return 0


def _list(args: argparse.Namespace) -> int:
    def go() -> None:
        q = [
            f"{k}={v}"
            for k, v in (("state", args.state), ("tier", args.tier), ("hazard_source", args.hazard_source))
            if v
        ]
        if args.active:
            q.append("active=true")
        body = _call(args, "GET", "/api/v1/alarms" + ("?" + "&".join(q) if q else ""))
        if args.json:
            print(json.dumps(body, ensure_ascii=False, indent=2))
            return
        print(f"{'ID':>5}  {'TIER':6}  {'STATE':15}  {'SOURCE':14}  {'SENSOR':9}  {'CONDITION':17}  SINCE")
        for a in body["alarms"]:
            print(
                f"{a['id']:>5}  {a['tier']:6}  {a['state']:15}  {a['hazard_source']:14}  "
                f"{a['sensor'] or '-':9}  {a['condition']:17}  {_t(a['activated_at_us'])}  "
                f"{a['message_zh'] or a['message_en']}"
            )
        print(f"{body['count']} alarm(s)")

    return _run(args, go)


def _show(args: argparse.Namespace) -> int:
    def go() -> None:
        a = _call(args, "GET", f"/api/v1/alarms/{args.id}")
        if args.json:
            print(json.dumps(a, ensure_ascii=False, indent=2))
            return
        print(f"alarm {a['id']}: {a['hazard_source']} {a['sensor'] or ''} {a['condition']}")
        print(
            f"  tier {a['tier']} ({a['tier_zh']}), state {a['state']}, bureau step {a['bureau_step'] or '-'}"
        )
        print(f"  {a['message_zh']}\n  {a['message_en']}")
        print("  events:")
        for e in a["events"]:
            extra = e["data"].get("recipient") or e["data"].get("reason") or ""
            print(f"    {_t(e['at_us'])}  {e['kind']:16} {e['actor']:16} {e['comment']} {extra}".rstrip())

    return _run(args, go)


def _action(args: argparse.Namespace) -> int:
    def go() -> None:
        body: dict[str, Any] = {"comment": args.comment}
        path = f"/api/v1/alarms/{args.id}/{args.action}"
        if args.action == "shelve":
            body.update(duration_s=args.duration, reason=args.reason)
        if args.action == "bureau":
            path += f"/{args.step}"
        a = _call(args, "POST", path, body)
        if args.json:
            print(json.dumps(a, ensure_ascii=False, indent=2))
        else:
            print(f"alarm {a['id']}: state {a['state']}, bureau step {a['bureau_step'] or '-'}")

    return _run(args, go)


def _tokens(args: argparse.Namespace) -> int:
    try:
        config, plant = load_config(args.config)
    except ConfigError as e:
        print(e, file=sys.stderr)
        return 1
    settings = config.alarms
    token_file = getattr(settings, "token_file", "")
    if not token_file:
        print(
            f"{args.config}: the alarms section has no token_file (add `token_file: alarm-tokens.yaml`)",
            file=sys.stderr,
        )
        return 1
    path = Path(token_file)
    ensure_token_file(path)
    url = f"http://{config.http.host}:{config.http.port}/api/v1"
    print(f"alarm API: {url}/alarms   (OpenAPI: {url}/openapi.json)")
    print(f"tokens from {path} (bureau tokens without a region cover {plant.enterprise.region.code}):")
    for t in read_token_file(path):
        what = t.role + (f" ({t.level}{', ' + t.region if t.region else ''})" if t.level else "")
        print(f"  {t.name:16} {what:28} {t.token}")
    operator = next((t.token for t in read_token_file(path) if t.role == "operator"), "<token>")
    print(f"try:  HAZMON_TOKEN={operator} {_self_command()} alarms list -c {shlex.quote(args.config)}")
    return 0


def _self_command() -> str:
    """How to run this same `hazmon` from the current directory, as a shell word.

    The console script next to the running interpreter (``.venv/bin/hazmon`` from a
    checkout), shown relative to the current directory when it is under it, and plain
    ``hazmon`` only when that is the one on the PATH.
    """
    script = Path(sys.executable).parent / "hazmon"
    if not script.exists():
        return f"{shlex.quote(sys.executable)} -m hazmon"
    on_path = shutil.which("hazmon")
    if on_path is not None and Path(on_path).resolve() == script.resolve():
        return "hazmon"
    try:
        shown = str(script.absolute().relative_to(Path.cwd()))
    except ValueError:
        shown = str(script.absolute())
    return shlex.quote(shown)
