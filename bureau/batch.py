"""Many messages in one transaction: the bureau's ingest at the scale of a province or the nation.

`BatchIngestor.handle` takes the messages a subscriber received together and stores them in
one transaction, with the same outcome per message as `hazmon.bureau.ingest.Ingestor.handle`
(stored once by ``message_id``, duplicate, or refused and dead-lettered with its reason):

- every message is checked first (`hazmon.bureau.ingest.check`, pure); a refusal is
  dead-lettered in the batch's transaction;
- aggregates (the bulk: one row per sensor and minute): one ``INSERT … ON CONFLICT
  (message_id) DO NOTHING RETURNING`` into ``bureau_message`` for the batch's messages, then the
  rows of the newly inserted ones alone by COPY straight into ``bureau_aggregate`` (in a
  savepoint); when a row of that sensor and minute is there already (the same minute sent again
  under another message id), through a temporary staging table and ``INSERT … SELECT … ON
  CONFLICT DO NOTHING`` instead. A message seen before adds nothing; the same message twice
  in one batch is stored once;
- heartbeats (the other half of what a fleet sends, one per enterprise and minute): one
  ``INSERT … SELECT unnest`` into ``bureau_message`` and one upsert of their endpoints, under
  the enterprises' locks, leaving what applying them one by one leaves (`BatchIngestor._heartbeats`);
- every other kind goes through the per-kind `hazmon.bureau.ingest.apply`, unchanged (kinds
  added there are handled here with no change);
- registrations are applied first (the batch's other messages may be of these enterprises);
  the enterprises' rows are locked last, in id order (heartbeats applied, ``last_message_at``
  and ``last_seq`` updated), so the rows an alarm's transaction needs are held for a moment only;
- the message log keeps of an aggregates message its envelope and window with the number of
  items (``payload.rows = "bureau_aggregate"``): its items are the rows of ``bureau_aggregate``,
  not kept twice.

A batch the database refuses (a value it does not take) or our code fails on is rolled back and
the messages are handled one by one: only the bad one is dead-lettered (``database_refused`` or
``internal_error``), counted in ``hazmon_bureau_batch_fallbacks_total``. A deadlock with
another worker is retried (up to 3 times); a database that is away raises, and the caller
leaves the whole batch unacknowledged (the broker sends it again).

**Not registered yet** (``unknown_enterprise``): with several workers on one shared
subscription, an enterprise's first aggregates or heartbeat can reach a worker before another
worker has committed its registration. Such a message is *parked*: nothing is written, it stays
unacknowledged (a crash loses nothing) and is tried again with the next batches, for up to
``park_s`` (default 60 s) after it was received; only then is it dead-lettered as
``unknown_enterprise``. Parked messages are counted (``hazmon_bureau_parked_total``) and the
ones waiting now shown (``hazmon_bureau_parked_now``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Generic, TypeVar

import psycopg
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge

from hazmon.bureau.ingest import Ingestor, Outcome, Refused, apply, dead_letter, via_child_of
from hazmon.plant.link import Aggregates, Envelope, Heartbeat, LinkError, Registration, parse_topic
from hazmon.store import is_temporary

__all__ = ["BatchIngestor", "BatchMetrics", "BatchResult", "Item"]

log = structlog.get_logger("hazmon.bureau.batch")

Conn = psycopg.Connection[tuple[object, ...]]
T = TypeVar("T")

_DEADLOCK_RETRIES = 3
_STAGE = (
    "CREATE TEMP TABLE IF NOT EXISTS bureau_stage_aggregate (LIKE bureau_aggregate) ON COMMIT DELETE ROWS"
)
_MESSAGE_COLS = (
    "message_id, enterprise_id, seq, kind, sent_at, received_at, skew_s, skewed, payload, via_child"
)
_AGG_COLS = "enterprise_id, sensor, bucket, count, min, mean, max, last, worst_quality"
_AGG_TYPES = ["text", "text", "timestamptz", "int4", "float8", "float8", "float8", "float8", "text"]
_NEW_MESSAGES = f"""
INSERT INTO bureau_message ({_MESSAGE_COLS})
SELECT * FROM unnest(%s::uuid[], %s::text[], %s::bigint[], %s::text[], %s::timestamptz[],
                     %s::timestamptz[], %s::float8[], %s::boolean[], %s::jsonb[], %s::text[])
