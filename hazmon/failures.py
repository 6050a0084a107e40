"""A failure that repeats every second is logged twice: once when it starts, once when it ends.

The daemon's loops (the tick, the alarm service's recording, its start) retry every
second while the database is down. Logging each attempt with a traceback filled the
log with identical lines (one traceback a second for as long as the outage lasted)
and hid everything else. `Failures` keeps one line when a failure starts (with the
traceback only when the error is not an expected outage: a bug shows its stack
once), a counter (``hazmon_pipeline_errors_total{stage}``, incremented on every
failed attempt), and one line when it ends, saying how many attempts failed and for
how long.
"""

from __future__ import annotations

import time

import psycopg
import structlog

from hazmon.collector import Metrics

__all__ = ["Failures", "is_outage"]

log = structlog.get_logger("hazmon.daemon")


def is_outage(e: BaseException) -> bool:
    """An error of the database or network being away (expected, no traceback) rather than a bug."""
    return isinstance(e, psycopg.OperationalError | psycopg.InterfaceError | OSError | TimeoutError)


class Failures:
    """The state of one repeated action (``stage``): failing since when, how many attempts.

    Args:
        metrics: where ``hazmon_pipeline_errors_total{stage}`` is counted.
        stage: the metric's label, and the log lines' ``stage``.
        what: the log line's event when the failure starts (``"<what> failing"``) and ends.
    """

    def __init__(self, metrics: Metrics, stage: str, what: str) -> None:
        self.metrics = metrics
        self.stage = stage
        self.what = what
        self.count = 0  # failed attempts of the current failure (0: not failing)
        self.since: float | None = None  # time.time() of its first attempt
        self.last_error = ""

    @classmethod
    def named(cls, metrics: Metrics, **what: str) -> dict[str, Failures]:
        """One `Failures` per stage: ``named(m, tick="rules/alarms tick")``."""
        return {stage: cls(metrics, stage, w) for stage, w in what.items()}

    @property
    def failing(self) -> bool:
        return self.count > 0

    def failed(self, e: BaseException) -> None:
        """An attempt failed: counted; logged only when it is the first of a failure."""
        self.metrics.inc("hazmon_pipeline_errors_total", 1, {"stage": self.stage})
        self.last_error = f"{type(e).__name__}: {e}".strip().rstrip(":")
        self.count += 1
        if self.count > 1:
            return
        self.since = time.time()
        bug: dict[str, BaseException] = {} if is_outage(e) else {"exc_info": e}  # its stack, once
        log.error(
            f"{self.what} failing; retried every second, logged again when it recovers",
            stage=self.stage,
            error=self.last_error,
            **bug,
        )

    def ok(self) -> None:
        """An attempt succeeded: a failure, if there was one, ends with one line."""
        if not self.count:
            return
        log.info(
            f"{self.what} recovered",
            stage=self.stage,
            failed_attempts=self.count,
            failing_s=round(time.time() - (self.since or time.time()), 1),
            last_error=self.last_error,
        )
        self.count, self.since = 0, None

    def state(self) -> dict[str, object]:
        """For readiness: failing or not, since when, how many attempts, the last error."""
        if not self.count:
            return {"failing": False}
        return {
            "failing": True,
            "failed_attempts": self.count,
            "since": self.since,
            "error": self.last_error,
        }
