"""The daemon's emergency plans: what holds now -> `hazmon.weather.plans.decide` -> recorded and told.

`PlanRunner` runs beside the flow (a task of the daemon). Each round it reads the active
alarms (the ``alarm`` table) and the weather warnings in force, asks the pure
`decide` what to record, records it (`hazmon.weather.plan_repository`), then tells every
start not yet told (automatic, by hand from `hazmon plan start`, or left over by a crash)
through ``notify`` — the roof's callback over the alarm notifiers (`PlanNotifier`); the
weather component never imports the alarms. A drill tells nobody outside the plant: its
bureau recipients are left out, and every message it sends carries ``drill: true`` and
【演练 DRILL】 in its subject.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import structlog

from hazmon.alarms.config import NotifierConfig
from hazmon.alarms.escalation import Recipient
from hazmon.alarms.notifier import Message, Notifier
from hazmon.alarms.outbox import Routing, build_notifier
from hazmon.collector import Metrics
from hazmon.config import DaemonConfig
from hazmon.plant import Plant
from hazmon.plant.link import PlanEvent
from hazmon.plant.plans import Plan
from hazmon.store import connect
from hazmon.uplink.outbox import enqueue
from hazmon.weather import active_at
from hazmon.weather import plan_repository as prepo
from hazmon.weather import repository as wrepo
from hazmon.weather.plans import AlarmNow, Clear, End, LevelUp, Start, Unclear, WarningNow, decide, level_name

__all__ = ["Notice", "PlanNotifier", "PlanRunner", "alarms_now", "people_of", "plan_runner", "warnings_now"]

log = structlog.get_logger("hazmon.daemon")

Conn = prepo.Conn


@dataclass(frozen=True, slots=True)
class Notice:
    """A plan's start, to be told to its recipients."""

    activation: prepo.ActivationRow
    plan: Plan
    enterprise: str
    enterprise_name: str


Notify = Callable[[Notice], Awaitable[str | None]]
"""Tells a start; returns what was told (recorded), or None to try again next round."""


def people_of(plant: Plant) -> dict[str, set[str]]:
    """Role -> the names the plant file gives it (for starts, ends and steps by hand)."""
    out: dict[str, set[str]] = {"principal": set(), "technical": set(), "operational": set()}
    for hs in plant.hazard_sources:
        for role, names in out.items():
            names.add(getattr(hs.responsible, role).name)
    return out


def alarms_now(conn: Conn, enterprise: str) -> list[AlarmNow]:
    rows = conn.execute(
        """SELECT hazard_source, sensor, condition, level, tier, coalesce(activated_at_us, last_seen_us)
           FROM alarm WHERE enterprise_id = %s AND active""",
        (enterprise,),
    ).fetchall()
    return [
        AlarmNow(str(h), None if s is None else str(s), str(c), str(lv), int(str(t)),
                 datetime.fromtimestamp(int(str(us)) / 1e6, UTC))
        for h, s, c, lv, t, us in rows
    ]  # fmt: skip


def warnings_now(conn: Conn, plant: Plant, now: datetime) -> list[WarningNow]:
    alerts = wrepo.load_alerts(conn, now)
    sent = {a.identifier: a.sent for a in alerts}
    return [
        WarningNow(hs, kind.value, a.colour, sent.get(a.identifier, now), a.identifier)
        for (hs, kind), a in active_at(plant, alerts, now).items()
    ]


