"""`hazmon danger|duty|commitment|supervision ...`: the register, duties, commitments, 挂牌督办.

`hazmon danger add|list|show|step|plan|attach`, `hazmon duty check|list`, `hazmon commitment file|list`,
`hazmon supervision list|progress` (the bureau's 挂牌督办 as received, and our progress on it).

Each command reads the plant file (``-c``), talks to the database (``--dsn`` or
``$HAZMON_DSN``) and names who acts with ``--by NAME --as ROLE`` (operator,
plant_manager, bureau): the role rules of hazmon.supervision decide what each
may do. A refused step prints every reason and exits 2; nothing is written.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg

from hazmon.cmd_plant import load_or_report
from hazmon.plant import Plant
from hazmon.plant.supervision_standards import DUTY_ROLES, MAJOR_CRITERIA, SPECIAL_WORK
from hazmon.store import connect, sync_registry
from hazmon.supervision import bureau as sbureau
from hazmon.supervision import repository as repo
from hazmon.supervision.attachments import ATTACHMENT_MAX_BYTES, AttachmentError
from hazmon.supervision.dangers import (
    Action,
    DangerLevel,
    FoundBy,
    Plan,
    RefusedError,
    Report,
    Step,
    parse_funds,
)
from hazmon.supervision.duty import SOURCE_STATES, Commitment, DutyCheck, commitment_status
from hazmon.supervision.views import attachment_json, commitment_json, danger_json, is_overdue

__all__ = ["register"]

_ROLES = ("operator", "plant_manager", "bureau")


class _UsageError(Exception):
    pass


def _common(p: argparse.ArgumentParser, actor: bool = True, role: str | None = "operator") -> None:
    p.add_argument("-c", "--config", required=True, help="plant file")
    p.add_argument("--dsn", help="PostgreSQL DSN (default: $HAZMON_DSN)")
    if actor:
        p.add_argument("--by", required=True, help="who takes the step (a name)")
        p.add_argument("--as", dest="role", choices=_ROLES, default=role, required=role is None, help="role")
        p.add_argument("--at", help="when (ISO 8601; without offset: the plant's local time); default now")
        p.add_argument("-m", "--comment", default="")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _register_danger(sub)
    _register_duty(sub)
    _register_commitment(sub)
    _register_supervised(sub)


def _register_supervised(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = sub.add_parser("supervision", help="the bureau's supervised rectification (挂牌督办): list, progress")
    acts = m.add_subparsers(dest="supervision_command", metavar="ACTION", required=True)
    p = acts.add_parser("list", help="every supervision received from the bureau, its steps and our reports")
    _common(p, actor=False)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_run(_supervision_list))
    p = acts.add_parser("progress", help="report progress on a supervision (sent up to the bureau)")
    _common(p, role="plant_manager")
    p.add_argument("id", type=int, help="the bureau's supervision id")
    p.add_argument(
        "--done", action="store_true", help="the rectification is done: ask for acceptance on site"
    )
    p.set_defaults(handler=_run(_supervision_progress))


def _register_danger(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    d = sub.add_parser("danger", help="hidden dangers (隐患): report, plan, rectify, accept (销号)")
    acts = d.add_subparsers(dest="danger_command", metavar="ACTION", required=True)
    p = acts.add_parser("add", help="report a hidden danger (--alarm ID: from an alarm, in one step)")
    _common(p)
    p.add_argument("--title", help="what was found (default with --alarm: the alarm's message)")
    p.add_argument("--level", choices=[x.value for x in DangerLevel], required=True)
    p.add_argument(
        "--found-by", choices=[x.value for x in FoundBy], help="default inspection; alarm with --alarm"
    )
    p.add_argument("--hazard-source", help="hazard source id (omit: the whole enterprise)")
    p.add_argument("--unit", default="", help="unit or place")
    p.add_argument("--sensor")
    p.add_argument("--equipment")
    p.add_argument("--criteria", default="", help="major: items of the 20 criteria, e.g. 4,15")
    p.add_argument("--alarm", type=int, help="the alarm it is raised from (fills source, sensor, title)")
    p.add_argument("--check", type=int, help="the duty check it was found in")
    p.add_argument("--description", default="")
    p.set_defaults(handler=_run(_danger_add))
    p = acts.add_parser("list", help="the register, newest first, with deadlines and overdue flags")
    _common(p, actor=False)
    p.add_argument("--state", default="", help="comma list: found, plan, rectifying, applied, accepted")
    p.add_argument("--hazard-source")
    p.add_argument("--level", choices=[x.value for x in DangerLevel])
    p.add_argument("--alarm", type=int, help="only those raised from this alarm")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_run(_danger_list))
    p = acts.add_parser("show", help="one record with its plan, attachments and every step")
    _common(p, actor=False)
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_run(_danger_show))
    p = acts.add_parser("step", help="start, apply (for acceptance), accept (销号), reject, note")
    _common(p)
    p.add_argument("id", type=int)
    p.add_argument("action", choices=["start", "apply", "accept", "reject", "note"])
    p.add_argument("--deadline", type=_date, help="start (general, without a plan): YYYY-MM-DD")
    p.set_defaults(handler=_run(_danger_step))
    _register_plan_attach(acts)


def _register_plan_attach(acts: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = acts.add_parser("plan", help="sign the rectification plan (治理方案); plant manager")
    _common(p, role="plant_manager")
    p.add_argument("id", type=int)
    p.add_argument("--goal", default="", help="目标和任务")
    p.add_argument("--measures", default="", help="方法和措施")
    p.add_argument("--funds", help="经费, yuan (> 0)")
    p.add_argument("--materials", default="", help="物资")
    p.add_argument("--organisation", default="", help="负责治理的机构")
    p.add_argument("--person", action="append", default=[], help="person in charge (repeat)")
    p.add_argument("--deadline", type=_date, help="时限, YYYY-MM-DD (local date)")
    p.add_argument("--safety-measures", default="", help="安全措施")
    p.add_argument("--contingency-plan", default="", help="应急预案")
    p.set_defaults(handler=_run(_danger_plan))
    p = acts.add_parser("attach", help="attach a photo (JPEG, PNG) or a PDF, up to 10 MiB")
    _common(p)
    p.add_argument("id", type=int)
    p.add_argument("file")
    p.add_argument("--type", dest="content_type", help="content type (default: from the extension)")
    p.set_defaults(handler=_run(_danger_attach))


def _register_duty(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    u = sub.add_parser("duty", help="responsible persons' checks (包保责任制): record, status")
    acts = u.add_subparsers(dest="duty_command", metavar="ACTION", required=True)
    p = acts.add_parser("check", help="record a responsible person's check")
    _common(p)
    p.add_argument("--hazard-source", required=True)
    p.add_argument("--role-of", dest="duty_role", choices=list(DUTY_ROLES), required=True, help="whose duty")
    p.add_argument("--person", required=True, help="who checked (the person named in the plant file)")
    p.add_argument("--what", required=True, help="what was checked")
    p.add_argument("--findings", default="", help="what was found (report hidden dangers with --check ID)")
    p.set_defaults(handler=_run(_duty_check))
    p = acts.add_parser("list", help="each hazard source's duties: done, due or overdue; recent checks")
    _common(p, actor=False)
    p.add_argument("--hazard-source")
    p.add_argument("--now", help="evaluate at this time (ISO 8601)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_run(_duty_list))


def _register_commitment(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    m = sub.add_parser("commitment", help="the daily safety commitment (安全承诺)")
    acts = m.add_subparsers(dest="commitment_command", metavar="ACTION", required=True)
    p = acts.add_parser("file", help="file today's commitment; plant manager")
    _common(p, role="plant_manager")
    p.add_argument("--source", action="append", default=[], help=f"ID={'|'.join(SOURCE_STATES)} (repeat)")
    p.add_argument("--all", choices=SOURCE_STATES, help="this state for every source not given by --source")
    p.add_argument(
        "--special-work", action="append", default=[], help=f"KIND=N, KIND in {', '.join(SPECIAL_WORK)}"
    )
    p.set_defaults(handler=_run(_commitment_file))
    p = acts.add_parser("list", help="recent commitments and whether today's is due or missing")
    _common(p, actor=False)
    p.add_argument("--days", type=int, default=14)
    p.add_argument("--now", help="evaluate at this time (ISO 8601)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=_run(_commitment_list))


# --------------------------------------------------------------------------- plumbing


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a date (YYYY-MM-DD)") from None


def _instant(text: str | None, tz: ZoneInfo, what: str = "--at") -> datetime:
    if not text:
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(text)
    except ValueError:
        raise _UsageError(f"{what}: '{text}' is not an ISO 8601 time (2027-03-10T09:30)") from None
    return t if t.tzinfo is not None else t.replace(tzinfo=tz)


Handler = Callable[[argparse.Namespace, Plant, psycopg.Connection[tuple[Any, ...]]], int]


def _run(fn: Handler) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        name = f"hazmon {args.command} {getattr(args, f'{args.command}_command', '')}".strip()
        plant = load_or_report(args.config)
        if plant is None:
            return 1
        try:
            with connect(args.dsn) as conn:
                sync_registry(conn, plant)
                conn.commit()
                return fn(args, plant, conn)
        except RefusedError as e:
            print(f"{name}: refused:", file=sys.stderr)
            for r in e.reasons:
                print(f"  - {r}", file=sys.stderr)
            return 2
        except _UsageError as e:
            print(f"{name}: {e}", file=sys.stderr)
            return 2
        except psycopg.errors.UndefinedTable as e:
            print(f"{name}: the database is not migrated ({e}); run `hazmon db migrate`", file=sys.stderr)
            return 1
        except psycopg.OperationalError as e:
            print(f"{name}: cannot use the database: {str(e).strip()}", file=sys.stderr)
            return 1

    return handler


def _tz(plant: Plant) -> ZoneInfo:
    return ZoneInfo(plant.enterprise.timezone)


def _step(args: argparse.Namespace, plant: Plant, action: Action, data: dict[str, Any] | None = None) -> Step:
    return Step(action, args.by, args.role, _instant(args.at, _tz(plant)), args.comment, data or {})


def _local(t: datetime, tz: ZoneInfo) -> str:
    return t.astimezone(tz).strftime("%Y-%m-%d %H:%M")


# --------------------------------------------------------------------------- dangers


def _danger_add(args: argparse.Namespace, plant: Plant, conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    try:
        criteria = tuple(int(x) for x in args.criteria.replace(" ", "").split(",") if x)
    except ValueError:
        raise _UsageError(
            f"--criteria: '{args.criteria}' is not a comma list of item numbers (1-20)"
        ) from None
    base = Report("", DangerLevel(args.level), FoundBy.INSPECTION)
    if args.alarm is not None:
        found = repo.alarm_subject(conn, plant, args.alarm)
        if found is None:
            raise _UsageError(f"--alarm: no alarm {args.alarm} of {plant.enterprise.id}")
        base = found
    elif args.title is None:
        raise _UsageError("--title: say what was found")
    r = Report(
        title=args.title or base.title,
        level=DangerLevel(args.level),
        found_by=FoundBy(args.found_by) if args.found_by else base.found_by,
        hazard_source=args.hazard_source or base.hazard_source,
        unit=args.unit,
        sensor=args.sensor or base.sensor,
        equipment=args.equipment,
        criteria=criteria,
        alarm_id=args.alarm,
        duty_check_id=args.check,
        description=args.description,
    )
    d = repo.add_danger(conn, plant, _step(args, plant, Action.REPORT, r.to_json()))
    print(f"hidden danger {d.id} reported ({d.level.value}, {d.state.value})")
    return 0


def _danger_list(args: argparse.Namespace, plant: Plant, conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    tz, now = _tz(plant), datetime.now(UTC)
    states = [s for s in args.state.replace(" ", "").split(",") if s]
    ds = repo.list_dangers(
        conn,
        plant.enterprise.id,
        states,
        hazard_source=args.hazard_source,
        level=args.level,
        alarm_id=args.alarm,
    )
    if args.json:
        print(json.dumps([danger_json(d, tz, now) for d in ds], ensure_ascii=False, indent=2))
        return 0
    print(f"{'id':>4} {'level':<7} {'state':<10} {'hazard source':<16} {'deadline':<10}  title")
    for d in ds:
        flag = "  OVERDUE" if is_overdue(d, tz, now) else ""
        print(
            f"{d.id:>4} {d.level.value:<7} {d.state.value:<10} {d.report.hazard_source or '-':<16} "
            f"{d.deadline or '-'!s:<10}  {d.report.title}{flag}"
        )
    return 0


def _danger_show(args: argparse.Namespace, plant: Plant, conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    tz, now = _tz(plant), datetime.now(UTC)
    d = repo.get_danger(conn, plant.enterprise.id, args.id)
    if d is None:
        raise _UsageError(f"no hidden danger {args.id} in {plant.enterprise.id}")
    atts = repo.attachments(conn, d.id)
    if args.json:
        out = danger_json(d, tz, now)
        out["attachments"] = [attachment_json(i, a) for i, a in atts]
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    r = d.report
    print(f"hidden danger {d.id}: {r.title}")
    print(f"  level {r.level.value}; state {d.state.value}; found by {r.found_by.value}")
    where = ", ".join(x for x in (r.hazard_source, r.unit, r.sensor, r.equipment) if x) or plant.enterprise.id
    print(f"  where: {where}")
    for i in r.criteria:
        c = MAJOR_CRITERIA[i]
        print(f"  criterion {i}: {c.text}{'' if c.verified else ' [unverified]'}")
    if r.alarm_id is not None:
        print(f"  raised from alarm {r.alarm_id}")
    if d.deadline is not None:
        print(f"  deadline {d.deadline}{'  OVERDUE' if is_overdue(d, tz, now) else ''}")
    if d.plan is not None:
        p = d.plan
        print(f"  plan: goal: {p.goal}; measures: {p.measures}; funds: {p.funds} yuan {p.materials}".rstrip())
        print(f"        organisation: {p.organisation}; persons: {', '.join(p.persons)}")
        print(f"        safety measures: {p.safety_measures}; contingency plan: {p.contingency_plan}")
    for i, a in atts:
        print(f"  attachment {i}: {a.filename} ({a.content_type}, {a.size} bytes)")
    print("  steps:")
    for s in d.steps:
        comment = f" — {s.comment}" if s.comment else ""
        print(f"    {s.seq:>2} {_local(s.at, tz)} {s.action.value:<7} {s.actor} ({s.role}){comment}")
    return 0


def _danger_step(args: argparse.Namespace, plant: Plant, conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    data = {"deadline": args.deadline.isoformat()} if args.deadline else {}
    if data and args.action != "start":
        raise _UsageError("--deadline goes with 'start' (or a plan)")
    d = repo.add_step(conn, plant, args.id, _step(args, plant, Action(args.action), data))
    print(f"hidden danger {d.id}: {args.action} recorded; state {d.state.value}")
    return 0


def _danger_plan(args: argparse.Namespace, plant: Plant, conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    try:
        funds = None if args.funds is None else parse_funds(args.funds)
    except ValueError as e:
        raise _UsageError(f"--{e}") from None
    plan = Plan(
        goal=args.goal,
        measures=args.measures,
        funds=funds,
        materials=args.materials,
        organisation=args.organisation,
        persons=tuple(args.person),
        deadline=args.deadline,
        safety_measures=args.safety_measures,
        contingency_plan=args.contingency_plan,
    )
    d = repo.add_step(conn, plant, args.id, _step(args, plant, Action.PLAN, plan.to_json()))
    print(f"hidden danger {d.id}: plan signed, deadline {d.deadline}; state {d.state.value}")
    return 0


def _danger_attach(args: argparse.Namespace, plant: Plant, conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    path = Path(args.file)
    try:
        size = path.stat().st_size
        if size > ATTACHMENT_MAX_BYTES:  # refused before reading a huge file into memory
            raise AttachmentError(
                f"{path.name}: {size} bytes is over the limit of {ATTACHMENT_MAX_BYTES} bytes "
                f"({ATTACHMENT_MAX_BYTES // (1024 * 1024)} MiB)"
            )
        content = path.read_bytes()
    except OSError as e:
        raise _UsageError(f"{args.file}: cannot read it ({e.strerror})") from None
    d, att, meta = repo.attach(
        conn,
        plant,
        args.id,
        _step(args, plant, Action.ATTACH),
        filename=path.name,
        content=content,
        content_type=args.content_type,
    )
    print(f"hidden danger {d.id}: attachment {att} ({meta.filename}, {meta.content_type}, {meta.size} bytes)")
    return 0


# --------------------------------------------------------------------------- duties


def _duty_check(args: argparse.Namespace, plant: Plant, conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    c = DutyCheck(
        hazard_source=args.hazard_source,
        role=args.duty_role,
        person=args.person,
        at=_instant(args.at, _tz(plant)),
        what=args.what,
        findings=args.findings,
        recorded_by=args.by,
        recorded_role=args.role,
    )
    cid = repo.add_check(conn, plant, c, datetime.now(UTC))
    print(f"duty check {cid} recorded: {c.hazard_source} {c.role} ({c.person})")
    return 0


def _duty_list(args: argparse.Namespace, plant: Plant, conn: psycopg.Connection[tuple[Any, ...]]) -> int:
    tz = _tz(plant)
    now = _instant(args.now, tz, "--now")
    rows = repo.load_state(conn, plant, now=now).duties(now, args.hazard_source)
    if args.json:
        out = [
            {
                "hazard_source": h,
                "role": r,
                "person": p,
                "period": st.period.value,
                "period_verified": DUTY_ROLES[r].verified,
                "status": st.status,
                "period_end": st.period_end.isoformat(),
                "last_check": None if st.last_check is None else st.last_check.isoformat(),
                "missed_deadline": None if st.missed_deadline is None else st.missed_deadline.isoformat(),
            }
            for h, r, p, st in rows
        ]
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    print(f"{'hazard source':<16} {'role':<12} {'person':<8} {'period':<8} {'status':<8} {'due by':<16} last")
    for h, r, p, st in rows:
        mark = "" if DUTY_ROLES[r].verified else "*"
        last = "-" if st.last_check is None else _local(st.last_check, tz)
        status = st.status.upper() if st.status == "overdue" else st.status
        due = _local(st.period_end, tz)
        print(f"{h:<16} {r:<12} {p:<8} {st.period.value + mark:<8} {status:<8} {due:<16} {last}")
    print("* period not verified (包保责任制办法 2021): set supervision.checks in the plant file")
    return 0


# --------------------------------------------------------------------------- commitments


def _pairs(items: list[str], what: str) -> Iterator[tuple[str, str]]:
    for it in items:
        k, sep, v = it.partition("=")
        if not sep or not k or not v:
            raise _UsageError(f"{what}: '{it}' is not KEY=VALUE")
        yield k.strip(), v.strip()


def _commitment_file(
    args: argparse.Namespace, plant: Plant, conn: psycopg.Connection[tuple[Any, ...]]
) -> int:
    tz = _tz(plant)
    at = _instant(args.at, tz)
    sources = dict(_pairs(args.source, "--source"))
    if args.all:
        for hs in plant.hazard_sources:
            sources.setdefault(hs.id, args.all)
    work: dict[str, int] = {}
    for k, v in _pairs(args.special_work, "--special-work"):
        try:
            work[k] = int(v)
        except ValueError:
            raise _UsageError(f"--special-work: '{k}={v}': the count is a whole number") from None
    c = Commitment(at.astimezone(tz).date(), args.by, at, sources, work, args.comment)
    cid = repo.file_commitment(conn, plant, c, args.role)
    print(f"commitment {cid} filed for {c.day}")
    return 0


def _commitment_list(
    args: argparse.Namespace, plant: Plant, conn: psycopg.Connection[tuple[Any, ...]]
) -> int:
    tz = _tz(plant)
    now = _instant(args.now, tz, "--now")
    eid = plant.enterprise.id
    recent = repo.list_commitments(conn, eid, args.days)
    started = repo.ensure_started(conn, eid, now)
    st = commitment_status(recent, plant.supervision.commitment_due, started, now, tz)
    if args.json:
        out = {
            "today": st.today.isoformat(),
            "due_at": st.due_at.isoformat(),
            "filed_today": st.filed_today is not None,
            "missing_day": None if st.missing_day is None else st.missing_day.isoformat(),
            "commitments": [commitment_json(c) for c in recent],
        }
        print(json.dumps(out, ensure_ascii=False, indent=2))
        return 0
    if st.missing_day is not None:
        print(f"MISSING: the commitment for {st.missing_day} was due by {_local(st.due_at, tz)[11:]}")
    elif st.filed_today is not None:
        late = f" (late: due by {_local(st.due_at, tz)[11:]})" if st.filed_today.at > st.due_at else ""
        print(f"today ({st.today}): filed at {_local(st.filed_today.at, tz)}{late}")
    elif now >= st.due_at:  # past the time, but before supervision began: not counted
        due = _local(st.due_at, tz)[11:]
        print(f"today ({st.today}): not filed; it was due by {due} (before supervision began)")
    else:
        print(f"today ({st.today}): due by {_local(st.due_at, tz)}")
    for c in recent:
        work = ", ".join(f"{SPECIAL_WORK.get(k, k)}×{n}" for k, n in c.special_work.items() if n) or "none"
        srcs = ", ".join(f"{k}: {v}" for k, v in c.sources.items())
        print(f"  {c.day} filed {_local(c.at, tz)} by {c.by}: {srcs}; special work: {work}")
    return 0


# --------------------------------------------------------------------------- 挂牌督办


def _supervision_list(
    args: argparse.Namespace, plant: Plant, conn: psycopg.Connection[tuple[Any, ...]]
) -> int:
    rows = sbureau.supervisions(conn, plant.enterprise.id)
    if args.json:
        print(json.dumps(rows, ensure_ascii=False, indent=2))
        return 0
    for s in rows:
        what = f"hidden danger {s['danger_id']}" if s["danger_id"] is not None else "the enterprise"
        print(
            f"{s['supervision_id']}: {what} — {s['action']} ({s['level']}), deadline {s['deadline']}, "
            f"督办责任人 {s['bureau_person']}; {len(s['progress'])} progress report(s)"
        )
    if not rows:
        print("no supervision received from the bureau")
    return 0


def _supervision_progress(
    args: argparse.Namespace, plant: Plant, conn: psycopg.Connection[tuple[Any, ...]]
) -> int:
    at = _instant(args.at, _tz(plant))
    pid = sbureau.file_progress(
        conn, plant, args.id, actor=args.by, role=args.role, at=at, comment=args.comment, done=args.done
    )
    print(
        f"supervision {args.id}: progress {pid} recorded; it goes up to the bureau with the next uplink round"
    )
    return 0
