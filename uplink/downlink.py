"""The down direction: the bureau's messages to this enterprise (``hazmon/v1/<enterprise>/down/#``).

`Downlink.run` (a thread, like the sender) keeps a persistent session (MQTT 5 ``clean_start``
false with a session expiry, or 3.1.1 ``clean_session`` false) subscribed with QoS 1, so what
the bureau sent while the daemon was away is delivered when it is back. Each message is
checked with `hazmon.plant.link.parse_envelope` against its topic and handed to ``on_step``
(the roof records a ``bureau_step`` as an event of the alarm). A message is acknowledged
(PUBACK, manual) only once it is handled:

- recorded, or a redelivery of a step already recorded: acknowledged, counted;
- refused (not a valid envelope, another enterprise's, an unknown alarm, a step out of
  order): ``on_refused(topic, reason, detail, payload)`` keeps it as a dead letter with its
  reason, acknowledged, counted — never retried, never stopping the messages after it;
- anything else (the database away): not acknowledged, nor is any message after it; the client
  reconnects and the broker delivers them again, in order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from hazmon.plant.link import Envelope, LinkError, parse_envelope
from hazmon.plant.link.messages import TOPIC_ROOT
from hazmon.uplink.config import UplinkSettings

__all__ = ["Downlink", "DownlinkStats", "Refused", "down_topic"]

log = structlog.get_logger("hazmon.uplink")


class Refused(Exception):  # noqa: N818 - a verdict, not a failure of the code
    """Raised by ``on_step``: the message is refused for good (dead-lettered with ``reason``)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(slots=True)
class DownlinkStats:
    received: int = 0  # messages delivered by the broker (redeliveries included)
    applied: int = 0  # recorded at the plant
    duplicates: int = 0  # redeliveries of a step already recorded: acknowledged, nothing recorded
    refused: int = 0  # dead-lettered with their reason
    failed: int = 0  # not handled now (database away): not acknowledged, delivered again
    connects: int = 0


def down_topic(enterprise_id: str) -> str:
    return f"{TOPIC_ROOT}/{enterprise_id}/down/#"


StepHandler = Callable[[Envelope], bool]
"""Records a down message; True when recorded, False for a redelivery already recorded.
Raises `Refused` for a message refused for good; anything else is retried."""
RefusedSink = Callable[[str, str, str, bytes], None]
"""(topic, reason, detail, payload): keep a refused message (the daemon's dead letters)."""


class Downlink:
    def __init__(
        self,
        settings: UplinkSettings,
        enterprise_id: str,
        on_step: StepHandler,
        on_refused: RefusedSink,
    ) -> None:
        self.settings = settings
        self.enterprise_id = enterprise_id
        self.on_step = on_step
        self.on_refused = on_refused
        self.stats = DownlinkStats()
        self.connected = threading.Event()
        self.subscribed = threading.Event()
        self._lost = threading.Event()

    # ------------------------------------------------------------ messages

    def handle(self, topic: str, payload: bytes) -> bool:
        """One delivered message; True when it may be acknowledged."""
        self.stats.received += 1
        try:
            env = parse_envelope(payload, topic)
            if env.enterprise_id != self.enterprise_id:
                raise Refused("wrong_enterprise", f"enterprise_id: {env.enterprise_id!r} is not this plant's")
            if self.on_step(env):
                self.stats.applied += 1
            else:
                self.stats.duplicates += 1
            return True
        except (LinkError, Refused) as e:
            reason = e.reason if isinstance(e, Refused) else "link_refused"
            self.stats.refused += 1
            log.warning("bureau message refused, dead-lettered", topic=topic, reason=reason, detail=str(e))
            self.on_refused(topic, reason, str(e), payload)
            return True
        except Exception as e:
            self.stats.failed += 1
            log.warning("bureau message not recorded now; it is delivered again", topic=topic, error=str(e))
            return False

    def _on_message(self, c: mqtt.Client, u: object, msg: mqtt.MQTTMessage) -> None:
        if self._lost.is_set():
            # an earlier message failed: those after it wait for the redelivery too, in order (a
            # bureau's "verified" handled before its "received" would be refused as out of order)
            return
        if self.handle(msg.topic, bytes(msg.payload)):
            c.ack(msg.mid, msg.qos)
        else:
            self._lost.set()  # reconnect: the broker delivers the unacknowledged message again

    # ------------------------------------------------------------ connection

    def _client(self) -> mqtt.Client:
        s = self.settings
        v5 = s.protocol == "5"
        c = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=f"{s.client_id or f'hazmon-uplink-{self.enterprise_id}'}-down",
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else False,
            manual_ack=True,
        )
        if s.username:
            c.username_pw_set(s.username, s.password())
        if s.tls:
            c.tls_set(ca_certs=s.ca_file, certfile=s.cert_file, keyfile=s.key_file)

        def on_connect(c: mqtt.Client, u: object, flags: object, rc: object, props: object) -> None:
            if int(getattr(rc, "value", rc)) != 0:  # type: ignore[call-overload]
                self._lost.set()
                return
            self.connected.set()
            c.subscribe(down_topic(self.enterprise_id), qos=1)

        def on_subscribe(c: mqtt.Client, u: object, mid: int, rcs: object, props: object) -> None:
            self.subscribed.set()

        def on_disconnect(c: mqtt.Client, u: object, flags: object, rc: object, props: object) -> None:
            self.connected.clear()
            self._lost.set()

        c.on_connect, c.on_subscribe, c.on_disconnect = on_connect, on_subscribe, on_disconnect
        c.on_message = self._on_message
        return c

    def run(self, stop: threading.Event) -> None:
        """Until ``stop`` is set: connect, receive, reconnect with back-off after a loss."""
        s = self.settings
        backoff = 0.0
        while not stop.is_set():
            self._lost.clear()
            c = self._client()
            self.stats.connects += 1
            try:
                if s.protocol == "5":
                    props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
                    props.SessionExpiryInterval = s.session_expiry_s
                    c.connect(s.host, s.port, s.keepalive_s, clean_start=False, properties=props)
                else:
                    c.connect(s.host, s.port, s.keepalive_s)
            except OSError as e:
                backoff = min(max(backoff * 2, 0.1), s.retry_max_s)
                log.warning("bureau downlink unreachable, retrying", error=str(e), retry_in_s=backoff)
                stop.wait(backoff)
                continue
            c.loop_start()
            started = time.monotonic()
            while not stop.is_set() and not self._lost.is_set():
                stop.wait(0.05)
            self.connected.clear()
            self.subscribed.clear()
            c.disconnect()
            c.loop_stop()
            if not stop.is_set():
                # a long session was not an outage: start the back-off again
                backoff = 0.0 if time.monotonic() - started > s.retry_max_s else backoff
                backoff = min(max(backoff * 2, 0.1), s.retry_max_s)
                stop.wait(backoff)
