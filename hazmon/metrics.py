"""The daemon's own metric families (the components declare theirs where they count)."""

from __future__ import annotations

from hazmon.collector import Metrics

__all__ = ["daemon_metrics"]


def daemon_metrics() -> Metrics:
    """The daemon's own families, declared with their label names and known children before any input.

    A registry per daemon (`Metrics`), not prometheus_client's global one: tests run several
    daemons in one process. The components declare their own families (`BatchWriter`,
    `MqttInput`, `OpcUaConnection`…).
    """
    m = Metrics()
    m.counter(
        "hazmon_pipeline_errors_total",
        "Batches or ticks a pipeline stage failed on (logged, the pipeline goes on), by stage",
        ("stage",),
        [{"stage": s} for s in ("rules", "alarms", "alarms_start", "tick", "upkeep", "supervision")],
    )
    m.gauge(
        "hazmon_system_condition",
        "1 while a loss condition of the daemon itself is active, by key",
        ("key",),
        [{"key": k} for k in ("spool_full", "spool_io_error", "unclean_shutdown")],
    )
    m.gauge("hazmon_previous_run_unclean", "1 when the previous run ended without a clean stop")
    m.histogram(
        "hazmon_alarm_to_notification_seconds",
        "From an alarm's finding (its reading's source time) to each first-step notification sent",
    )
    return m
