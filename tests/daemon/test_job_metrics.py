"""Each TimescaleDB job is a metric: last success, failures, and whether it has a problem."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from prometheus_client.parser import text_string_to_metric_families

from hazmon.collector import Metrics
from hazmon.store import JobHealth
from hazmon.store.rollups import JobRow, assess_jobs
from hazmon.upkeep import job_metrics


def test_every_job_is_a_metric_with_last_success_and_failures() -> None:
    now = datetime(2026, 12, 4, 7, 2, tzinfo=UTC)
    ok = datetime(2026, 12, 4, 7, 1, 30, tzinfo=UTC)
    rows = [
        JobRow(
            1004,
            "policy_refresh_continuous_aggregate",
            "readings_1m",
            timedelta(minutes=1),
            True,
            {},
            ok,
            "Success",
            10,
            0,
            now,
        ),
        JobRow(
            1005,
            "policy_refresh_continuous_aggregate",
            "readings_1h",
            timedelta(minutes=30),
            True,
            {},
            None,
            "Failed",
            7,
            7,
            now + timedelta(minutes=5),
            'cannot drop portal "" while it is being set up',
        ),
    ]
    holder: dict[str, JobHealth | None] = {"h": None}
    m = Metrics()
    job_metrics(m, lambda: holder["h"])
    assert 'job="' not in m.render().decode()  # nothing read yet
    holder["h"] = assess_jobs(rows, now)
    # the exposition is prometheus_client's (1.0, 1.7e+09): compare the values it carries
    got = {
        (s.name, s.labels["job"]): s.value
        for f in text_string_to_metric_families(m.render().decode())
        for s in f.samples
        if "job" in s.labels
    }
    assert got[("hazmon_db_job_last_success_timestamp_seconds", "refresh:readings_1m")] == ok.timestamp()
    assert got[("hazmon_db_job_last_success_timestamp_seconds", "refresh:readings_1h")] == 0
    assert got[("hazmon_db_job_failures", "refresh:readings_1h")] == 7
    assert got[("hazmon_db_job_problem", "refresh:readings_1h")] == 1
    assert got[("hazmon_db_job_problem", "refresh:readings_1m")] == 0
