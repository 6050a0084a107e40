"""The fast PublishResponse decoder against asyncua's own encoder and decoder.

Every response here is encoded by asyncua. Our input handles it (struct and numpy, falling back
to asyncua for what it does not read itself) and, beside it, a second input handles asyncua's
decoding of the same bytes the way the collector did before the fast path: the readings, the
dead letters and the counters must be the same, so the two cannot silently diverge.
"""

from __future__ import annotations

import asyncio
import struct
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from asyncua import ua
from asyncua.common.utils import Buffer
from asyncua.ua.ua_binary import struct_from_binary, struct_to_binary
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hazmon.collector import DeadLetters, Metrics, OpcUaSettings, ReadingQueue
from hazmon.collector.opcua import (
    Item,
    SubscribeInput,
    _uniform,
    decode_data_changes,
    decode_publish_frame,
)
from hazmon.plant import Reading

N_ITEMS = 40  # handles 1..40 are ours; 41.. are unknown to the input (refused or stale)
NOW = 1_795_860_000_123_456
VT = ua.VariantType
COUNTERS = (
    "hazmon_readings_received_total",
    "hazmon_opcua_overflow_total",
    "hazmon_opcua_no_value_total",
    "hazmon_dead_letters_total",
)

_INT_RANGES = {
    VT.SByte: (-(2**7), 2**7 - 1),
    VT.Byte: (0, 2**8 - 1),
    VT.Int16: (-(2**15), 2**15 - 1),
    VT.UInt16: (0, 2**16 - 1),
    VT.Int32: (-(2**31), 2**31 - 1),
    VT.UInt32: (0, 2**32 - 1),
    VT.Int64: (-(2**63), 2**63 - 1),
    VT.UInt64: (0, 2**64 - 1),
}
_FLOATS = st.floats(allow_nan=True, allow_infinity=True)


@st.composite
def variants(draw: st.DrawFn) -> Any:  # noqa: PLR0911 - one return per kind
    """Every Variant type we take as a number, and the ones asyncua must decode (and we refuse)."""
    kind = draw(
        st.sampled_from(
            [*list(_INT_RANGES), VT.Float, VT.Double, VT.Null, VT.Boolean, VT.String, "array", "date"]
        )
    )
    if kind in _INT_RANGES:
        lo, hi = _INT_RANGES[kind]
        return ua.Variant(draw(st.integers(lo, hi) | st.sampled_from([lo, hi, 0])), kind)
    if kind == VT.Float:
        return ua.Variant(draw(st.floats(width=32, allow_nan=True, allow_infinity=True)), VT.Float)
    if kind == VT.Double:
        return ua.Variant(draw(_FLOATS), VT.Double)
    if kind == VT.Null:
        return ua.Variant(None, VT.Null)
    if kind == VT.Boolean:
        return ua.Variant(draw(st.booleans()), VT.Boolean)
    if kind == VT.String:
        return ua.Variant(draw(st.text(max_size=5)), VT.String)
    if kind == "array":
        return ua.Variant(draw(st.lists(st.floats(allow_nan=False), max_size=3)), VT.Double)
    return ua.Variant(datetime(2026, 1, 1, tzinfo=UTC), VT.DateTime)


STATUSES = st.sampled_from(
    [
        None,
        0x00000000,  # Good
        0x00000480,  # Good + overflow bits
        0x00960000,  # GoodLocalOverride
        0x40000000,  # Uncertain
        0x408F0480,  # Uncertain + overflow
        0x80000000,  # Bad
        0x80320000,  # BadWaitingForInitialData
        0x80340000,  # BadNodeIdUnknown
        0xC0000000,
    ]
)
# OPC UA DateTime spans 1601..9999; asyncua clamps at the end, we leave that to it
TIMES = (
    st.none()
    | st.sampled_from(
        [
            datetime(1601, 1, 1, tzinfo=UTC),
            datetime(1970, 1, 1, tzinfo=UTC),
            datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC),
        ]
    )
    | st.datetimes(min_value=datetime(1601, 1, 2), max_value=datetime(9999, 12, 30), timezones=st.just(UTC))
)
PICOS = st.none() | st.integers(0, 9999)


