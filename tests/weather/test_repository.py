"""Ingestion and storage on a real PostgreSQL: once by identifier, refusals counted, the inbox scanned once."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg
import pytest

from hazmon.plant import Plant
from hazmon.plant.standards import Level
from hazmon.store import connect
from hazmon.weather import repository as repo
from hazmon.weather.ingest import Tally, ingest, scan_directory
from hazmon.weather.state import active_at
from tests.weather.test_cap import DATA, LAUGHS, XXE, sample
from tests.weather.test_state import ORANGE, YELLOW

CST = timezone(timedelta(hours=8))
NOON = datetime(2026, 8, 4, 12, 0, tzinfo=CST)


@pytest.fixture
def conn(db_dsn: str) -> psycopg.Connection[tuple[object, ...]]:
    c = connect(db_dsn, autocommit=True)
    yield c  # type: ignore[misc]
    c.close()


def _rows(conn: psycopg.Connection[tuple[object, ...]]) -> tuple[int, int]:
    row = conn.execute(
        "SELECT (SELECT count(*) FROM weather_warning), (SELECT count(*) FROM weather_effect)"
    ).fetchone()
    assert row is not None
    return (int(str(row[0])), int(str(row[1])))


def test_round_trip_with_effects_per_hazard_source(
    conn: psycopg.Connection[tuple[object, ...]], example_plant: Plant
) -> None:
    o = ingest(conn, example_plant, sample("lightning_yellow.xml"), "y.xml", NOON)
    assert (o.stored, o.identifier, o.reason) == (True, YELLOW, None)
    [back] = repo.load_alerts(conn)
    assert back.identifier == YELLOW and back.xml == sample("lightning_yellow.xml")
    assert back.text("zh") is not None and back.areas[0].region_codes() == ("320116",)
    eff = repo.effects(conn, YELLOW, example_plant.enterprise.id)
    assert [e.hazard_source for e in eff] == ["cl2-tankfarm", "lpg-spheres", "meoh-tankfarm"]
    assert all(e.level is Level.PREDICTIVE and e.duties == ("24h_monitoring", "stop_outdoor_work", "24h_duty")
               for e in eff)  # fmt: skip
    assert repo.flag_of(conn, YELLOW) == ""
    assert set(active_at(example_plant, repo.load_alerts(conn, NOON), NOON)) == {
        (h.id, back.kind) for h in example_plant.hazard_sources
    }


def test_a_duplicate_is_refused_and_nothing_changes(
    conn: psycopg.Connection[tuple[object, ...]], example_plant: Plant
) -> None:
    assert ingest(conn, example_plant, sample("lightning_yellow.xml"), "a.xml", NOON).stored
    before = _rows(conn)
    o = ingest(conn, example_plant, sample("lightning_yellow.xml"), "b.xml", NOON)
    assert (o.stored, o.reason.value if o.reason else None) == (False, "duplicate")
    assert YELLOW in o.detail and _rows(conn) == before


def test_an_expired_warning_is_refused(
    conn: psycopg.Connection[tuple[object, ...]], example_plant: Plant
) -> None:
    late = datetime(2026, 8, 4, 22, 15, tzinfo=CST)  # its expiry, exactly
    o = ingest(conn, example_plant, sample("lightning_yellow.xml"), "y.xml", late)
    assert (o.stored, o.reason.value if o.reason else None) == (False, "expired")
    assert _rows(conn) == (0, 0)
    assert ingest(
        conn, example_plant, sample("lightning_yellow.xml"), "y.xml", late - timedelta(seconds=1)
    ).stored


def test_an_update_of_an_unknown_warning_is_stored_and_flagged(
    conn: psycopg.Connection[tuple[object, ...]], example_plant: Plant
) -> None:
    o = ingest(conn, example_plant, sample("lightning_orange_update.xml"), "u.xml", NOON)
    assert o.stored and o.reason is not None and o.reason.value == "unknown_reference"
    assert YELLOW in o.detail
    assert repo.flag_of(conn, ORANGE) == "unknown_reference"
    # the original arriving later is stored, and the update still replaces it (by sent time)
    assert ingest(conn, example_plant, sample("lightning_yellow.xml"), "y.xml", NOON).stored
    at15 = datetime(2026, 8, 4, 15, 0, tzinfo=CST)
    act = active_at(example_plant, repo.load_alerts(conn, at15), at15)
    assert {a.identifier for a in act.values()} == {ORANGE}


def test_bad_documents_are_refused_counted_and_store_nothing(
    conn: psycopg.Connection[tuple[object, ...]], example_plant: Plant
) -> None:
    tally = Tally()
    docs = [
        ("xxe.xml", XXE),
        ("lol.xml", LAUGHS),
        ("junk.xml", b"<alert"),
        ("ok.xml", sample("lightning_yellow.xml")),
    ]
    for name, doc in docs:
        tally.add(ingest(conn, example_plant, doc, name, NOON))
    assert (tally.stored, dict(tally.by_reason)) == (1, {"dtd": 2, "malformed": 1})
    assert _rows(conn) == (1, 3)


def test_the_watched_directory_is_scanned_once(
    conn: psycopg.Connection[tuple[object, ...]], example_plant: Plant, tmp_path: Path
) -> None:
    for name in ("lightning_yellow.xml", "lightning_orange_update.xml", "lightning_cancel.xml"):
        (tmp_path / name).write_bytes((DATA / name).read_bytes())
    (tmp_path / "xxe.xml").write_bytes(XXE)
    (tmp_path / "notes.txt").write_text("not a warning")
    tally = Tally()
    out = scan_directory(conn, example_plant, tmp_path, NOON, tally)
    assert sorted((o.name, o.stored) for o in out) == [
        ("lightning_cancel.xml", True),
        ("lightning_orange_update.xml", True),
        ("lightning_yellow.xml", True),
        ("xxe.xml", False),
    ]
    assert sorted(p.name for p in (tmp_path / "done").iterdir()) == [
        "lightning_cancel.xml", "lightning_orange_update.xml", "lightning_yellow.xml",
    ]  # fmt: skip
    assert (tmp_path / "refused" / "xxe.xml").exists()
    assert (tmp_path / "refused" / "xxe.xml.reason.txt").read_text().startswith("dtd\n")
    assert (tmp_path / "notes.txt").exists()
    assert scan_directory(conn, example_plant, tmp_path, NOON, tally) == []  # processed once
    # name order took the cancel before the update, the update before the alert: flagged, applied by sent time
    assert repo.flag_of(conn, "32011641600000_20260804180000") == "unknown_reference"
    at19 = datetime(2026, 8, 4, 19, 0, tzinfo=CST)
    assert active_at(example_plant, repo.load_alerts(conn, at19), at19) == {}
    assert dict(tally.by_reason) == {"dtd": 1, "unknown_reference": 2} and tally.stored == 3  # update too
