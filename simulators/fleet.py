"""A fleet of synthetic enterprises speaking the real link (`hazmon.plant.link`) to a bureau.

Each enterprise has its own plant: one to three hazard sources (chlorine, ammonia, LPG) graded
by GB 18218-2018 from their inventory (`hazmon.plant.grading`), sensors of several kinds with
units, ranges and limits, and a region code among the counties of one city. It sends what the
enterprise daemon's uplink sends: a registration on start, a heartbeat and the 1-minute
aggregates of every sensor each minute, and alarm events.

Everything is a pure function of (spec, minute): the same seed gives the same messages, ids
included. `FleetPublisher` puts them on an MQTT broker (QoS 1); time passes by simulated
minutes, ``speed`` times faster than real time (``inf``: as fast as the broker takes them).

Scenarios, by enterprise id:

- leak: at `FleetSpec.leak_minute` the chlorine detector of its first source goes above its
  second limit and a red alarm is raised (never acknowledged);
- silent: from `FleetSpec.silent_minute` it sends nothing at all;
- flapping: its link goes down for `FLAP_MINUTES`, up for as long, and so on; what it makes
  while down waits in its outbox and goes out in order when the link is back (as the uplink).
"""

from __future__ import annotations

import math
import random
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast
from urllib.parse import urlparse

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion

from hazmon.plant.grading import grade
from hazmon.plant.link import (
    AggregateItem,
    Aggregates,
    AlarmEvent,
    Chemical,
    EndpointHeartbeat,
    EnterpriseInfo,
    Envelope,
    HazardSourceInfo,
    Heartbeat,
    Payload,
    PersonInfo,
    Registration,
    ResponsibleInfo,
    SensorInfo,
    SensorLimits,
    topic,
)
from hazmon.plant.model import Inventory
from hazmon.plant.standards import GAS_SETPOINTS_MG_M3, chemical

__all__ = [
    "COUNTIES",
    "FLAP_MINUTES",
    "FleetEnterprise",
    "FleetPublisher",
    "FleetReport",
    "FleetSpec",
    "build_fleet",
    "fleet_minutes",
    "link_up",
]

COUNTIES: tuple[tuple[str, str], ...] = (
    ("320111", "浦口区"),
    ("320113", "栖霞区"),
    ("320114", "雨花台区"),
    ("320115", "江宁区"),
    ("320116", "六合区"),
    ("320117", "溧水区"),
)
"""Counties of Nanjing (GB/T 2260) the fleet is spread over."""

FLAP_MINUTES = 4
_NS = uuid.UUID("6b1f6d52-56c9-4d0e-9a55-3f0d6f1c2b7e")  # message ids: uuid5(_NS, seed:enterprise:seq)


@dataclass(frozen=True, slots=True)
class FleetSpec:
    """What fleet to simulate. ``start`` is the first minute's start (simulated time)."""

    enterprises: int
    sensors_per_enterprise: int
    start: datetime
    minutes: int
    seed: int = 1
    leak: frozenset[str] = frozenset()
    silent: frozenset[str] = frozenset()
    flapping: frozenset[str] = frozenset()
    leak_minute: int = 5
    silent_minute: int = 10
    id_prefix: str = "sim"

    def ids(self) -> list[str]:
        return [f"{self.id_prefix}-{i:04d}" for i in range(1, self.enterprises + 1)]


# kind -> (unit, range, limits (hh, h, l, ll), base range, noise) for the sensors that are not gas detectors
_KINDS: dict[str, tuple[str, tuple[float, float], tuple[float | None, ...], tuple[float, float], float]] = {
    "level": ("%", (0.0, 100.0), (90.0, 80.0, 10.0, 5.0), (35.0, 70.0), 0.3),
    "pressure": ("MPa", (0.0, 2.5), (1.8, 1.6, None, None), (0.5, 1.1), 0.01),
    "temperature": ("°C", (-20.0, 80.0), (50.0, 40.0, None, None), (12.0, 30.0), 0.2),
    "oxygen": ("%vol", (0.0, 25.0), (None, 23.5, 19.5, None), (20.8, 21.0), 0.03),
    "flow": ("m3/h", (0.0, 50.0), (45.0, 40.0, None, None), (8.0, 30.0), 0.5),
    "weight": ("t", (0.0, 100.0), (95.0, 90.0, None, None), (20.0, 80.0), 0.1),
}
_ORDER = ("level", "pressure", "temperature", "oxygen", "flow", "weight")
_SOURCES = (
    ("chlorine", "液氯储罐区", "Chlorine tank farm"),
    ("ammonia", "液氨储罐区", "Ammonia tank farm"),
    ("lpg", "液化石油气球罐区", "LPG spheres"),
)


