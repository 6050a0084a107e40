"""The console's HTTP side: sign-in, sessions, CSRF, language, rendering; the pages plug in.

Every page goes through `Console.page` (a signed-in user whose role may see it) and every
form through `Console.form` (the same, plus the session's CSRF token and the role that may
act). A request without a valid session is sent to the sign-in page (a page fragment gets
401, the little script then reloads the page); a form without its token, or with another
session's, gets a 403 page and is counted (``csrf_refused``) and audited; nothing runs.
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Generic, TypeVar, cast
from urllib.parse import quote
from zoneinfo import ZoneInfo

import jinja2
import psycopg
import structlog
from aiohttp import BodyPartReader, web
from multidict import MultiDictProxy

from hazmon.alarms.auth import region_prefix
from hazmon.console import sessions
from hazmon.console.config import ConsoleSettings, ConsoleUser
from hazmon.console.i18n import LANGUAGES, translate
from hazmon.console.passwords import hash_password, verify
from hazmon.plant import Plant
from hazmon.plant.web_users import BureauConsoleSettings, BureauUser

__all__ = ["PREFIX", "BaseCtx", "Console", "Ctx", "Handler", "Upload", "WebConsole", "redirect"]

log = structlog.get_logger("hazmon.console")

PREFIX = "/console"
SESSION_COOKIE = "hazmon_session"
PRE_COOKIE = "hazmon_pre"  # the sign-in form's own CSRF token (double submit, before any session)
LANG_COOKIE = "hazmon_lang"
_HERE = Path(__file__).resolve().parent
_T = TypeVar("_T")
Conn = psycopg.Connection[tuple[Any, ...]]
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16), log_n=10)  # same work shape for an unknown name

HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


U = TypeVar("U", ConsoleUser, BureauUser)


@dataclass
class BaseCtx(Generic[U]):
    """One signed-in request: who, in which language, at which time, and the form sent."""

    request: web.Request
    user: U
    session: sessions.Session
    lang: str
    now: datetime
    form: Mapping[str, str] = field(default_factory=dict)
    files: dict[str, Upload] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Upload:
    """A file sent with a multipart form; ``too_large`` when it was cut at the limit."""

    filename: str
    content_type: str
    content: bytes
    too_large: bool = False


Ctx = BaseCtx[ConsoleUser]
Handler = Callable[[Ctx], Awaitable[web.StreamResponse]]
Route = Callable[[web.Request], Awaitable[web.StreamResponse]]


class WebConsole(Generic[U]):
    """Sign-in, sessions, CSRF, language and rendering, shared by the plant's and the bureau's console.

    A subclass says who its users are (`find_user`), what a user may see (`refusal`), where
    home is and which templates come first (its own ``base.html`` and pages).
    """

    def __init__(  # noqa: PLR0917 - the parts a console is made of
        self,
        settings: ConsoleSettings | BureauConsoleSettings,
        dsn: str,
        tz: ZoneInfo,
        clock: Callable[[], datetime],
        home: str,
        templates: tuple[str, ...] = (),
    ) -> None:
        self.settings, self.dsn, self.clock, self.tz, self.home = settings, dsn, clock, tz, home
        self.counters = dict.fromkeys(
            ("signins", "signin_refused", "signouts", "expired", "csrf_refused", "forbidden", "actions"), 0
        )
        self._failures: dict[str, list[datetime]] = {}  # user name -> recent failed sign-ins
        self.env = jinja2.Environment(
            loader=jinja2.ChoiceLoader(
                [jinja2.FileSystemLoader(_HERE / "templates" / d) for d in templates]
                + [jinja2.FileSystemLoader(_HERE / "templates")]
            ),
            autoescape=True,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.env.globals.update(prefix=PREFIX, home=PREFIX + home)
        self.env.filters["local"] = self.local
        self._routes: list[web.RouteDef] = [
            web.get(PREFIX, self._home),
            web.get(PREFIX + "/", self._home),
            web.get(PREFIX + "/signin", self._signin_page),
            web.post(PREFIX + "/signin", self._signin),
            web.post(PREFIX + "/signout", self.form(self._signout)),
            web.get(PREFIX + "/lang/{lang}", self._lang),
        ]

    def find_user(self, name: str) -> U | None:
        raise NotImplementedError

    def refusal(self, user: U) -> str | None:
        """Why ``user`` may not use this console at all (None: they may)."""
        return None

    # ---------------------------------------------------------------- plumbing

    def routes(self) -> list[web.AbstractRouteDef]:
        pages: list[web.AbstractRouteDef] = [
            web.route(r.method, r.path, self._safe(r.handler), **r.kwargs) for r in self._routes
        ]
        return [*pages, web.static(PREFIX + "/static", _HERE / "static", append_version=False)]

    def _safe(self, fn: Any) -> Route:
        """``fn``; the database away is a 503 page saying so, never a traceback or a 500."""

        async def handler(request: web.Request) -> web.StreamResponse:
            try:
                return cast(web.StreamResponse, await fn(request))
            except (psycopg.OperationalError, OSError) as e:
                log.warning("console: database away", path=request.path, error=str(e).strip()[:300])
                return self.render(request, "message.html", 503, title="unavailable", reasons=[], ctx=None)

        return handler

    def add(
        self, method: str, path: str, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> None:
        self._routes.append(web.route(method, PREFIX + path, handler))

    async def db(self, fn: Callable[[Conn], _T]) -> _T:
        """Run ``fn(conn)`` on a fresh autocommit connection in a worker thread."""

        def work() -> _T:
            with psycopg.connect(self.dsn, autocommit=True, application_name="hazmon-console") as conn:
                return fn(conn)

        return await asyncio.to_thread(work)

    def local(self, t: datetime | int | float | None, fmt: str = "%Y-%m-%d %H:%M") -> str:
        """A time in the plant's local zone (microseconds since the epoch or an aware datetime)."""
        if t is None or t == 0:
            return "-"
        if isinstance(t, int | float):
            t = datetime.fromtimestamp(t / 1e6, UTC)
        return t.astimezone(self.tz).strftime(fmt)

    def lang(self, request: web.Request) -> str:
        got = request.cookies.get(LANG_COOKIE, "")
        return got if got in LANGUAGES else self.settings.language

    def render(self, request: web.Request, template: str, status: int = 200, **kw: Any) -> web.Response:
        lang = kw.pop("lang", None) or self.lang(request)
        html = self.env.get_template(template).render(
            t=lambda key: translate(key, lang), lang=lang, path=request.path_qs, **kw
        )
        return web.Response(
            text=html, status=status, content_type="text/html", charset="utf-8", headers=HEADERS
        )

    async def audit(
        self, ctx: BaseCtx[U] | None, action: str, target: str = "", detail: str = "", actor: str = ""
    ) -> None:
        who = ctx.user.name if ctx is not None else actor
        remote = (ctx.request.remote if ctx is not None else "") or ""
        now = ctx.now if ctx is not None else self.clock()
        await self.db(lambda c: sessions.audit(c, now, who, action, target, detail, remote))

    def refused(self, ctx: BaseCtx[U], reasons: list[str], status: int = 409) -> web.Response:
        return self.render(ctx.request, "message.html", status, title="refused", reasons=reasons, ctx=ctx)

    @staticmethod
    def back(ctx: BaseCtx[U], default: str) -> web.Response:
        nxt = ctx.form.get("next", "")
        return redirect(nxt if _local_path(nxt) else PREFIX + default)

    # ---------------------------------------------------------------- sessions

    async def _session(self, request: web.Request) -> tuple[sessions.Session | None, str]:
        sid = request.cookies.get(SESSION_COOKIE, "")
        if not sid:
            return None, "none"
        now = self.clock()
        s = self.settings

        def work(conn: Conn) -> tuple[sessions.Session | None, str]:
            found = sessions.find(conn, sid)
            if found is None:  # unknown, signed out, or expired on an earlier request (a page's poll)
                return None, "ended" if sessions.ended(conn, sid) in ("idle", "absolute") else "none"
            why = sessions.expiry(found, now, s.session_idle_s, s.session_max_s)
            if why is not None:
                sessions.end(conn, found, now, why)
                sessions.audit(
                    conn, now, found.username, "session_expired", detail=why, remote=request.remote or ""
                )
                return None, "expired"
            sessions.touch(conn, found, now)
            return found, ""

        got, why = await self.db(work)
        if why == "expired":  # counted once, when it is found expired
            self.counters["expired"] += 1
        return got, why

    async def _ctx(self, request: web.Request) -> BaseCtx[U] | web.StreamResponse:
        s, why = await self._session(request)
        user = None if s is None else self.find_user(s.username)
        if s is None or user is None or user.role != s.role:
            if request.headers.get("X-Hazmon-Fragment"):
                return web.Response(status=401, text="sign in", headers=HEADERS)
            expired = why in ("expired", "ended")
            q = f"?next={quote(request.path_qs)}" + ("&expired=1" if expired else "")
            r = redirect(PREFIX + "/signin" + q)
            if s is None and why != "none":
                r.del_cookie(SESSION_COOKIE, path=PREFIX)
            return r
        ctx = BaseCtx(request, user, s, self.lang(request), self.clock())
        why_not = self.refusal(user)
        return ctx if why_not is None else self._forbidden(ctx, why_not)

    def _forbidden(self, ctx: BaseCtx[U], reason: str) -> web.Response:
        self.counters["forbidden"] += 1
        log.warning("console request refused", user=ctx.user.name, path=ctx.request.path, reason=reason)
        return self.render(ctx.request, "message.html", 403, title="forbidden", reasons=[reason], ctx=ctx)

    def page(self, fn: Callable[[BaseCtx[U]], Awaitable[web.StreamResponse]]) -> Route:
        """A GET page for any signed-in user who sees the plant."""

        async def handler(request: web.Request) -> web.StreamResponse:
            got = await self._ctx(request)
            return got if isinstance(got, web.StreamResponse) else await fn(got)

        return handler

    def form(
        self,
        fn: Callable[[BaseCtx[U]], Awaitable[web.StreamResponse]],
        roles: tuple[str, ...] = ("operator", "plant_manager", "bureau", "viewer", "officer"),
        upload_max: int = 0,
    ) -> Route:
        """A POST: a signed-in user, the session's CSRF token in the form, a role in ``roles``.

        ``upload_max`` > 0: a multipart form whose files (read up to that many bytes each) go to
        ``ctx.files``; it is streamed, so the server's request size limit does not cut it first.
        """

        async def handler(request: web.Request) -> web.StreamResponse:
            got = await self._ctx(request)
            if isinstance(got, web.StreamResponse):
                return got
            if request.content_type == "multipart/form-data" and upload_max:
                got.form, got.files = await _multipart(request, upload_max)
            else:
                data: MultiDictProxy[Any] = await request.post()
                got.form = {k: v for k, v in data.items() if isinstance(v, str)}
            token = got.form.get("csrf", "")
            if not hmac.compare_digest(token.encode(), got.session.csrf.encode()):
                self.counters["csrf_refused"] += 1
                log.warning("console form refused: CSRF token", user=got.user.name, path=request.path)
                await self.audit(got, "csrf_refused", request.path, "missing" if not token else "wrong")
                return self.render(request, "message.html", 403, title="csrf_refused", reasons=[], ctx=got)
            if got.user.role not in roles:
                await self.audit(got, "forbidden", request.path, f"role {got.user.role}")
                return self._forbidden(got, f"role {got.user.role} may not do this")
            self.counters["actions"] += 1
            return await fn(got)

        return handler

    # ---------------------------------------------------------------- routes

    async def _home(self, request: web.Request) -> web.StreamResponse:
        return redirect(PREFIX + self.home)

    async def _lang(self, request: web.Request) -> web.StreamResponse:
        lang = request.match_info["lang"]
        nxt = request.query.get("next", "")
        r = redirect(nxt if _local_path(nxt) else PREFIX + self.home)
        if lang in LANGUAGES:
            r.set_cookie(
                LANG_COOKIE, lang, max_age=365 * 86400, path=PREFIX, samesite="Strict", httponly=True
            )
        return r

    def _signin_form(self, request: web.Request, status: int = 200, error: str = "") -> web.Response:
        pre = secrets.token_urlsafe(24)
        nxt = request.query.get("next", "")
        expired = request.query.get("expired") == "1"
        r = self.render(
            request,
            "signin.html",
            status,
            ctx=None,
            pre=pre,
            next=nxt if _local_path(nxt) else "",
            error=error,
            expired=expired,
        )
        r.set_cookie(
            PRE_COOKIE, pre, path=PREFIX, samesite="Strict", httponly=True, secure=self.settings.secure_cookie
        )
        return r

    async def _signin_page(self, request: web.Request) -> web.StreamResponse:
        return self._signin_form(request)

    async def _signin(self, request: web.Request) -> web.StreamResponse:
        data = await request.post()
        form = {k: v for k, v in data.items() if isinstance(v, str)}
        now = self.clock()
        pre = request.cookies.get(PRE_COOKIE, "")
        if not pre or not hmac.compare_digest(form.get("csrf", "").encode(), pre.encode()):
            self.counters["csrf_refused"] += 1
            await self.audit(
                None, "csrf_refused", request.path, "sign-in form", actor=form.get("username", "")[:64]
            )
            return self.render(request, "message.html", 403, title="csrf_refused", reasons=[], ctx=None)
        name, password = form.get("username", "").strip(), form.get("password", "")
        if sessions.locked(self._failures.get(name[:64], []), now):
            self.counters["signin_refused"] += 1
            log.warning("console sign-in refused: too many failures", user=name[:64], remote=request.remote)
            await self.audit(None, "signin_refused", detail="locked: too many failures", actor=name[:64])
            return self._signin_form(request, 429, "signin_locked")
        user = self.find_user(name)
        ok = await asyncio.to_thread(verify, password, user.password_hash if user else _DUMMY_HASH)
        if user is None or not ok:
            self._failures.setdefault(name[:64], []).append(now)
            if len(self._failures) > 10_000:  # bounded: forget the oldest names
                self._failures.pop(next(iter(self._failures)))
            self.counters["signin_refused"] += 1
            log.warning("console sign-in refused", user=name[:64], remote=request.remote)
            await self.audit(None, "signin_refused", detail="wrong user name or password", actor=name[:64])
            return self._signin_form(request, 401, "signin_failed")
        self._failures.pop(name, None)
        sid, _ = await self.db(lambda c: sessions.create(c, user.name, user.role, now))
        self.counters["signins"] += 1
        log.info("console sign-in", user=user.name, role=user.role, remote=request.remote)
        await self.db(
            lambda c: sessions.audit(
                c, now, user.name, "signin", detail=user.role, remote=request.remote or ""
            )
        )
        nxt = form.get("next", "")
        r = redirect(nxt if _local_path(nxt) else PREFIX + self.home)
        r.set_cookie(
            SESSION_COOKIE,
            sid,
            path=PREFIX,
            httponly=True,
            samesite="Strict",
            secure=self.settings.secure_cookie,
        )
        r.del_cookie(PRE_COOKIE, path=PREFIX)
        return r

    async def _signout(self, ctx: BaseCtx[U]) -> web.StreamResponse:
        await self.db(lambda c: sessions.end(c, ctx.session, ctx.now, "logout"))
        await self.audit(ctx, "signout")
        self.counters["signouts"] += 1
        r = redirect(PREFIX + "/signin")
        r.del_cookie(SESSION_COOKIE, path=PREFIX)
        return r