@st.composite
def data_values(draw: st.DrawFn) -> Any:
    status = draw(STATUSES)
    return ua.DataValue(
        draw(st.none() | variants()),
        ua.StatusCode(status) if status is not None else None,
        SourceTimestamp=draw(TIMES),
        ServerTimestamp=draw(TIMES),
        SourcePicoseconds=draw(PICOS),
        ServerPicoseconds=draw(PICOS),
    )


HANDLES = st.integers(1, N_ITEMS + 5)  # a few unknown handles too


def publish_bytes(items: list[tuple[int, Any]], extra: tuple[Any, ...] = ()) -> bytes:
    """A PublishResponse holding one DataChangeNotification of ``items``, encoded by asyncua."""
    notif = ua.DataChangeNotification(
        MonitoredItems=[ua.MonitoredItemNotification(ClientHandle=h, Value=dv) for h, dv in items]
    )
    resp = ua.PublishResponse()
    resp.Parameters.SubscriptionId = 7
    resp.Parameters.AvailableSequenceNumbers = [40, 41, 42]
    resp.Parameters.NotificationMessage.SequenceNumber = 42
    resp.Parameters.NotificationMessage.PublishTime = datetime.now(UTC)
    resp.Parameters.NotificationMessage.NotificationData = [notif, *extra] if items or extra else []
    return bytes(struct_to_binary(resp))


def _input() -> tuple[SubscribeInput, ReadingQueue, Metrics, DeadLetters]:
    m = Metrics()
    q = ReadingQueue(10_000_000, asyncio.get_running_loop())
    dead = DeadLetters(m)
    items = [Item(f"T{h}", f"ns=2;s=T{h}", 1.0) for h in range(1, N_ITEMS + 1)]
    inp = SubscribeInput("dcs", items, queue=q, dead=dead, metrics=m, settings=OpcUaSettings())
    inp.set_handles({h: it for h, it in enumerate(items, start=1) if h != 13})  # 13 was refused
    return inp, q, m, dead


def _key(r: Reading) -> tuple[str, int, str, int]:
    return (r.tag, r.ts_us, repr(r.value), int(r.quality))  # repr: NaN equals NaN


async def _outcome(inp: SubscribeInput, q: ReadingQueue, m: Metrics, dead: DeadLetters) -> Any:
    got = await q.get(10_000_000, 0.001) if q.depth else []
    letters = [(d.reason, d.detail, d.tag, d.payload, d.received_us) for d in dead.take(10**6)]
    return [_key(r) for r in got], {c: m.total(c) for c in COUNTERS}, letters


async def both(raw: bytes) -> tuple[Any, Any, SubscribeInput]:
    """(our outcome, asyncua-decoded outcome, our input) of one response."""
    fast, fq, fm, fd = _input()
    assert await fast.on_publish(raw, NOW) == (7, 42, True)
    ref, rq, rm, rd = _input()
    res = struct_from_binary(ua.PublishResponse, Buffer(raw)).Parameters
    rows, lost = ref._notifications(res.NotificationMessage.NotificationData, NOW)
    assert lost == ""
    if rows:
        rm.inc("hazmon_readings_received_total", len(rows), {"source": "dcs"})
        await rq.put(rows)
    return await _outcome(fast, fq, fm, fd), await _outcome(ref, rq, rm, rd), fast


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(HANDLES, data_values()), min_size=1, max_size=12))
def test_any_mix_of_data_values_gives_what_asyncuas_decoder_gives(items: list[tuple[int, Any]]) -> None:
    async def go() -> None:
        ours, theirs, _ = await both(publish_bytes(items))
        assert ours == theirs

    asyncio.run(go())


