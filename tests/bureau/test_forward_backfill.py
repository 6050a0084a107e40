"""`hazmon bureau forward backfill`: messages stored before ``parent:`` was set go to the parent once, in order.

Real PostgreSQL: a child database with messages stored without forwarding, the CLI run twice, and a
parent database that takes the queued rows as the forwarder sends them (same topic, same bytes).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import psycopg
import pytest
import structlog

from hazmon.bureau.forward import enqueue, render
from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.cli import main
from hazmon.plant.regions import Scope
from tests.bureau.helpers import CITY, T0, Enterprise
from tests.bureau.test_federation import CHECKSUM

PROVINCE = Scope("320000", "province")


@pytest.fixture(autouse=True)
def _logging_kept() -> Iterator[None]:
    """The CLI configures logging onto the captured stdout; put it back for the tests after."""
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


def _yaml(tmp_path: Path, dsn: str, parent: bool = True) -> str:
    f = tmp_path / "bureau.yaml"
    f.write_text(
        f'id: nj-city\nname: 南京市应急管理局\nregion: {{code: "320100", level: city}}\ndatabase: {{dsn: "{dsn}"}}\n'
        + ("parent: {url: mqtt://127.0.0.1:1883, username: nj-city}\n" if parent else "")
        + 'children: [{id: liuhe-county, region: {code: "320116", level: county}}]\n'
    )
    return str(f)


def test_backfill_queues_what_was_stored_before_parent_once_in_order_and_the_parent_stores_it_equal(
    make_db: Callable[[], str], enterprise: Enterprise, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    child, parent = make_db(), make_db()
    other = Enterprise(enterprise.plant, "E3201002", "320115")
    before = Ingestor(CITY, IngestLimits())  # no parent: yet, nothing queued
    after = Ingestor(CITY, IngestLimits(), on_stored=enqueue)  # parent: set
    e1 = [enterprise.envelope(enterprise.registration()), enterprise.envelope(enterprise.alarm(1, 1))]
    e2 = [other.envelope(other.registration()), other.envelope(other.alarm(1, 1))]
    old = enterprise.envelope(enterprise.alarm(2, 2))
    with psycopg.connect(child, autocommit=True) as c:
        before.handle(c, *enterprise.wire(old), T0 - timedelta(days=2))  # before --since: left out
        for i, env in enumerate([e1[0], e2[0], e1[1], e2[1]]):  # interleaved, as received
            who = enterprise if env.enterprise_id == enterprise.id else other
            before.handle(c, *who.wire(env), T0 + timedelta(minutes=i))
        late = enterprise.envelope(enterprise.alarm(3, 3))
        after.handle(c, *enterprise.wire(late), T0 + timedelta(minutes=10))  # queued live
    cfg = _yaml(tmp_path, child)
    since = (T0 - timedelta(hours=1)).isoformat()

    assert main(["bureau", "forward", "backfill", "-c", cfg, "--since", since]) == 0
    out = capfd.readouterr().out
    assert "4 message(s) stored since" in out and "1 were queued before" in out
    assert main(["bureau", "forward", "backfill", "-c", cfg, "--since", since]) == 0  # again: nothing
    assert "0 message(s) stored since" in capfd.readouterr().out
    with psycopg.connect(child) as c:
        rows = c.execute(
            "SELECT seq, 1, message_id, enterprise_id, kind, body FROM bureau_forward ORDER BY seq"
        ).fetchall()
    assert [r[2] for r in rows] == [late.message_id, e1[0].message_id, e2[0].message_id,
                                    e1[1].message_id, e2[1].message_id]  # fmt: skip

    # the parent takes them as the forwarder sends them (render: the fed topic and the bytes)
    ing = Ingestor(PROVINCE, IngestLimits(), children={"nj-city": CITY})
    with psycopg.connect(parent, autocommit=True) as c:
        for r in rows[1:] + rows[:1]:  # the backfill first, as after a run before the daemon starts
            fed_topic, raw = render("nj-city", r)
            assert ing.handle(c, raw, fed_topic, T0).status == "stored"
        assert c.execute("SELECT count(*) FROM bureau_dead_letter").fetchone() == (0,)
    q = CHECKSUM.replace("FROM bureau_message", "FROM bureau_message WHERE message_id <> %s")
    with psycopg.connect(child) as a, psycopg.connect(parent) as b:
        mine = a.execute(q, (old.message_id,)).fetchone()
        theirs = b.execute(q, (old.message_id,)).fetchone()
    assert mine == theirs and mine is not None and mine[0] is not None  # same ids, seqs, payloads


def test_backfill_refuses_without_parent_or_a_time_zone_and_check_prints_the_federation(
    make_db: Callable[[], str], tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    dsn = make_db()
    assert main(["bureau", "forward", "backfill", "-c", _yaml(tmp_path, dsn, parent=False), "--since",
                 "2026-03-01T00:00:00+08:00"]) == 2  # fmt: skip
    assert "parent: not set" in capfd.readouterr().err
    cfg = _yaml(tmp_path, dsn)
    assert main(["bureau", "forward", "backfill", "-c", cfg, "--since", "2026-03-01T00:00:00"]) == 2
    assert "has no time zone" in capfd.readouterr().err
    assert main(["bureau", "check", "-c", cfg]) == 0
    out = capfd.readouterr().out.splitlines()
    assert out[1:] == [
        "  parent: mqtt://127.0.0.1:1883 as nj-city (forwards on hazmon/v1/fed/nj-city/<enterprise>/up/...)",
        "  child: liuhe-county for county 320116 (hazmon/v1/fed/liuhe-county/...)",
    ]


def test_children_view_counts_what_each_child_forwarded_and_its_dead_letters_by_reason(
    make_db: Callable[[], str], enterprise: Enterprise
) -> None:
    from hazmon.bureau.children_api import children_view
    from hazmon.bureau.config import ChildSettings, RegionSettings
    from hazmon.plant.link.federation import fed_topic

    dsn = make_db()
    liuhe = ChildSettings(id="liuhe-county", region=RegionSettings("320116", "county"))
    jn = ChildSettings(id="jn-county", region=RegionSettings("320115", "county"))
    ing = Ingestor(CITY, IngestLimits(), children={c.id: c.scope for c in (liuhe, jn)})
    envs = [enterprise.envelope(enterprise.registration())] + [
        enterprise.envelope(enterprise.alarm(i, i)) for i in (1, 2, 3)
    ]
    with psycopg.connect(dsn, autocommit=True) as c:
        for i, env in enumerate(envs):  # T0, T0 + 10 h, T0 + 20 h, T0 + 30 h
            raw, _ = enterprise.wire(env)
            ing.handle(c, raw, fed_topic(liuhe.id, env.enterprise_id, env.kind), T0 + timedelta(hours=10 * i))
        raw, _ = enterprise.wire(envs[1])  # the Liuhe enterprise forwarded by Jiangning: refused
        ing.handle(c, raw, fed_topic(jn.id, enterprise.id, "alarm_event"), T0)
        got = children_view(c, [liuhe, jn], CITY, T0 + timedelta(hours=30, minutes=30))
        county_only = children_view(c, [liuhe, jn], Scope("320116", "county"), T0)
    lh, j = got
    assert (lh["messages_last_hour"], lh["messages_last_24h"], lh["enterprises_via_child_24h"]) == (1, 3, 1)
    assert lh["last_message"]["message_id"] == envs[3].message_id
    assert [e["id"] for e in lh["enterprises"]] == [enterprise.id] and lh["dead_letters"] == {}
    assert j["last_message"] is None and j["messages_last_24h"] == 0 and j["enterprises"] == []
    assert j["dead_letters"] == {"outside_child_region": 1} == j["dead_letters_unreplayed"]
    assert [x["id"] for x in county_only] == ["liuhe-county"]
