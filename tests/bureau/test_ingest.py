"""The bureau's ingest on a real PostgreSQL: every refusal stored and counted, a replay stored once, skew flagged."""

from __future__ import annotations

from datetime import timedelta

import psycopg
import pytest

from hazmon.bureau.ingest import REASON_CODES, IngestLimits, Ingestor, Outcome, Refused, check
from hazmon.plant.link import Feedback, Heartbeat, Registration, topic
from hazmon.plant.link.messages import EndpointHeartbeat
from tests.bureau.helpers import CITY, T0, Enterprise

Conn = psycopg.Connection[tuple[object, ...]]


@pytest.fixture
def conn(db_dsn: str) -> Conn:
    return psycopg.connect(db_dsn, autocommit=True)


def _one(conn: Conn, sql: str, *args: object) -> object:
    row = conn.execute(sql, args).fetchone()
    assert row is not None
    return row[0]


def _refused(ing: Ingestor, code: str) -> float:
    return ing.metrics.refused.labels(reason_code=code)._value.get()


def _register(ing: Ingestor, conn: Conn, ent: Enterprise) -> Outcome:
    raw, t = ent.wire(ent.envelope(ent.registration()))
    return ing.handle(conn, raw, t, T0)


def test_registration_then_alarm_events_are_stored(conn: Conn, enterprise: Enterprise) -> None:
    ing = Ingestor(CITY, IngestLimits())
    assert _register(ing, conn, enterprise).status == "stored"
    assert _one(conn, "SELECT count(*) FROM bureau_hazard_source") == len(enterprise.plant.hazard_sources)
    sensors = sum(len(h.sensors) for h in enterprise.plant.hazard_sources)
    assert _one(conn, "SELECT count(*) FROM bureau_sensor") == sensors
    for ev_id, ev, state in ((10, "raised", "active_unacked"), (11, "acked", "active_acked")):
        raw, t = enterprise.wire(enterprise.envelope(enterprise.alarm(7, ev_id, ev, state=state)))
        assert ing.handle(conn, raw, t, T0).status == "stored"
    assert _one(conn, "SELECT state FROM bureau_alarm WHERE alarm_id = 'hx-chem:7'") == "active_acked"
    assert _one(conn, "SELECT acked_at IS NOT NULL FROM bureau_alarm WHERE alarm_id = 'hx-chem:7'") is True
    assert _one(conn, "SELECT count(*) FROM bureau_alarm_event WHERE origin = 'enterprise'") == 2
    # an older event arriving late goes into the history without rolling the state back
    raw, t = enterprise.wire(enterprise.envelope(enterprise.alarm(7, 9, "updated", state="active_unacked")))
    assert ing.handle(conn, raw, t, T0).status == "stored"
    assert _one(conn, "SELECT state FROM bureau_alarm WHERE alarm_id = 'hx-chem:7'") == "active_acked"
    hb = Heartbeat(
        at=T0,
        endpoints=[EndpointHeartbeat(endpoint="dcs", protocol="opcua", connected=True, last_reading_at=T0)],
    )
    raw, t = enterprise.wire(enterprise.envelope(hb))
    assert ing.handle(conn, raw, t, T0).status == "stored"
    assert _one(conn, "SELECT connected FROM bureau_heartbeat WHERE enterprise_id = 'hx-chem'") is True
    fb = Feedback(alarm_id="hx-chem:7", at=T0, actor="shift lead", comment="valve closed")
    raw, t = enterprise.wire(enterprise.envelope(fb))
    assert ing.handle(conn, raw, t, T0).status == "stored"
    assert _one(conn, "SELECT count(*) FROM bureau_alarm_event WHERE event = 'bureau_feedback'") == 1
    assert _one(conn, "SELECT last_seq FROM bureau_enterprise") == enterprise.seq


def test_a_replayed_message_is_stored_once(conn: Conn, enterprise: Enterprise) -> None:
    ing = Ingestor(CITY, IngestLimits())
    _register(ing, conn, enterprise)
    env = enterprise.envelope(enterprise.alarm(1, 1))
    raw, t = enterprise.wire(env)
    assert ing.handle(conn, raw, t, T0).status == "stored"
    # the replay after an outage: same message_id, sent again later
    again = env.model_copy(update={"sent_at": T0 + timedelta(minutes=5)}).model_dump_json().encode()
    assert ing.handle(conn, again, t, T0 + timedelta(minutes=5)).status == "duplicate"
    assert _one(conn, "SELECT count(*) FROM bureau_message WHERE message_id = %s", env.message_id) == 1
    assert _one(conn, "SELECT count(*) FROM bureau_alarm_event") == 1
    assert ing.metrics.duplicates._value.get() == 1


