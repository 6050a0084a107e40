"""The bureau daemon's own emergency plans: what holds in its region -> decided -> recorded -> told.

Each round `BureauPlanRunner` reads the open bureau warnings, the open alarms (with their hazard
source's grade) and the weather warnings the enterprises report in force, within each plan's
region; asks the pure `hazmon.bureau.plans.decide`; records (`hazmon.bureau.plan_repository`);
then tells every start not yet told — by a condition, by hand through the API, or left over by
a crash — to the plan's ``notify`` recipients through the ``notify:`` channels (the alarm
notifiers, `hazmon.bureau_notify.notifier`). A drill's messages say 【演练 DRILL】 and carry
``drill: true``. The state lives in the database, so a restart starts nothing twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import psycopg
import structlog

from hazmon.alarms.notifier import Message, Notifier
from hazmon.bureau import plan_repository as brepo
from hazmon.bureau.config import BureauConfig
from hazmon.bureau.plan_config import BureauPlan
from hazmon.bureau.plans import AlarmNow, Now, WarningNow, WeatherNow, decide
from hazmon.plant.regions import Scope, prefix
from hazmon.store import connect
from hazmon.weather.plans import Clear, End, LevelUp, Start, Unclear, level_name

__all__ = ["BureauPlanRunner", "read_now"]

log = structlog.get_logger("hazmon.bureau")

Conn = psycopg.Connection[Any]


def read_now(conn: Conn, scope: Scope) -> Now:
    """What may start a plan, within ``scope`` (the bureau's region)."""
    like = prefix(scope) + "%"
    ws = conn.execute(
        """SELECT id, kind, colour, enterprise_id, region_code, raised_at FROM bureau_warning
           WHERE state <> 'closed' AND region_code LIKE %s""",
        (like,),
    ).fetchall()
    als = conn.execute(
        """SELECT a.alarm_id, a.tier, h.grade, e.region_code, a.raised_at FROM bureau_alarm a
           JOIN bureau_enterprise e USING (enterprise_id)
           LEFT JOIN bureau_hazard_source h ON h.enterprise_id = a.enterprise_id AND h.source_id = a.source_id
           WHERE a.cleared_at IS NULL AND e.region_code LIKE %s""",
        (like,),
    ).fetchall()
    wx = conn.execute(
        """SELECT w.identifier, w.warning_kind, w.colour, w.enterprise_id, e.region_code, w.sent
           FROM bureau_weather_measures w JOIN bureau_enterprise e USING (enterprise_id)
           WHERE w.state = 'in_force' AND e.region_code LIKE %s""",
        (like,),
    ).fetchall()
    return Now(
        [WarningNow(int(i), str(k), int(c), str(e), str(r).strip(), t) for i, k, c, e, r, t in ws],
        [AlarmNow(str(a), int(t), None if g is None else str(g), str(r).strip(), s) for a, t, g, r, s in als],
        [WeatherNow(str(i), str(k), str(c), str(e), str(r).strip(), t) for i, k, c, e, r, t in wx],
    )


def _message(
    row: brepo.ActivationRow, plan: BureauPlan, recipient: str, address: str, bureau: str
) -> Message:
    drill = "【演练 DRILL】" if row.drill else ""
    lv = level_name(row.level)
    subject = (
        f"{drill}【应急预案启动 {lv}级】{plan.name} / bureau emergency plan {plan.id} started, level {lv}"
    )
    steps = "\n".join(f"  {i}. [{s.owner}] {s.text}" for i, s in enumerate(plan.steps, 1))
    text = (
        f"{subject}\n{bureau}\n启动原因 cause: {row.cause}\n启动人 started by: {row.started_by}\n"
        f"时间 at: {row.started_at.isoformat()}\n处置步骤 checklist:\n{steps}"
    )
    payload: dict[str, object] = {
        "kind": "bureau_plan_event", "event": "started", "plan": plan.id, "plan_name": plan.name,
        "activation": row.id, "level": lv, "drill": row.drill, "cause": row.cause,
        "started_by": row.started_by, "started_at": row.started_at.isoformat(),
        "steps": [{"id": s.id, "text": s.text, "owner": s.owner} for s in plan.steps],
    }  # fmt: skip
    return Message(
        f"bureau-plan-{row.id}-{recipient}", address, recipient, subject, text, subject[:70], payload
    )


class BureauPlanRunner:
    """The plans of one bureau: decide each round, record, tell the starts (see the module's text)."""

    def __init__(
        self,
        cfg: BureauConfig,
        notifiers: Mapping[str, Notifier],
        clock: Callable[[], datetime] | None = None,
        every_s: float = 2.0,
    ) -> None:
        self.cfg, self.notifiers, self.every_s = cfg, notifiers, every_s
        self.dsn = cfg.database.resolved_dsn()
        self.clock = clock or (lambda: datetime.now(UTC))
        self.rounds = self.failures = 0
        self._wake = asyncio.Event()

    def record(self, now: datetime) -> list[brepo.ActivationRow]:
        """One round's decisions recorded; the activations still to be told."""
        with connect(self.dsn, autocommit=True) as c:
            opened = [r.activation() for r in brepo.open_activations(c)]
            for d in decide(self.cfg.plans, self.cfg.scope, read_now(c, self.cfg.scope), opened,
                            brepo.last_ends(c), now):  # fmt: skip
                if isinstance(d, Start) and brepo.start(c, d, by="auto", drill=False, now=now) is not None:
                    log.warning("bureau emergency plan started", plan=d.plan_id, level=level_name(d.level),
                                cause=d.cause)  # fmt: skip
                elif isinstance(d, LevelUp):
                    brepo.level_up(c, d, now)
                    log.warning(
                        "bureau emergency plan level raised", plan=d.plan_id, level=level_name(d.level)
                    )
                elif isinstance(d, Clear):
                    brepo.set_clear(c, d.activation_id, d.since)
                elif isinstance(d, Unclear):
                    brepo.set_clear(c, d.activation_id, None)
                elif isinstance(d, End) and brepo.end(c, d, "auto", now):
                    log.info("bureau emergency plan ended", plan=d.plan_id, reason=d.reason)
            return brepo.unnotified(c)

    async def _tell(self, row: brepo.ActivationRow, plan: BureauPlan) -> str | None:
        """Tell each recipient; what was told, or None to try again next round (a retryable failure)."""
        recipients = {r.name: r for r in self.cfg.notify.recipients}
        channels = {c.name: c for c in self.cfg.notify.channels}
        told: list[str] = []
        again = False
        for name in plan.notify:
            r = recipients.get(name)
            ch = None if r is None else channels.get(r.channel)
            if r is None or ch is None or r.channel not in self.notifiers:
                told.append(f"{name}: no channel")
                continue
            address = (r.address or (ch.url if ch.kind == "webhook" else ch.topic) or "").replace(
                "{region}", self.cfg.region.code
            )
            retry, err = await self.notifiers[r.channel].notify(
                _message(row, plan, name, address, self.cfg.name)
            )
            if err is None:
                told.append(f"{name} via {r.channel}")
            else:
                again = again or retry
                told.append(f"{name} via {r.channel} FAILED ({type(err).__name__}: {err})")
                log.warning(
                    "bureau plan start not told", plan=plan.id, recipient=name, error=str(err), retry=retry
                )
        return None if again else ("; ".join(told) or "nobody to tell")

    async def once(self) -> None:
        now = self.clock()
        todo = await asyncio.to_thread(self.record, now)
        plans = {p.id: p for p in self.cfg.plans}
        for row in todo:
            plan = plans.get(row.plan_id)
            told = (
                "plan no longer in bureau.yaml: nobody told" if plan is None else await self._tell(row, plan)
            )
            if told is not None:
                await asyncio.to_thread(self._mark, row.id, told)
        self.rounds += 1

    def _mark(self, activation: int, told: str) -> None:
        with connect(self.dsn, autocommit=True) as c:
            brepo.mark_notified(c, activation, self.clock(), told)

    def wake(self) -> None:
        """Run a round now (a start by hand through the API); on the loop's thread."""
        self._wake.set()

    async def run(self, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                await self.once()
            except (psycopg.Error, OSError) as e:  # the database may be away: the next round sees the same
                self.failures += 1
                log.warning("bureau plans round failed; retried", error=str(e).strip())
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.every_s):
                    await self._wake.wait()
            self._wake.clear()
