"""Payload decoding and topic routing: pure, no broker."""

from __future__ import annotations

import pytest

from hazmon.collector import Reject, Route, TopicMap, decode, subscription_filters
from hazmon.collector.payload import parse_ts
from hazmon.plant import Plant, Quality, Reading

NOW = 1_795_860_000_000_000  # 2026-11-28T...Z
DAY = 86_400_000_000
JSON = Route("json", "AT-101", "v")
NESTED = Route("json", "AT-101", "data.value")
NUMBER = Route("number", "GT-301", "")
BATCH = Route("batch", fields={"GT-201": "v", "GT-202": "v"})


@pytest.mark.parametrize(
    ("route", "payload", "readings", "rejects"),
    [
        (
            JSON,
            b'{"ts": "2026-11-28T10:00:00.123456Z", "v": 12.5, "q": 0}',
            [Reading("AT-101", 1_795_860_000_123_456, 12.5)],
            [],
        ),
        (JSON, b'{"ts": 1795860000123, "v": 3}', [Reading("AT-101", 1_795_860_000_123_000, 3.0)], []),
        (
            JSON,
            b'{"ts": "2026-11-28T18:00:00.5+08:00", "v": -1.25, "q": 2}',
            [Reading("AT-101", 1_795_860_000_500_000, -1.25, Quality.BAD)],
            [],
        ),
        (
            NESTED,
            b'{"ts": 1795860000000, "data": {"value": 7.5}, "q": 1}',
            [Reading("AT-101", 1_795_860_000_000_000, 7.5, Quality.UNCERTAIN)],
            [],
        ),
        (NUMBER, b" 42.5\n", [Reading("GT-301", NOW, 42.5)], []),
        (JSON, b"\xff\xfe", [], [("not_utf8", "AT-101")]),
        (JSON, b"{not json", [], [("not_json", "AT-101")]),
        (JSON, b"[1, 2]", [], [("bad_shape", "AT-101")]),
        (JSON, b'{"ts": 1795860000000}', [], [("bad_value", "AT-101")]),
        (JSON, b'{"ts": 1795860000000, "v": "12"}', [], [("bad_value", "AT-101")]),
        (JSON, b'{"ts": 1795860000000, "v": true}', [], [("bad_value", "AT-101")]),
        (JSON, b'{"ts": 1795860000000, "v": NaN}', [], [("impossible_value", "AT-101")]),
        (JSON, b'{"ts": 1795860000000, "v": 1e999}', [], [("impossible_value", "AT-101")]),
        (JSON, b'{"v": 1}', [], [("bad_timestamp", "AT-101")]),
        (JSON, b'{"ts": "yesterday", "v": 1}', [], [("bad_timestamp", "AT-101")]),
        (JSON, b'{"ts": "2026-11-28T10:00:00", "v": 1}', [], [("bad_timestamp", "AT-101")]),
        (JSON, b'{"ts": 12, "v": 1}', [], [("impossible_timestamp", "AT-101")]),
        (JSON, b'{"ts": 1795946400001, "v": 1}', [], [("impossible_timestamp", "AT-101")]),
        (JSON, b'{"ts": 1795860000000, "v": 1, "q": 3}', [], [("bad_quality", "AT-101")]),
        (JSON, b'{"ts": 1795860000000, "v": 1, "q": false}', [], [("bad_quality", "AT-101")]),
        (NUMBER, b"12,5", [], [("bad_value", "GT-301")]),
        (NUMBER, b"inf", [], [("impossible_value", "GT-301")]),
        (
            BATCH,
            b'{"readings": [{"tag": "GT-201", "ts": 1795860000000, "v": 1},'
            b' {"tag": "GT-999", "ts": 1795860000000, "v": 2},'
            b' {"tag": "GT-202", "ts": 1795860000000, "v": "x"},'
            b' {"ts": 1795860000000, "v": 3},'
            b' {"tag": "GT-202", "ts": 1795860000001, "v": 4, "q": 1}]}',
            [
                Reading("GT-201", 1_795_860_000_000_000, 1.0),
                Reading("GT-202", 1_795_860_000_001_000, 4.0, Quality.UNCERTAIN),
            ],
            [("unknown_tag", None), ("bad_value", "GT-202"), ("bad_shape", None)],
        ),
        (BATCH, b'{"readings": {}}', [], [("bad_shape", None)]),
        (None, b'{"v": 1}', [], [("unknown_topic", None)]),
    ],
)
def test_decode(
    route: Route | None, payload: bytes, readings: list[Reading], rejects: list[tuple[str, str | None]]
) -> None:
    d = decode(route, "t/x", payload, NOW, DAY)
    assert d.readings == readings
    assert [(r.reason, r.tag) for r in d.rejects] == rejects
    assert all(isinstance(r, Reject) and r.detail for r in d.rejects)


@pytest.mark.parametrize(
    "text",
    ["2026-02-30T10:00:00Z", "2026-11-28T24:00:00Z", "2026-11-28T10:60:00Z", "2026-11-28T10:00:00", "x"],
)
def test_impossible_calendar_times_are_refused_on_both_paths(text: str) -> None:
    assert parse_ts(text) is None


def test_rfc3339_keeps_microseconds_exactly() -> None:
    assert parse_ts("2026-11-28T10:00:00.000001Z") == 1_795_860_000_000_001
    assert parse_ts("1970-01-01T00:00:00Z") == 0


def test_topic_map_of_the_example_plant(example_plant: Plant) -> None:
    tm = TopicMap.from_plant(example_plant.retarget(topic_prefix="p"), "gds")
    assert tm.routes["p/plant/cl2-tankfarm/AT-101"] == Route("json", "AT-101", "v")
    assert len(tm.tags()) == 18
    assert subscription_filters(tm.routes) == [
        "p/plant/cl2-tankfarm/+",
        "p/plant/lpg-spheres/+",
        "p/plant/meoh-tankfarm/+",
    ]
    assert subscription_filters(["a/b", "c"], "g1") == ["$share/g1/a/+", "$share/g1/c"]