def test_clock_skew_is_stored_flagged_and_counted(conn: Conn, enterprise: Enterprise) -> None:
    ing = Ingestor(CITY, IngestLimits(max_skew_s=300))
    _register(ing, conn, enterprise)
    ahead = enterprise.envelope(enterprise.alarm(1, 1), sent_at=T0 + timedelta(seconds=301))
    fine = enterprise.envelope(enterprise.alarm(1, 2, "updated"), sent_at=T0 + timedelta(seconds=299))
    assert ing.handle(conn, *enterprise.wire(ahead), T0).skewed
    assert not ing.handle(conn, *enterprise.wire(fine), T0).skewed
    rows = dict(conn.execute("SELECT message_id, skewed FROM bureau_message").fetchall())
    assert rows[ahead.message_id] is True and rows[fine.message_id] is False
    assert _one(conn, "SELECT skew_s FROM bureau_message WHERE message_id = %s", ahead.message_id) == 301
    assert ing.metrics.skewed._value.get() == 1


def _wire_cases(ent: Enterprise, other: Enterprise) -> dict[str, tuple[bytes, str]]:
    alarm = ent.envelope(ent.alarm(1, 1))
    raw, t = ent.wire(alarm)
    return {
        "oversized": (b"{" + b" " * 300_000 + b"}", t),
        "invalid_schema": (raw.replace(b'"tier":4', b'"tier":9'), t),
        "topic_mismatch": (raw, topic("someone-else", "alarm_event")),
        "outside_region": other.wire(other.envelope(other.registration())),
        "unknown_enterprise": ent.wire(ent.envelope(ent.alarm(2, 2))),
        "unknown_alarm": ent.wire(
            ent.envelope(Feedback(alarm_id=f"{ent.id}:99", at=T0, actor="a", comment="c"))
        ),
    }


def test_every_refusal_is_dead_lettered_with_its_reason_and_counted(
    conn: Conn, enterprise: Enterprise
) -> None:
    ing = Ingestor(CITY, IngestLimits())
    stranger = Enterprise(enterprise.plant, "sz-chem", "440305")  # Shenzhen: outside Nanjing
    newcomer = Enterprise(enterprise.plant, "nj-new")  # never registered
    cases = _wire_cases(newcomer, stranger)
    _register(ing, conn, newcomer)  # registered after the cases were built...
    conn.execute("DELETE FROM bureau_enterprise")  # ...and gone: its alarm meets an unknown enterprise
    for code, (raw, t) in cases.items():
        if code == "unknown_alarm":
            _register(ing, conn, newcomer)
        o = ing.handle(conn, raw, t, T0)
        assert o.status == "refused" and o.refused is not None, code
        assert o.refused.reason_code == code, (code, o.refused)
        assert _refused(ing, code) == 1, code
    rows = conn.execute(
        "SELECT reason_code, reason, length(payload) FROM bureau_dead_letter ORDER BY id"
    ).fetchall()
    assert [r[0] for r in rows] == list(cases)
    assert all(r[1] for r in rows)
    assert rows[0][2] == 64 * 1024  # the oversized message kept cut at 64 KiB
    assert "tier" in str(rows[1][1])  # the reason names the field
    assert {r for r in REASON_CODES} >= set(cases)


def test_one_enterprises_bad_message_does_not_block_anothers(conn: Conn, enterprise: Enterprise) -> None:
    ing = Ingestor(CITY, IngestLimits())
    other = Enterprise(enterprise.plant, "hx-chem-2")
    _register(ing, conn, enterprise)
    _register(ing, conn, other)
    bad = enterprise.wire(enterprise.envelope(enterprise.alarm(1, 1)))[0].replace(
        b'"level":"second"', b'"level":"x"'
    )
    # a value PostgreSQL refuses though the schema took it (a NUL in the data's JSON text)
    nul = enterprise.envelope(enterprise.alarm(2, 2, data={"note": "a\u0000b"}))
    outcomes = [
        ing.handle(conn, bad, topic(enterprise.id, "alarm_event"), T0),
        ing.handle(conn, *enterprise.wire(nul), T0),
        ing.handle(conn, *other.wire(other.envelope(other.alarm(1, 1))), T0),
    ]
    assert [o.status for o in outcomes] == ["refused", "refused", "stored"]
    assert outcomes[1].refused is not None and outcomes[1].refused.reason_code == "database_refused"
    assert _one(conn, "SELECT count(*) FROM bureau_alarm WHERE enterprise_id = 'hx-chem-2'") == 1


def test_check_is_pure_and_names_the_field(enterprise: Enterprise) -> None:
    raw, t = enterprise.wire(enterprise.envelope(enterprise.alarm(1, 1)))
    assert not isinstance(check(raw, t, IngestLimits(), CITY), Refused)
    r = check(raw, t.replace("/up/", "/down/"), IngestLimits(), CITY)
    assert isinstance(r, Refused) and r.reason_code == "topic_mismatch"
    forged = enterprise.wire(enterprise.envelope(enterprise.alarm(1, 1, alarm_id="other:1")))
    r = check(*forged, IngestLimits(), CITY)
    assert isinstance(r, Refused) and r.reason_code == "topic_mismatch" and "alarm_id" in r.reason


