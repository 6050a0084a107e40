"""`hazmon bureau migrate|run|check -c bureau.yaml`: the bureau platform's daemon."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from datetime import datetime

import psycopg

from hazmon.bureau.config import BureauConfig, load_config
from hazmon.bureau.flood import replay
from hazmon.bureau.forward import backfill
from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.bureau_daemon import BureauDaemon, migrate_bureau
from hazmon.plant import ConfigError
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
