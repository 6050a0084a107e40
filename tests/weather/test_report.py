"""What the bureau is told of the warnings in force (hazmon.weather.report): pure, with now passed in."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hazmon.plant import Plant
from hazmon.weather.report import dedupe_key, ended, in_force, why_ended
from hazmon.weather.repository import Duty
from hazmon.weather.state import active_at
from tests.weather.test_cap import alert

CST = timezone(timedelta(hours=8))
YELLOW, ORANGE, CANCEL = "lightning_yellow.xml", "lightning_orange_update.xml", "lightning_cancel.xml"


def _duty(i: int, hs: str, confirmed: bool = False) -> Duty:
    at = datetime(2026, 8, 4, 10, 20, tzinfo=CST)
    return Duty(
        i,
        hs,
        "lightning",
        "24h_duty",
        "x",
        at,
        "孙涛" if confirmed else None,
        at if confirmed else None,
        None,
    )


def test_one_message_per_warning_with_its_sources_and_open_duties(example_plant: Plant) -> None:
    alerts = [alert(YELLOW)]
    now = datetime(2026, 8, 4, 11, tzinfo=CST)
    active = active_at(example_plant, alerts, now)
    sources = sorted({hs for hs, _ in active})
    duties = [_duty(1, sources[0], confirmed=True), _duty(2, sources[-1])]
    (m,) = in_force(active, alerts, duties, now)
    assert (m.identifier, m.warning_kind, m.colour, m.state) == (
        alert(YELLOW).identifier,
        "lightning",
        "yellow",
        "in_force",
    )
    assert m.region_codes == ["320116"] and m.hazard_sources == sources
    assert [(d.id, d.confirmed_by) for d in m.duties] == [(1, "孙涛"), (2, None)]
    # the same state judged later: the same key (enqueued once); a confirmation: a new key
    again = in_force(active, alerts, duties, now + timedelta(minutes=5))[0]
    assert dedupe_key("e", again) == dedupe_key("e", m)
    done = in_force(active, alerts, [_duty(1, sources[0], True), _duty(2, sources[-1], True)], now)[0]
    assert dedupe_key("e", done) != dedupe_key("e", m)
    # ended: the duties as they stand, the reason, the same identifier
    gone = ended(m, [_duty(2, sources[-1], True)], "cancelled", now + timedelta(hours=1))
    assert (gone.state, gone.end_reason) == ("ended", "cancelled")
    assert [d.confirmed_by for d in gone.duties] == ["孙涛", "孙涛"]


def test_why_a_warning_ended() -> None:
    y, o, c = alert(YELLOW), alert(ORANGE), alert(CANCEL)
    late = datetime(2026, 8, 5, tzinfo=CST)
    assert why_ended(y.identifier, [y, o], late) == f"replaced by {o.identifier}"
    assert why_ended(o.identifier, [y, o, c], late) == "cancelled"
    assert why_ended(o.identifier, [y, o], late) == "expired"
    assert why_ended(o.identifier, [y, o], datetime(2026, 8, 4, 15, tzinfo=CST)).startswith("ended")
