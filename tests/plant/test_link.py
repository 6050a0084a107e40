"""The link's messages (hazmon.plant.link): round trip, refusals naming the field, committed schema files."""

from __future__ import annotations

import json
import uuid
from dataclasses import replace
from datetime import UTC, date, datetime
from typing import Any

import pytest

from hazmon.alarms.lifecycle import EventKind
from hazmon.plant import Plant
from hazmon.plant.limits import default_gas_limits
from hazmon.plant.link import (
    ALARM_EVENT_KINDS,
    SCHEMA_FILES,
    Envelope,
    LinkError,
    json_schemas,
    parse_envelope,
    parse_topic,
    schema_dir,
    topic,
)
from hazmon.plant.model import Limits
from hazmon.plant.supervision_standards import Period, SupervisionSettings
from hazmon.uplink.build import aggregate, heartbeat, registration

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)


def _alarm_event(**over: Any) -> dict[str, Any]:
    p = {
        "kind": "alarm_event",
        "alarm_id": "E1:42",
        "event_id": 7,
        "event": "raised",
        "at": "2026-03-01T08:00:00+00:00",
        "actor": "rules",
        "hazard_source": "HS1",
        "sensor": "LT-101",
        "condition": "hh",
        "level": "second",
        "tier": 4,
        "tier_name": "red",
        "state": "active_unacked",
        "value": 9.5,
        "limit_value": 9.0,
    }
    p.update(over)
    return p


def _envelope(payload: dict[str, Any], **over: Any) -> dict[str, Any]:
    e = {
        "schema_version": 1,
        "message_id": str(uuid.UUID(int=1)),
        "seq": 1,
        "enterprise_id": "E1",
        "region_code": "330102",
        "kind": payload["kind"],
        "sent_at": "2026-03-01T08:00:01+00:00",
        "payload": payload,
    }
    e.update(over)
    return e


def test_the_ground_lists_every_alarm_event_kind() -> None:
    assert set(ALARM_EVENT_KINDS) == {k.value for k in EventKind}


def test_committed_schema_files_are_what_the_models_generate() -> None:
    generated = json_schemas()
    assert set(generated) == set(SCHEMA_FILES)
    on_disk = {p.name: p.read_text(encoding="utf-8") for p in schema_dir().glob("*.json")}
    assert on_disk == generated, "run `python -m hazmon.plant.link plant/link/schema/v1` and commit"


def test_schema_files_are_json_schema_documents() -> None:
    for name, text in json_schemas().items():
        doc = json.loads(text)
        assert doc["$schema"].endswith("2020-12/schema"), name
        assert doc["additionalProperties"] is False, name


def test_registration_of_the_example_plant_round_trips(example_plant: Plant) -> None:
    reg = registration(example_plant)
    assert reg.enterprise.region_code == example_plant.enterprise.region.code
    assert [h.id for h in reg.hazard_sources] == [h.id for h in example_plant.hazard_sources]
    assert sum(len(h.sensors) for h in reg.hazard_sources) == len(example_plant.sensors())
    assert any(h.grade is not None for h in reg.hazard_sources)
    # the limits the rules use: a gas detector without limits in the plant file gets the standard's
    hs = next(h for h in example_plant.hazard_sources if any(x.kind.is_gas for x in h.sensors))
    gas = next(x for x in hs.sensors if x.kind.is_gas)
    bare = replace(gas, limits=Limits(), limits_given=False)
    plant = replace(
        example_plant,
        hazard_sources=tuple(
            replace(h, sensors=tuple(bare if x is gas else x for x in h.sensors)) if h is hs else h
            for h in example_plant.hazard_sources
        ),
    )

    def sent(r: Any) -> Any:
        return {x.tag: x for h in r.hazard_sources for x in h.sensors}[gas.tag].limits

    assert sent(registration(plant)).h == default_gas_limits(bare).h is not None  # type: ignore[union-attr]
    assert sent(registration(plant, {gas.tag: Limits(hh=7.0, h=3.0)})).hh == 7.0
    raw = Envelope.model_validate(_envelope(reg.model_dump(mode="json")), strict=False).model_dump_json()
    back = parse_envelope(
        raw, topic(example_plant.enterprise.id, "registration").replace(example_plant.enterprise.id, "E1")
    )
    assert back.payload == reg


