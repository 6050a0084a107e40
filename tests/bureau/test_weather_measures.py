"""Official weather warnings from the plant to the bureau: a CAP warning at the plant → duties →
confirmed → over the link (the enterprise's outbox, its Sender, Mosquitto) → the running bureau
daemon → ``/api/v1/weather-warnings`` lists the enterprise as confirmed; the cancellation ends it.
Real PostgreSQL (two databases), Mosquitto and HTTP."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import aiohttp
import psycopg
import pytest

from hazmon.bureau.api import ApiUser, BureauApi, build_routes
from hazmon.bureau.ingest import IngestLimits, Ingestor
from hazmon.bureau_daemon import BureauDaemon
from hazmon.collector import Metrics
from hazmon.http import HttpServer
from hazmon.plant import Plant
from hazmon.plant.link import WeatherMeasures
from hazmon.plant.regions import Scope
from hazmon.store import connect
from hazmon.uplink import Sender, UplinkSettings, enqueue
from hazmon.weather import repository as wrepo
from hazmon.weather.ingest import ingest
from hazmon.weather.settings import WeatherSettings
from hazmon.weather_report import measures_reporter
from hazmon.weather_wiring import WeatherRunner
from testkit.mosquitto import PrivateMosquitto
from tests.bureau.helpers import CITY, T0, Enterprise
from tests.bureau.test_daemon import TOKENS, _until, bureau_config
from tests.weather.test_cap import XXE

DATA = Path(__file__).resolve().parent.parent / "weather" / "data"
CST = timezone(timedelta(hours=8))
YELLOW = "32011641600000_20260804101500"
ORANGE = "32011641600000_20260804140000"
USER_TOKENS = {"officer": "tok-o", "viewer": "tok-v", "jiangning": "tok-j"}


def _users() -> list[ApiUser]:
    def u(name: str, role: str, scope: Scope) -> ApiUser:
        return ApiUser(name, role, hashlib.sha256(USER_TOKENS[name].encode()).hexdigest(), scope)  # type: ignore[arg-type]

    return [
        u("officer", "officer", CITY),
        u("viewer", "viewer", CITY),
        u("jiangning", "officer", Scope("320115", "county")),
    ]


@pytest.fixture
def sender_stop() -> Iterator[list[tuple[threading.Event, threading.Thread]]]:
    started: list[tuple[threading.Event, threading.Thread]] = []
    yield started
    for stop, t in started:
        stop.set()
        t.join(30)


def _ingest(dsn: str, plant: Plant, name: str, now: datetime) -> None:
    with connect(dsn, autocommit=True) as c:
        o = ingest(c, plant, (DATA / name).read_bytes(), name, now)
    assert o.stored, o


@pytest.mark.slow
async def test_a_cap_warning_at_the_plant_is_listed_at_the_bureau_with_its_confirmations(
    db_dsn: str,
    make_db: Callable[[], str],
    example_plant: Plant,
    private_mosquitto: PrivateMosquitto,
    sender_stop: list[tuple[threading.Event, threading.Thread]],
) -> None:
    ent = Enterprise(example_plant)
    now = [datetime(2026, 8, 4, 10, 30, tzinfo=CST)]
    runner = WeatherRunner(db_dsn, example_plant, WeatherSettings(), None, clock=lambda: now[0])
    runner.report = measures_reporter(example_plant)
    daemon = BureauDaemon(bureau_config(make_db(), private_mosquitto.port))
    await daemon.start()
    try:
        await _until(daemon.subscriber.connected.is_set, "the bureau's subscription")
        with psycopg.connect(db_dsn, autocommit=True) as conn:
            enqueue(conn, ent.id, ent.region, ent.registration())
        _ingest(db_dsn, example_plant, "lightning_yellow.xml", now[0])
        await runner.effects_once()
        await runner.effects_once()  # the same state: enqueued once
        with connect(db_dsn, autocommit=True) as c:
            duties = wrepo.open_duties(c, ent.id)
            assert duties, "a yellow lightning warning asks for duties at every hazard source"
            n_sent = c.execute(
                "SELECT count(*) FROM uplink_outbox WHERE kind = 'weather_measures'"
            ).fetchone()
        assert n_sent == (1,)

        sender = Sender(
            UplinkSettings(
                enabled=True, url=f"mqtt://127.0.0.1:{private_mosquitto.port}", poll_interval_s=0.05
            ),
            db_dsn,
            ent.id,
        )
        stop = threading.Event()
        t = threading.Thread(target=sender.run, args=(stop,), daemon=True)
        t.start()
        sender_stop.append((stop, t))
        base = f"http://127.0.0.1:{daemon.http_port}/api/v1"

        async with aiohttp.ClientSession() as http:

            async def get(path: str, who: str = "liuhe-viewer") -> tuple[int, Any]:
                async with http.get(base + path, headers={"Authorization": f"Bearer {TOKENS[who]}"}) as r:
                    return r.status, await r.json()

            async def shown(pred: Callable[[Any], bool]) -> Any:
                status, body = await get(f"/weather-warnings/{YELLOW}")
                return body if status == 200 and pred(body) else None

            w = await _until(lambda: shown(lambda b: True), "the warning at the bureau")
            assert (w["warning_kind"], w["colour"], w["in_force"]) == ("lightning", "yellow", True)
            assert w["region_codes"] == ["320116"]
            assert (w["enterprises"], w["confirmed"], w["not_confirmed"]) == (1, 0, 1)
            (e,) = w["concerned"]
            assert e["enterprise_id"] == ent.id and e["measures"] == "not_confirmed"
            assert sorted(e["hazard_sources"]) == sorted(h.id for h in example_plant.hazard_sources)
            assert e["duties_total"] == len(duties) and e["duties_confirmed"] == 0

            # the plant confirms every duty (as `hazmon weather confirm` does); the next round reports it
            now[0] += timedelta(minutes=10)
            with connect(db_dsn, autocommit=True) as c:
                for d in duties:
                    assert wrepo.confirm_duty(c, ent.id, d.id, "孙涛", now[0])
            await runner.effects_once()
            w = await _until(lambda: shown(lambda b: b["confirmed"] == 1), "the confirmations at the bureau")
            (e,) = w["concerned"]
            assert e["measures"] == "confirmed" and e["duties_confirmed"] == len(duties)
            assert {d["confirmed_by"] for d in e["duties"]} == {"孙涛"}
            assert all(d["confirmed_at"].startswith("2026-08-04T02:40:00") for d in e["duties"])
            status, body = await get("/weather-warnings")
            assert status == 200 and [
                (x["identifier"], x["confirmed"]) for x in body["weather_warnings"]
            ] == [(YELLOW, 1)]
            # another county's officer sees nothing of it
            status, body = await get("/weather-warnings", "jiangning-officer")
            assert status == 200 and body["weather_warnings"] == []
            assert (await get(f"/weather-warnings/{YELLOW}", "jiangning-officer"))[0] == 404
            assert (await get("/weather-warnings?open=maybe"))[0] == 400

            # the orange update replaces the yellow one; the cancellation ends it
            now[0] = datetime(2026, 8, 4, 14, 5, tzinfo=CST)
            _ingest(db_dsn, example_plant, "lightning_orange_update.xml", now[0])
            await runner.effects_once()
            now[0] = datetime(2026, 8, 4, 18, 5, tzinfo=CST)
            _ingest(db_dsn, example_plant, "lightning_cancel.xml", now[0])
            await runner.effects_once()

            async def orange_ended() -> Any:
                status, body = await get(f"/weather-warnings/{ORANGE}", "city-officer")
                return body if status == 200 and not body["in_force"] else None

            w = await _until(orange_ended, "the cancellation at the bureau")
            assert w["colour"] == "orange" and w["concerned"][0]["end_reason"] == "cancelled"
            status, y = await get(f"/weather-warnings/{YELLOW}")
            assert status == 200 and not y["in_force"]
            assert y["concerned"][0]["end_reason"] == f"replaced by {ORANGE}"
            status, body = await get("/weather-warnings")  # open only: none is left
            assert status == 200 and body["weather_warnings"] == []
            status, body = await get("/weather-warnings?open=false")
            assert {x["identifier"] for x in body["weather_warnings"]} == {YELLOW, ORANGE}
    finally:
        await daemon.stop()


def _measures(ident: str, confirmed: bool, at: datetime) -> WeatherMeasures:
    duty = {"id": 1, "hazard_source": "cl2-tankfarm", "duty": "24h_duty", "started_at": at}
    if confirmed:
        duty |= {"confirmed_by": "孙涛", "confirmed_at": at}
    return WeatherMeasures.model_validate({
        "identifier": ident, "sender": "南京市六合区气象台", "sent": at, "warning_kind": "lightning",
        "colour": "yellow", "region_codes": ["320116"], "hazard_sources": ["cl2-tankfarm"],
        "state": "in_force", "duties": [duty], "at": at,
    })  # fmt: skip


async def test_the_bureaus_own_cap_feed_lists_who_has_not_reported(db_dsn: str, example_plant: Plant) -> None:
    """A CAP warning posted to the bureau names Liuhe (320116): Liuhe's enterprise is listed as not
    reported until it reports; Jiangning's (320115) is not concerned; a late, older report never
    rolls a newer one back; bad documents are refused with the reason."""
    liuhe, jiangning = (
        Enterprise(example_plant, "liuhe-chem", "320116"),
        Enterprise(example_plant, "jn-chem", "320115"),
    )
    ing = Ingestor(CITY, IngestLimits())
    with psycopg.connect(db_dsn, autocommit=True) as c:
        for e in (liuhe, jiangning):
            assert ing.handle(c, *e.wire(e.envelope(e.registration())), T0).status == "stored"
    now = [datetime(2026, 8, 4, 10, 30, tzinfo=CST)]
    api = BureauApi(db_dsn, _users(), clock=lambda: now[0])
    http = HttpServer("127.0.0.1", 0, Metrics(), lambda: (True, {}))
    http.mount(build_routes(api))
    base = f"http://127.0.0.1:{await http.start()}/api/v1/weather-warnings"
    try:
        async with aiohttp.ClientSession() as s:

            async def call(path: str, who: str, data: bytes | None = None) -> tuple[int, Any]:
                h = {"Authorization": f"Bearer {USER_TOKENS[who]}"}
                req = (
                    s.get(base + path, headers=h)
                    if data is None
                    else s.post(base + path, headers=h, data=data)
                )
                async with req as r:
                    return r.status, await r.json()

            yellow = (DATA / "lightning_yellow.xml").read_bytes()
            assert (await call("/cap", "viewer", yellow))[0] == 403
            assert await call("/cap", "officer", yellow) == (201, {"stored": True, "identifier": YELLOW})
            st, body = await call("/cap", "officer", yellow)
            assert st == 409 and body["error"].startswith("duplicate")
            st, body = await call("/cap", "officer", b"<alert")
            assert st == 422 and body["error"].startswith("malformed: body")
            st, body = await call("/cap", "officer", XXE)
            assert st == 422 and body["error"].startswith("dtd: body")

            st, body = await call("", "viewer")
            (w,) = body["weather_warnings"]
            assert (w["identifier"], w["in_force"], w["enterprises"], w["not_reported"]) == (
                YELLOW,
                True,
                0,
                1,
            )
            st, w = await call(f"/{YELLOW}", "viewer")
            assert [e["enterprise_id"] for e in w["not_reported_enterprises"]] == ["liuhe-chem"]
            assert (await call(f"/{YELLOW}", "jiangning"))[0] == 404  # names nothing of Jiangning
            now[0] = datetime(2026, 8, 4, 22, 30, tzinfo=CST)  # past its expiry: no longer in force
            assert (await call("", "viewer"))[1]["weather_warnings"] == []
            st, body = await call("?open=false", "viewer")
            assert [(x["identifier"], x["in_force"]) for x in body["weather_warnings"]] == [(YELLOW, False)]
            now[0] = datetime(2026, 8, 4, 10, 30, tzinfo=CST)

            with psycopg.connect(db_dsn, autocommit=True) as c:
                newer = liuhe.envelope(_measures(YELLOW, True, T0 + timedelta(minutes=5)))
                older = liuhe.envelope(_measures(YELLOW, False, T0))
                older = older.model_copy(update={"seq": newer.seq - 1, "message_id": uuid.uuid4()})
                for env in (newer, older):  # the older arrives late
                    assert ing.handle(c, *liuhe.wire(env), T0).status == "stored"
            st, w = await call(f"/{YELLOW}", "viewer")
            assert (w["enterprises"], w["confirmed"], w["not_reported"]) == (1, 1, 0)
            assert w["not_reported_enterprises"] == []
            assert w["concerned"][0]["duties"][0]["confirmed_by"] == "孙涛"

    finally:
        await http.stop()
