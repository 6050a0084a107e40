"""The daemon config's ``uplink:`` section: how this enterprise reaches its bureau's broker.

::

    uplink:
      enabled: true                    # default false: nothing is enqueued or sent
      url: mqtts://bureau.example:8883 # mqtt:// or mqtts:// (TLS)
      username: E3301001               # one username per enterprise: the ACL ties it to its topics
      password_env: HAZMON_UPLINK_PASSWORD
      ca_file: /etc/hazmon/bureau-ca.pem
      cert_file: null                  # client certificate (mutual TLS), with key_file
      key_file: null
      client_id: ""                    # default hazmon-uplink-<enterprise id>
      protocol: "5"                    # 5 (session expiry) | 3.1.1 (clean_session false)
      session_expiry_s: 604800         # the broker keeps the session this long (MQTT 5)
      keepalive_s: 30
      batch: 100                       # messages in flight before waiting for their PUBACKs
      ack_timeout_s: 10                # no PUBACK by then: reconnect and replay from the outbox
      poll_interval_s: 1               # how often the outbox is looked at when idle
      retry_max_s: 30                  # reconnect back-off cap
      heartbeat_interval_s: 60
      aggregate_delay_s: 15            # a minute is aggregated this long after its end (writer committed)
      aggregate_catchup_h: 24          # after a stop, missed minutes are sent back this far
      transport: mqtt                  # mqtt | https (the same envelopes POSTed; hazmon.uplink.https_sender)
      insecure: false                  # https transport: allow an http:// url (tests only)
      down_poll_s: 5                   # https transport: how often the bureau's down messages are polled

With ``transport: https`` the url is the bureau's link endpoint (``https://bureau.example:8443``),
``username`` defaults to the enterprise id and ``password_env`` is required (HTTP Basic).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from hazmon.plant.link.broker import BrokerAddress
from hazmon.plant.yamlnode import Node, opt, port_problem

__all__ = ["UplinkSettings", "parse_settings"]


@dataclass(frozen=True, slots=True)
class UplinkSettings(BrokerAddress):
    enabled: bool = False
    url: str = "mqtt://127.0.0.1:1883"
    username: str | None = None
    password_env: str | None = None
    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    client_id: str = ""
    protocol: str = "5"
    session_expiry_s: int = 604_800
    keepalive_s: int = 30
    batch: int = 100
    ack_timeout_s: float = 10.0
    poll_interval_s: float = 1.0
    retry_max_s: float = 30.0
    heartbeat_interval_s: float = 60.0
    aggregate_delay_s: float = 15.0
    aggregate_catchup_h: float = 24.0
    transport: str = "mqtt"
    insecure: bool = False
    down_poll_s: float = 5.0
    # a PUBACK 0x10 "no matching subscribers" is not delivery: the bureau's shared subscription is
    # not there (Mosquitto 2.0 does not restore it after a broker restart), so the row is kept and
    # sent again rather than marked sent and lost (hazmon.store.outbox)
    require_subscriber: bool = True


_SCHEMES = {"mqtt": ("mqtt", "mqtts"), "https": ("https", "http")}


def _url(n: Node, transport: str = "mqtt") -> str | None:
    url = n.text(env=True)
    if url is None:
        return None
    a, b = _SCHEMES[transport]
    if urlsplit(url).scheme not in (a, b) or not urlsplit(url).hostname:
        which = "" if transport == "mqtt" else f" (transport: {transport})"
        n.problem(f"'{url}' is not {a}://host[:port] or {b}://host[:port]{which}")
        return None
    why = port_problem(url)
    if why is not None:
        n.problem(why)
        return None
    return url


def parse_settings(n: Node) -> UplinkSettings | None:
    """`UplinkSettings` from the ``uplink:`` mapping; problems are recorded on ``n``."""
    m = n.mapping(set(UplinkSettings.__dataclass_fields__))
    if m is None:
        return None
    d = UplinkSettings()
    transport = opt(m, "transport", lambda x: x.choice(("mqtt", "https")), d.transport)
    s = UplinkSettings(
        enabled=opt(m, "enabled", Node.flag, d.enabled),
        url=opt(m, "url", lambda x: _url(x, transport), d.url),
        username=opt(m, "username", lambda x: x.text(r"[A-Za-z0-9][A-Za-z0-9_.\-]*", "an id"), None),
        password_env=opt(
            m, "password_env", lambda x: x.text(r"[A-Za-z_][A-Za-z0-9_]*", "a variable name"), None
        ),
        ca_file=opt(m, "ca_file", Node.text, None),
        cert_file=opt(m, "cert_file", Node.text, None),
        key_file=opt(m, "key_file", Node.text, None),
        client_id=opt(m, "client_id", Node.text, d.client_id),
        protocol=opt(m, "protocol", lambda x: x.choice(("5", "3.1.1")), d.protocol),
        session_expiry_s=opt(m, "session_expiry_s", lambda x: x.whole(0), d.session_expiry_s),
        keepalive_s=opt(m, "keepalive_s", lambda x: x.whole(5), d.keepalive_s),
        batch=opt(m, "batch", lambda x: x.whole(1), d.batch),
        ack_timeout_s=opt(m, "ack_timeout_s", lambda x: x.num(0.1), d.ack_timeout_s),
        poll_interval_s=opt(m, "poll_interval_s", lambda x: x.num(0.01), d.poll_interval_s),
        retry_max_s=opt(m, "retry_max_s", lambda x: x.num(0.1), d.retry_max_s),
        heartbeat_interval_s=opt(m, "heartbeat_interval_s", lambda x: x.num(1.0), d.heartbeat_interval_s),
        aggregate_delay_s=opt(m, "aggregate_delay_s", lambda x: x.num(0.0), d.aggregate_delay_s),
        aggregate_catchup_h=opt(m, "aggregate_catchup_h", lambda x: x.num(0.0), d.aggregate_catchup_h),
        transport=transport,
        insecure=opt(m, "insecure", Node.flag, d.insecure),
        down_poll_s=opt(m, "down_poll_s", lambda x: x.num(0.05), d.down_poll_s),
        require_subscriber=opt(m, "require_subscriber", Node.flag, d.require_subscriber),
    )
    if transport == "https":
        if "url" not in m:
            n.problem("transport https needs url (the bureau's https:// link endpoint)", f"{n.path}.url")
        elif urlsplit(s.url).scheme == "http" and not s.insecure:
            m["url"].problem("plain http:// sends the password in clear: use https:// (or insecure: true)")
        if s.password_env is None:
            m.get("transport", n).problem("transport https needs password_env (HTTP Basic password)")
    if (s.cert_file is None) != (s.key_file is None):
        m.get("cert_file", m.get("key_file", n)).problem("cert_file and key_file go together")
    if s.password_env is not None and s.username is None and transport == "mqtt":
        m["password_env"].problem("a password needs a username")
    return s
