"""Play an official weather warning (a CAP 1.2 file) beside a scenario: posted to the daemon at a time.

The file's times are moved so that its ``<sent>`` is the moment it is played (every
``sent``, ``effective``, ``onset`` and ``expires`` by the same amount, offsets kept) and its
identifier gets a ``-sim<unix time>`` suffix: a sample written for one day plays on any day,
and each run is a new warning rather than a duplicate. The document is not parsed here (the
daemon's hardened parser judges it); the times are found by their elements' text.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import datetime

import aiohttp
import structlog

__all__ = ["play", "post", "retime"]

log = structlog.get_logger("hazmon.simulators")

_TIME = re.compile(rb"<(sent|effective|onset|expires)>\s*([^<\s]+)\s*</\1>")
_IDENT = re.compile(rb"<identifier>\s*([^<\s]+)\s*</identifier>")


def retime(data: bytes, now: datetime) -> bytes:
    """``data`` with its times moved so ``<sent>`` is ``now``, and a ``-sim<unix>`` identifier suffix.

    A document without a readable ``<sent>`` is returned unchanged (the daemon refuses it with
    its reason).
    """
    sent = next((x for x in _TIME.finditer(data) if x.group(1) == b"sent"), None)
    try:
        t0 = datetime.fromisoformat(sent.group(2).decode()) if sent else None
    except ValueError:
        t0 = None
    if t0 is None or t0.tzinfo is None:
        return data
    delta = now - t0

    def move(x: re.Match[bytes]) -> bytes:
        try:
            t = datetime.fromisoformat(x.group(2).decode())
        except ValueError:
            return x.group(0)
        moved = (t + delta).astimezone(t.tzinfo).isoformat(timespec="seconds").encode()
        return b"<" + x.group(1) + b">" + moved + b"</" + x.group(1) + b">"

    out = _TIME.sub(move, data)
    suffix = f"-sim{int(now.timestamp())}".encode()
    return _IDENT.sub(lambda x: b"<identifier>" + x.group(1) + suffix + b"</identifier>", out, count=1)


async def post(url: str, token: str, data: bytes, timeout_s: float = 10.0) -> tuple[int, str]:
    """POST the document; (status, body) — (0, reason) when the daemon could not be reached."""
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout_s)) as s,
            s.post(url, data=data, headers={"Authorization": f"Bearer {token}"}) as r,
        ):
            return r.status, await r.text()
    except (aiohttp.ClientError, TimeoutError) as e:
        return 0, f"{type(e).__name__}: {e}"


async def play(
    data: bytes,
    at_s: float,
    url: str,
    token: Callable[[], str],
    clock: Callable[[], datetime],
    *,
    speed: float = 1.0,
    tries: int = 5,
) -> tuple[int, str]:
    """Wait ``at_s`` seconds of simulated time, then post; a daemon not up yet is retried a few times."""
    await asyncio.sleep(max(0.0, at_s / speed))
    status, body = 0, ""
    for i in range(tries):
        status, body = await post(url, token(), retime(data, clock()))
        if status:
            break
        await asyncio.sleep(min(10.0, 2.0**i))
    (log.info if status == 201 else log.warning)(
        "weather warning played", url=url, status=status, answer=body[:300]
    )
    return status, body
