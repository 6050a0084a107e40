"""The enterprise daemon's link to its bureau (``uplink: enabled``): the uplink's arrows to the other parts.

`hazmon.uplink` and `hazmon.alarms` are features and know nothing of each other; here they meet:

    alarm recorder ──(its transaction)──► alarm_event_hook ──► uplink_outbox ──► Sender ──► bureau
    collectors' state ──► endpoints() ──► heartbeat
    bureau ──► Downlink ──► record_bureau_step ──► AlarmService.act (bureau_received / _verified / _closed)
                  │                  ├── bureau_warning ──► an advisory alarm (raised, closed: cleared)
                  │                  └── supervision (挂牌督办) ──► hazmon.supervision_link
    supervision rows (hidden dangers, duty checks, commitments, progress) ──► each round ──► outbox
                  └── refused ──► the daemon's dead letters (source "uplink")

The link's state is the ``uplink`` readiness check, always ready (a bureau outage is not a plant
outage: the outbox keeps everything until the link is back), and ``hazmon_uplink_*`` metrics.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import psycopg
import structlog
from pydantic import ValidationError

from hazmon.alarms import AlarmService
from hazmon.alarms.lifecycle import BUREAU_STEPS, EventKind, TransitionError
from hazmon.alarms.recorder import EventHook
from hazmon.clock import now_us
from hazmon.collector import Metrics, StaleTracker
from hazmon.config import DaemonConfig
from hazmon.http import CheckResult
from hazmon.plant import Condition, Finding, Level, Limits, Plant
from hazmon.plant.link import BureauStep, BureauWarning, Envelope, Supervision
from hazmon.plant.schema import describe
from hazmon.plant.standards import Tier
from hazmon.readiness import SourceStates
from hazmon.store import connect
from hazmon.supervision_link import enqueue_supervision, record_supervision
from hazmon.uplink import UplinkService
from hazmon.uplink.build import alarm_event
from hazmon.uplink.downlink import Refused, StepHandler
from hazmon.uplink.outbox import enqueue_async
from hazmon.uplink.service import EndpointState

if TYPE_CHECKING:
    from hazmon.wiring import Wiring

__all__ = ["alarm_event_hook", "bureau_link", "record_bureau_step"]

log = structlog.get_logger("hazmon.daemon")

_STEP_WAIT_S = 30.0  # a bureau step not recorded by then is delivered again


def alarm_event_hook(plant: Plant, malformed: list[int]) -> EventHook:
    """Each recorded alarm event -> the outbox, in the transaction recording it (key ``alarm_event:<id>``).

    An event the link's schema refuses is logged and counted (``malformed[0]``), never allowed
    to roll back the alarm it belongs to: the plant's own alarm always goes on.
    """
    e = plant.enterprise

    async def hook(
        conn: psycopg.AsyncConnection[tuple[Any, ...]], alarm: dict[str, Any], event: dict[str, Any]
    ) -> None:
        try:
            payload = alarm_event(e.id, alarm, event)
        except ValidationError as err:
            malformed[0] += 1
            log.error(
                "alarm event not sent to the bureau: refused by the link's schema",
                alarm_id=alarm["id"],
                event_id=event["id"],
                reason=describe(err),
            )
            return
        await enqueue_async(conn, e.id, e.region.code, payload, dedupe_key=f"alarm_event:{event['id']}")

    return hook


def _record_warning(alarms: AlarmService, loop: asyncio.AbstractEventLoop, plant: Plant) -> StepHandler:
    """A ``bureau_warning`` -> one advisory alarm per warning id (sensor ``bureau/<id>``, tier = its colour).

    ``raised`` makes it active, ``closed`` (消警) clears it; the other actions (cause_cleared,
    recurred, verified, fed_back) are comments on it. A redelivery changes nothing.
    """
    sources = {hs.id for hs in plant.hazard_sources}

    def run(coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, loop).result(timeout=_STEP_WAIT_S)

    def record(env: Envelope) -> bool:
        p = env.payload
        assert isinstance(p, BureauWarning)
        # the whole plant (or a source unknown here): on the enterprise, as system alarms are
        hs = p.hazard_source if p.hazard_source in sources else alarms.enterprise
        key = (hs, f"bureau/{p.warning_id}", Condition.BUREAU_WARNING.value)
        a = next((x for x in alarms.alarms() if x.key == key), None)
        if p.action in ("raised", "closed"):
            on = p.action == "raised"
            if a is None and not on:
                raise Refused("unknown_warning", f"warning_id: {p.warning_id} was never raised at this plant")
            if a is not None and (on or not a.state.active):
                return False  # delivered again (QoS 1): a warning is raised once, closed once
            what_zh = "" if on else "已消警："
            what_en = "" if on else "closed (消警): "
            f = Finding(
                hs, key[1], Condition.BUREAU_WARNING, Level.FIRST, on, alarms.now_us(),
                value=float(int(Tier[p.colour.upper()])),
                message_en=f"bureau warning {p.warning_id}: {what_en}{p.text_en}",
                message_zh=f"应急管理部门预警{p.warning_id}：{what_zh}{p.text_zh}",
            )  # fmt: skip
            run(alarms.handle([f], f.ts_us))
            return True
        if a is None:
            raise Refused("unknown_warning", f"warning_id: {p.warning_id} was never raised at this plant")
        mid = str(env.message_id)
        if any((e["data"] or {}).get("message_id") == mid for e in run(alarms.events(a.id))):
            return False
        data = {"message_id": mid, "bureau_at": p.at.isoformat(), "via": "uplink", "action": p.action}
        run(alarms.act(a.id, EventKind.COMMENT, p.actor, f"{p.action}: {p.comment or p.text_zh}", data))
        return True

    return record


def record_bureau_step(
    alarms: AlarmService, loop: asyncio.AbstractEventLoop, plant: Plant | None = None, dsn: str | None = None
) -> StepHandler:
    """A ``bureau_step`` -> an event on the same alarm at the plant (on the downlink's thread).

    A ``bureau_warning`` (given ``plant``) -> its advisory alarm (`_record_warning`).
    A ``supervision`` (given ``plant`` and ``dsn``) -> `hazmon.supervision_link.record_supervision`.
    Refused for good (dead-lettered): another kind, an alarm id not of this plant or unknown,
    a step out of order. A redelivery of a step already recorded is acknowledged, not recorded.
    """
    enterprise = alarms.enterprise
    warning = None if plant is None else _record_warning(alarms, loop, plant)

    def record(env: Envelope) -> bool:
        p = env.payload
        if isinstance(p, BureauWarning) and warning is not None:
            return warning(env)
        if isinstance(p, Supervision) and plant is not None and dsn is not None:
            with connect(dsn, autocommit=True) as conn:
                return record_supervision(conn, plant, env)
        if not isinstance(p, BureauStep):
            raise Refused("unexpected_kind", f"kind: {env.kind!r} is not handled at the plant")
        prefix, _, local = p.alarm_id.rpartition(":")
        a = alarms.alarm(int(local)) if prefix == enterprise else None
        if a is None:
            raise Refused("unknown_alarm", f"alarm_id: {p.alarm_id!r} is no alarm of this plant")
        kind = EventKind(f"bureau_{p.step}")
        done = a.state.bureau_step
        if done is not None and BUREAU_STEPS.index(EventKind(f"bureau_{done}")) >= BUREAU_STEPS.index(kind):
            return False  # delivered again (QoS 1): recorded already
        data = {"message_id": str(env.message_id), "bureau_at": p.at.isoformat(), "via": "uplink"}
        fut = asyncio.run_coroutine_threadsafe(alarms.act(a.id, kind, p.actor, p.comment, data), loop)
        try:
            fut.result(timeout=_STEP_WAIT_S)
        except TransitionError as err:
            raise Refused("step_refused", f"{p.alarm_id}: {err}") from None
        except KeyError:
            raise Refused("unknown_alarm", f"alarm_id: {p.alarm_id!r} is no alarm of this plant") from None
        return True

    return record


def _endpoints(plant: Plant, sources: SourceStates, stale: StaleTracker) -> Callable[[], list[EndpointState]]:
    """(name, protocol, connected, last reading received) of each input, read on the daemon's loop."""
    protocols = {b.name: "mqtt" for b in plant.mqtt} | {e.name: "opcua" for e in plant.opcua}
    tags: dict[str, list[str]] = {n: [] for n in protocols}
    for s in plant.sensors():
        if s.binding is not None and s.binding.endpoint in tags:
            tags[s.binding.endpoint].append(s.tag)

    def read() -> list[EndpointState]:
        out: list[EndpointState] = []
        for name, proto in protocols.items():
            if not tags[name]:
                continue
            last = stale.last_seen_us(tags[name])
            at = None if last is None else datetime.fromtimestamp(last / 1e6, UTC)
            out.append((name, proto, sources.states.get(name, (False, ""))[0], at))
        return out

    return read


def _metrics(
    m: Metrics, svc: UplinkService, malformed: list[int], sup_malformed: list[int] | None = None
) -> None:
    def counters() -> Mapping[tuple[str, ...], float]:
        st = svc.sender.stats
        out: dict[tuple[str, ...], float] = {(k,): float(getattr(st, k)) for k in st.__slots__}
        if svc.downlink is not None:
            d = svc.downlink.stats
            out |= {(f"down_{k}",): float(getattr(d, k)) for k in d.__slots__}
        out[("aggregates_enqueued",)] = float(svc.aggregates_enqueued)
        out[("thread_restarts",)] = float(svc.restarts)
        out[("alarm_events_malformed",)] = float(malformed[0])
        out[("supervision_rows_malformed",)] = float(sup_malformed[0] if sup_malformed else 0)
        return out

    m.gauge_fn(
        "hazmon_uplink_counters",
        "Bureau link counters (published, acked, replayed, connects, refused, down_applied...), by counter",
        counters,
        ("counter",),
    )
    m.gauge_fn(
        "hazmon_uplink_connected",
        "1 while connected to the bureau's broker",
        lambda: {(): float(svc.sender.connected)},
    )
    m.gauge_fn(
        "hazmon_uplink_outbox_pending",
        "Messages waiting in the outbox for the bureau's acknowledgement (grows during an outage)",
        lambda: {} if svc.outbox_pending is None else {(): float(svc.outbox_pending)},
    )


def bureau_link(
    config: DaemonConfig,
    plant: Plant,
    w: Wiring,
    alarms: AlarmService | None,
    *,
    overrides: dict[str, Limits],
    malformed: list[int],
    loop: asyncio.AbstractEventLoop,
) -> UplinkService:
    """The uplink service and its arrows: endpoints, downlink -> alarms, dead letters, metrics, check."""
    dead = w.dead

    def refused(topic: str, reason: str, detail: str, payload: bytes) -> None:
        dead.add("uplink", topic, reason=reason, detail=detail, tag=None, payload=payload, now_us=now_us())

    sup_malformed = [0]  # supervision rows the link's schema refused (hazmon.supervision_link)
    svc = UplinkService(
        config.uplink,
        config.database.resolved_dsn(),
        plant,
        _endpoints(plant, w.sources, w.stale),
        overrides=overrides,
        on_step=None
        if alarms is None
        else record_bureau_step(alarms, loop, plant, config.database.resolved_dsn()),
        on_refused=refused,
        on_round=lambda conn: enqueue_supervision(conn, plant, sup_malformed),
    )
    _metrics(w.metrics, svc, malformed, sup_malformed)

    def check() -> CheckResult:
        return True, {"note": "a bureau outage does not make the plant unready", **svc.state()}

    w.http.add_check("uplink", check)
    return svc