def test_a_defect_on_one_message_is_dead_lettered_and_the_next_goes_through(
    conn: Conn, enterprise: Enterprise, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hazmon.bureau import ingest

    ing = Ingestor(CITY, IngestLimits())
    _register(ing, conn, enterprise)
    real = ingest._heartbeat

    def broken(*a: object) -> None:
        raise KeyError("a bug")

    monkeypatch.setattr(ingest, "_heartbeat", broken)
    hb = Heartbeat(at=T0, endpoints=[])
    o = ing.handle(conn, *enterprise.wire(enterprise.envelope(hb)), T0)
    assert (
        o.refused is not None
        and o.refused.reason_code == "internal_error"
        and o.refused.enterprise_id == "hx-chem"
    )
    assert (
        _one(conn, "SELECT count(*) FROM bureau_message WHERE kind = 'heartbeat'") == 0
    )  # rolled back whole
    monkeypatch.setattr(ingest, "_heartbeat", real)
    assert ing.handle(conn, *enterprise.wire(enterprise.envelope(hb)), T0).status == "stored"
    assert _refused(ing, "internal_error") == 1


def test_a_new_registration_replaces_sources_and_sensors(conn: Conn, enterprise: Enterprise) -> None:
    ing = Ingestor(CITY, IngestLimits())
    _register(ing, conn, enterprise)
    reg = enterprise.registration()
    assert isinstance(reg, Registration)
    first, second, *rest = reg.hazard_sources
    moved = first.sensors[0]
    changed = reg.model_copy(
        update={
            "hazard_sources": [
                first.model_copy(update={"sensors": first.sensors[1:-1], "grade": "I"}),  # two sensors fewer
                second.model_copy(update={"sensors": [*second.sensors, moved]}),  # one moved here
            ]
        }
    )
    assert ing.handle(conn, *enterprise.wire(enterprise.envelope(changed)), T0).status == "stored"
    assert {r[0] for r in conn.execute("SELECT source_id FROM bureau_hazard_source").fetchall()} == {
        first.id,
        second.id,
    }
    want = len(first.sensors) - 2 + len(second.sensors) + 1
    assert _one(conn, "SELECT count(*) FROM bureau_sensor") == want
    assert _one(conn, "SELECT source_id FROM bureau_sensor WHERE tag = %s", moved.tag) == second.id
    assert _one(conn, "SELECT grade FROM bureau_hazard_source WHERE source_id = %s", first.id) == "I"
    assert rest  # the example has more sources: they are gone now


def test_aggregates_and_assessments_are_stored(conn: Conn, enterprise: Enterprise) -> None:
    from datetime import date

    from hazmon.plant.link import AggregateItem, Aggregates, AssessmentItem, AssessmentRegister

    ing = Ingestor(CITY, IngestLimits())
    _register(ing, conn, enterprise)
    agg = Aggregates(
        window_start=T0,
        items=[
            AggregateItem(
                sensor="LT-101", count=60, min=1.0, mean=2.0, max=3.0, last=2.5, worst_quality="good"
            ),
            AggregateItem(
                sensor="TT-101", count=0, min=None, mean=None, max=None, last=None, worst_quality=None
            ),
        ],
    )
    assert ing.handle(conn, *enterprise.wire(enterprise.envelope(agg)), T0).status == "stored"
    rows = conn.execute(
        "SELECT sensor, count, mean, worst_quality FROM bureau_aggregate ORDER BY sensor"
    ).fetchall()
    assert rows == [("LT-101", 60, 2.0, "good"), ("TT-101", 0, None, None)]
    item = AssessmentItem(
        hazard_source="cl2-tankfarm", report_date=date(2024, 5, 1), next_due=date(2027, 5, 1),
        due_reason="three years after the last report", reassessment_overdue=False, filing_overdue=True,
        inventory_changed=False,
    )  # fmt: skip
    reg = AssessmentRegister(as_of=date(2026, 3, 1), items=[item])
    assert ing.handle(conn, *enterprise.wire(enterprise.envelope(reg)), T0).status == "stored"
    older = AssessmentRegister(
        as_of=date(2026, 2, 1), items=[item.model_copy(update={"filing_overdue": False})]
    )
    assert ing.handle(conn, *enterprise.wire(enterprise.envelope(older)), T0).status == "stored"
    row = conn.execute("SELECT as_of, next_due, filing_overdue FROM bureau_assessment").fetchall()
    assert row == [(date(2026, 3, 1), date(2027, 5, 1), True)]  # an older register does not roll it back