@st.composite
def uniform(draw: st.DrawFn) -> list[tuple[int, Any]]:
    """Many items of one numeric shape (the shape decides the numpy path), values free."""
    kind = draw(st.sampled_from([*list(_INT_RANGES), VT.Float, VT.Double]))
    status = draw(STATUSES.filter(lambda s: s is not None) | st.none())
    has_src, has_srv = draw(st.booleans()), draw(st.booleans())
    src_p, srv_p = draw(st.booleans()), draw(st.booleans())
    if src_p and has_srv:  # asyncua and the spec order these two differently: not this path
        src_p = False
    n = draw(st.integers(1, 60))
    out = []
    for _ in range(n):
        if kind in _INT_RANGES:
            v = ua.Variant(draw(st.integers(*_INT_RANGES[kind])), kind)
        elif kind == VT.Float:
            v = ua.Variant(draw(st.floats(width=32)), VT.Float)
        else:
            v = ua.Variant(draw(_FLOATS), VT.Double)
        dv = ua.DataValue(
            v,
            ua.StatusCode(draw(STATUSES.filter(lambda s: s is not None))) if status is not None else None,
            SourceTimestamp=draw(st.datetimes(timezones=st.just(UTC))) if has_src else None,
            ServerTimestamp=draw(st.datetimes(timezones=st.just(UTC))) if has_srv else None,
            SourcePicoseconds=draw(st.integers(0, 9999)) if src_p else None,
            ServerPicoseconds=draw(st.integers(0, 9999)) if srv_p else None,
        )
        out.append((draw(HANDLES), dv))
    return out


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(uniform())
def test_uniform_notifications_take_the_numpy_path_and_agree(items: list[tuple[int, Any]]) -> None:
    raw = publish_bytes(items)
    frame = decode_publish_frame(raw)
    assert frame is not None and len(frame.data_changes) == 1
    start, end = frame.data_changes[0]
    assert _uniform(raw, start + 4, len(items), end) is not None  # not silently the slow loop

    async def go() -> None:
        ours, theirs, _ = await both(raw)
        assert ours == theirs

    asyncio.run(go())


def test_decoded_columns_equal_asyncuas_values_field_by_field() -> None:
    """The decoder itself, not only the readings: every field of every row."""
    ts = datetime(2026, 11, 28, 12, 0, 0, 123456, tzinfo=UTC)
    dvs = [
        ua.DataValue(ua.Variant(1.5, VT.Double), SourceTimestamp=ts, ServerTimestamp=ts + timedelta(1)),
        ua.DataValue(ua.Variant(-7, VT.Int16), ua.StatusCode(0x40000000), ServerTimestamp=ts),
        ua.DataValue(ua.Variant(2**64 - 1, VT.UInt64)),
        ua.DataValue(ua.Variant(None, VT.Null), ua.StatusCode(0x80340000), SourceTimestamp=ts),
        ua.DataValue(ua.Variant("x", VT.String), SourceTimestamp=ts),
        ua.DataValue(ua.Variant(0.1, VT.Float), SourceTimestamp=ts, SourcePicoseconds=5, ServerTimestamp=ts),
        ua.DataValue(None, ua.StatusCode(0x80320000)),
    ]
    raw = publish_bytes([(i + 1, dv) for i, dv in enumerate(dvs)])
    frame = decode_publish_frame(raw)
    assert frame is not None and (frame.subscription_id, frame.sequence_number, frame.notifications) == (
        7,
        42,
        1,
    )
    dc = decode_data_changes(raw, *frame.data_changes[0])
    assert dc.handle.tolist() == list(range(1, len(dvs) + 1))
    assert sorted(dc.odd) == [4, 5]  # the string, and source picoseconds beside a server timestamp
    theirs = struct_from_binary(ua.PublishResponse, Buffer(raw)).Parameters.NotificationMessage
    for i, m in enumerate(theirs.NotificationData[0].MonitoredItems):
        dv = m.Value
        if i in dc.odd:
            assert dc.odd[i] == dv
            continue
        v = dv.Value.Value if dv.Value is not None else None
        assert bool(dc.has_value[i]) == (v is not None)
        if v is not None:
            assert dc.value[i] == float(v)
        assert int(dc.status[i]) == (dv.StatusCode.value if dv.StatusCode is not None else 0)
        t = dv.SourceTimestamp or dv.ServerTimestamp
        assert bool(dc.has_ts[i]) == (t is not None)
        if t is not None:
            delta = t - datetime(1970, 1, 1, tzinfo=UTC)
            assert int(dc.ts_us[i]) == delta // timedelta(microseconds=1)


