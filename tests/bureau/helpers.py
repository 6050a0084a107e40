"""Envelopes as an enterprise's uplink would send them (the bureau tests' helpers)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime

from hazmon.plant import Plant
from hazmon.plant.link import AlarmEvent, Envelope, Payload, topic
from hazmon.plant.regions import Scope
from hazmon.uplink.build import registration

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
CITY = Scope("320100", "city")  # the example plant lies in 320116 (Liuhe, Nanjing)


class Enterprise:
    """Builds the envelopes one enterprise sends, seq counting up."""

    def __init__(self, plant: Plant, eid: str | None = None, region: str | None = None) -> None:
        self.plant = plant
        self.id = eid or plant.enterprise.id
        self.region = region or plant.enterprise.region.code
        self.seq = 0

    def envelope(
        self, payload: Payload, sent_at: datetime = T0, message_id: uuid.UUID | None = None
    ) -> Envelope:
        self.seq += 1
        return Envelope(
            schema_version=1,
            message_id=message_id or uuid.uuid4(),
            seq=self.seq,
            enterprise_id=self.id,
            region_code=self.region,
            kind=payload.kind,
            sent_at=sent_at,
            payload=payload,
        )

    def registration(self) -> Payload:
        r = registration(self.plant)
        e = r.enterprise.model_copy(update={"id": self.id, "region_code": self.region})
        return r.model_copy(update={"enterprise": e})

    def alarm(
        self, local_id: int, event_id: int, event: str = "raised", at: datetime = T0, **kw: object
    ) -> AlarmEvent:
        fields: dict[str, object] = {
            "alarm_id": f"{self.id}:{local_id}",
            "event_id": event_id,
            "event": event,
            "at": at,
            "actor": "system",
            "hazard_source": "cl2-tankfarm",
            "sensor": "LT-101",
            "condition": "HH",
            "level": "second",
            "tier": 4,  # hazmon.plant.standards.Tier.RED
            "tier_name": "red",
            "state": "active_unacked",
            "value": 92.5,
            "limit_value": 90.0,
            "message_en": "Chlorine tank level high-high",
            "message_zh": "液氯储罐液位高高报",
        }
        fields.update(kw)
        return AlarmEvent.model_validate(fields)

    def wire(self, env: Envelope) -> tuple[bytes, str]:
        return env.model_dump_json().encode(), topic(env.enterprise_id, env.kind)


def wait_until(cond: Callable[[], object], what: str, within_s: float = 60.0) -> None:
    """Poll ``cond`` until it is true; an AssertionError naming ``what`` after ``within_s``."""
    deadline = time.monotonic() + within_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