class Console(WebConsole[ConsoleUser]):
    """The web console of one plant, mounted by the daemon on its HTTP app (`routes`)."""

    settings: ConsoleSettings

    def __init__(
        self,
        plant: Plant,
        settings: ConsoleSettings,
        dsn: str,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        super().__init__(settings, dsn, ZoneInfo(plant.enterprise.timezone), clock, "/alarms")
        self.plant, self.settings = plant, settings
        self.env.globals.update(plant=plant)

    def find_user(self, name: str) -> ConsoleUser | None:
        return self.settings.user(name)

    def sees(self, user: ConsoleUser) -> bool:
        """A bureau user sees this plant only inside its region (the API's rule, `ApiToken.sees`)."""
        if user.role != "bureau" or user.level is None:
            return True
        region = user.region or self.plant.enterprise.region.code
        return self.plant.enterprise.region.code.startswith(region_prefix(user.level, region))

    def refusal(self, user: ConsoleUser) -> str | None:
        ok = self.sees(user)
        return None if ok else f"region {self.plant.enterprise.region.code} is outside {user.name}'s"


async def _multipart(request: web.Request, limit: int) -> tuple[dict[str, str], dict[str, Upload]]:
    form: dict[str, str] = {}
    files: dict[str, Upload] = {}
    reader = await request.multipart()
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader) or part.name is None:
            continue
        if part.filename is None:
            form[part.name] = (await part.read_chunk(64 * 1024)).decode("utf-8", "replace")
            continue
        buf = bytearray()
        while chunk := await part.read_chunk():
            buf += chunk
            if len(buf) > limit:
                break
        ctype = part.headers.get("Content-Type", "")
        files[part.name] = Upload(part.filename, ctype, bytes(buf[: limit + 1]), len(buf) > limit)
        if len(buf) > limit:
            break  # the rest is not read: the request is refused
    return form, files


def redirect(url: str) -> web.Response:
    """303 See Other: after a form, the browser GETs the page (a reload does not post again)."""
    return web.Response(status=303, headers={**HEADERS, "Location": url})


def _local_path(p: str) -> bool:
    """A redirect target inside the console (never another site: no ``//host`` or scheme)."""
    return p.startswith(PREFIX + "/") and not p.startswith("//") and "\\" not in p and "\n" not in p
