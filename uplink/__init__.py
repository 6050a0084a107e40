"""The enterprise side of the bureau link: the outbox, the message builders and the MQTT sender.

See README.md. The message types and the schema are the ground's (`hazmon.plant.link`).
"""

from __future__ import annotations

from hazmon.uplink.config import UplinkSettings, parse_settings
from hazmon.uplink.outbox import OutboxRow, claim, enqueue, mark_sent, pending
from hazmon.uplink.sender import Sender, SenderStats
from hazmon.uplink.service import UplinkService

__all__ = [
    "OutboxRow",
    "Sender",
    "SenderStats",
    "UplinkService",
    "UplinkSettings",
    "claim",
    "enqueue",
    "mark_sent",
    "parse_settings",
    "pending",
]