@dataclass(frozen=True, slots=True)
class _Sensor:
    tag: str
    source: str
    base: float
    noise: float
    period_s: float
    high: float  # a value above the second (hh) limit: what a leak reads
    low: float
    top: float


@dataclass
class FleetEnterprise:
    """One synthetic enterprise: its registration, its sensors and the envelopes it sends."""

    id: str
    region_code: str
    seed: int
    registration: Registration
    sensors: list[_Sensor]
    seq: int = 0
    alarms: int = 0
    rng: random.Random = field(default_factory=random.Random)

    def envelope(self, payload: Payload, sent_at: datetime) -> Envelope:
        self.seq += 1
        return Envelope(
            schema_version=1,
            message_id=uuid.uuid5(_NS, f"{self.seed}:{self.id}:{self.seq}"),
            seq=self.seq,
            enterprise_id=self.id,
            region_code=self.region_code,
            kind=payload.kind,
            sent_at=sent_at,
            payload=payload,
        )

    def heartbeat(self, at: datetime) -> Heartbeat:
        ep = EndpointHeartbeat(endpoint="dcs", protocol="opcua", connected=True, last_reading_at=at)
        return Heartbeat(at=at, endpoints=[ep])

    def aggregates(self, window_start: datetime, leaking: bool) -> Aggregates:
        items = []
        for i, s in enumerate(self.sensors):
            n = max(1, round(60 / s.period_s))
            centre = s.high if leaking and i == 0 else s.base
            vals = [min(s.top, max(s.low, self.rng.gauss(centre, s.noise))) for _ in range(3)]
            lo, hi = min(vals), max(vals)
            items.append(
                AggregateItem(
                    sensor=s.tag,
                    count=n,
                    min=lo,
                    mean=sum(vals) / 3,
                    max=hi,
                    last=vals[-1],
                    worst_quality="good",
                )
            )
        return Aggregates(window_start=window_start, items=items)

    def leak_alarm(self, at: datetime, event_id: int = 1) -> AlarmEvent:
        """A red second-level alarm on the first sensor (the chlorine detector of the first source)."""
        s = self.sensors[0]
        self.alarms += 1
        return AlarmEvent(
            alarm_id=f"{self.id}:{self.alarms}",
            event_id=event_id,
            event="raised",
            at=at,
            actor="system",
            hazard_source=s.source,
            sensor=s.tag,
            condition="HH",
            level="second",
            tier=4,  # Tier.RED (hazmon.plant.standards): 红 重大
            tier_name="red",
            state="active_unacked",
            value=s.high,
            limit_value=s.high / 2.5,
            message_en=f"{s.tag}: chlorine above the second alarm limit",
            message_zh=f"{s.tag}：氯气浓度超过二级报警值",
        )


def _gas(chem: str) -> tuple[str, str, tuple[float, float], float, float]:
    """(kind, unit, range, first, second) of the detector for ``chem`` (GB/T 50493-2019 setpoints)."""
    if chem in GAS_SETPOINTS_MG_M3:
        first, second = GAS_SETPOINTS_MG_M3[chem]
        return "gas_toxic", "mg/m3", (0.0, second * 5), first, second
    return "gas_combustible", "%LEL", (0.0, 100.0), 25.0, 50.0  # first ≤ 25 %LEL, second ≤ 50 %LEL