class PlanRunner:
    """Plans of one plant: decide each round, record, tell the starts.

    Args:
        dsn: the database.
        plant: its plans and people.
        notify: tells one start (the roof's `PlanNotifier`).
        metrics: failed rounds are counted (``hazmon_pipeline_errors_total{stage="plans"}``).
        every_s: how often a round runs.
        clock: now (tests).
    """

    def __init__(
        self,
        dsn: str,
        plant: Plant,
        notify: Notify,
        *,
        metrics: Metrics | None = None,
        every_s: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        uplink: bool = False,  # plan events to the bureau link's outbox (a drill says drill: true)
    ) -> None:
        self.dsn, self.plant, self.notify, self.metrics = dsn, plant, notify, metrics
        self.every_s, self.clock, self.uplink = every_s, clock, uplink
        self.rounds = 0

    def record(self, now: datetime) -> list[prepo.ActivationRow]:
        """One round's decisions recorded; returns the activations still to be told."""
        ent = self.plant.enterprise.id
        with connect(self.dsn, autocommit=True) as conn:
            opened = [r.activation() for r in prepo.open_activations(conn, ent)]
            decisions = decide(
                self.plant.plans,
                alarms_now(conn, ent),
                warnings_now(conn, self.plant, now),
                opened,
                prepo.last_ends(conn, ent),
                now,
            )
            for d in decisions:
                if isinstance(d, Start):
                    aid = prepo.start(conn, ent, d, by="auto", drill=False, now=now)
                    if aid is not None:
                        log.warning(
                            "emergency plan started", plan=d.plan_id, level=level_name(d.level), cause=d.cause
                        )
                elif isinstance(d, LevelUp):
                    prepo.level_up(conn, d, now)
                    log.warning("emergency plan level raised", plan=d.plan_id, level=level_name(d.level))
                    self._report(conn, d.activation_id, "level", "auto", d.cause, now)
                elif isinstance(d, Clear):
                    prepo.set_clear(conn, d.activation_id, d.since)
                elif isinstance(d, Unclear):
                    prepo.set_clear(conn, d.activation_id, None)
                elif isinstance(d, End) and prepo.end(conn, d, "auto", now):
                    log.info("emergency plan ended", plan=d.plan_id, reason=d.reason)
            self._report_ends(conn)  # by a condition above, or by hand (`hazmon plan end`) meanwhile
            return prepo.unnotified(conn, ent)

    def _report_ends(self, conn: Conn) -> None:
        """Every end not yet in the link's outbox whose start is: automatic and by hand alike.

        An end by hand is recorded by another process (the CLI), so the runner looks for it in
        the records each round; the outbox's keys say what went already (a restart repeats nothing).
        """
        if not self.uplink:
            return
        ent = self.plant.enterprise.id
        rows = conn.execute(
            """SELECT a.id, a.ended_at, a.ended_by, a.end_reason FROM plan_activation a
               WHERE a.enterprise_id = %(e)s AND a.ended_at IS NOT NULL
                 AND EXISTS (SELECT 1 FROM uplink_outbox o
                             WHERE o.dedupe_key LIKE 'plan:' || %(e)s || ':' || a.id || ':started:%%')
                 AND NOT EXISTS (SELECT 1 FROM uplink_outbox o
                                 WHERE o.dedupe_key LIKE 'plan:' || %(e)s || ':' || a.id || ':ended:%%')
               ORDER BY a.ended_at, a.id""",
            {"e": ent},
        ).fetchall()
        for aid, at, by, reason in rows:
            if isinstance(at, datetime):
                self._report(conn, int(str(aid)), "ended", str(by or "auto"), str(reason or ""), at)

    async def once(self) -> None:
        now = self.clock()
        todo = await asyncio.to_thread(self.record, now)
        plans = {p.id: p for p in self.plant.plans}
        for row in todo:
            plan = plans.get(row.plan_id)
            if plan is None:  # a plan removed from the file: nothing to tell by
                told: str | None = "plan no longer in the plant file: nobody told"
            else:
                ent = self.plant.enterprise
                told = await self.notify(Notice(row, plan, ent.id, ent.name))
            if told is not None:
                await asyncio.to_thread(self._mark, row.id, told)
        self.rounds += 1

    def _mark(self, activation: int, told: str) -> None:
        with connect(self.dsn, autocommit=True) as conn:
            prepo.mark_notified(conn, activation, self.clock(), told)
            row = next(
                (
                    r
                    for r in prepo.activations(conn, self.plant.enterprise.id, limit=1000)
                    if r.id == activation
                ),
                None,
            )
            if row is not None:
                self._report(conn, activation, "started", row.started_by, row.cause, row.started_at)

    def _report(self, conn: Conn, activation: int, event: str, actor: str, cause: str, at: datetime) -> None:  # noqa: PLR0917
        """A plan event into the bureau link's outbox (once per activation, event and level)."""
        if not self.uplink:
            return
        ent = self.plant.enterprise
        row = next((r for r in prepo.activations(conn, ent.id, limit=1000) if r.id == activation), None)
        plan = next((p for p in self.plant.plans if row is not None and p.id == row.plan_id), None)
        if row is None or plan is None:
            return
        msg = PlanEvent(
            plan_id=plan.id, plan_name=plan.name, activation=activation, event=event,  # type: ignore[arg-type]
            level=level_name(row.level), drill=row.drill, at=at, actor=actor, cause=cause,  # type: ignore[arg-type]
        )  # fmt: skip
        enqueue(
            conn, ent.id, ent.region.code, msg, dedupe_key=f"plan:{ent.id}:{activation}:{event}:{row.level}"
        )

    async def close(self) -> None:
        close = getattr(self.notify, "close", None)
        if close is not None:
            await close()

    async def run(self) -> None:
        while True:
            try:
                await self.once()
            except Exception as e:  # the database may be down: the next round sees the same state
                if self.metrics is not None:
                    self.metrics.inc("hazmon_pipeline_errors_total", 1, {"stage": "plans"})
                log.warning("emergency plans round failed; retried", error=str(e))
            await asyncio.sleep(self.every_s)


