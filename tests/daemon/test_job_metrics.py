"""Each TimescaleDB job is a metric: last success, failures, and whether it has a problem."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hazmon.collector import Metrics
from hazmon.daemon import _job_metrics
from hazmon.store import JobHealth
from hazmon.store.rollups import JobRow, assess_jobs


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
    _job_metrics(m, lambda: holder["h"])
    assert 'job="' not in m.render()  # nothing read yet
    holder["h"] = assess_jobs(rows, now)
    text = m.render()
    assert (
        f'hazmon_db_job_last_success_timestamp_seconds{{job="refresh:readings_1m"}} {ok.timestamp():.0f}'
        in text
    )
    assert 'hazmon_db_job_last_success_timestamp_seconds{job="refresh:readings_1h"} 0' in text
    assert 'hazmon_db_job_failures{job="refresh:readings_1h"} 7' in text
    assert 'hazmon_db_job_problem{job="refresh:readings_1h"} 1' in text
    assert 'hazmon_db_job_problem{job="refresh:readings_1m"} 0' in text
