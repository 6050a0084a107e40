"""E-mail notifier: SMTP with STARTTLS (or implicit TLS) and login.

smtplib runs in a worker thread; one connection per message keeps failure
handling simple (alarms are few; floods are summarised).
"""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate

from hazmon.alarms.escalation import Contact
from hazmon.alarms.notifier import Message

__all__ = ["EmailNotifier", "EmailSettings"]


@dataclass(frozen=True, slots=True)
class EmailSettings:
    host: str
    port: int = 587
    sender: str = "hazmon@localhost"
    starttls: bool = True
    tls: bool = False  # implicit TLS (port 465)
    username: str | None = None
    password: str | None = None  # read from the environment variable named in the config
    ca_file: str | None = None
    timeout_s: float = 10.0


class EmailNotifier:
    kind = "email"

    def __init__(self, name: str, settings: EmailSettings) -> None:
        self.name = name
        self.settings = settings

    def address(self, contact: Contact) -> str | None:
        return contact.email or None

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.settings.ca_file)

    def _send(self, message: Message) -> None:
        s = self.settings
        em = EmailMessage()
        em["From"] = s.sender
        em["To"] = message.address
        em["Subject"] = message.subject
        em["Date"] = formatdate(localtime=False)
        em["Message-ID"] = f"<{message.delivery_id}@hazmon>"
        em["X-Hazmon-Delivery"] = message.delivery_id
        em.set_content(message.text)
        smtp: smtplib.SMTP
        if s.tls:
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s, context=self._context())
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
        with smtp:
            if s.starttls and not s.tls:
                smtp.starttls(context=self._context())
            if s.username:
                smtp.login(s.username, s.password or "")
            smtp.send_message(em)

    async def notify(self, message: Message) -> tuple[bool, Exception | None]:
        try:
            await asyncio.to_thread(self._send, message)
        except smtplib.SMTPRecipientsRefused as e:
            return False, e
        except smtplib.SMTPAuthenticationError as e:
            return False, e
        except smtplib.SMTPResponseException as e:
            return e.smtp_code < 500, e
        except (smtplib.SMTPException, OSError, ssl.SSLError) as e:
            return True, e
        return False, None

    async def close(self) -> None:
        return None