ON CONFLICT (message_id) DO NOTHING RETURNING message_id
"""
_HEARTBEATS = """
INSERT INTO bureau_heartbeat AS b
    (enterprise_id, endpoint, protocol, connected, last_reading_at, at, received_at)
SELECT * FROM unnest(%s::text[], %s::text[], %s::text[], %s::boolean[], %s::timestamptz[], %s::timestamptz[],
                     %s::timestamptz[])
ON CONFLICT (enterprise_id, endpoint) DO UPDATE SET protocol = EXCLUDED.protocol,
    connected = EXCLUDED.connected, last_reading_at = EXCLUDED.last_reading_at,
    at = EXCLUDED.at, received_at = EXCLUDED.received_at WHERE b.at <= EXCLUDED.at
"""


@dataclass(frozen=True, slots=True)
class Item(Generic[T]):
    """One received message; ``token`` is the caller's (what it acknowledges with)."""

    raw: bytes
    topic: str
    received_at: datetime
    token: T


@dataclass(slots=True)
class BatchResult(Generic[T]):
    """What became of a batch: ``done`` is committed (acknowledge it), ``parked`` is to be tried again."""

    done: list[tuple[Item[T], Outcome]] = field(default_factory=list)
    parked: list[Item[T]] = field(default_factory=list)