def test_registration_carries_the_duty_periods_and_an_older_sender_without_them_stays_valid(
    example_plant: Plant,
) -> None:
    plant = replace(
        example_plant,
        supervision=SupervisionSettings(
            (("principal", Period.QUARTER), ("technical", Period.MONTH), ("operational", Period.WEEK))
        ),
    )
    reg = registration(plant)
    got = {h.id: h.duty_periods for h in reg.hazard_sources}
    assert set(got) == {h.id for h in example_plant.hazard_sources}
    for periods in got.values():
        assert periods is not None
        assert (periods.principal, periods.technical, periods.operational) == ("quarter", "month", "week")
    old = reg.model_dump(mode="json")
    for h in old["hazard_sources"]:
        del h["duty_periods"]  # as a sender older than the field writes it
    back = Envelope.model_validate(_envelope(old), strict=False)
    assert all(h.duty_periods is None for h in back.payload.hazard_sources)  # type: ignore[union-attr]
    bad = reg.model_dump(mode="json")
    bad["hazard_sources"][0]["duty_periods"]["operational"] = "fortnight"
    with pytest.raises(ValueError, match="operational"):
        Envelope.model_validate(_envelope(bad), strict=False)


@pytest.mark.parametrize(
    "payload",
    [
        _alarm_event(),
        {
            "kind": "feedback",
            "alarm_id": "E1:42",
            "at": "2026-03-01T08:00:00Z",
            "actor": "张三",
            "comment": "已处置",
        },
        {
            "kind": "heartbeat",
            "at": "2026-03-01T08:00:00Z",
            "endpoints": [
                {"endpoint": "dcs", "protocol": "opcua", "connected": False, "last_reading_at": None}
            ],
        },
        {
            "kind": "aggregates",
            "window_start": "2026-03-01T08:00:00Z",
            "items": [
                {
                    "sensor": "LT-101",
                    "count": 3,
                    "min": 1.0,
                    "mean": 2.0,
                    "max": 3.0,
                    "last": 3.0,
                    "worst_quality": "good",
                },
                {
                    "sensor": "LT-102",
                    "count": 0,
                    "min": None,
                    "mean": None,
                    "max": None,
                    "last": None,
                    "worst_quality": None,
                },
            ],
        },
        {
            "kind": "assessments",
            "as_of": "2026-03-01",
            "items": [
                {
                    "hazard_source": "HS1",
                    "report_date": None,
                    "next_due": "2026-03-01",
                    "due_reason": "no assessment on record",
                    "reassessment_overdue": True,
                    "filing_overdue": False,
                    "inventory_changed": False,
                }
            ],
        },
    ],
)
def test_up_messages_round_trip(payload: dict[str, Any]) -> None:
    raw = json.dumps(_envelope(payload))
    env = parse_envelope(raw, f"hazmon/v1/E1/up/{payload['kind']}")
    assert parse_envelope(env.model_dump_json()) == env


def test_bureau_step_travels_down() -> None:
    p = {
        "kind": "bureau_step",
        "alarm_id": "E1:42",
        "step": "verified",
        "at": "2026-03-01T08:00:00Z",
        "actor": "county",
    }
    assert topic("E1", "bureau_step") == "hazmon/v1/E1/down/bureau_step"
    assert (
        parse_envelope(json.dumps(_envelope(p)), "hazmon/v1/E1/down/bureau_step").payload.step == "verified"
    )  # type: ignore[union-attr]
    with pytest.raises(LinkError, match=r"^kind: 'bureau_step' does not travel up$"):
        parse_envelope(json.dumps(_envelope(p)), "hazmon/v1/E1/up/bureau_step")