def _enterprise(spec: FleetSpec, index: int, eid: str) -> FleetEnterprise:
    rng = random.Random(f"{spec.seed}:{eid}")
    code, county = COUNTIES[index % len(COUNTIES)]
    m = spec.sensors_per_enterprise
    n_src = max(1, min(m, 1 + index % 3))
    sizes = [m // n_src + (1 if k < m % n_src else 0) for k in range(n_src)]
    sources: list[HazardSourceInfo] = []
    sensors: list[_Sensor] = []
    for k in range(n_src):
        chem_id, zh, _ = _SOURCES[k]
        chem = chemical(chem_id)
        assert chem is not None, chem_id
        q = round(chem.q_t * rng.uniform(1.2, 30.0), 1)
        people = rng.choice((0, 20, 60, 120))
        g = grade([Inventory(chem, q)], people)
        sid = f"{chem_id}-{k + 1}"
        infos: list[SensorInfo] = []
        for j in range(sizes[k]):
            tag = f"{sid.upper()}-{j + 1:03d}"
            if j % 6 == 0:
                kind, unit, (lo, hi), first, second = _gas(chem_id)
                limits = SensorLimits(hh=second, h=first)
                base, noise = first * 0.05, first * 0.02
            else:
                kind = _ORDER[(j // 6 + j) % len(_ORDER)]
                unit, (lo, hi), (hh, h, low, ll), (b0, b1), noise = _KINDS[kind]
                limits = SensorLimits(hh=hh, h=h, l=low, ll=ll)
                base = rng.uniform(b0, b1)
                second = hh if hh is not None else hi
            period = rng.choice((1.0, 1.0, 2.0, 5.0))
            infos.append(
                SensorInfo(
                    tag=tag,
                    kind=cast("Any", kind),  # one of _KINDS or _gas(): all SensorInfo kinds
                    unit=unit,
                    range_low=lo,
                    range_high=hi,
                    period_s=period,
                    limits=limits,
                    chemical=chem_id if kind.startswith("gas") else None,
                )
            )
            top = min(hi, second * 2.5)
            sensors.append(_Sensor(tag, sid, base, noise, period, min(hi, second * 2.5), lo, max(top, base)))
        person = PersonInfo(name=f"负责人{index + 1}", phone=f"025-{5550000 + index}")
        sources.append(
            HazardSourceInfo(
                id=sid,
                name=f"{zh}{k + 1}",
                kind="storage",
                people_within_500m=people,
                chemicals=[Chemical(id=chem.id, name_zh=chem.name_zh, cas=chem.cas, max_t=q, q_t=chem.q_t)],
                s=g.s,
                r=g.r,
                grade=None if g.grade is None else ("I", "II", "III", "IV")[int(g.grade) - 1],
                grade_verified=g.verified,
                responsible=ResponsibleInfo(principal=person, technical=person, operational=person),
                sensors=infos,
            )
        )
    info = EnterpriseInfo(
        id=eid,
        name=f"模拟化工企业{index + 1:04d}",
        name_en=f"Simulated chemical works {index + 1:04d}",
        province="江苏省",
        city="南京市",
        county=county,
        region_code=code,
        timezone="Asia/Shanghai",
    )
    reg = Registration(enterprise=info, hazard_sources=sources)
    return FleetEnterprise(eid, code, spec.seed, reg, sensors, rng=rng)


def build_fleet(spec: FleetSpec) -> list[FleetEnterprise]:
    """The fleet's enterprises, the same for the same spec."""
    return [_enterprise(spec, i, eid) for i, eid in enumerate(spec.ids())]


def link_up(spec: FleetSpec, eid: str, minute: int) -> bool:
    """Whether ``eid``'s link is up in ``minute`` (only a flapping enterprise's ever goes down)."""
    return eid not in spec.flapping or minute == 0 or (minute // FLAP_MINUTES) % 2 == 0


def fleet_minutes(
    spec: FleetSpec, fleet: list[FleetEnterprise]
) -> Iterator[tuple[int, list[tuple[FleetEnterprise, Envelope]]]]:
    """(minute, what each enterprise sends at its end), minute by minute; minute 0 opens with registering."""
    for minute in range(spec.minutes):
        window = spec.start + timedelta(minutes=minute)
        at = window + timedelta(minutes=1)
        out: list[tuple[FleetEnterprise, Envelope]] = []
        for e in fleet:
            if e.id in spec.silent and minute >= spec.silent_minute:
                continue
            if minute == 0:
                out.append((e, e.envelope(e.registration, window)))
            leaking = e.id in spec.leak and minute >= spec.leak_minute
            if e.id in spec.leak and minute == spec.leak_minute:
                out.append((e, e.envelope(e.leak_alarm(window + timedelta(seconds=20)), window)))
            out.append((e, e.envelope(e.aggregates(window, leaking), at)))
            out.append((e, e.envelope(e.heartbeat(at), at)))
        yield minute, out


@dataclass
class FleetReport:
    """What was sent: messages by kind, aggregate rows and readings by enterprise."""

    messages: dict[str, int] = field(default_factory=dict)
    aggregate_rows: dict[str, int] = field(default_factory=dict)
    readings: dict[str, int] = field(default_factory=dict)
    alarms: list[str] = field(default_factory=list)
    reconnects: int = 0

    def count(self, env: Envelope) -> None:
        self.messages[env.kind] = self.messages.get(env.kind, 0) + 1
        p = env.payload
        if isinstance(p, Aggregates):
            eid = env.enterprise_id
            self.aggregate_rows[eid] = self.aggregate_rows.get(eid, 0) + len(p.items)
            self.readings[eid] = self.readings.get(eid, 0) + sum(it.count for it in p.items)
        elif isinstance(p, AlarmEvent) and p.event == "raised":
            self.alarms.append(p.alarm_id)


class _Conn:
    """One MQTT connection (paho, MQTT 5, QoS 1) and what it has published but not seen acknowledged."""

    def __init__(
        self, host: str, port: int, client_id: str, username: str | None, password: str | None
    ) -> None:
        self.c = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        if username:
            self.c.username_pw_set(username, password)
        self.c.max_inflight_messages_set(1000)
        self.connected = threading.Event()
        self.c.on_connect = lambda c, u, f, rc, p: self.connected.set() if not rc.is_failure else None
        self.c.on_disconnect = lambda c, u, f, rc, p: self.connected.clear()
        self.pending: list[mqtt.MQTTMessageInfo] = []
        self.c.connect(host, port)
        self.c.loop_start()

    def up(self, within_s: float = 30.0) -> None:
        if not self.connected.wait(within_s):
            raise TimeoutError("the broker did not accept the fleet's connection")

    def publish(self, env: Envelope) -> None:
        info = self.c.publish(topic(env.enterprise_id, env.kind), env.model_dump_json().encode(), qos=1)
        self.pending.append(info)
        if len(self.pending) > 5000:
            self.pending = [i for i in self.pending if not i.is_published()]

    def flush(self, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        for info in self.pending:
            info.wait_for_publish(max(0.1, deadline - time.monotonic()))
            if not info.is_published():
                raise TimeoutError("the broker did not acknowledge every message")
        self.pending = []

    def close(self) -> None:
        self.c.disconnect()
        self.c.loop_stop()

    def reopen(self) -> None:
        """Connect again after `close` (paho's network thread ends with an explicit disconnect)."""
        self.c.reconnect()
        self.c.loop_start()
        self.up()


class FleetPublisher:
    """Puts a fleet's messages on a broker: ``connections`` shared, one of its own per flapping enterprise."""

    def __init__(
        self,
        spec: FleetSpec,
        url: str,
        *,
        connections: int = 4,
        client_id: str = "hazmon-fleet",
        username: str | None = None,
        password: str | None = None,
    ) -> None:
        u = urlparse(url)
        if u.scheme != "mqtt" or not u.hostname:
            raise ValueError(f"--broker: {url!r} is not mqtt://host[:port]")
        self.host, self.port = u.hostname, u.port or 1883
        self.spec = spec
        self._cred = (username, password)
        self._client_id = client_id
        self.shared = [self._conn(f"{client_id}-{k}") for k in range(max(1, connections))]
        self.own = {eid: self._conn(f"{client_id}-{eid}") for eid in sorted(spec.flapping)}
        self.held: dict[str, list[Envelope]] = {eid: [] for eid in spec.flapping}
        self.report = FleetReport()

    def _conn(self, cid: str) -> _Conn:
        c = _Conn(self.host, self.port, cid, *self._cred)
        c.up()
        return c

    def _for(self, index: int, eid: str) -> _Conn:
        return self.own.get(eid) or self.shared[index % len(self.shared)]

    def publish_minute(
        self, minute: int, out: list[tuple[FleetEnterprise, Envelope]], index: dict[str, int]
    ) -> None:
        for eid, conn in self.own.items():  # the flapping links: down → disconnect, up → reconnect and replay
            if link_up(self.spec, eid, minute) and not conn.connected.is_set():
                conn.reopen()
                self.report.reconnects += 1
                for env in self.held[eid]:
                    conn.publish(env)
                self.held[eid] = []
            elif not link_up(self.spec, eid, minute) and conn.connected.is_set():
                conn.flush(30.0)
                conn.close()
        for e, env in out:
            self.report.count(env)
            if e.id in self.held and not link_up(self.spec, e.id, minute):
                self.held[e.id].append(env)
            else:
                self._for(index[e.id], e.id).publish(env)

    def run(
        self,
        fleet: list[FleetEnterprise],
        speed: float = math.inf,
        on_minute: Callable[[int], None] | None = None,
    ) -> FleetReport:
        """Send every minute, ``speed`` times faster than real time; held messages go out at the end."""
        index = {e.id: i for i, e in enumerate(fleet)}
        t0 = time.monotonic()
        for minute, out in fleet_minutes(self.spec, fleet):
            if math.isfinite(speed):
                wait = t0 + minute * 60.0 / speed - time.monotonic()
                if wait > 0:
                    time.sleep(wait)
            self.publish_minute(minute, out, index)
            if on_minute is not None:
                on_minute(minute)
        for eid, conn in self.own.items():  # the end: every link up, the outboxes drain
            if not conn.connected.is_set():
                conn.reopen()
                self.report.reconnects += 1
            for env in self.held[eid]:
                conn.publish(env)
            self.held[eid] = []
        return self.report

    def flush(self, within_s: float = 120.0) -> None:
        for c in [*self.shared, *self.own.values()]:
            c.flush(within_s)

    def close(self) -> None:
        for c in [*self.shared, *self.own.values()]:
            c.close()