class BatchMetrics:
    """The batching's own counters (the outcomes are counted by `hazmon.bureau.ingest.IngestMetrics`)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        reg = registry if registry is not None else CollectorRegistry()
        self.batches = Counter(
            "hazmon_bureau_batches_total", "Batches of messages stored in one transaction", registry=reg
        )
        self.batch_messages = Counter(
            "hazmon_bureau_batch_messages_total", "Messages handled in batches", registry=reg
        )
        self.fallbacks = Counter(
            "hazmon_bureau_batch_fallbacks_total",
            "Batches the database refused or our code failed on, then handled one message at a time",
            registry=reg,
        )
        self.deadlocks = Counter(
            "hazmon_bureau_batch_deadlocks_total",
            "Batches rolled back on a deadlock or lock timeout with another worker and tried again",
            registry=reg,
        )
        self.staged = Counter(
            "hazmon_bureau_batch_staged_total",
            "Batches of aggregates with a sensor-minute stored before (under another message id):"
            " loaded through the staging table, the first row kept",
            registry=reg,
        )
        self.parked_total = Counter(
            "hazmon_bureau_parked_total",
            "Times a message of a not yet registered enterprise was parked (kept unacknowledged, retried)",
            registry=reg,
        )
        self.parked = Gauge(
            "hazmon_bureau_parked_now",
            "Messages parked now, waiting for their enterprise's registration",
            registry=reg,
        )


class _BadBatchError(Exception):
    """A batch the database refused or our code failed on (carried up for the one-by-one fallback)."""

    def __init__(self, refused: Refused) -> None:
        super().__init__(refused.reason)
        self.refused = refused


class BatchIngestor:
    """Checks, stores and counts batches of messages on one connection (one per thread)."""

    def __init__(self, ingestor: Ingestor, park_s: float = 60.0, metrics: BatchMetrics | None = None) -> None:
        self.ingestor = ingestor
        self.park_s = park_s
        self.metrics = metrics or BatchMetrics()
        # parked messages' envelopes, by id of their raw bytes (kept with them): not parsed again
        self._parked: dict[int, tuple[bytes, Envelope, datetime]] = {}

    def handle(self, conn: Conn, items: Sequence[Item[T]], now: datetime) -> BatchResult[T]:
        """Store ``items`` in one transaction (one by one if that fails), committed when this returns.

        ``now`` judges how long a parked message has waited. Raises only for a database that is
        away (`hazmon.store.is_temporary`): nothing of the batch is acknowledged then.
        """
        if not items:
            return BatchResult()
        self.metrics.batches.inc()
        self.metrics.batch_messages.inc(len(items))
        flooded: list[tuple[Item[T], Outcome]] = []
        admitted: list[Item[T]] = []
        for it in items:  # the flood limit first (`FloodGuardedIngestor`): a parked message was admitted
            o = None if id(it.raw) in self._parked else self.ingestor.over_limit(conn, it.raw, it.topic)
            if o is None:
                admitted.append(it)
            else:
                flooded.append((it, o))
        items = admitted
        try:
            result = self._retrying(conn, items, now) if items else BatchResult()
        except _BadBatchError as e:
            self.metrics.fallbacks.inc()
            log.warning("bureau batch refused, handling its messages one by one", reason=str(e))
            result = BatchResult()
            for it in items:
                try:
                    one = self._retrying(conn, [it], now)
                except _BadBatchError as bad:
                    with conn.transaction():
                        dead_letter(conn, it.topic, it.raw, bad.refused)
                    one = BatchResult(done=[(it, Outcome("refused", None, bad.refused.enterprise_id,
                                                         refused=bad.refused))])  # fmt: skip
                result.done.extend(one.done)
                result.parked.extend(one.parked)
        result.done.extend(flooded)
        for _, o in result.done:
            self.ingestor.metrics.count(o)
            if o.refused is not None:
                log.warning(
                    "bureau message refused",
                    enterprise=o.refused.enterprise_id,
                    reason_code=o.refused.reason_code,
                    reason=o.refused.reason,
                )
        self.metrics.parked_total.inc(len(result.parked))
        for it, _ in result.done:
            self._parked.pop(id(it.raw), None)
        for k in [
            k for k, (_, _, at) in self._parked.items() if (now - at).total_seconds() > 2 * self.park_s
        ]:
            del self._parked[k]  # parked by a session gone since (it sends them again): forgotten
        return result

    def _retrying(self, conn: Conn, items: Sequence[Item[T]], now: datetime) -> BatchResult[T]:
        for attempt in range(_DEADLOCK_RETRIES + 1):
            try:
                with conn.transaction():
                    return self._batch(conn, items, now)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.LockNotAvailable):
                if attempt == _DEADLOCK_RETRIES:
                    raise
                self.metrics.deadlocks.inc()
            except psycopg.Error as e:
                if is_temporary(e) or conn.closed or conn.broken:
                    raise
                first = (str(e).strip().splitlines() or [""])[0]
                who = _who(items)
                raise _BadBatchError(
                    Refused("database_refused", f"database refused it: {type(e).__name__}: {first}", who)
                ) from e
            except Exception as e:  # a defect of ours: the fallback finds the one message it is
                log.exception("bureau batch failed")
                raise _BadBatchError(
                    Refused("internal_error", f"{type(e).__name__}: {e}", _who(items))
                ) from e
        raise AssertionError("unreachable")

    def _batch(self, conn: Conn, items: Sequence[Item[T]], now: datetime) -> BatchResult[T]:
        result: BatchResult[T] = BatchResult()
        lim = self.ingestor.limits
        firsts: dict[uuid.UUID, Item[T]] = {}
        again: list[tuple[Item[T], uuid.UUID]] = []  # the same message_id a second time in this batch
        aggs: list[tuple[Item[T], Envelope]] = []
        others: list[tuple[Item[T], Envelope]] = []
        for it in items:
            cached = self._parked.get(id(it.raw))
            checked = (
                cached[1]
                if cached and cached[0] is it.raw
                else self.ingestor.check_one(it.raw, it.topic)  # federation: a child's topic too
            )
            if isinstance(checked, Refused):
                dead_letter(conn, it.topic, it.raw, checked)
                result.done.append((it, Outcome("refused", None, checked.enterprise_id, refused=checked)))
                continue
            if checked.message_id in firsts:
                again.append((it, checked.message_id))
                continue
            firsts[checked.message_id] = it
            (aggs if isinstance(checked.payload, Aggregates) else others).append((it, checked))
        fate: dict[uuid.UUID, Outcome | None] = {}  # None: parked
        regs = [(it, env) for it, env in others if isinstance(env.payload, Registration)]
        beats = [(it, env) for it, env in others if isinstance(env.payload, Heartbeat)]
        rest = [(it, env) for it, env in others if not isinstance(env.payload, Registration | Heartbeat)]
        for it, env in regs:  # first: the batch's other messages may be of these enterprises
            fate[env.message_id] = self._settle(
                conn, it, env, _apply(conn, env, it, lim.max_skew_s), now, result
            )
        last = self._aggregates(conn, aggs, now, result, fate) if aggs else {}
        # the enterprises' rows last and in id order: two workers' batches never lock them crosswise,
        # and an alarm's transaction (the fast lane) waits for them a moment only
        locked = _lock_enterprises(conn, {env.enterprise_id for _, env in rest + beats} | set(last))
        if beats:  # under the enterprises' locks: two workers' upserts never cross
            _newest(last, self._heartbeats(conn, beats, locked, now, result, fate))
        for it, env in rest:
            fate[env.message_id] = self._settle(
                conn, it, env, _apply(conn, env, it, lim.max_skew_s), now, result
            )
        if last:
            eids = sorted(last)
            conn.execute(
                "UPDATE bureau_enterprise e SET last_message_at = GREATEST(e.last_message_at, v.at),"
                " last_seq = GREATEST(e.last_seq, v.seq)"
                " FROM unnest(%s::text[], %s::timestamptz[], %s::bigint[]) AS v(id, at, seq)"
                " WHERE e.enterprise_id = v.id",
                (eids, [last[e][0] for e in eids], [last[e][1] for e in eids]),
            )
        for it, mid in again:
            first = fate.get(mid)
            if first is None:
                result.parked.append(it)
            elif first.refused is not None:
                dead_letter(conn, it.topic, it.raw, first.refused)
                result.done.append((it, first))
            else:
                result.done.append((it, Outcome("duplicate", first.kind, first.enterprise_id)))
        return result

    def _heartbeats(  # noqa: PLR0917
        self,
        conn: Conn,
        beats: list[tuple[Item[T], Envelope]],
        known: set[str],
        now: datetime,
        result: BatchResult[T],
        fate: dict[uuid.UUID, Outcome | None],
    ) -> dict[str, tuple[datetime, int]]:
        """Heartbeats in two statements, as `hazmon.bureau.ingest.apply` stores them one by one.

        Half of what a fleet sends is heartbeats (one per enterprise and minute beside its
        aggregates); one by one they took four round trips each, about as much of PostgreSQL's
        time as the aggregates' rows (measured in-process, bureau README "Scale"). The message log
        gets one ``INSERT … SELECT unnest``; the endpoints of the new ones one upsert, per
        (enterprise, endpoint) the row of the latest ``at`` (of equal ones the later in the batch),
        which is what applying them in order leaves. ``known``: the enterprises registered (their
        rows locked by the caller). Returns per enterprise the newest (received_at, seq) stored.
        """
        take, new = self._log(conn, beats, known, now, result, fate, _whole)
        latest: dict[tuple[str, str], tuple[datetime, tuple[object, ...]]] = {}
        for it, env in take:
            p = env.payload
            assert isinstance(p, Heartbeat)
            if env.message_id not in new:
                continue
            for ep in p.endpoints:
                key = (env.enterprise_id, ep.endpoint)
                kept = latest.get(key)
                if kept is None or p.at >= kept[0]:
                    row = (*key, ep.protocol, ep.connected, ep.last_reading_at, p.at, it.received_at)
                    latest[key] = (p.at, row)
        if latest:
            ordered = (latest[k][1] for k in sorted(latest))
            conn.execute(_HEARTBEATS, [list(c) for c in zip(*ordered, strict=True)])
        return self._settle_logged(conn, take, new, now, result, fate)

    def _log(  # noqa: PLR0917
        self,
        conn: Conn,
        msgs: list[tuple[Item[T], Envelope]],
        known: set[str],
        now: datetime,
        result: BatchResult[T],
        fate: dict[uuid.UUID, Outcome | None],
        payload: Callable[[Envelope], str],
    ) -> tuple[list[tuple[Item[T], Envelope]], set[uuid.UUID]]:
        """Messages of one bulk kind into the message log in one statement.

        Returns (those of registered enterprises, the ids new to the log). ``payload``: what the
        log keeps of one (JSON). A message of an enterprise not in ``known`` is parked (refused
        once it waited ``park_s``).
        """
        take: list[tuple[Item[T], Envelope]] = []
        for it, env in msgs:
            if env.enterprise_id in known:
                take.append((it, env))
                continue
            why = f"enterprise_id: {env.enterprise_id!r} has not registered (a registration comes first)"
            refused = Refused("unknown_enterprise", why, env.enterprise_id)
            fate[env.message_id] = self._settle(
                conn, it, env, Outcome("refused", env.kind, env.enterprise_id, refused=refused), now, result
            )
        if not take:
            return [], set()
        max_skew = self.ingestor.limits.max_skew_s
        rows = []
        for it, env in take:
            skew = (env.sent_at - it.received_at).total_seconds()
            rows.append((env.message_id, env.enterprise_id, env.seq, env.kind, env.sent_at, it.received_at,
                         skew, skew > max_skew, payload(env), via_child_of(it.topic)))  # fmt: skip
        cols = [list(c) for c in zip(*rows, strict=True)]  # arrays, one per column, for unnest
        return take, {uuid.UUID(str(r[0])) for r in conn.execute(_NEW_MESSAGES, cols).fetchall()}

    def _settle_logged(  # noqa: PLR0917
        self,
        conn: Conn,
        take: list[tuple[Item[T], Envelope]],
        new: set[uuid.UUID],
        now: datetime,
        result: BatchResult[T],
        fate: dict[uuid.UUID, Outcome | None],
    ) -> dict[str, tuple[datetime, int]]:
        """Stored (new to the log) or duplicate, for the messages `_log` took.

        Returns per enterprise the newest (received_at, seq) stored.
        """
        max_skew = self.ingestor.limits.max_skew_s
        last: dict[str, tuple[datetime, int]] = {}
        for it, env in take:
            eid = env.enterprise_id
            if env.message_id in new:
                o = Outcome(
                    "stored", env.kind, eid, skewed=(env.sent_at - it.received_at).total_seconds() > max_skew
                )
                at, seq = last.get(eid, (it.received_at, env.seq))
                last[eid] = (max(at, it.received_at), max(seq, env.seq))
            else:
                o = Outcome("duplicate", env.kind, eid)
            fate[env.message_id] = self._settle(conn, it, env, o, now, result)  # on_stored there
        return last

    def _settle(  # noqa: PLR0917
        self, conn: Conn, it: Item[T], env: Envelope, o: Outcome, now: datetime, result: BatchResult[T]
    ) -> Outcome | None:
        """Record ``o`` for ``it`` (parked when its enterprise is not registered yet and it is young)."""
        if o.refused is not None and o.refused.reason_code == "unknown_enterprise":
            if (now - it.received_at).total_seconds() < self.park_s:
                result.parked.append(it)
                self._parked[id(it.raw)] = (it.raw, env, it.received_at)
                return None
            why = f"{o.refused.reason}; waited {self.park_s:g} s for it"
            o = Outcome(
                "refused",
                o.kind,
                o.enterprise_id,
                refused=Refused("unknown_enterprise", why, o.enterprise_id),
            )
        if o.refused is not None:
            dead_letter(conn, it.topic, it.raw, o.refused)
        elif o.status == "stored" and self.ingestor.on_stored is not None:
            self.ingestor.on_stored(conn, env, it.raw)  # e.g. the forward outbox, in this transaction
        result.done.append((it, o))
        return o

    def _aggregates(
        self,
        conn: Conn,
        aggs: list[tuple[Item[T], Envelope]],
        now: datetime,
        result: BatchResult[T],
        fate: dict[uuid.UUID, Outcome | None],
    ) -> dict[str, tuple[datetime, int]]:
        """Aggregates of known enterprises by COPY; per enterprise the newest (received_at, seq) stored."""
        ids = sorted({env.enterprise_id for _, env in aggs})
        known = {str(r[0]) for r in conn.execute(
            "SELECT enterprise_id FROM bureau_enterprise WHERE enterprise_id = ANY(%s)", (ids,)
        ).fetchall()}  # fmt: skip
        # the message log first: only the messages new to it carry their rows in
        take, new = self._log(conn, aggs, known, now, result, fate, _summary)
        fresh = [env for _, env in take if env.message_id in new]
        if fresh:
            try:
                with conn.transaction():  # a savepoint: straight into the table, as fast as a raw COPY
                    _copy_rows(conn, "bureau_aggregate", fresh)
            except psycopg.errors.UniqueViolation:
                # a row of that sensor and minute is there already (the enterprise sent the minute
                # again under a new message id): through the staging table, the first one kept.
                # Made here, in this transaction (rare; rolled back with it, made again next time)
                conn.execute(_STAGE)
                _copy_rows(conn, "bureau_stage_aggregate", fresh)
                conn.execute(
                    f"INSERT INTO bureau_aggregate ({_AGG_COLS}) SELECT {_AGG_COLS}"
                    " FROM bureau_stage_aggregate ON CONFLICT (enterprise_id, sensor, bucket) DO NOTHING"
                )
                conn.execute("TRUNCATE bureau_stage_aggregate")
                self.metrics.staged.inc()
        return self._settle_logged(conn, take, new, now, result, fate)


def _lock_enterprises(conn: Conn, ids: set[str]) -> set[str]:
    """Lock the enterprises' rows in id order (two workers never lock them crosswise); the registered ones."""
    if not ids:
        return set()
    rows = conn.execute(
        "SELECT enterprise_id FROM bureau_enterprise WHERE enterprise_id = ANY(%s)"
        " ORDER BY enterprise_id FOR NO KEY UPDATE",
        (sorted(ids),),
    ).fetchall()
    return {str(r[0]) for r in rows}


