"""The columnar fast path for batch payloads decodes exactly like the per-entry path.

`decode` takes the fast path (numpy columns, no per-reading object) for batch
topics whose sensors all carry their value at ``v``; anything it does not accept
goes entry by entry. These tests compare the two paths on generated batches,
and check that well-formed batches do take the fast path.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from hazmon.collector import Route, decode
from hazmon.plant.reading import ReadingBatch

NOW = 1_795_860_000_000_000  # 2026-11-28T...Z
DAY = 86_400_000_000
TAGS = [f"GT-{i:03d}" for i in range(20)]
FAST = Route("batch", fields=dict.fromkeys(TAGS, "v"))
SLOW = dataclasses.replace(FAST)
object.__setattr__(SLOW, "all_v", False)  # the same route, forced entry by entry


def _iso(us: int, digits: int) -> str:
    dt = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    base = dt.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{dt.microsecond:06d}"[:digits]
    return f"{base}.{frac}Z" if digits else f"{base}Z"


iso_ts = st.builds(_iso, st.integers(NOW - 400 * DAY, NOW + DAY // 2), st.integers(0, 6))
ms_ts = st.integers((NOW - 400 * DAY) // 1000, (NOW + DAY // 2) // 1000)


def _entry(ts: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "tag": st.sampled_from(TAGS),
            "ts": ts,
            "v": st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-(10**6), 10**6)),
        },
        optional={"q": st.integers(0, 2), "unit": st.just("ppm")},
    )


good_entry = st.one_of(_entry(iso_ts), _entry(ms_ts))
# a sender uses one timestamp form per batch: those batches take the fast path
good_batch = st.one_of(
    st.lists(_entry(iso_ts), min_size=1, max_size=60), st.lists(_entry(ms_ts), min_size=1, max_size=60)
)
odd_value = st.sampled_from(
    [
        {"tag": "GT-001", "ts": 1795860000000, "v": "1"},
        {"tag": "GT-001", "ts": 1795860000000, "v": True},
        {"tag": "GT-001", "ts": 1795860000000, "v": None},
        {"tag": "GT-001", "ts": 1795860000000},
        {"tag": "NOPE", "ts": 1795860000000, "v": 1},
        {"tag": 7, "ts": 1795860000000, "v": 1},
        {"ts": 1795860000000, "v": 1},
        {"tag": "GT-001", "ts": 1795860000000, "v": 1, "q": 3},
        {"tag": "GT-001", "ts": 1795860000000, "v": 1, "q": False},
        {"tag": "GT-001", "ts": 1795860000000.5, "v": 1},
        {"tag": "GT-001", "ts": 12, "v": 1},
        {"tag": "GT-001", "ts": 10**30, "v": 1},
        {"tag": "GT-001", "ts": 9_300_000_000_000_000, "v": 1},
        {"tag": "GT-001", "ts": "2026-11-28T10:00:00", "v": 1},
        {"tag": "GT-001", "ts": "2026-11-28T18:00:00+08:00", "v": 1},
        {"tag": "GT-001", "ts": "2026-11-28T10:00:00.1234567Z", "v": 1},
        {"tag": "GT-001", "ts": "2026-02-30T10:00:00Z", "v": 1},
        {"tag": "GT-001", "ts": "2026-11-28T23:59:60Z", "v": 1},
        {"tag": "GT-001", "ts": "2026-11-28T10:00Z", "v": 1},
        {"tag": "GT-001", "ts": "2099-11-28T10:00:00Z", "v": 1},
        {"tag": "GT-001", "ts": 1795860000000, "v": 1e308 * 10},
        {"tag": "GT-001", "ts": 1795860000000, "v": 123456789012345678901234567890},
        {"tag": "GT-001", "ts": 1795860000000, "v": 1, "q": 123456789012345678901234567890},
        {"tag": "GT-001", "ts": 1795860000000123456789012345, "v": 1},
        {"tag": "GT-001", "ts": 1795860000000, "v": -(2**63)},
        "not an object",
        [1, 2],
    ]
)


def _both(items: list[Any]) -> tuple[Any, Any]:
    body = json.dumps({"readings": items}).encode()
    return decode(FAST, "t/b", body, NOW, DAY), decode(SLOW, "t/b", body, NOW, DAY)


@settings(max_examples=300, deadline=None)
@given(good_batch)
def test_well_formed_batches_take_the_fast_path_and_match(items: list[Any]) -> None:
    fast, slow = _both(items)
    assert isinstance(fast.columns, ReadingBatch), "a well-formed batch must take the columnar path"
    assert slow.columns is None
    assert fast.readings == slow.readings
    assert fast.rejects == slow.rejects == []
    assert fast.columns.ts_us.dtype.name == "int64"
    assert fast.columns.quality.dtype.name == "int8"


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(good_entry, odd_value), min_size=1, max_size=30))
def test_any_batch_decodes_the_same_either_way(items: list[Any]) -> None:
    fast, slow = _both(items)
    assert fast.readings == slow.readings
    assert fast.rejects == slow.rejects
    if fast.rejects:
        assert fast.columns is None, "a batch with a refusal is reported entry by entry"


def test_one_odd_entry_declines_the_fast_path_and_names_the_entry() -> None:
    good = {"tag": "GT-001", "ts": "2026-11-28T10:00:00.5Z", "v": 1.5}
    fast, _ = _both([good, {"tag": "GT-002", "ts": "2026-11-28T18:00:00+08:00", "v": "x"}, good])
    assert fast.columns is None
    assert [r.value for r in fast.readings] == [1.5, 1.5]
    assert [(r.reason, r.tag) for r in fast.rejects] == [("bad_value", "GT-002")]
    assert fast.rejects[0].detail.startswith("readings[1]:")


def test_routes_with_other_value_paths_stay_entry_by_entry() -> None:
    nested = Route("batch", fields={"GT-001": "data.v", "GT-002": "v"})
    body = json.dumps({"readings": [{"tag": "GT-002", "ts": 1795860000000, "v": 2}]}).encode()
    d = decode(nested, "t/b", body, NOW, DAY)
    assert not nested.all_v
    assert d.columns is None
    assert [r.value for r in d.readings] == [2.0]
