"""`POST /api/weather/cap`: a CAP 1.2 document over HTTP, for the roof to mount (an I/O edge).

The roof decides who may post (``authorize``) and gives a connection factory and the clock;
the body is read up to `cap.MAX_BYTES` + 1 bytes and no further. Answers are JSON:

- 201 ``{"stored": true, "identifier": ..., "flag": ""|"unknown_reference"}``
- 409 ``{"stored": false, "reason": "duplicate", ...}``
- 422 ``{"stored": false, "reason": <Reason>, "detail": ...}`` for every other refusal
- 413 oversize, 401 not authorized; never a 500 for a bad document.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime

import psycopg
from aiohttp import web

from hazmon.plant.model import Plant
from hazmon.weather.cap import MAX_BYTES, Reason
from hazmon.weather.ingest import Outcome, Tally, ingest

__all__ = ["routes"]

Connect = Callable[[], AbstractContextManager[psycopg.Connection[tuple[object, ...]]]]


def routes(
    plant: Plant,
    connect: Connect,
    now: Callable[[], datetime],
    authorize: Callable[[web.Request], bool],
    tally: Tally | None = None,
) -> list[web.RouteDef]:
    """The route; `connect()` gives an autocommit connection, `tally` counts outcomes."""

    def store(data: bytes, name: str) -> Outcome:
        with connect() as conn:
            return ingest(conn, plant, data, name, now())

    async def post(request: web.Request) -> web.Response:
        if not authorize(request):
            return web.json_response({"stored": False, "reason": "unauthorized"}, status=401)
        buf = bytearray()
        while len(buf) <= MAX_BYTES:  # read() gives a chunk at a time: stop one byte past the limit
            chunk = await request.content.read(MAX_BYTES + 1 - len(buf))
            if not chunk:
                break
            buf += chunk
        data = bytes(buf)
        name = f"POST {request.path} from {request.remote or '?'}"
        if len(data) > MAX_BYTES:
            o = Outcome(name, False, None, Reason.OVERSIZE, f"{name}: more than {MAX_BYTES} bytes")
            status = 413
        else:
            o = await asyncio.to_thread(store, data, name)
            status = 201 if o.stored else 409 if o.reason is Reason.DUPLICATE else 422
        if tally is not None:
            tally.add(o)
        body: dict[str, object] = {"stored": o.stored, "identifier": o.identifier}
        if o.stored:
            body["flag"] = o.reason.value if o.reason else ""
        else:
            body |= {"reason": o.reason.value if o.reason else "", "detail": o.detail}
        return web.json_response(body, status=status)

    return [web.post("/api/weather/cap", post)]
