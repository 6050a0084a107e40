"""SMS through an HTTP gateway: the request is a template filled per message.

Placeholders ``{phone}``, ``{text}`` and ``{delivery_id}`` in the URL (URL-encoded)
and in the body (JSON-escaped when the content type is JSON, form-encoded otherwise).
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass

import aiohttp

from hazmon.alarms.escalation import Contact
from hazmon.alarms.notifier import Message

__all__ = ["SmsNotifier", "SmsSettings", "render"]


@dataclass(frozen=True, slots=True)
class SmsSettings:
    url: str
    method: str = "POST"
    body: str = '{"to": "{phone}", "text": "{text}", "id": "{delivery_id}"}'
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()
    timeout_s: float = 10.0


def _fill(template: str, values: dict[str, str], escape: object) -> str:
    out = template
    for k, v in values.items():
        out = out.replace("{" + k + "}", escape(v))  # type: ignore[operator]
    return out


def render(s: SmsSettings, phone: str, text: str, delivery_id: str) -> tuple[str, str]:
    """(url, body) of the gateway request."""
    values = {"phone": phone, "text": text, "delivery_id": delivery_id}
    url = _fill(s.url, values, lambda v: urllib.parse.quote(v, safe=""))
    if "json" in s.content_type:
        body = _fill(s.body, values, lambda v: json.dumps(v, ensure_ascii=False)[1:-1])
    else:
        body = _fill(s.body, values, urllib.parse.quote_plus)
    return url, body


class SmsNotifier:
    kind = "sms"

    def __init__(self, name: str, settings: SmsSettings) -> None:
        self.name = name
        self.settings = settings
        self._session: aiohttp.ClientSession | None = None

    def address(self, contact: Contact) -> str | None:
        return contact.phone or None

    async def notify(self, message: Message) -> tuple[bool, Exception | None]:
        url, body = render(self.settings, message.address, message.short, message.delivery_id)
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.settings.timeout_s)
            )
        headers = {
            "Content-Type": self.settings.content_type + "; charset=utf-8",
            **dict(self.settings.headers),
        }
        try:
            async with self._session.request(
                self.settings.method, url, data=body.encode(), headers=headers
            ) as r:
                if 200 <= r.status < 300:
                    return False, None
                err = RuntimeError(f"SMS gateway answered HTTP {r.status}: {(await r.text())[:200]}")
                return (r.status == 429 or r.status >= 500), err
        except (aiohttp.ClientError, TimeoutError, OSError) as e:
            return True, e

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