@pytest.mark.parametrize(
    ("envelope", "topic_", "message"),
    [
        (
            _envelope(_alarm_event()),
            "hazmon/v1/E2/up/alarm_event",
            "enterprise_id: 'E1' differs from the topic's 'E2'",
        ),
        (
            _envelope(_alarm_event()),
            "hazmon/v1/E1/up/heartbeat",
            "kind: 'alarm_event' differs from the topic's 'heartbeat'",
        ),
        (
            _envelope(_alarm_event()),
            "hazmon/v1/E1/alarm_event",
            "topic: 'hazmon/v1/E1/alarm_event' is not hazmon/v1/<enterprise>/<up|down>/<kind>",
        ),
        (
            _envelope(_alarm_event(event="exploded")),
            None,
            "payload.alarm_event.event: 'exploded' is not an alarm event kind",
        ),
        (
            _envelope(_alarm_event(alarm_id="42")),
            None,
            "payload.alarm_event.alarm_id: String should match pattern",
        ),
        (
            _envelope(_alarm_event(tier=5)),
            None,
            "payload.alarm_event.tier: Input should be less than or equal to 4",
        ),
        (
            _envelope(_alarm_event(at="2026-03-01T08:00:00")),
            None,
            "payload.alarm_event.at: Input should have timezone info",
        ),
        (_envelope(_alarm_event(extra=1)), None, "payload.alarm_event.extra: unknown field"),
        (_envelope(_alarm_event(), schema_version=2), None, "schema_version: Input should be 1"),
        (
            _envelope(_alarm_event(), message_id="not-a-uuid"),
            None,
            "message_id: Input should be a valid UUID",
        ),
        (_envelope(_alarm_event(), region_code="33010"), None, "region_code: String should match pattern"),
        (_envelope(_alarm_event(), enterprise_id="E/1"), None, "enterprise_id: String should match pattern"),
        (_envelope(_alarm_event(), seq=0), None, "seq: Input should be greater than or equal to 1"),
        (
            _envelope(_alarm_event(), kind="heartbeat"),
            None,
            "payload: kind 'alarm_event' differs from the envelope's kind 'heartbeat'",
        ),
        (_envelope({"kind": "nope"}), None, "payload: Input tag 'nope' found using 'kind' does not match"),
        (
            _envelope(
                {
                    "kind": "aggregates",
                    "window_start": "2026-03-01T08:00:00Z",
                    "items": [
                        {
                            "sensor": "X",
                            "count": 2,
                            "min": 3.0,
                            "mean": 2.0,
                            "max": 4.0,
                            "last": 3.0,
                            "worst_quality": "good",
                        }
                    ],
                }
            ),
            None,
            "payload.aggregates.items[0]: min <= mean <= max and min <= last <= max must hold",
        ),
        (
            _envelope(
                {
                    "kind": "heartbeat",
                    "at": "2026-03-01T08:00:00Z",
                    "endpoints": [
                        {"endpoint": "dcs", "protocol": "modbus", "connected": True, "last_reading_at": None}
                    ],
                }
            ),
            None,
            "payload.heartbeat.endpoints[0].protocol: Input should be 'opcua' or 'mqtt'",
        ),
    ],
)
def test_refusals_name_the_field_in_one_line(
    envelope: dict[str, Any], topic_: str | None, message: str
) -> None:
    with pytest.raises(LinkError) as e:
        parse_envelope(json.dumps(envelope), topic_)
    text = str(e.value)
    assert "\n" not in text
    assert text.startswith(message), text


def test_not_json_is_one_line() -> None:
    with pytest.raises(LinkError, match=r"^\(value\): not valid JSON"):
        parse_envelope(b"{not json")


def test_parse_topic() -> None:
    assert parse_topic("hazmon/v1/E1/up/heartbeat") == ("E1", "up", "heartbeat")


def test_aggregate_and_heartbeat_builders() -> None:
    from hazmon.plant.reading import Quality

    a = aggregate(
        T0,
        {
            "A": [
                (1.0, Quality.GOOD),
                (5.0, Quality.UNCERTAIN),
                (1e308, Quality.OUT_OF_RANGE),
                (3.0, Quality.GOOD),
            ],
            "C": [(1e308, Quality.OUT_OF_RANGE)],
        },
        ["A", "B", "C"],
    )
    by = {i.sensor: i for i in a.items}
    assert (by["A"].count, by["A"].min, by["A"].mean, by["A"].max, by["A"].last, by["A"].worst_quality) == (
        4,
        1.0,
        3.0,
        5.0,
        3.0,
        "out_of_range",
    )
    assert by["B"].count == 0 and by["B"].worst_quality is None
    assert by["C"].count == 1 and by["C"].min is None and by["C"].worst_quality == "out_of_range"
    hb = heartbeat(T0, [("dcs", "opcua", True, T0), ("mqtt", "mqtt", False, None)])
    assert [e.connected for e in hb.endpoints] == [True, False]
    assert date(2026, 3, 1) == hb.at.date()
