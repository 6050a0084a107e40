"""Webhook notifier: one JSON POST per message, signed with HMAC-SHA256.

The receiver checks ``X-Hazmon-Signature: sha256=<hex>`` = HMAC-SHA256(secret, raw
body) and drops duplicates by ``X-Hazmon-Delivery`` (the same on every retry).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass

import aiohttp

from hazmon.alarms.escalation import Contact
from hazmon.alarms.notifier import Message

__all__ = ["WebhookNotifier", "WebhookSettings", "sign"]


@dataclass(frozen=True, slots=True)
class WebhookSettings:
    url: str
    secret: bytes  # read from the environment variable named in the config at load
    timeout_s: float = 10.0
    headers: tuple[tuple[str, str], ...] = ()


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


class WebhookNotifier:
    kind = "webhook"

    def __init__(self, name: str, settings: WebhookSettings) -> None:
        self.name = name
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None

    def address(self, contact: Contact) -> str | None:
        return self.settings.url

    async def notify(self, message: Message) -> tuple[bool, Exception | None]:
        body = json.dumps(
            {"delivery_id": message.delivery_id, "recipient": message.recipient, **message.payload},
            ensure_ascii=False,
            sort_keys=True,
        ).encode()
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            "X-Hazmon-Delivery": message.delivery_id,
            "X-Hazmon-Signature": sign(self.settings.secret, body),
            **dict(self.settings.headers),
        }
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s)
            )
        try:
            async with self._session.post(message.address, data=body, headers=headers) as r:
                if 200 <= r.status < 300:
                    return False, None
                text = (await r.text())[:200]
                err = RuntimeError(f"webhook {message.address} answered HTTP {r.status}: {text}")
                return (r.status == 429 or r.status >= 500), err
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            return True, e

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