def _text(n: Notice) -> tuple[str, str, dict[str, object]]:
    a, p = n.activation, n.plan
    drill = "【演练 DRILL】" if a.drill else ""
    lv = level_name(a.level)
    subject = f"{drill}【应急预案启动 {lv}级】{p.name} / emergency plan {p.id} started, level {lv}"
    steps = "\n".join(f"  {i}. [{s.owner}] {s.text}" for i, s in enumerate(p.steps, 1))
    text = (
        f"{subject}\n{n.enterprise_name} ({n.enterprise})\n启动原因 cause: {a.cause}\n"
        f"启动人 started by: {a.started_by}\n时间 at: {a.started_at.isoformat()}\n"
        f"处置步骤 checklist:\n{steps}"
    )
    payload: dict[str, object] = {
        "kind": "plan_event",
        "event": "started",
        "enterprise": n.enterprise,
        "plan": p.id,
        "plan_name": p.name,
        "activation": a.id,
        "level": lv,
        "drill": a.drill,
        "cause": a.cause,
        "started_by": a.started_by,
        "started_at": a.started_at.isoformat(),
        "steps": [{"id": s.id, "text": s.text, "owner": s.owner} for s in p.steps],
    }
    return subject, text, payload


class PlanNotifier:
    """Tells a plan's start through notifiers built from the ``alarms:`` section's.

    Its own notifier objects (on the daemon's loop; the alarm service runs its own), routed
    like the alarm escalation (`hazmon.alarms.outbox.Routing`): a recipient reaches the
    contacts the plant file gives it through each notifier that serves it.
    """

    def __init__(
        self, plant: Plant, configs: Sequence[NotifierConfig], notifiers: dict[str, Notifier] | None = None
    ) -> None:
        self.notifiers = (
            notifiers if notifiers is not None else {c.name: build_notifier(c, plant) for c in configs}
        )
        serves = {c.name: c.recipients for c in configs}
        for name in self.notifiers:
            serves.setdefault(name, tuple(Recipient))
        self.counters: dict[str, int] = {"no_address": 0}
        self.routing = Routing(plant, self.notifiers, serves, self.counters)
        self.sent = 0
        self.failed = 0

    async def __call__(self, n: Notice) -> str | None:
        subject, text, payload = _text(n)
        told: list[str] = []
        retry_later = False
        hs = {c.alarm.hazard_source for c in n.plan.start if c.alarm} | {
            c.weather.hazard_source for c in n.plan.start if c.weather and c.weather.hazard_source
        }
        source = next(iter(hs)) if len(hs) == 1 else None
        for r in n.plan.notify:
            rec = Recipient(r)
            if rec.is_bureau and n.activation.drill:
                told.append(f"{r}: not told (drill)")
                continue
            for name, address, contact in self.routing.routes(rec, source):
                msg = Message(
                    f"plan-{n.activation.id}-{r}-{name}-{address}", address, r, subject, text,
                    subject[:70], payload,
                )  # fmt: skip
                retry, err = await self.notifiers[name].notify(msg)
                if err is None:
                    self.sent += 1
                    told.append(f"{r}: {contact} via {name}")
                else:
                    self.failed += 1
                    log.warning(
                        "plan start not told", recipient=r, notifier=name, error=str(err), retry=retry
                    )
                    retry_later = retry_later or retry
                    told.append(f"{r}: {contact} via {name} FAILED ({err})")
        if retry_later:
            return None
        return "; ".join(told) or "no recipient reachable"

    async def close(self) -> None:
        for n in self.notifiers.values():
            await n.close()


def plan_runner(config: DaemonConfig, plant: Plant, metrics: Metrics, every_s: float) -> PlanRunner:
    """The daemon's runner: its plans told through the ``alarms:`` section's notifiers."""
    configs = config.alarms.notifiers if config.alarms is not None else ()
    notify = PlanNotifier(plant, configs)
    dsn = config.database.resolved_dsn()
    return PlanRunner(dsn, plant, notify, metrics=metrics, every_s=every_s, uplink=config.uplink.enabled)
