"""The uplink sender: publishes the outbox to the bureau's broker, in order, marking rows sent on PUBACK.

The machinery is the ground's (`hazmon.store.outbox.OutboxSender`, which a bureau forwarding to
its parent uses too); this module says what a row of ``uplink_outbox`` becomes on the wire.
One pass (`Sender.send_pending`) claims up to ``batch`` unsent rows in ``seq`` order, publishes
them with QoS 1 on ``hazmon/v1/<enterprise>/up/<kind>`` and waits for their PUBACKs; only the
acknowledged prefix is marked sent. Anything else (no connection, a PUBACK missing after
``ack_timeout_s``, a refusal) drops the client: the next pass reconnects and replays from the
first unsent row with the same ``message_id`` and ``seq``. A receiver may see a message twice
(at least once), never out of order the first time it sees it, and counts each once by its id.

The session is persistent (MQTT 5 ``clean_start=False`` with a session expiry, or 3.1.1
``clean_session=False``) so the bureau's subscription queue survives a bureau restart.
Runs in a thread (paho is blocking); the daemon starts `Sender.run` with ``asyncio.to_thread``.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError

from hazmon.plant.link import topic
from hazmon.plant.schema import describe
from hazmon.store.outbox import MalformedRowError, OutboxSender, Row, SenderStats
from hazmon.uplink.config import UplinkSettings
from hazmon.uplink.outbox import UPLINK_OUTBOX, outbox_row

__all__ = ["Sender", "SenderStats"]


def _render(r: Row, now: datetime) -> tuple[str, bytes]:
    row = outbox_row(r)
    try:
        body = row.envelope(now).model_dump_json().encode()  # validated again: no malformed row goes out
    except ValidationError as e:
        raise MalformedRowError(describe(e)) from e
    return topic(row.enterprise_id, row.kind), body


class Sender(OutboxSender):
    """Sends one enterprise database's outbox to the bureau's broker."""

    def __init__(self, settings: UplinkSettings, dsn: str, enterprise_id: str) -> None:
        super().__init__(
            settings,
            dsn,
            UPLINK_OUTBOX,
            _render,
            client_id=settings.client_id or f"hazmon-uplink-{enterprise_id}",
            name="uplink",
            require_subscriber=settings.require_subscriber,
        )
        self.enterprise_id = enterprise_id
