"""The one interface every notifier implements, and the one retry stage.

A notifier delivers one `Message` and answers ``(retry, error)``: ``error`` is None
on success; otherwise ``retry`` says whether trying again later can help (a
timeout, a 5xx, a refused connection) or not (a 4xx, a bad address). Notifiers
never retry or sleep themselves: `next_attempt` decides, once, for all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from hazmon.alarms.escalation import Contact

__all__ = ["Message", "Notifier", "RetryPolicy", "next_attempt"]


@dataclass(frozen=True, slots=True)
class Message:
    """One notification to one address.

    Attributes:
        delivery_id: stable id of this delivery (the same on every retry and after a
            restart), for receivers to drop duplicates.
        address: URL, e-mail address, MQTT topic or phone number.
        recipient: control_room, operational, ..., bureau_county...
        subject: one line (Chinese and English).
        text: the full text for people (both languages).
        short: a short text for SMS.
        payload: the structured content (JSON for webhooks and MQTT).
    """

    delivery_id: str
    address: str
    recipient: str
    subject: str
    text: str
    short: str
    payload: Mapping[str, Any] = field(default_factory=dict)


class Notifier(Protocol):
    """One delivery channel (webhook, e-mail, MQTT, SMS)."""

    name: str
    kind: str

    def address(self, contact: Contact) -> str | None:
        """Where this notifier reaches ``contact`` (None: it cannot, e.g. no e-mail address)."""
        ...

    async def notify(self, message: Message) -> tuple[bool, Exception | None]:
        """Deliver ``message``; returns (retry, error); error is None on success."""
        ...

    async def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts and exponential backoff, in seconds of hazmon's clock."""

    attempts: int = 6
    backoff_s: float = 2.0
    max_backoff_s: float = 300.0
    timeout_s: float = 10.0


def next_attempt(policy: RetryPolicy, attempts_done: int, retry: bool, now_us: int) -> int | None:
    """When to try again after ``attempts_done`` failed attempts, or None to give up (dead letter)."""
    if not retry or attempts_done >= policy.attempts:
        return None
    delay: float = min(policy.max_backoff_s, policy.backoff_s * 2.0 ** (attempts_done - 1))
    return now_us + round(delay * 1e6)
