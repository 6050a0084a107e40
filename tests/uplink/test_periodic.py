"""What the uplink enqueues from the database on its own: each closed minute's aggregates (a restart
neither skips nor doubles one) and the assessment register when it changes."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import psycopg

from hazmon.plant import AssessmentRecord, Grade, Plant, Quality
from hazmon.store import add_assessment, sync_registry
from hazmon.uplink import UplinkSettings
from hazmon.uplink.periodic import closed_windows
from hazmon.uplink.service import UplinkService

T0 = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
M = timedelta(minutes=1)


def test_closed_windows_wait_for_the_delay_go_on_after_the_last_and_stop_at_the_catchup() -> None:
    day = timedelta(hours=24)
    # nothing sent yet: only the newest minute closed (its end + 15 s passed)
    assert closed_windows(None, T0 + 2 * M + timedelta(seconds=14), 15, day) == [T0]
    assert closed_windows(None, T0 + 2 * M + timedelta(seconds=15), 15, day) == [T0 + M]
    # after T0: every minute since, up to the newest closed one
    assert closed_windows(T0, T0 + 4 * M + timedelta(seconds=20), 15, day) == [T0 + M, T0 + 2 * M, T0 + 3 * M]
    assert closed_windows(T0 + 3 * M, T0 + 4 * M + timedelta(seconds=20), 15, day) == []
    # a stop longer than the catch-up: the oldest minutes are not sent
    assert closed_windows(T0, T0 + 10 * M + timedelta(seconds=20), 15, 3 * M)[0] == T0 + 7 * M


def _outbox(dsn: str, kind: str) -> list[dict[str, object]]:
    with psycopg.connect(dsn) as c:
        return [
            r[0] for r in c.execute("SELECT payload FROM uplink_outbox WHERE kind = %s ORDER BY seq", (kind,))
        ]


def _service(dsn: str, plant: Plant, now: list[datetime]) -> UplinkService:
    return UplinkService(UplinkSettings(enabled=True), dsn, plant, lambda: [], now=lambda: now[0])


def test_each_closed_minute_once_across_restarts(db_dsn: str, example_plant: Plant) -> None:
    tag, other = example_plant.sensors()[0].tag, example_plant.sensors()[1].tag
    with psycopg.connect(db_dsn, autocommit=True) as c:
        ids = sync_registry(c, example_plant)
        rows = [  # minute T0+1: 4 readings of `tag` (one out of range), nothing of `other`
            (T0 + M + timedelta(seconds=s), ids[tag], v, int(q))
            for s, v, q in (
                (0, 2.0, Quality.GOOD),
                (10, 5.0, Quality.UNCERTAIN),
                (20, 1e308, Quality.OUT_OF_RANGE),
                (30, 3.0, Quality.GOOD),
            )
        ] + [(T0 + 4 * M + timedelta(seconds=5), ids[tag], 7.0, 0)]
        with c.cursor() as cur:
            cur.executemany(
                "INSERT INTO readings (time, sensor_id, value, quality) VALUES (%s, %s, %s, %s)", rows
            )

    now = [T0 + 1 * M + timedelta(seconds=20)]  # first run: the newest closed minute (T0) only
    svc = _service(db_dsn, example_plant, now)
    svc.round([], beat=False)
    now[0] = T0 + 3 * M + timedelta(seconds=20)
    svc.round([], beat=False)
    now[0] = T0 + 3 * M + timedelta(seconds=50)  # nothing newly closed
    svc.round([], beat=False)
    # a restart (a new service, nothing in memory) goes on after the last minute enqueued
    now[0] = T0 + 6 * M + timedelta(seconds=20)
    _service(db_dsn, example_plant, now).round([], beat=False)
    _service(db_dsn, example_plant, now).round([], beat=False)  # and another: nothing twice

    got = _outbox(db_dsn, "aggregates")
    starts = [datetime.fromisoformat(str(p["window_start"])) for p in got]
    assert starts == [T0 + k * M for k in range(6)]  # T0 .. T0+5, each once, in order
    minute1 = {i["sensor"]: i for i in got[1]["items"]}  # type: ignore[attr-defined]
    assert len(minute1) == len(example_plant.sensors())  # every sensor, silent ones too
    assert minute1[tag] == {
        "sensor": tag,
        "count": 4,
        "min": 2.0,
        "mean": 10 / 3,
        "max": 5.0,
        "last": 3.0,
        "worst_quality": "out_of_range",
    }
    assert minute1[other]["count"] == 0 and minute1[other]["worst_quality"] is None
    assert {i["sensor"]: i for i in got[4]["items"]}[tag]["last"] == 7.0  # type: ignore[attr-defined]


def test_assessment_register_at_start_and_when_it_changes(db_dsn: str, example_plant: Plant) -> None:
    now = [datetime(2026, 3, 1, 8, 0, tzinfo=UTC)]
    _service(db_dsn, example_plant, now).round([], beat=False)
    _service(db_dsn, example_plant, now).round([], beat=False)  # a restart, same register: nothing new
    assert len(_outbox(db_dsn, "assessments")) == 1
    hs = example_plant.hazard_sources[0]
    with psycopg.connect(db_dsn, autocommit=True) as c:
        add_assessment(
            c,
            example_plant.enterprise.id,
            AssessmentRecord(
                hazard_source=hs.id,
                report_date=date(2026, 1, 10),
                assessor="Jiangsu Safety Assessment Co.",
                r_value=120.0,
                grade=Grade.ONE,
                filed_on=date(2026, 1, 20),
            ),
        )
    _service(db_dsn, example_plant, now).round([], beat=False)
    got = _outbox(db_dsn, "assessments")
    assert len(got) == 2
    item = next(i for i in got[1]["items"] if i["hazard_source"] == hs.id)  # type: ignore[attr-defined]
    assert (item["grade"], item["r_value"], item["reassessment_overdue"]) == ("I", 120.0, False)
