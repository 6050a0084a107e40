"""k-of-n vote groups and chattering."""

from __future__ import annotations

from rules_helpers import feed, rows, runner

from hazmon.plant import Condition, Level, Plant


def test_vote_unconfirmed_then_confirmed_then_cleared(example_plant: Plant) -> None:
    # cl2-ring: AT-101..AT-106, k=2. Chlorine first level 0.339 ppm, on 3 s, off 30 s.
    r = runner(example_plant)
    fs = feed(
        r,
        {
            "AT-101": lambda t: 0.5 if 10 <= t < 60 else 0.0,
            "AT-102": lambda t: 0.5 if 20 <= t < 40 else 0.0,
        },
        range(120),
    )
    assert rows(fs) == [
        (13.0, "AT-101", "gas_first", True),
        (13.0, "cl2-ring", "vote_unconfirmed", True),
        (23.0, "AT-102", "gas_first", True),
        (23.0, "cl2-ring", "vote_confirmed", True),
        (23.0, "cl2-ring", "vote_unconfirmed", False),
        (70.0, "AT-102", "gas_first", False),
        (70.0, "cl2-ring", "vote_confirmed", False),
        (70.0, "cl2-ring", "vote_unconfirmed", True),
        (90.0, "AT-101", "gas_first", False),
        (90.0, "cl2-ring", "vote_unconfirmed", False),
    ]
    confirmed = [f for f in fs if f.condition is Condition.VOTE_CONFIRMED]
    assert confirmed[0].level is Level.SECOND
    assert (confirmed[0].hazard_source, confirmed[0].value, confirmed[0].limit) == ("cl2-tankfarm", 2.0, 2.0)
    assert "2 of 6" in confirmed[0].message_en and "6 台探测器中 2 台" in confirmed[0].message_zh


def test_faulty_detector_does_not_vote(example_plant: Plant) -> None:
    r = runner(example_plant)
    fs = feed(
        r,
        {"AT-101": lambda t: 0.5 if t >= 10 else 0.0, "AT-102": lambda t: (0.5, 2) if t >= 10 else 0.0},
        range(30),
    )
    assert rows(fs) == [
        (10.0, "AT-102", "bad_quality", True),
        (13.0, "AT-101", "gas_first", True),
        (13.0, "cl2-ring", "vote_unconfirmed", True),
    ]


def test_chattering_after_three_activations_in_a_minute(example_plant: Plant) -> None:
    # FT-301: h 250, deadband 5, on 10 s, off 10 s. High 10 s, low 11 s, repeated:
    # activations at 10, 31, 52, 73, 94 -> chattering from 52; it ends when a whole
    # window passes without an activation: 94 + 60 = 154.
    r = runner(example_plant, chattering_count=3, chattering_window_s=60.0)
    fs = feed(r, {"FT-301": lambda t: 260.0 if (t % 21) < 11 and t < 100 else 200.0}, range(250))
    got = [g for g in rows(fs) if g[2] == "chattering"]
    acts = [g[0] for g in rows(fs) if g[2] == "h" and g[3]]
    assert acts == [10.0, 31.0, 52.0, 73.0, 94.0]
    assert got == [(52.0, "FT-301", "chattering", True), (154.0, "FT-301", "chattering", False)]


def test_no_chattering_for_a_well_damped_alarm(example_plant: Plant) -> None:
    r = runner(example_plant)
    fs = feed(r, {"FT-301": lambda t: 260.0 if (t % 60) < 30 else 200.0}, range(600))
    assert [g for g in rows(fs) if g[2] == "chattering"] == []
