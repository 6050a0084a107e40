"""Staleness with simulated time."""

from __future__ import annotations

from hazmon.collector import StaleTracker
from hazmon.plant import StaleChange

S = 1_000_000


def test_stale_after_factor_times_period_and_fresh_on_next_reading() -> None:
    t = StaleTracker({"A": 1.0, "B": 5.0}, 3.0, start_us=0)
    assert t.check(2 * S) == []
    t.seen(["A"], 2 * S)
    assert t.check(3 * S) == []
    assert t.check(5 * S) == [StaleChange("A", True, 5 * S, "no reading for 3 s (3 x 1 s)")]
    assert t.check(6 * S) == []  # reported once
    assert t.check(15 * S) == [StaleChange("B", True, 15 * S, "no reading for 15 s (3 x 5 s)")]
    assert t.seen(["A", "A"], 16 * S) == [StaleChange("A", False, 16 * S, "readings resumed")]
    assert t.stale_count == 1


def test_source_down_marks_all_its_sensors_at_once_and_they_recover_by_reading() -> None:
    t = StaleTracker({"A": 1.0, "B": 1.0, "C": 1.0}, 3.0, start_us=0)
    t.seen(["A", "B", "C"], 1 * S)
    down = t.source_down("dcs", ["A", "B"], 2 * S, "endpoint dcs disconnected")
    assert down == [
        StaleChange("A", True, 2 * S, "endpoint dcs disconnected"),
        StaleChange("B", True, 2 * S, "endpoint dcs disconnected"),
    ]
    # a late reading still in the queue while the source is down does not clear it
    assert t.seen(["A"], 2 * S + 1) == []
    # back up: its sensors' staleness was the link's; each is judged again from the reconnect
    assert t.source_up("dcs", 3 * S) == [
        StaleChange("A", False, 3 * S, "link restored"),
        StaleChange("B", False, 3 * S, "link restored"),
    ]
    assert not t.is_stale("B")
    assert t.seen(["A"], 3 * S + 1) == []
    assert t.check(5 * S) == [StaleChange("C", True, 5 * S, "no reading for 3 s (3 x 1 s)")]
    # B, still silent a full limit after the reconnect, is stale on its own
    assert t.check(6 * S) == [StaleChange("B", True, 6 * S, "no reading for 3 s (3 x 1 s)")]
    assert t.check(10 * S) == [StaleChange("A", True, 10 * S, "no reading for 3 s (3 x 1 s)")]


def test_a_sensor_never_heard_from_is_timed_from_its_source_coming_up() -> None:
    # 10,000 OPC UA items take a while to subscribe: the link coming up starts their clocks
    t = StaleTracker({"A": 1.0, "B": 1.0, "M": 1.0}, 3.0, start_us=0)
    t.source_up("dcs", 5 * S, ["A", "B"])
    assert t.check(6 * S) == [StaleChange("M", True, 6 * S, "no reading for 3 s (3 x 1 s)")]
    t.seen(["A"], 6 * S)
    assert t.check(7 * S) == []
    assert t.check(8 * S) == [StaleChange("B", True, 8 * S, "no reading for 3 s (3 x 1 s)")]
    # a reconnect later does not restart the clock of a sensor already heard from or stale
    t.source_up("dcs", 20 * S, ["A", "B"])
    assert t.is_stale("B")
    assert t.check(20 * S) == [StaleChange("A", True, 20 * S, "no reading for 3 s (3 x 1 s)")]


def test_last_seen_is_the_last_reading_not_a_reconnect() -> None:
    """What the bureau's heartbeat reports per endpoint: when its last reading arrived."""
    st = StaleTracker({"A": 1.0, "B": 1.0}, 3.0, 0)
    assert st.last_seen_us(["A", "B"]) is None  # nothing heard since watching began
    st.seen(["A"], 5_000_000)
    st.seen(["B"], 7_000_000)
    assert st.last_seen_us(["A"]) == 5_000_000 and st.last_seen_us(["A", "B"]) == 7_000_000
    st.source_down("src", ["A", "B"], 8_000_000, "link lost")
    st.source_up("src", 20_000_000, ["A", "B"])  # the stale clock restarts; the last reading does not move
    assert st.last_seen_us(["A", "B"]) == 7_000_000
