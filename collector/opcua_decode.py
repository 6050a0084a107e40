"""The fast path: PublishResponses read straight from their bytes into columns.

asyncua decodes each PublishResponse generically: a dataclass, a Variant and two datetimes per
value, the largest cost of the daemon under 10,000 items at 1 Hz after the alarms. The values
servers send for monitored items are a few fixed-size shapes, so the envelope and the
DataChangeNotifications are read with struct (and numpy, when every item of a notification has
the same shape). Anything else goes to asyncua's decoder: the whole response (status changes,
events, diagnostics, unusual node ids) or the one DataValue (booleans, strings, arrays, dates out
of range, extension objects). tests/collector/test_opcua_decode.py checks the result against
asyncua's own encoder and decoder.
"""

from __future__ import annotations

import math
import struct
from typing import Any, NamedTuple

import numpy as np
from asyncua import ua as _ua
from numpy.typing import NDArray

from hazmon.plant.asyncua_internals import MAX_OPC_FILETIME, Buffer, decode

__all__ = ["DataChanges", "PublishFrame", "decode_data_changes", "decode_publish_frame"]

ua: Any = _ua  # asyncua's generated types do not type-check under --strict
_PUBLISH_RESPONSE = 829  # PublishResponse_Encoding_DefaultBinary
_DATA_CHANGE = 811  # DataChangeNotification_Encoding_DefaultBinary
_EPOCH_1601_US = 11_644_473_600_000_000  # µs from 1601-01-01 (OPC UA DateTime zero) to 1970-01-01
_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
# Variant built-in type -> (struct, numpy dtype): the numbers we take as readings. Boolean (1) is
# not one of them (asyncua decodes it; `_reading` dead-letters it), nor is anything with the
# array (0x80) or dimensions (0x40) bit.
_NUMERIC: dict[int, tuple[struct.Struct, str]] = {
    2: (struct.Struct("<b"), "i1"),
    3: (struct.Struct("<B"), "u1"),
    4: (struct.Struct("<h"), "<i2"),
    5: (struct.Struct("<H"), "<u2"),
    6: (struct.Struct("<i"), "<i4"),
    7: (struct.Struct("<I"), "<u4"),
    8: (struct.Struct("<q"), "<i8"),
    9: (struct.Struct("<Q"), "<u8"),
    10: (struct.Struct("<f"), "<f4"),
    11: (struct.Struct("<d"), "<f8"),
}
# DataValue encoding mask: Value 0x01, StatusCode 0x02, SourceTimestamp 0x04, ServerTimestamp 0x08,
# SourcePicoseconds 0x10, ServerPicoseconds 0x20. The spec puts SourcePicoseconds before
# ServerTimestamp, asyncua (2.1) after it: a DataValue with both is left to asyncua's decoder, so we
# read what asyncua reads whichever server sent it.
_DV_KNOWN = 0x3F
_DV_AMBIGUOUS = 0x18


class PublishFrame(NamedTuple):
    """The envelope of a PublishResponse holding only DataChangeNotifications.

    Attributes:
        subscription_id: the subscription it is for.
        sequence_number: what the next Publish acknowledges (when ``notifications`` > 0).
        notifications: how many NotificationData entries it holds (0: a keep-alive).
        data_changes: (start, end) byte offsets of each DataChangeNotification body.
    """

    subscription_id: int
    sequence_number: int
    notifications: int
    data_changes: list[tuple[int, int]]


class DataChanges(NamedTuple):
    """The MonitoredItems of one DataChangeNotification as columns, in arrival order.

    Attributes:
        handle: the ClientHandle of each item.
        value: the value as float64 (NaN where ``has_value`` is False).
        has_value: False when the DataValue holds no value or a null Variant.
        status: the StatusCode (0 when absent: Good).
        ts_us: the source timestamp, else the server timestamp, µs since the Unix epoch.
        has_ts: False when the DataValue holds neither timestamp.
        odd: row -> ``ua.DataValue`` for the rows asyncua decoded (values that are not numbers).
    """

    handle: NDArray[np.uint32]
    value: NDArray[np.float64]
    has_value: NDArray[np.bool_]
    status: NDArray[np.uint32]
    ts_us: NDArray[np.int64]
    has_ts: NDArray[np.bool_]
    odd: dict[int, Any]


