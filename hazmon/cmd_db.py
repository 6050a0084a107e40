"""`hazmon db migrate|load` and `hazmon assessment add|list`."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import date

import psycopg

from hazmon.cmd_plant import load_or_report
from hazmon.plant import AssessmentRecord, assessment_status
from hazmon.plant.standards import RETENTION_DEFAULT_DAYS, Grade
from hazmon.store import (
    StorageSettings,
    add_assessment,
    connect,
    dsn_from_env,
    list_assessments,
    migrate,
    sync_registry,
)
from hazmon.store.bootstrap import DatabaseUnavailableError, ensure_database

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    db = sub.add_parser("db", help="database: migrate, load the plant registry")
    dbs = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    p = dbs.add_parser("migrate", help="apply migrations (idempotent; safe on every start)")
    p.add_argument("--dsn", help="PostgreSQL DSN (default: $HAZMON_DSN)")
    p.add_argument(
        "--retention-days",
        type=int,
        default=RETENTION_DEFAULT_DAYS,
        help=f"keep readings this many days (>= 30; default {RETENTION_DEFAULT_DAYS})",
    )
    p.add_argument("--compress-after-days", type=int, default=7)
    p.add_argument(
        "--retention-1m-days", type=int, default=0, help="keep readings_1m this long (default: 730, >= raw)"
    )
    p.add_argument(
        "--retention-1h-days", type=int, default=0, help="keep readings_1h this long (default: 3650, >= 1m)"
    )
    p.add_argument("--mode", choices=("auto", "plain", "timescaledb"), default="auto")
    p.set_defaults(handler=_one_line(_migrate, "hazmon db migrate"))
    p = dbs.add_parser("load", help="upsert the plant file's enterprise, hazard sources and sensors")
    p.add_argument("file")
    p.add_argument("--dsn")
    p.set_defaults(handler=_one_line(_load, "hazmon db load"))

    a = sub.add_parser("assessment", help="assessment records (评估报告) of hazard sources")
    acts = a.add_subparsers(dest="assessment_command", metavar="ACTION", required=True)
    p = acts.add_parser("add", help="record an assessment report")
    p.add_argument("-c", "--config", required=True, help="plant file")
    p.add_argument("--hazard-source", required=True)
    p.add_argument("--report-date", required=True, type=date.fromisoformat, help="YYYY-MM-DD")
    p.add_argument("--assessor", required=True)
    p.add_argument("--r", dest="r_value", required=True, type=float, help="R found by the assessment")
    p.add_argument("--grade", required=True, type=int, choices=(1, 2, 3, 4))
    p.add_argument("--filed-on", type=date.fromisoformat, help="filing (备案) date, YYYY-MM-DD")
    p.add_argument("--dsn")
    p.set_defaults(handler=_one_line(_add, "hazmon assessment add"))
    p = acts.add_parser("list", help="list records with next due date and overdue flags")
    p.add_argument("-c", "--config", required=True, help="plant file")
    p.add_argument("--hazard-source")
    p.add_argument("--today", type=date.fromisoformat, default=None, help="evaluate as of this date")
    p.add_argument("--dsn")
    p.set_defaults(handler=_one_line(_list, "hazmon assessment list"))


def _one_line(handler: Callable[[argparse.Namespace], int], name: str) -> Callable[[argparse.Namespace], int]:
    """``handler`` with a database that cannot be reached said in one line, not a traceback."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except DatabaseUnavailableError as e:
            print(f"{name}: {e}", file=sys.stderr)
        except psycopg.OperationalError as e:
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            print(f"{name}: {first} (a new database: hazmon db migrate creates it)", file=sys.stderr)
        return 1

    return run


def _migrate(args: argparse.Namespace) -> int:
    try:
        settings = StorageSettings(
            args.retention_days,
            args.compress_after_days,
            args.mode,
            args.retention_1m_days,
            args.retention_1h_days,
        )
    except ValueError as e:
        print(f"hazmon db migrate: {e}", file=sys.stderr)
        return 2
    dsn = args.dsn or dsn_from_env()
    if ensure_database(dsn):
        print(f"created database {psycopg.conninfo.conninfo_to_dict(dsn).get('dbname')}")
    with connect(dsn) as conn:
        res = migrate(conn, settings)
    print(
        f"storage mode {res.mode}; applied {len(res.applied)} migration(s): {', '.join(res.applied) or '-'}"
    )
    return 0


def _load(args: argparse.Namespace) -> int:
    plant = load_or_report(args.file)
    if plant is None:
        return 1
    with connect(args.dsn) as conn:
        ids = sync_registry(conn, plant)
    print(f"loaded {plant.enterprise.id}: {len(plant.hazard_sources)} hazard sources, {len(ids)} sensors")
    return 0


def _add(args: argparse.Namespace) -> int:
    plant = load_or_report(args.config)
    if plant is None:
        return 1
    try:
        hs = plant.hazard_source(args.hazard_source)
    except KeyError:
        print(
            f"hazmon assessment add: --hazard-source: '{args.hazard_source}' is not in {args.config}",
            file=sys.stderr,
        )
        return 2
    rec = AssessmentRecord(
        hazard_source=hs.id,
        report_date=args.report_date,
        assessor=args.assessor,
        r_value=args.r_value,
        grade=Grade(args.grade),
        filed_on=args.filed_on,
        inventory={i.chemical.id: i.max_t for i in hs.inventory},
    )
    with connect(args.dsn) as conn:
        sync_registry(conn, plant)
        aid = add_assessment(conn, plant.enterprise.id, rec)
    print(f"assessment {aid} recorded for {hs.id}")
    return 0


def _list(args: argparse.Namespace) -> int:
    plant = load_or_report(args.config)
    if plant is None:
        return 1
    today = args.today or date.today()
    with connect(args.dsn) as conn:
        recs = list_assessments(conn, plant.enterprise.id, args.hazard_source)
    latest: dict[str, AssessmentRecord] = {}
    for r in recs:
        latest.setdefault(r.hazard_source, r)
    print(
        f"{'id':>4} {'hazard source':<16} {'report':<10} {'grade':>5} {'R':>7} {'filed':<10} "
        f"{'next due':<10} status"
    )
    for r in recs:
        try:
            hs = plant.hazard_source(r.hazard_source)
        except KeyError:
            status = "hazard source no longer in the plant file"
            print(
                f"{r.id:>4} {r.hazard_source:<16} {r.report_date} {int(r.grade):>5} {r.r_value:>7.1f} "
                f"{r.filed_on or '-'!s:<10} {'-':<10} {status}"
            )
            continue
        st = assessment_status(r, hs, today)
        flags = []
        if latest[r.hazard_source] is not r:
            flags.append("superseded")
        else:
            if st.reassessment_overdue:
                flags.append(f"REASSESSMENT OVERDUE ({st.due_reason})")
            if st.filing_overdue:
                flags.append(f"FILING OVERDUE (deadline {st.filing_deadline})")
        print(
            f"{r.id:>4} {r.hazard_source:<16} {r.report_date} {int(r.grade):>5} {r.r_value:>7.1f} "
            f"{r.filed_on or '-'!s:<10} {st.next_due!s:<10} {'; '.join(flags) or 'ok'}"
        )
    for hs in plant.hazard_sources:
        if hs.id not in latest and (args.hazard_source in (None, hs.id)):
            print(
                f"{'-':>4} {hs.id:<16} {'-':<10} {'-':>5} {'-':>7} {'-':<10} {today!s:<10} "
                "NO ASSESSMENT ON RECORD"
            )
    return 0
