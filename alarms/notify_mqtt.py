"""MQTT notifier: a JSON message on a topic per region code, for a provincial platform.

The topic is a template; ``{region}`` is the region code of the recipient (the
county, city or province code for bureaus, the enterprise's code otherwise),
``{enterprise}`` the enterprise id and ``{recipient}`` the recipient role.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import urllib.parse
import uuid
from dataclasses import dataclass

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hazmon.alarms.escalation import Contact
from hazmon.alarms.notifier import Message

__all__ = ["MqttNotifier", "MqttSettings"]


@dataclass(frozen=True, slots=True)
class MqttSettings:
    url: str  # mqtt://host:port or mqtts://host:port
    topic: str = "hazmon/alarms/{region}"
    qos: int = 1
    retain: bool = False
    username: str | None = None
    password: str | None = None
    client_id: str = ""
    timeout_s: float = 10.0
    enterprise: str = ""


class MqttNotifier:
    kind = "mqtt"

    def __init__(self, name: str, settings: MqttSettings) -> None:
        self.name = name
        self.settings = settings
        self._client: mqtt.Client | None = None
        self._lock = threading.Lock()

    def address(self, contact: Contact) -> str | None:
        return self.settings.topic.replace("{region}", contact.region_code).replace(
            "{enterprise}", self.settings.enterprise
        )

    def _connect(self) -> mqtt.Client:
        if self._client is not None and self._client.is_connected():
            return self._client
        if self._client is not None:
            self._client.loop_stop()
        u = urllib.parse.urlsplit(self.settings.url)
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.settings.client_id or f"hazmon-alarms-{uuid.uuid4().hex[:8]}",
            protocol=mqtt.MQTTv5,
        )
        if u.scheme == "mqtts":
            c.tls_set()
        if self.settings.username:
            c.username_pw_set(self.settings.username, self.settings.password)
        c.connect(u.hostname or "127.0.0.1", u.port or (8883 if u.scheme == "mqtts" else 1883), keepalive=30)
        c.loop_start()
        self._client = c
        deadline = time.monotonic() + self.settings.timeout_s
        while not c.is_connected():
            if time.monotonic() > deadline:
                raise TimeoutError(f"MQTT broker {self.settings.url} did not accept the connection")
            time.sleep(0.005)
        return c

    def _publish(self, topic: str, body: bytes) -> None:
        with self._lock:
            c = self._connect()
        info = c.publish(topic, body, qos=self.settings.qos, retain=self.settings.retain)
        info.wait_for_publish(self.settings.timeout_s)
        if not info.is_published():
            raise TimeoutError(f"MQTT publish to {topic} not confirmed within {self.settings.timeout_s} s")

    async def notify(self, message: Message) -> tuple[bool, Exception | None]:
        body = json.dumps(
            {"delivery_id": message.delivery_id, "recipient": message.recipient, **message.payload},
            ensure_ascii=False,
            sort_keys=True,
        ).encode()
        try:
            await asyncio.to_thread(self._publish, message.address, body)
        except (OSError, TimeoutError, RuntimeError, ValueError) as e:
            return True, e
        return False, None

    async def close(self) -> None:
        if self._client is not None:
            c, self._client = self._client, None
            await asyncio.to_thread(c.disconnect)
            c.loop_stop()