def _ns0_id(raw: bytes, p: int) -> tuple[int, int]:
    """(numeric id, end) of the NodeId at ``p``.

    The id is -1 for another namespace; a string, guid or opaque id raises ValueError (the
    callers hand those to asyncua).
    """
    enc = raw[p]
    if enc == 0:
        return raw[p + 1], p + 2
    if enc == 1:
        return (_U16.unpack_from(raw, p + 2)[0] if raw[p + 1] == 0 else -1), p + 4
    if enc == 2:
        ns = _U16.unpack_from(raw, p + 1)[0]
        return (_U32.unpack_from(raw, p + 3)[0] if ns == 0 else -1), p + 7
    raise ValueError(f"node id encoding {enc:#x}")


def decode_publish_frame(raw: bytes) -> PublishFrame | None:  # noqa: PLR0911 - one way in, many ways out to asyncua
    """The envelope of the PublishResponse in ``raw``, or None when asyncua must decode it.

    None for anything but DataChangeNotifications in the binary encoding (status changes,
    events), diagnostics, a string table, an additional header, or bytes that do not parse.
    """
    try:
        tid, p = _ns0_id(raw, 0)
        if tid != _PUBLISH_RESPONSE:
            return None
        p += 16  # ResponseHeader: Timestamp, RequestHandle, ServiceResult
        if raw[p]:  # ServiceDiagnostics
            return None
        if _I32.unpack_from(raw, p + 1)[0] > 0:  # StringTable
            return None
        _, p = _ns0_id(raw, p + 5)  # AdditionalHeader: an ExtensionObject, empty here
        if raw[p]:
            return None
        p += 1
        sub = _U32.unpack_from(raw, p)[0]
        avail = _I32.unpack_from(raw, p + 4)[0]
        p += 8 + 4 * max(avail, 0) + 1  # AvailableSequenceNumbers, MoreNotifications
        seq = _U32.unpack_from(raw, p)[0]
        count = _I32.unpack_from(raw, p + 12)[0]  # after PublishTime
        p += 16
        changes: list[tuple[int, int]] = []
        for _ in range(max(count, 0)):
            tid, p = _ns0_id(raw, p)
            if tid != _DATA_CHANGE or raw[p] != 1:
                return None
            length = _I32.unpack_from(raw, p + 1)[0]
            start = p + 5
            p = start + length
            if length < 4 or p > len(raw):
                return None
            changes.append((start, p))
        return PublishFrame(sub, seq, max(count, 0), changes)
    except (IndexError, ValueError, struct.error):
        return None


def _filetime_us(t: int) -> int | None:
    """µs since the Unix epoch of an OPC UA DateTime, as ``to_us`` of asyncua's datetime gives it.

    None outside the range asyncua converts without clamping.
    """
    return t // 10 - _EPOCH_1601_US if 0 <= t < MAX_OPC_FILETIME else None


def _scalar_dv(raw: bytes, p: int) -> tuple[float | None, int, int | None, int] | None:
    """(value, status, ts_us, end) of the DataValue at ``p``, or None when asyncua must decode it."""
    mask = raw[p]
    p += 1
    if mask & ~_DV_KNOWN or mask & _DV_AMBIGUOUS == _DV_AMBIGUOUS:
        return None
    v: float | None = None
    if mask & 0x01:
        vt = raw[p]
        p += 1
        if vt:
            num = _NUMERIC.get(vt)
            if num is None:
                return None
            v = float(num[0].unpack_from(raw, p)[0])
            p += num[0].size
    status = 0
    if mask & 0x02:
        status = _U32.unpack_from(raw, p)[0]
        p += 4
    ts: int | None = None
    if mask & 0x04:
        ts = _filetime_us(_I64.unpack_from(raw, p)[0])
        if ts is None:
            return None
        p += 8
    if mask & 0x10:
        p += 2
    if mask & 0x08:
        srv = _filetime_us(_I64.unpack_from(raw, p)[0])
        if srv is None:
            return None
        if ts is None:
            ts = srv
        p += 8
    if mask & 0x20:
        p += 2
    return v, status, ts, p


