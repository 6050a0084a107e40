"""newest_reading_us: where an OPC UA endpoint's backfill starts after a daemon restart."""

from __future__ import annotations

from hazmon.plant import Plant, Reading, from_us
from hazmon.store import ReadingColumns, connect, newest_reading_us, sensor_ids, write_readings

T0 = 1_764_320_400_123_456  # 2025-11-28T09:00:00.123456Z


def test_newest_reading_among_the_sensors_since_the_bound(db_dsn: str, example_plant: Plant) -> None:
    with connect(db_dsn) as c:
        ids = sensor_ids(c, example_plant.enterprise.id)
        a, b, other = ids["LT-101"], ids["TT-101"], ids["PT-101"]
        assert newest_reading_us(c, [a, b], from_us(T0)) is None  # nothing stored yet
        readings = [
            Reading("LT-101", T0 + 1_000_000, 1.0),
            Reading("LT-101", T0 + 5_000_000, 1.1),
            Reading("TT-101", T0 + 3_000_000, 20.0),
            Reading("PT-101", T0 + 9_000_000, 0.5),  # newer, but not one of ours
        ]
        write_readings(c, ReadingColumns.from_readings(readings, ids))
        c.commit()
        assert newest_reading_us(c, [a, b], from_us(T0)) == T0 + 5_000_000
        assert newest_reading_us(c, [b], from_us(T0)) == T0 + 3_000_000
        assert newest_reading_us(c, [a, b, other], from_us(T0)) == T0 + 9_000_000
        # older than the bound: not looked at (the backfill would not reach back that far)
        assert newest_reading_us(c, [a, b], from_us(T0 + 6_000_000)) is None
        assert newest_reading_us(c, [], from_us(T0)) is None
