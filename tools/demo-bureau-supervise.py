"""make demo, the bureau's side: the city bureau supervises the example plant's major hidden danger.

Once the example plant has reported its major hidden danger, the city bureau puts it under
supervised rectification (挂牌督办) through its API, so the API and the console have one to show.
Waits up to DEMO_SUPERVISE_WAIT_S (default 90) seconds; does nothing when the danger is under
supervision already (a second `make demo` on the same databases). Never fails the demo: every
problem is one line on stdout.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
import urllib.error
import urllib.request
from typing import Any

API = os.environ.get("HAZMON_BUREAU_API", "http://127.0.0.1:9200/api/v1")
TOKEN = os.environ.get("HAZMON_BUREAU_TOKEN", "password")  # examples/bureau.yaml's demo officer (city)
ENTERPRISE = os.environ.get("DEMO_ENTERPRISE", "hx-chem")


def call(method: str, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(API + path, data=data, method=method)
    req.add_header("Authorization", f"Bearer {TOKEN}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        try:
            return e.code, json.loads(e.read() or b"{}")
        except ValueError:
            return e.code, {}
    except (OSError, ValueError) as e:
        return 0, {"error": str(e)}


def main() -> int:
    wait_s = float(os.environ.get("DEMO_SUPERVISE_WAIT_S", "90"))
    until = time.monotonic() + wait_s
    major: list[dict[str, Any]] = []
    while time.monotonic() < until:
        st, body = call("GET", f"/hidden-dangers?level=major&open=true&enterprise={ENTERPRISE}")
        major = body.get("hidden_dangers", []) if st == 200 else []
        if major:
            break
        time.sleep(2)
    if not major:
        print(f"bureau: no major hidden danger of {ENTERPRISE} within {wait_s:.0f} s: no 挂牌督办 opened")
        return 0
    d = major[-1]  # the oldest open one
    if d.get("supervision_id") is not None:
        print(
            f"bureau: {d['danger_id']} is under supervision already: {API}/supervisions/{d['supervision_id']}"
        )
        return 0
    deadline = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=8)).date() + dt.timedelta(days=30)
    st, body = call("POST", "/supervisions", {
        "danger_id": d["danger_id"], "deadline": deadline.isoformat(), "bureau_person": "陈科长",
        "comment": "市级挂牌督办：限期整改，按期报送进展 (demo)",
    })  # fmt: skip
    if st != 201:
        print(f"bureau: 挂牌督办 on {d['danger_id']} not opened: {st} {body.get('error', body)}")
        return 0
    print(
        f"bureau: 挂牌督办 opened on {d['danger_id']} ({d.get('title', '')}), deadline {deadline}:\n"
        f"  curl -s -H 'Authorization: Bearer {TOKEN}' {API}/supervisions/{body['id']}\n"
        "  console: http://127.0.0.1:9200/console → 挂牌督办 Supervisions"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