def _uniform(raw: bytes, p: int, n: int, end: int) -> DataChanges | None:
    """All ``n`` items at ``p`` as one numpy view, when every one has the first one's shape.

    Each item's length follows from its mask and variant type, so checking those two bytes at
    every stride proves every item is where the view reads it.
    """
    mask, vt = raw[p + 4], raw[p + 5]
    num = _NUMERIC.get(vt)
    if not mask & 0x01 or mask & ~_DV_KNOWN or mask & _DV_AMBIGUOUS == _DV_AMBIGUOUS or num is None:
        return None
    fields: list[tuple[str, str]] = [("h", "<u4"), ("m", "u1"), ("t", "u1"), ("v", num[1])]
    for bit, name, fmt in (
        (0x02, "s", "<u4"),
        (0x04, "src", "<i8"),
        (0x10, "srcp", "<u2"),
        (0x08, "srv", "<i8"),
        (0x20, "srvp", "<u2"),
    ):
        if mask & bit:
            fields.append((name, fmt))
    dt = np.dtype(fields)
    if p + n * dt.itemsize > end:
        return None
    a = np.frombuffer(raw, dt, n, p)
    if not (np.all(a["m"] == mask) and np.all(a["t"] == vt)):
        return None
    ts_field = "src" if mask & 0x04 else ("srv" if mask & 0x08 else "")
    if ts_field:
        t = a[ts_field].astype(np.int64)
        if np.any((t < 0) | (t >= MAX_OPC_FILETIME)):
            return None
        ts = t // 10 - _EPOCH_1601_US
    else:
        ts = np.zeros(n, np.int64)
    value = a["v"].astype(np.float64)
    return DataChanges(
        a["h"].astype(np.uint32),
        value,
        np.ones(n, np.bool_),
        a["s"].astype(np.uint32) if mask & 0x02 else np.zeros(n, np.uint32),
        ts,
        np.full(n, bool(ts_field)),
        {},
    )


def decode_data_changes(raw: bytes, start: int, end: int) -> DataChanges:
    """The MonitoredItems of the DataChangeNotification body ``raw[start:end]``.

    Raises ValueError, IndexError or struct.error on bytes that do not parse.
    """
    n = _I32.unpack_from(raw, start)[0]
    p = start + 4
    if n > 0:
        fast = _uniform(raw, p, n, end)
        if fast is not None:
            return fast
    n = max(n, 0)
    handle = np.zeros(n, np.uint32)
    value = np.full(n, math.nan)
    has_value = np.zeros(n, np.bool_)
    status = np.zeros(n, np.uint32)
    ts_us = np.zeros(n, np.int64)
    has_ts = np.zeros(n, np.bool_)
    odd: dict[int, Any] = {}
    for i in range(n):
        handle[i] = _U32.unpack_from(raw, p)[0]
        r = _scalar_dv(raw, p + 4)
        if r is None:
            buf = Buffer(raw, p + 4)
            odd[i] = decode(ua.DataValue, buf)
            p = buf.cur_pos
            continue
        v, st, ts, p = r
        if v is not None:
            value[i], has_value[i] = v, True
        status[i] = st
        if ts is not None:
            ts_us[i], has_ts[i] = ts, True
    if p > end:
        raise ValueError(f"DataChangeNotification items overrun its body ({p} > {end})")
    return DataChanges(handle, value, has_value, status, ts_us, has_ts, odd)
