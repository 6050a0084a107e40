"""MQTT payloads the simulator publishes: pure functions, no broker.

The formats are the contract with the collector (see README.md):

* ``json``: one reading per message, ``{"ts": "2026-11-28T10:00:00.123456Z", "v": 12.5, "q": 0}``;
  the value sits at the binding's dotted ``field`` path (default ``v``).
* ``batch``: ``{"readings": [{"tag": "GT-201", "ts": ..., "v": ..., "q": 0}, ...]}``, one
  message per topic per publishing round, for every sensor bound to that topic.
* ``number``: the value as ASCII text (``12.5``); it carries no time and no quality, so
  readings whose quality is not GOOD are not published on such bindings (counted).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import lru_cache

from hazmon.plant.model import MqttBinding
from hazmon.plant.reading import Quality, Reading

__all__ = ["encode", "encode_batch", "encode_json", "encode_number", "rfc3339_us"]


@lru_cache(maxsize=4096)
def _second(s: int) -> str:
    return f"{datetime.fromtimestamp(s, tz=UTC):%Y-%m-%dT%H:%M:%S}"


def rfc3339_us(ts_us: int) -> str:
    """``2026-11-28T10:00:00.123456Z`` for µs since the epoch (UTC, always 6 decimals)."""
    return f"{_second(ts_us // 1_000_000)}.{ts_us % 1_000_000:06d}Z"


def _nest(path: str, value: float) -> dict[str, object]:
    keys = path.split(".") if path else ["v"]
    inner: dict[str, object] = {keys[-1]: value}
    for k in reversed(keys[:-1]):
        inner = {k: inner}
    return inner


def encode_json(r: Reading, field: str = "v") -> bytes:
    """One reading as the ``json`` format; ``field`` is the dotted path of the value."""
    if field == "v":  # the common case, formatted directly (values are always finite)
        return f'{{"ts":"{rfc3339_us(r.ts_us)}","v":{float(r.value)!r},"q":{int(r.quality)}}}'.encode()
    body: dict[str, object] = {"ts": rfc3339_us(r.ts_us)}
    body.update(_nest(field or "v", r.value))
    body["q"] = int(r.quality)
    return json.dumps(body, separators=(",", ":")).encode()


def encode_batch(readings: Sequence[Reading]) -> bytes:
    """Many readings as the ``batch`` format (the value key is always ``v``)."""
    items = [{"tag": r.tag, "ts": rfc3339_us(r.ts_us), "v": r.value, "q": int(r.quality)} for r in readings]
    return json.dumps({"readings": items}, separators=(",", ":")).encode()


def encode_number(r: Reading) -> bytes | None:
    """The value as ASCII; None for a reading that is not GOOD (the format cannot say so)."""
    if r.quality is not Quality.GOOD:
        return None
    return repr(float(r.value)).encode()


def encode(
    readings: Sequence[Reading], bindings: dict[str, MqttBinding]
) -> tuple[list[tuple[str, bytes]], int]:
    """(topic, payload) pairs for ``readings`` in publishing order, and how many were not encodable.

    ``batch`` readings are grouped into one message per topic; readings of
    tags without an MQTT binding are skipped (counted).
    """
    out: list[tuple[str, bytes]] = []
    batches: dict[str, list[Reading]] = {}
    skipped = 0
    for r in readings:
        b = bindings.get(r.tag)
        if b is None:
            skipped += 1
        elif b.payload == "batch":
            batches.setdefault(b.topic, []).append(r)
        elif b.payload == "number":
            p = encode_number(r)
            if p is None:
                skipped += 1
            else:
                out.append((b.topic, p))
        else:
            out.append((b.topic, encode_json(r, b.field)))
    out.extend((topic, encode_batch(rs)) for topic, rs in batches.items())
    return out, skipped
