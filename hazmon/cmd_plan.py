"""`hazmon plan list|start|step|end|status`: emergency plans (应急预案) of a plant.

``start``, ``step`` and ``end`` are by hand, by a named person in a role (the plant file's
responsible persons; ``control_room`` for the control room); a refusal prints its reason and
exits 2. A start is recorded here and told by the running daemon within seconds (its
notifiers; a drill, ``--drill``, never reaches a bureau). ``status`` shows the open plans and
their checklists.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime

import psycopg

from hazmon.cmd_plant import load_or_report
from hazmon.plans_wiring import people_of
from hazmon.plant import Plant
from hazmon.plant.plans import LEVELS, ROLES, Plan, StartCondition
from hazmon.store import connect, sync_registry
from hazmon.weather import plan_repository as prepo
from hazmon.weather.plans import Refusal, level_name, manual_end, manual_start, may_confirm

__all__ = ["register"]

Conn = prepo.Conn
Action = Callable[[argparse.Namespace, Plant, Conn, datetime], int]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("plan", help="emergency plans (应急预案): start, confirm steps, end, status")
    acts = p.add_subparsers(dest="plan_command", metavar="ACTION", required=True)
    a = acts.add_parser("list", help="the plant file's plans: start conditions, recipients, checklist")
    _common(a, plan="optional")  # --dsn accepted, not used
    a.set_defaults(handler=_no_db(_list))
    a = acts.add_parser("start", help="start a plan by hand (or a drill with --drill)")
    _common(a)
    _who(a)
    a.add_argument("--level", choices=LEVELS, help="default: the plan's manual start level")
    a.set_defaults(handler=_run(_start))
    a = acts.add_parser("step", help="confirm a checklist step of an open plan")
    _common(a)
    a.add_argument("step", metavar="STEP")
    _who(a)
    a.add_argument("--note", default="")
    a.set_defaults(handler=_run(_step))
    a = acts.add_parser("end", help="end an open plan by hand")
    _common(a)
    _who(a)
    a.set_defaults(handler=_run(_end))
    a = acts.add_parser("status", help="open plans with their checklists, and the last ended ones")
    _common(a, plan="none")
    a.set_defaults(handler=_run(_status))


def _common(p: argparse.ArgumentParser, plan: str = "required") -> None:
    p.add_argument("-c", "--config", required=True, help="plant file")
    p.add_argument("--dsn", help="PostgreSQL DSN (default: $HAZMON_DSN)")
    if plan != "none":
        p.add_argument("plan", metavar="PLAN", nargs="?" if plan == "optional" else None)


def _who(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", required=True, help="who (a name the plant file gives the role)")
    p.add_argument("--role", required=True, choices=ROLES)
    p.add_argument("--drill", action="store_true", help="a drill (演练): never told to a bureau as real")


def _run(fn: Action) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        plant = load_or_report(args.config)
        if plant is None:
            return 1
        try:
            with connect(args.dsn) as conn:
                sync_registry(conn, plant)
                conn.commit()
                conn.autocommit = True
                return fn(args, plant, conn, datetime.now(UTC))
        except psycopg.OperationalError as e:
            print(f"database: {e}".strip(), file=sys.stderr)
            return 1

    return handler


def _no_db(fn: Callable[[argparse.Namespace, Plant], int]) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        plant = load_or_report(args.config)
        return 1 if plant is None else fn(args, plant)

    return handler


def _plan(plant: Plant, plan_id: str) -> Plan | None:
    p = next((x for x in plant.plans if x.id == plan_id), None)
    if p is None:
        known = ", ".join(x.id for x in plant.plans) or "none in the plant file"
        print(f"refused: no plan '{plan_id}' (plans: {known})", file=sys.stderr)
    return p


def _refused(r: Refusal) -> int:
    print(f"refused: {r.reason}", file=sys.stderr)
    return 2


def _open(conn: Conn, plant: Plant, plan: Plan, drill: bool) -> prepo.ActivationRow | None:
    rows = prepo.open_activations(conn, plant.enterprise.id)
    row = next((r for r in rows if r.plan_id == plan.id and r.drill == drill), None)
    if row is None:
        print(f"refused: {'no drill of' if drill else 'no open'} plan '{plan.id}'", file=sys.stderr)
    return row


def _list(args: argparse.Namespace, plant: Plant) -> int:
    for p in plant.plans:
        if args.plan and p.id != args.plan:
            continue
        print(f"{p.id}: {p.name}")
        for c in p.start:
            print(f"  start at level {c.level}: {_condition(c)}")
        print(f"  notify: {', '.join(p.notify) or 'nobody'}")
        for i, s in enumerate(p.steps, 1):
            print(f"  {i}. {s.id} [{s.owner}] {s.text}")
        print(f"  end: all clear for {p.end.clear_for_min:g} min, or by {', '.join(p.end.manual_roles)}")
    return 0


def _condition(c: StartCondition) -> str:
    if c.alarm is not None:
        what = f" ({', '.join(c.alarm.conditions)})" if c.alarm.conditions else ""
        return f"an alarm at {c.alarm.hazard_source}, {c.alarm.min_tier} or above{what}"
    if c.vote is not None:
        return f"{c.vote.k} of {', '.join(c.vote.sensors)} in alarm at {c.vote.min_level} level or above"
    if c.weather is not None:
        where = f" at {c.weather.hazard_source}" if c.weather.hazard_source else ""
        return f"a {c.weather.min_colour} or worse {c.weather.kind} warning{where}"
    roles = ", ".join(c.manual.roles) if c.manual is not None else ""
    return f"by hand: {roles}"


def _start(args: argparse.Namespace, plant: Plant, conn: Conn, now: datetime) -> int:
    plan = _plan(plant, args.plan)
    if plan is None:
        return 2
    opened = [r.activation() for r in prepo.open_activations(conn, plant.enterprise.id)]
    s = manual_start(plan, args.by, args.role, args.level, args.drill, opened, people_of(plant))
    if isinstance(s, Refusal):
        return _refused(s)
    aid = prepo.start(conn, plant.enterprise.id, s, by=f"{args.by} ({args.role})", drill=args.drill, now=now)
    if aid is None:
        return _refused(Refusal(f"plan '{plan.id}' was started meanwhile"))
    drill = " DRILL 演练" if args.drill else ""
    print(f"started{drill} {plan.id} level {level_name(s.level)} (activation {aid}); the daemon tells: "
          f"{', '.join(r for r in plan.notify if not (args.drill and r.startswith('bureau_')))}")  # fmt: skip
    for i, st in enumerate(plan.steps, 1):
        print(f"  {i}. {st.id} [{st.owner}] {st.text}")
    return 0


def _step(args: argparse.Namespace, plant: Plant, conn: Conn, now: datetime) -> int:
    plan = _plan(plant, args.plan)
    row = None if plan is None else _open(conn, plant, plan, args.drill)
    if plan is None or row is None:
        return 2
    done = {s.step_id for s in prepo.steps(conn, row.id)}
    why = may_confirm(plan, args.step, by=args.by, role=args.role, confirmed=done, people=people_of(plant))
    if why is not None:
        return _refused(why)
    if not prepo.confirm_step(conn, row.id, args.step, by=args.by, role=args.role, now=now, note=args.note):
        return _refused(Refusal(f"step '{args.step}' is already confirmed"))
    print(
        f"confirmed {plan.id}/{args.step} by {args.by} ({args.role}) at {now.isoformat(timespec='seconds')}"
    )
    return 0


def _end(args: argparse.Namespace, plant: Plant, conn: Conn, now: datetime) -> int:
    plan = _plan(plant, args.plan)
    row = None if plan is None else _open(conn, plant, plan, args.drill)
    if plan is None or row is None:
        return 2
    e = manual_end(plan, row.activation(), args.by, args.role, people_of(plant))
    if isinstance(e, Refusal):
        return _refused(e)
    if not prepo.end(conn, e, f"{args.by} ({args.role})", now):
        return _refused(Refusal(f"plan '{plan.id}' had already ended"))
    print(f"ended {plan.id} (activation {row.id}): {e.reason}")
    return 0


def _status(args: argparse.Namespace, plant: Plant, conn: Conn, now: datetime) -> int:
    del args, now
    plans = {p.id: p for p in plant.plans}
    rows = prepo.activations(conn, plant.enterprise.id, limit=20)
    if not any(r.ended_at is None for r in rows):
        print("no emergency plan in force")
    for r in rows:
        drill = " DRILL 演练" if r.drill else ""
        state = (
            "OPEN"
            if r.ended_at is None
            else f"ended {r.ended_at.isoformat(timespec='seconds')} ({r.end_reason})"
        )
        told = r.notified_at.isoformat(timespec="seconds") if r.notified_at else "not yet"
        print(f"#{r.id} {r.plan_id}{drill} level {level_name(r.level)} {state}")
        print(
            f"   started {r.started_at.isoformat(timespec='seconds')} by {r.started_by}: {r.cause};"
            f" told {told}"
        )
        if r.ended_at is not None or r.plan_id not in plans:
            continue
        done = {s.step_id: s for s in prepo.steps(conn, r.id)}
        for i, st in enumerate(plans[r.plan_id].steps, 1):
            d = done.get(st.id)
            mark = (
                f"[x] {d.confirmed_by} ({d.role}) {d.confirmed_at.isoformat(timespec='seconds')}"
                if d
                else "[ ]"
            )
            print(f"   {i}. {mark} {st.id} [{st.owner}] {st.text}")
    return 0
