"""`hazmon weather ingest|scan|status|confirm`: official weather warnings (CAP 1.2, GB/T 35965.1-2018).

``ingest FILE...`` stores each warning once; ``scan DIR`` does the same for the ``*.xml``
of a watched directory and moves each file to ``done/`` or ``refused/`` (with a reason
file); ``status`` lists the warnings in force per hazard source and the duties to confirm;
``confirm N --by NAME`` confirms one.
A refused document prints its reason and the command exits 2; the others are still stored.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from hazmon.cmd_plant import load_or_report
from hazmon.plant import Plant
from hazmon.plant.weather_standards import DUTIES_ZH
from hazmon.store import connect, sync_registry
from hazmon.weather import active_at
from hazmon.weather import repository as repo
from hazmon.weather.ingest import Outcome, Tally, ingest, scan_directory

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    w = sub.add_parser("weather", help="official weather warnings (CAP 1.2 / GB/T 35965.1-2018)")
    acts = w.add_subparsers(dest="weather_command", metavar="ACTION", required=True)
    p = acts.add_parser("ingest", help="store CAP files, each warning once by its identifier")
    _common(p)
    p.add_argument("files", nargs="+", metavar="FILE")
    p.set_defaults(handler=_run(_ingest))
    p = acts.add_parser("scan", help="ingest a watched directory's *.xml once (moved to done/ or refused/)")
    _common(p)
    p.add_argument("inbox", metavar="DIR")
    p.set_defaults(handler=_run(_scan))
    p = acts.add_parser("status", help="warnings in force per hazard source, with their duties")
    _common(p)
    p.set_defaults(handler=_run(_status))
    p = acts.add_parser("confirm", help="confirm a duty of a warning in force (its number in `status`)")
    _common(p)
    p.add_argument("duty", type=int, metavar="N")
    p.add_argument("--by", required=True, help="who carried it out")
    p.set_defaults(handler=_run(_confirm))


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, help="plant file")
    p.add_argument("--dsn", help="PostgreSQL DSN (default: $HAZMON_DSN)")
    p.add_argument("--at", help="the time to judge expiry and state at (ISO 8601 with offset); default now")


def _at(s: str | None) -> datetime | None:
    if s is None:
        return datetime.now(UTC)
    try:
        t = datetime.fromisoformat(s)
    except ValueError:
        return None
    return t if t.tzinfo is not None else None


Conn = psycopg.Connection[tuple[object, ...]]


Action = Callable[[argparse.Namespace, Plant, Conn, datetime], int]


def _run(fn: Action) -> Callable[[argparse.Namespace], int]:
    def handler(args: argparse.Namespace) -> int:
        plant = load_or_report(args.config)
        if plant is None:
            return 1
        now = _at(args.at)
        if now is None:
            print(f"--at: '{args.at}' is not an ISO 8601 time with an offset", file=sys.stderr)
            return 2
        try:
            with connect(args.dsn) as conn:
                sync_registry(conn, plant)
                conn.commit()
                conn.autocommit = True
                return fn(args, plant, conn, now)
        except psycopg.OperationalError as e:
            print(f"database: {e}".strip(), file=sys.stderr)
            return 1

    return handler


def _print(outcomes: list[Outcome], tally: Tally) -> int:
    for o in outcomes:
        if o.stored:
            extra = f" (flagged {o.reason.value}: {o.detail})" if o.reason else ""
            print(f"stored {o.identifier}{extra}")
        else:
            print(f"refused {o.reason.value if o.reason else 'unreadable'}: {o.detail}", file=sys.stderr)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(tally.by_reason.items()))
    print(f"{tally.stored} stored" + (f"; {counts}" if counts else ""))
    return 2 if any(not o.stored for o in outcomes) else 0


def _ingest(args: argparse.Namespace, plant: Plant, conn: Conn, now: datetime) -> int:
    tally, outcomes = Tally(), []
    for f in args.files:
        try:
            data = Path(f).read_bytes()
        except OSError as e:
            outcomes.append(Outcome(f, False, None, None, f"{f}: cannot read: {e.strerror}"))
            continue
        o = ingest(conn, plant, data, f, now)
        tally.add(o)
        outcomes.append(o)
    return _print(outcomes, tally)


def _scan(args: argparse.Namespace, plant: Plant, conn: Conn, now: datetime) -> int:
    inbox = Path(args.inbox)
    if not inbox.is_dir():
        print(f"{inbox}: not a directory", file=sys.stderr)
        return 2
    tally = Tally()
    return _print(scan_directory(conn, plant, inbox, now, tally), tally)


def _status(args: argparse.Namespace, plant: Plant, conn: Conn, now: datetime) -> int:
    del args
    active = active_at(plant, repo.load_alerts(conn, now), now)
    if not active:
        print("no weather warning in force")
    for (hs, kind), a in sorted(active.items(), key=lambda kv: (kv[0][0], kv[0][1].value)):
        duties = "；".join(DUTIES_ZH.get(d, d) for d in a.duties)
        print(f"{hs}: {a.colour.zh}{kind.zh}预警 ({a.identifier}) level {a.level.value}; 须落实: {duties}")
    tasks = repo.open_duties(conn, plant.enterprise.id)
    if tasks:
        print("duties to confirm (recorded while the daemon runs; `hazmon weather confirm N --by NAME`):")
    for t in tasks:
        done = (
            f"confirmed by {t.confirmed_by} {t.confirmed_at:%Y-%m-%d %H:%M}"
            if t.confirmed_at
            else "to confirm"
        )
        print(f"  #{t.id} {t.hazard_source} {t.kind}: {DUTIES_ZH.get(t.duty, t.duty)} — {done}")
    return 0


def _confirm(args: argparse.Namespace, plant: Plant, conn: Conn, now: datetime) -> int:
    if not str(args.by).strip():
        print("refused: --by: a name is needed", file=sys.stderr)
        return 2
    if not repo.confirm_duty(conn, plant.enterprise.id, args.duty, args.by, now):
        print(f"refused: duty #{args.duty} is not open or is already confirmed", file=sys.stderr)
        return 2
    print(f"confirmed duty #{args.duty} by {args.by} at {now.isoformat(timespec='seconds')}")
    return 0
