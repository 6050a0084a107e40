"""The roof's wiring of federation (province → nation) into a bureau daemon.

A bureau with ``parent:`` queues every message it stores for its parent in the storing
transaction (the ingestor's ``on_stored`` → `hazmon.bureau.forward.enqueue`) and runs a
`hazmon.bureau.forward.Forwarder` thread; a bureau with ``children:`` also subscribes to what
they forward and checks it against each child's region (`hazmon.bureau.ingest.check_forwarded`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import psycopg

from hazmon.bureau.config import BureauConfig
from hazmon.bureau.forward import Forwarder, enqueue
from hazmon.collector import Metrics
from hazmon.http import CheckResult, HttpServer
from hazmon.plant.link import Envelope
from hazmon.plant.regions import Scope

__all__ = ["children_of", "forwarder_of", "on_stored_of", "watch_forwarder"]

Conn = psycopg.Connection[tuple[object, ...]]


def children_of(cfg: BureauConfig) -> dict[str, Scope]:
    """``children:`` as child id → the region it may forward for."""
    return {c.id: c.scope for c in cfg.children}


def on_stored_of(cfg: BureauConfig) -> Callable[[Conn, Envelope, bytes], None] | None:
    """What the ingestor does in the storing transaction: queue for the parent (with ``parent:``)."""
    return enqueue if cfg.parent is not None else None


def forwarder_of(cfg: BureauConfig) -> Forwarder | None:
    return None if cfg.parent is None else Forwarder(cfg.parent, cfg.database.resolved_dsn())


def watch_forwarder(f: Forwarder, metrics: Metrics, http: HttpServer) -> None:
    """The forwarder's metrics and its /readyz line (always ok: a parent outage is not this bureau's)."""
    st = f.stats

    def counters() -> Mapping[tuple[str, ...], float]:
        return {
            ("forwarded",): float(st.acked),
            ("published",): float(st.published),
            ("replayed",): float(st.replayed),
            ("failures",): float(st.failures),
            ("connect_failures",): float(st.connect_failures),
            ("refused",): float(st.refused),
            ("no_subscriber",): float(st.no_subscriber),
            ("malformed",): float(st.malformed),
        }

    metrics.gauge_fn(
        "hazmon_bureau_forward",
        "Forwarding to the parent bureau since start, by what: forwarded (acknowledged), published,"
        " replayed (published again after an outage), failures (passes retried), connect_failures,"
        " refused (by the parent's broker), no_subscriber (PUBACK 0x10: replayed), malformed (rows skipped)",
        counters,
        ("what",),
    )
    metrics.gauge_fn(
        "hazmon_bureau_forward_pending",
        "Messages waiting in bureau_forward for the parent's acknowledgement (grows during an outage)",
        lambda: {} if f.pending is None else {(): float(f.pending)},
    )
    metrics.gauge_fn(
        "hazmon_bureau_forward_connected",
        "1 while connected to the parent bureau's broker",
        lambda: {(): float(f.connected)},
    )

    def check() -> CheckResult:
        return True, {
            "parent": f.settings.url,
            "connected": f.connected,
            "standby": f.standby,
            "pending": f.pending,
            "forwarded": st.acked,
            "last_error": f.last_error,
        }

    http.add_check("forwarder", check)