def _newest(into: dict[str, tuple[datetime, int]], more: dict[str, tuple[datetime, int]]) -> None:
    """Per enterprise the newest (received_at, seq) of both."""
    for eid, (at2, seq2) in more.items():
        at, seq = into.get(eid, (at2, seq2))
        into[eid] = (max(at, at2), max(seq, seq2))


def _apply(conn: Conn, env: Envelope, it: Item[T], max_skew_s: float) -> Outcome:
    """`hazmon.bureau.ingest.apply`, with the child bureau that forwarded it (federation)."""
    return apply(conn, env, it.received_at, max_skew_s, via_child=via_child_of(it.topic))


def _copy_rows(conn: Conn, table: str, envs: list[Envelope]) -> None:
    """COPY ``envs``' rows into ``table`` in the binary format.

    Each value goes as its column's own type: no text to format here and parse there (measured
    about 4x less of the worker's time per row than text ``write_row``). The types are the
    columns' in 0801 and must stay so.
    """
    with conn.cursor() as cur, cur.copy(f"COPY {table} ({_AGG_COLS}) FROM STDIN (FORMAT BINARY)") as cp:
        cp.set_types(_AGG_TYPES)
        for env in envs:
            p = env.payload
            assert isinstance(p, Aggregates)
            for a in p.items:
                cp.write_row((env.enterprise_id, a.sensor, p.window_start, a.count, a.min, a.mean, a.max,
                              a.last, a.worst_quality))  # fmt: skip


def _whole(env: Envelope) -> str:
    """What the message log keeps of a heartbeat: its payload whole (as `ingest.apply` keeps it)."""
    return env.payload.model_dump_json()


def _summary(env: Envelope) -> str:
    """What the message log keeps of an aggregates message: its window; the items are its rows."""
    p = env.payload
    assert isinstance(p, Aggregates)
    return json.dumps({"kind": p.kind, "window_start": p.window_start.isoformat(), "window_s": p.window_s,
                       "items": len(p.items), "rows": "bureau_aggregate"})  # fmt: skip


def _who(items: Sequence[Item[T]]) -> str | None:
    """The enterprise of the batch's topics, when they are all one enterprise's."""
    ents: set[str | None] = set()
    for it in items:
        try:
            ents.add(parse_topic(it.topic)[0])
        except LinkError:
            ents.add(None)
    return ents.pop() if len(ents) == 1 else None