def test_timestamps_asyncua_clamps_fall_back_to_it() -> None:
    """Int64 DateTimes before 1601 or after 9999 (which asyncua clamps) are asyncua's to read."""
    ts = datetime(2026, 1, 1, tzinfo=UTC)
    items = [(h, ua.DataValue(ua.Variant(float(h), VT.Double), SourceTimestamp=ts)) for h in (1, 2, 3)]
    raw = bytearray(publish_bytes(items))
    frame = decode_publish_frame(bytes(raw))
    assert frame is not None
    packed = struct.pack("<q", ua.datetime_to_win_epoch(ts))
    first = raw.find(packed)
    third = raw.find(packed, raw.find(packed, first + 8) + 8)
    assert 0 < first < third
    struct.pack_into("<q", raw, first, -5)
    struct.pack_into("<q", raw, third, 2**63 - 1)

    async def go() -> None:
        ours, theirs, _ = await both(bytes(raw))
        assert ours == theirs
        assert [t for _, t, _, _ in ours[0]][1] == 1_767_225_600_000_000  # the untouched one

    asyncio.run(go())
    dc = decode_data_changes(bytes(raw), *frame.data_changes[0])
    assert sorted(dc.odd) == [0, 2]


async def test_a_status_change_goes_through_asyncua_and_ends_the_subscription() -> None:
    items = [(1, ua.DataValue(ua.Variant(3.0, VT.Double), SourceTimestamp=datetime(2026, 1, 1, tzinfo=UTC)))]
    raw = publish_bytes(items, (ua.StatusChangeNotification(Status=ua.StatusCode(0x800D0000)),))
    assert decode_publish_frame(raw) is None
    inp, q, _m, _d = _input()
    with pytest.raises(ConnectionError, match="subscription lost"):
        await inp.on_publish(raw, NOW)
    assert inp.slow_publishes == 1
    assert [r.value for r in await q.get(10, 0.1)] == [3.0]  # what came with it is kept


async def test_keep_alive_is_not_acknowledged_and_puts_nothing() -> None:
    inp, q, m, _d = _input()
    assert await inp.on_publish(publish_bytes([]), NOW) == (7, 42, False)
    assert q.depth == 0 and m.total("hazmon_readings_received_total") == 0 and inp.slow_publishes == 0


async def test_bytes_that_do_not_parse_are_skipped_not_fatal() -> None:
    raw = publish_bytes([(1, ua.DataValue(ua.Variant(1.0, VT.Double)))])
    inp, q, _m, _d = _input()
    assert await inp.on_publish(raw[: len(raw) - 20], NOW) == (0, 0, False)
    assert q.depth == 0


def test_a_10000_item_notification_is_columns_not_objects() -> None:
    ts = datetime(2026, 11, 28, tzinfo=UTC)
    items = [
        (i % N_ITEMS + 1, ua.DataValue(ua.Variant(i / 7, VT.Double), SourceTimestamp=ts, ServerTimestamp=ts))
        for i in range(10_000)
    ]
    raw = publish_bytes(items)
    frame = decode_publish_frame(raw)
    assert frame is not None
    dc = decode_data_changes(raw, *frame.data_changes[0])
    assert not dc.odd and len(dc.handle) == 10_000
    assert np.array_equal(dc.value, np.arange(10_000) / 7)

    async def go() -> None:
        ours, theirs, inp = await both(raw)
        assert ours == theirs and len(ours[0]) == 10_000 - 250  # handle 13 was refused
        assert inp.slow_publishes == 0

    asyncio.run(go())
