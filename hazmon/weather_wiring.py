"""The daemon's weather warnings: three ways in, and their effects while in force.

`WeatherRunner` (built by `weather_runner`, started by `hazmon.daemon.Daemon`):

- ``POST /api/weather/cap`` on the daemon's HTTP server (`hazmon.weather.http`), for an
  operator's or plant manager's API token (the ``alarms:`` section's tokens);
- a watched directory (``weather.inbox``), scanned every ``scan_every_s``;
- a polled URL (``weather.url``) every ``poll_every_s``, with ETag / If-Modified-Since; a
  failed poll is counted and logged and tried again next time, never a crash;
- every ``every_s``: the warnings in force (`hazmon.weather.active_at`) against what the
  alarms were told: a kind starting (or changing colour) at a hazard source gives an active
  advisory finding and opens its duties as tasks to confirm (``weather_duty``); one ending
  (expired, cancelled) gives the finding's end and ends its tasks, recorded. What the alarms
  were told is read back from the alarm table at start, so a restart neither repeats nor loses
  an effect.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import psycopg
import structlog
from aiohttp import web

from hazmon.alarms.auth import TokenBook
from hazmon.collector import Metrics
from hazmon.config import DaemonConfig
from hazmon.http import HttpServer
from hazmon.plant import Finding, Limits, Plant
from hazmon.plant.standards import Level
from hazmon.plant.weather_standards import Colour, WarningKind
from hazmon.store import connect
from hazmon.weather import Active, active_at
from hazmon.weather import repository as repo
from hazmon.weather.cap import MAX_BYTES, Alert
from hazmon.weather.http import routes
from hazmon.weather.ingest import Outcome, Tally, ingest, scan_directory
from hazmon.weather.settings import WeatherSettings
from hazmon.weather.state import finding
from hazmon.weather.tightening import tightened
from hazmon.weather_report import Report, measures_reporter

__all__ = ["WeatherRunner", "weather_runner"]

log = structlog.get_logger("hazmon.daemon")

Conn = psycopg.Connection[tuple[object, ...]]
Found = Callable[[Sequence[Finding]], Awaitable[None]]
Key = tuple[str, WarningKind]
_WRITERS = ("operator", "plant_manager")


@dataclass
class _Told:
    """What the alarms know of one warning kind at one hazard source."""

    colour: Colour
    level: Level
    identifier: str = ""


@dataclass
class _Poll:
    etag: str | None = None
    last_modified: str | None = None
    digest: str = ""
    polls: int = 0
    failures: int = 0
    not_modified: int = 0
    last_error: str = ""


@dataclass
class WeatherRunner:
    """Weather warnings of one plant in the running daemon (see the module's text)."""

    dsn: str
    plant: Plant
    settings: WeatherSettings
    found: Found | None  # hands findings to the alarms; returns once recorded (None: no alarms)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    tally: Tally = field(default_factory=Tally)
    poll: _Poll = field(default_factory=_Poll)
    told: dict[Key, _Told] | None = None  # read from the alarm table at the first round
    rounds: int = 0
    failures: int = 0
    apply_limits: Callable[[dict[str, Limits]], None] | None = (
        None  # the rules' set_overrides (None: no rules)
    )
    assessments: dict[str, Limits] = field(default_factory=dict)  # the assessments' overrides, as last read
    limits: dict[str, Limits] | None = None  # the overrides the rules have now (assessments + weather)
    active: dict[Key, Active] = field(default_factory=dict)  # warnings in force, as last judged
    report: Report | None = None  # the warnings and their measures to the bureau (uplink on)

    def set_assessments(self, overrides: dict[str, Limits]) -> None:
        """New assessment overrides (`hazmon.upkeep.AssessmentReload`), given with the weather's."""
        self.assessments = dict(overrides)
        self._limits()

    def _limits(self) -> None:
        """Give the rules the limits for the warnings in force (restored when none is)."""
        want = tightened(self.plant, self.active, self.assessments)
        if self.apply_limits is None or want == self.limits:
            return
        changed = sorted(
            t for t in want.keys() | (self.limits or {}).keys() if want.get(t) != (self.limits or {}).get(t)
        )
        self.apply_limits(want)
        if self.limits is not None or changed:
            log.warning("limits changed for the weather warnings in force", tags=changed)
        self.limits = want

    @contextmanager
    def _conn(self) -> Iterator[Conn]:
        with connect(self.dsn, autocommit=True) as c:
            yield c

    def mount(self, http: HttpServer, authorize: Callable[[web.Request], bool]) -> None:
        def now() -> datetime:  # read at each request: the clock may be replaced (tests)
            return self.clock()

        http.mount(routes(self.plant, self._conn, now, authorize, self.tally))

    # -- the inbox and the URL ----------------------------------------------------------------
    def scan(self) -> list[Outcome]:
        inbox = Path(self.settings.inbox)
        inbox.mkdir(parents=True, exist_ok=True)
        with self._conn() as c:
            out = scan_directory(c, self.plant, inbox, self.clock(), self.tally)
        for o in out:
            (log.info if o.stored else log.warning)(
                "weather warning from the inbox", file=o.name, stored=o.stored,
                reason=o.reason.value if o.reason else None, detail=o.detail,
            )  # fmt: skip
        return out

    async def poll_once(self, session: aiohttp.ClientSession) -> Outcome | None:
        """One GET of the URL: a new document is ingested; 304 or the same body changes nothing."""
        p = self.poll
        p.polls += 1
        headers = {}
        if p.etag:
            headers["If-None-Match"] = p.etag
        if p.last_modified:
            headers["If-Modified-Since"] = p.last_modified
        url = self.settings.url
        try:
            async with session.get(url, headers=headers) as r:
                if r.status == 304:
                    p.not_modified += 1
                    return None
                if r.status != 200:
                    raise RuntimeError(f"HTTP {r.status}")
                data = await r.content.read(MAX_BYTES + 1)
                p.etag = r.headers.get("ETag", p.etag)
                p.last_modified = r.headers.get("Last-Modified", p.last_modified)
        except Exception as e:  # a refused connection, a timeout, a 5xx: counted, tried next time
            p.failures += 1
            p.last_error = f"{type(e).__name__}: {e}"
            log.warning("weather URL poll failed", url=url, error=p.last_error, failures=p.failures)
            return None
        digest = hashlib.sha256(data).hexdigest()
        if digest == p.digest:  # a server without validators sending the same document again
            p.not_modified += 1
            return None
        p.digest = digest
        name = f"GET {url}"

        def store() -> Outcome:
            with self._conn() as c:
                return ingest(c, self.plant, data, name, self.clock())

        o = await asyncio.to_thread(store)
        self.tally.add(o)
        (log.info if o.stored else log.warning)(
            "weather warning from the URL", url=url, stored=o.stored, identifier=o.identifier,
            reason=o.reason.value if o.reason else None, detail=o.detail,
        )  # fmt: skip
        return o

    # -- effects while in force -----------------------------------------------------------------
    def _read_told(self, c: Conn) -> dict[Key, _Told]:
        rows = c.execute(
            """SELECT hazard_source, sensor, value, level FROM alarm
               WHERE enterprise_id = %s AND condition = 'weather_warning' AND active""",
            (self.plant.enterprise.id,),
        ).fetchall()
        out: dict[Key, _Told] = {}
        for hs, sensor, value, level in rows:
            kind = str(sensor).removeprefix("weather/")
            if kind in {k.value for k in WarningKind} and isinstance(value, float) and 1 <= value <= 4:
                out[(str(hs), WarningKind(kind))] = _Told(Colour(int(value)), Level(str(level)))
        return out

    def _judge(self, now: datetime) -> tuple[dict[Key, Active], list[Alert], dict[Key, _Told]]:
        with self._conn() as c:
            told = self.told if self.told is not None else self._read_told(c)
            alerts = repo.load_alerts(c, now - timedelta(days=1))  # the recently ended: why they ended
            return active_at(self.plant, alerts, now), alerts, told

    @staticmethod
    def _why(identifier: str, alerts: Sequence[Alert], now: datetime) -> str:
        if any(a.msg_type == "Cancel" and any(r[1] == identifier for r in a.references) for a in alerts):
            return "cancelled"
        if any(a.identifier == identifier and a.expires is not None and a.expires <= now for a in alerts):
            return "expired"
        return "ended (cancelled, expired or replaced)"

    async def effects_once(self) -> None:
        now = self.clock()
        active, alerts, told = await asyncio.to_thread(self._judge, now)
        starts = [a for k, a in active.items() if k not in told or told[k].colour != a.colour]
        ends = [(k, t) for k, t in told.items() if k not in active]
        findings = [finding(a, True, now) for a in starts]
        for (hs, kind), t in ends:
            gone = Active(hs, kind, t.colour, t.identifier, t.level, (), "", "")
            findings.append(finding(gone, False, now))
        if findings and self.found is not None:
            await self.found(findings)  # recorded by the alarm service before the tasks change
        ent = self.plant.enterprise.id

        def record() -> None:
            with self._conn() as c:
                for a in starts:
                    repo.start_duties(c, ent, a.hazard_source, a.kind.value, a.duties, a.identifier, now)
                for (hs, kind), t in ends:
                    repo.end_duties(c, ent, hs, kind.value, now, self._why(t.identifier, alerts, now))
                if self.report is not None:  # each round: a duty confirmed by hand is a change too
                    self.report(c, active, alerts, now)

        await asyncio.to_thread(record)
        for a in starts:
            log.warning(
                "weather warning in force", hazard_source=a.hazard_source, kind=a.kind.value,
                colour=a.colour.name.lower(), identifier=a.identifier, duties=list(a.duties),
            )  # fmt: skip
        for (hs, kind), _t in ends:
            log.info("weather warning ended", hazard_source=hs, kind=kind.value)
        self.told = {k: _Told(a.colour, a.level, a.identifier) for k, a in active.items()}
        self.active = active
        self._limits()
        self.rounds += 1

    # -- the loops --------------------------------------------------------------------------------
    async def _every(self, every_s: float, what: str, fn: Callable[[], Awaitable[object]]) -> None:
        while True:
            try:
                await fn()
            except Exception as e:  # the database may be down: the next round sees the same state
                self.failures += 1
                log.warning("weather round failed; retried", what=what, error=f"{type(e).__name__}: {e}")
            await asyncio.sleep(every_s)

    def tasks(self) -> list[asyncio.Task[None]]:
        s = self.settings
        out = [asyncio.create_task(self._every(s.every_s, "effects", self.effects_once), name="weather")]
        if s.inbox:
            scan = self._every(s.scan_every_s, "inbox", lambda: asyncio.to_thread(self.scan))
            out.append(asyncio.create_task(scan, name="weather-inbox"))
        if s.url:
            out.append(asyncio.create_task(self._poll_loop(), name="weather-url"))
        return out

    async def _poll_loop(self) -> None:
        timeout = aiohttp.ClientTimeout(total=self.settings.timeout_s)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            await self._every(self.settings.poll_every_s, "url", lambda: self.poll_once(session))

    def _documents(self) -> dict[tuple[str, ...], float]:
        out: dict[tuple[str, ...], float] = {("stored",): float(self.tally.stored)}
        return out | {(k,): float(v) for k, v in self.tally.by_reason.items()}

    def _polls(self) -> dict[tuple[str, ...], float]:
        p = self.poll
        return {("polls",): p.polls, ("failures",): p.failures, ("not_modified",): p.not_modified}

    def gauges(self, m: Metrics) -> None:
        m.gauge_fn(
            "hazmon_weather_documents",
            "Weather warning documents (CAP) taken in: stored, and refused or flagged by reason",
            self._documents,
            ("outcome",),
        )
        m.gauge_fn(
            "hazmon_weather_poll",
            "Polls of the weather URL: done, failed, not modified",
            self._polls,
            ("counter",),
        )


def weather_runner(  # noqa: PLR0917 - the parts it connects
    config: DaemonConfig,
    plant: Plant,
    http: HttpServer,
    metrics: Metrics,
    found: Found | None,
    apply_limits: Callable[[dict[str, Limits]], None] | None,
    assessments: dict[str, Limits],
) -> WeatherRunner:
    """The daemon's weather warnings: the route mounted (API tokens of operators and plant managers)."""
    book = TokenBook(config.alarms.tokens if config.alarms is not None else ())

    def authorize(request: web.Request) -> bool:
        head = request.headers.get("Authorization", "")
        if not head.startswith("Bearer ") or not head.isprintable():
            return False
        user = book.find(head.removeprefix("Bearer ").strip())
        return user is not None and user.role in _WRITERS

    w = WeatherRunner(config.database.resolved_dsn(), plant, config.weather, found)
    w.apply_limits, w.assessments, w.limits = apply_limits, dict(assessments), dict(assessments)
    w.report = measures_reporter(plant) if config.uplink.enabled else None
    w.mount(http, authorize)
    w.gauges(metrics)
    return w
