"""`hazmon bureau migrate|run|check|figures -c bureau.yaml`: the bureau platform's daemon."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from hazmon.bureau.config import BureauConfig, inside, load_config
from hazmon.bureau.export import to_csv, to_xlsx
from hazmon.bureau.figures_api import figures_json, scope_of_code
from hazmon.bureau.flood import replay
from hazmon.bureau.forward import backfill
from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.bureau.periods import PeriodError, ReportPeriod, parse_period
from hazmon.bureau.supervision_figures import COLUMNS, export_rows, supervision_figures
from hazmon.bureau_daemon import BureauDaemon, migrate_bureau
from hazmon.plant import ConfigError
from hazmon.plant.regions import Scope
from hazmon.runtime import apply_process_settings
from hazmon.store.bootstrap import DatabaseUnavailableError

__all__ = ["register"]


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    b = sub.add_parser("bureau", help="the bureau platform: what every enterprise of a region reports")
    acts = b.add_subparsers(dest="bureau_command", metavar="ACTION", required=True)
    for name, help_text, fn in (
        ("check", "check bureau.yaml and exit", _check),
        ("migrate", "create or upgrade the bureau's database", _migrate),
        ("run", "run the bureau daemon: subscriber, downlink, API, /metrics", _run),
    ):
        p = acts.add_parser(name, help=help_text)
        p.add_argument("-c", "--config", required=True, help="bureau config file (bureau.yaml)")
        p.set_defaults(handler=fn)
    dl = acts.add_parser("dead-letters", help="the refused messages kept at the bureau")
    dl_acts = dl.add_subparsers(dest="dead_letters_command", metavar="ACTION", required=True)
    rp = dl_acts.add_parser(
        "replay", help="put dead letters of one reason (flood by default) through the ingest again, once"
    )
    rp.add_argument("-c", "--config", required=True, help="bureau config file (bureau.yaml)")
    rp.add_argument("--reason", default="flood", help="reason_code to replay (default flood)")
    rp.add_argument("--enterprise", default=None, help="only this enterprise's")
    rp.add_argument("--limit", type=int, default=None, help="at most this many (oldest first)")
    rp.set_defaults(handler=_replay)
    f = acts.add_parser(
        "figures",
        help="export the supervision figures of a month, quarter or year (hidden dangers, 挂牌督办, duties)",
    )
    f.add_argument("-c", "--config", required=True, help="bureau config file (bureau.yaml)")
    f.add_argument("--period", required=True, help="2026-03 (a month), 2026-Q3 (a quarter) or 2026 (a year)")
    f.add_argument("--region", help="a region code inside the bureau's (default: the bureau's own)")
    f.add_argument("--format", choices=("csv", "xlsx", "json"), default="csv")
    f.add_argument("--lang", choices=("zh", "en", "both"), default="both", help="column headers")
    f.add_argument(
        "-o", "--out", type=Path, help="file to write (default: standard output; xlsx needs a file)"
    )
    f.set_defaults(handler=_figures)
    fw = acts.add_parser("forward", help="federation: the queue of messages to the parent bureau")
    fw_acts = fw.add_subparsers(dest="forward_command", metavar="ACTION", required=True)
    bf = fw_acts.add_parser(
        "backfill", help="queue for the parent the messages stored since a time and never queued, once"
    )
    bf.add_argument("-c", "--config", required=True, help="bureau config file (bureau.yaml, with parent:)")
    bf.add_argument("--since", required=True, help="ISO time with its zone, e.g. 2026-03-01T00:00:00+08:00")
    bf.set_defaults(handler=_backfill)


def _load(path: str) -> BureauConfig | None:
    try:
        return load_config(path)
    except ConfigError as e:
        for prob in e.problems:
            print(prob, file=sys.stderr)
        print(f"{path}: {len(e.problems)} problem(s)", file=sys.stderr)
        return None


def _check(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return 1
    print(
        f"{args.config}: ok (bureau {cfg.id}, {cfg.region.level} {cfg.region.code}, "
        f"{len(cfg.tokens)} API token(s), broker {cfg.broker.url})"
    )
    for line in federation_lines(cfg):
        print(f"  {line}")
    return 0


def federation_lines(cfg: BureauConfig) -> list[str]:
    """What `check` says of ``parent:`` and ``children:`` (federation), one line each."""
    p = cfg.parent
    out = [
        "parent: none (nothing is forwarded)"
        if p is None
        else f"parent: {p.url} as {p.username} (forwards on hazmon/v1/fed/{p.username}/<enterprise>/up/...)"
    ]
    if not cfg.children:
        out.append("children: none (no forwarded messages are taken)")
    for c in cfg.children:
        out.append(f"child: {c.id} for {c.region.level} {c.region.code} (hazmon/v1/fed/{c.id}/...)")
    return out


def _migrate(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return 1
    try:
        migrate_bureau(cfg)
    except (psycopg.OperationalError, DatabaseUnavailableError) as e:
        print(f"database: {e}".strip(), file=sys.stderr)
        return 1
    print(f"{args.config}: database migrated")
    return 0


def _run(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return 1

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await BureauDaemon(cfg).run_until(stop)

    apply_process_settings()
    try:
        asyncio.run(main())
    except (psycopg.OperationalError, DatabaseUnavailableError) as e:
        print(f"database: {e}".strip(), file=sys.stderr)
        return 1
    except OSError as e:  # the HTTP port taken, or not allowed
        print(f"http {cfg.http.host}:{cfg.http.port}: {e.strerror or e}", file=sys.stderr)
        return 1
    return 0


def _replay(args: argparse.Namespace) -> int:
    """`hazmon bureau dead-letters replay`: stored once by message_id, each dead letter replayed once."""
    cfg = _load(args.config)
    if cfg is None:
        return 1
    if args.limit is not None and args.limit < 1:
        print("--limit: must be >= 1", file=sys.stderr)
        return 2
    lim = cfg.limits
    ingestor = Ingestor(cfg.scope, IngestLimits(lim.max_skew_s, lim.max_message_bytes))
    try:
        with psycopg.connect(cfg.database.resolved_dsn(), autocommit=True) as conn:
            r = replay(conn, ingestor, args.reason, enterprise_id=args.enterprise, limit=args.limit)
    except psycopg.OperationalError as e:
        print(f"database: {e}".strip(), file=sys.stderr)
        return 1
    print(
        f"{args.config}: {r.replayed} dead letter(s) with reason {args.reason} replayed: {r.stored} stored,"
        f" {r.duplicate} duplicate(s), {r.refused} refused again (see bureau_dead_letter)"
    )
    return 0


def _figures_request(args: argparse.Namespace, cfg: BureauConfig) -> tuple[ReportPeriod, Scope] | str:
    """The period and region asked for, or what is wrong with them."""
    try:
        period = parse_period(args.period)
    except PeriodError as e:
        return f"--period: {e}"
    if args.format == "xlsx" and args.out is None:
        return "--format xlsx: give the file with -o"
    own = cfg.region.scope
    if args.region is None:
        return period, own
    if len(args.region) != 6 or not args.region.isdigit():
        return f"--region: '{args.region}' is not a six-digit region code (GB/T 2260)"
    scope = scope_of_code(args.region)
    if not inside(own, scope):
        return f"--region: {scope.code} is not inside this bureau's region {own.code}"
    return period, scope


def _figures(args: argparse.Namespace) -> int:
    cfg = _load(args.config)
    if cfg is None:
        return 1
    asked = _figures_request(args, cfg)
    if isinstance(asked, str):
        print(asked, file=sys.stderr)
        return 2
    period, scope = asked
    tz = cfg.warning_settings.timezone
    try:
        with psycopg.connect(cfg.database.resolved_dsn(), connect_timeout=5) as c:
            f = supervision_figures(c, period, scope, tz, datetime.now(UTC))
    except psycopg.OperationalError as e:
        print(f"database: {e}".strip(), file=sys.stderr)
        return 1
    rows = export_rows(f, "en" if args.lang == "en" else "zh")
    if args.format == "json":
        body = (json.dumps(figures_json(f), ensure_ascii=False, indent=2) + "\n").encode()
    elif args.format == "csv":
        body = to_csv(COLUMNS, rows, args.lang)
    else:
        body = to_xlsx(COLUMNS, rows, title=period.text, lang=args.lang)
    if args.out is None:
        sys.stdout.buffer.write(body)
        sys.stdout.flush()
    else:
        args.out.write_bytes(body)
        n = len(f.enterprises)
        print(f"{args.out}: {period.text} ({period.label_zh}), region {scope.code}, {n} enterprise(s)")
    return 0


def _backfill(args: argparse.Namespace) -> int:
    """`hazmon bureau forward backfill`: messages stored before ``parent:`` was set, queued once, in order."""
    cfg = _load(args.config)
    if cfg is None:
        return 1
    if cfg.parent is None:
        print(f"{args.config}: parent: not set, there is no parent bureau to forward to", file=sys.stderr)
        return 2
    try:
        since = datetime.fromisoformat(args.since)
    except ValueError:
        print(f"--since: {args.since!r} is not an ISO time (2026-03-01T00:00:00+08:00)", file=sys.stderr)
        return 2
    if since.tzinfo is None:
        print(f"--since: {args.since!r} has no time zone (add +08:00 or Z)", file=sys.stderr)
        return 2
    dsn = cfg.database.resolved_dsn()
    try:
        with psycopg.connect(dsn) as read, psycopg.connect(dsn, autocommit=True) as write:
            r = backfill(read, write, since)
    except psycopg.OperationalError as e:
        print(f"database: {e}".strip(), file=sys.stderr)
        return 1
    for mid, why in r.unbuilt:
        print(f"bureau_message {mid}: not queued: {why}", file=sys.stderr)
    print(
        f"{args.config}: {r.queued} message(s) stored since {since.isoformat()} queued for the parent"
        f" {cfg.parent.url}; {r.already} were queued before; {len(r.unbuilt)} could not be rebuilt"
    )
    return 1 if r.unbuilt else 0
