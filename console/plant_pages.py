"""The plant's supervision pages: hidden dangers, duty checks, the daily commitment, assessments.

The hidden-danger register, a record with its plan and steps, duty checks and the daily
commitment, assessments due.

Everything is read and written through `hazmon.supervision.repository` and `hazmon.store`
(the same functions as the ``hazmon danger|duty|commitment|assessment`` commands); the
rules (who may take which step, the plan's six parts, periods, the commitment's day) are
theirs. A refused step shows every reason and writes nothing.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import quote

from aiohttp import web

from hazmon.console.list_query import choice, pager, parse_list, text
from hazmon.console.web import Console, Ctx
from hazmon.plant import assessment_status
from hazmon.plant.supervision_standards import DUTY_ROLES, MAJOR_CRITERIA, PLAN_PARTS, SPECIAL_WORK
from hazmon.store import latest_assessments
from hazmon.supervision import (
    ATTACHMENT_MAX_BYTES,
    Action,
    Danger,
    DangerLevel,
    FoundBy,
    Plan,
    RefusedError,
    Report,
    State,
    Step,
)
from hazmon.supervision import bureau as sbureau
from hazmon.supervision import repository as repo
from hazmon.supervision.dangers import ACTION_ROLES, TRANSITIONS, overdue_episodes, parse_funds
from hazmon.supervision.duty import SOURCE_STATES, Commitment, DutyCheck, commitment_status

__all__ = ["PAGE_SIZE", "mount_plant_pages"]

PAGE_SIZE = 50
PLANT_ROLES = ("operator", "plant_manager")
STEP_ACTIONS = (Action.START, Action.APPLY, Action.ACCEPT, Action.REJECT, Action.NOTE)


def _overdue(d: Danger, c: Console, ctx: Ctx) -> bool:
    eps = overdue_episodes(d, c.tz, ctx.now)
    return bool(eps) and eps[-1][2] is None


def _next_steps(d: Danger, role: str) -> list[str]:
    """The steps this role may take on the record in its state (the register's own tables)."""
    out = [
        a.value
        for a in STEP_ACTIONS
        if role in ACTION_ROLES[a] and (a is Action.NOTE or (d.state, a) in TRANSITIONS)
    ]
    if d.level is DangerLevel.MAJOR and d.state is State.FOUND and "start" in out:
        out.remove("start")  # a major one starts only with its signed plan
    return out


def _plan_checks(d: Danger) -> list[tuple[str, str, bool]]:
    """Each of the six parts of Order 16 (五落实): (zh, en, present) for the plan in force."""
    p = d.plan or Plan()
    present = {
        "goal": bool(p.goal.strip()),
        "measures": bool(p.measures.strip()),
        "funds": p.funds is not None and p.funds > 0,
        "organisation": bool(p.organisation.strip()) and any(x.strip() for x in p.persons),
        "deadline": p.deadline is not None,
        "safety": bool(p.safety_measures.strip()) and bool(p.contingency_plan.strip()),
    }
    return [(part.zh, part.en, present[part.key]) for part in PLAN_PARTS]


def mount_plant_pages(c: Console) -> None:  # noqa: PLR0915 - one closure per page
    plant = c.plant
    eid = plant.enterprise.id
    sources = [hs.id for hs in plant.hazard_sources]
    checks = {
        "state": choice([s.value for s in State]),
        "level": choice([lv.value for lv in DangerLevel]),
        "hazard_source": choice(sources),
        "q": text(),
    }

    # ------------------------------------------------------------------ hidden dangers

    async def dangers(ctx: Ctx) -> web.StreamResponse:
        args = parse_list(ctx.request.query, checks, default_size=PAGE_SIZE)
        if args.problems:  # a bad filter or page is named on the page, never ignored or a 500
            return c.render(
                ctx.request, "message.html", 400, title="bad_query", reasons=args.problems, ctx=ctx
            )
        state, level, hs, title = (args.value(k) for k in ("state", "level", "hazard_source", "q"))
        rows, total = await c.db(
            lambda conn: repo.page_dangers(
                conn,
                eid,
                [state] if state else [],
                hazard_source=hs or None,
                level=level or None,
                title=title or None,
                limit=args.size,
                offset=args.offset,
            )
        )
        pg = pager(args, total)
        page, pages = args.page, int(str(pg["pages"]))
        if page > pages:
            why = [f"page: {page} is past the last page ({pages})"]
            return c.render(ctx.request, "message.html", 400, title="bad_query", reasons=why, ctx=ctx)
        filters = {"state": state, "level": level, "hazard_source": hs, "q": title}
        items = [(d, _overdue(d, c, ctx)) for d in rows]
        return c.render(
            ctx.request,
            "dangers.html",
            ctx=ctx,
            items=items,
            total=total,
            page=page,
            pages=pages,
            filters=filters,
            states=[s.value for s in State],
            sources=sources,
            may_report=ctx.user.role in ACTION_ROLES[Action.REPORT],
        )

    async def danger(ctx: Ctx) -> web.StreamResponse:
        raw = ctx.request.match_info["id"]
        d = (
            await c.db(lambda conn: repo.get_danger(conn, eid, int(raw)))
            if raw.isdigit() and len(raw) < 19
            else None
        )
        if d is None:
            return c.render(ctx.request, "message.html", 404, title="not_found", reasons=[], ctx=ctx)
        atts = await c.db(lambda conn: repo.attachments(conn, d.id))
        svs = await c.db(lambda conn: _supervisions_of(conn, d.id))
        criteria = [MAJOR_CRITERIA[i] for i in d.report.criteria if i in MAJOR_CRITERIA]
        return c.render(
            ctx.request,
            "danger.html",
            ctx=ctx,
            d=d,
            overdue=_overdue(d, c, ctx),
            atts=atts,
            criteria=criteria,
            checks=_plan_checks(d),
            may_attach=ctx.user.role in ACTION_ROLES[Action.ATTACH],
            next_steps=_next_steps(d, ctx.user.role),
            may_plan=ctx.user.role in ACTION_ROLES[Action.PLAN] and (d.state, Action.PLAN) in TRANSITIONS,
            today=ctx.now.astimezone(c.tz).date().isoformat(),
            supervisions=svs,
            may_progress=ctx.user.role == "plant_manager",
        )

    def _supervisions_of(conn: Any, danger_id: int) -> list[dict[str, Any]]:
        """The bureau's supervisions of this record (挂牌督办, as received), each with our reports."""
        out = [s for s in sbureau.supervisions(conn, eid) if s["danger_id"] == danger_id]
        for s in out:  # the read gives ISO 8601 (for the API's JSON); the page shows local times
            for row in (*s["steps"], *s["progress"]):
                row["at"] = datetime.fromisoformat(row["at"])
        return out

    async def progress(ctx: Ctx) -> web.StreamResponse:
        """Progress on the bureau's supervision of this record: `file_progress`, as the API's."""
        raw, f = ctx.request.match_info["id"], ctx.form
        sid = f.get("supervision_id", "")
        if not raw.isdigit() or len(raw) > 18 or not sid.isdigit() or len(sid) > 18:
            return c.refused(ctx, ["supervision: no such supervision of this hidden danger"], 400)
        mine = await c.db(lambda conn: _supervisions_of(conn, int(raw)))
        if int(sid) not in {s["supervision_id"] for s in mine}:
            return c.refused(ctx, [f"supervision: {sid} is no supervision of hidden danger {raw}"], 400)
        done = f.get("done", "") == "1"
        try:
            pid = await c.db(
                lambda conn: sbureau.file_progress(
                    conn, plant, int(sid), actor=ctx.user.name, role=ctx.user.role, at=ctx.now,
                    comment=f.get("comment", "").strip()[:2000], done=done,
                )
            )  # fmt: skip
        except RefusedError as e:
            return c.refused(ctx, e.reasons)
        await c.audit(ctx, "supervision_progress", f"supervision/{sid}", f"progress/{pid} done={done}")
        return c.back(ctx, f"/dangers/{raw}")

    async def report(ctx: Ctx) -> web.StreamResponse:
        f = ctx.form
        try:
            criteria = tuple(
                int(x) for x in f.get("criteria", "").replace("，", ",").replace(" ", "").split(",") if x
            )
        except ValueError:
            return c.refused(ctx, ["criteria: a comma list of item numbers (1-20)"], 400)
        level = f.get("level", "general")
        if level not in [lv.value for lv in DangerLevel]:
            return c.refused(ctx, [f"level: '{level}' is not general or major"], 400)
        r = Report(
            title=f.get("title", "").strip(),
            level=DangerLevel(level),
            found_by=FoundBy.INSPECTION,
            hazard_source=f.get("hazard_source") or None,
            unit=f.get("unit", "").strip(),
            criteria=criteria,
            description=f.get("description", "").strip(),
        )
        step = Step(Action.REPORT, ctx.user.name, ctx.user.role, ctx.now, f.get("comment", ""), r.to_json())
        try:
            d = await c.db(lambda conn: repo.add_danger(conn, plant, step))
        except RefusedError as e:
            return c.refused(ctx, e.reasons, 400)
        await c.audit(ctx, "danger_report", f"hidden-danger/{d.id}", r.title)
        return c.back(ctx, f"/dangers/{d.id}")

    async def from_alarm(ctx: Ctx) -> web.StreamResponse:
        """A hidden danger raised from an alarm: its subject prefilled by the register (`alarm_subject`)."""
        raw = ctx.request.match_info["id"]
        base = (
            await c.db(lambda conn: repo.alarm_subject(conn, plant, int(raw)))
            if raw.isdigit() and len(raw) < 19
            else None
        )
        if base is None:
            return c.render(ctx.request, "message.html", 404, title="not_found", reasons=[], ctx=ctx)
        title = ctx.form.get("title", "").strip() or base.title
        r = Report(
            title, base.level, base.found_by, base.hazard_source, sensor=base.sensor, alarm_id=base.alarm_id
        )
        step = Step(
            Action.REPORT, ctx.user.name, ctx.user.role, ctx.now, ctx.form.get("comment", ""), r.to_json()
        )
        try:
            d = await c.db(lambda conn: repo.add_danger(conn, plant, step))
        except RefusedError as e:
            return c.refused(ctx, e.reasons, 400)
        await c.audit(ctx, "danger_report", f"hidden-danger/{d.id}", f"from alarm/{raw}")
        return c.back(ctx, f"/dangers/{d.id}")

    async def attach(ctx: Ctx) -> web.StreamResponse:
        raw = ctx.request.match_info["id"]
        up = ctx.files.get("file")
        if not raw.isdigit() or len(raw) > 18 or up is None or not up.filename:
            return c.refused(ctx, ["file: choose a photo (JPEG, PNG) or a PDF"], 400)
        if up.too_large:
            mib = ATTACHMENT_MAX_BYTES // (1024 * 1024)
            return c.refused(ctx, [f"{up.filename}: over the limit of {mib} MiB"], 413)
        step = Step(Action.ATTACH, ctx.user.name, ctx.user.role, ctx.now, ctx.form.get("comment", "").strip())
        try:
            _, _, meta = await c.db(
                lambda conn: repo.attach(
                    conn,
                    plant,
                    int(raw),
                    step,
                    filename=up.filename,
                    content=up.content,
                    content_type=up.content_type or None,
                )
            )
        except RefusedError as e:  # AttachmentError is one: wrong type, empty, renamed file
            return c.refused(ctx, e.reasons, 400)
        await c.audit(ctx, "danger_attach", f"hidden-danger/{raw}", f"{meta.filename} ({meta.size} bytes)")
        return c.back(ctx, f"/dangers/{raw}")

    async def attachment(ctx: Ctx) -> web.StreamResponse:
        raw = ctx.request.match_info["att"]
        got = (
            await c.db(lambda conn: repo.attachment_content(conn, eid, int(raw)))
            if raw.isdigit() and len(raw) < 19
            else None
        )
        if got is None:
            return c.render(ctx.request, "message.html", 404, title="not_found", reasons=[], ctx=ctx)
        meta, content = got
        disposition = "inline" if meta.content_type != "application/pdf" else "attachment"
        return web.Response(
            body=content,
            content_type=meta.content_type,
            headers={
                "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(meta.filename)}",
                "X-Content-Type-Options": "nosniff",
                "Content-Security-Policy": "default-src 'none'; img-src 'self'; sandbox",
                "Cache-Control": "private, max-age=3600",
            },
        )

    async def take_step(ctx: Ctx) -> web.StreamResponse:
        raw, f = ctx.request.match_info["id"], ctx.form
        action = f.get("action", "")
        if not raw.isdigit() or len(raw) > 18 or action not in [a.value for a in STEP_ACTIONS]:
            return c.refused(ctx, [f"step: '{action}' is not one of start, apply, accept, reject, note"], 400)
        data: dict[str, Any] = {}
        if f.get("deadline"):
            try:
                data["deadline"] = date.fromisoformat(f["deadline"]).isoformat()
            except ValueError:
                return c.refused(ctx, [f"deadline: '{f['deadline']}' is not a date (YYYY-MM-DD)"], 400)
        step = Step(Action(action), ctx.user.name, ctx.user.role, ctx.now, f.get("comment", "").strip(), data)
        try:
            await c.db(lambda conn: repo.add_step(conn, plant, int(raw), step))
        except RefusedError as e:
            return c.refused(ctx, e.reasons)
        await c.audit(ctx, f"danger_{action}", f"hidden-danger/{raw}", step.comment)
        return c.back(ctx, f"/dangers/{raw}")

    async def sign_plan(ctx: Ctx) -> web.StreamResponse:
        raw, f = ctx.request.match_info["id"], ctx.form
        if not raw.isdigit() or len(raw) > 18:
            return c.refused(ctx, ["no such record"], 404)
        problems: list[str] = []
        funds: Decimal | None = None
        deadline: date | None = None
        try:
            funds = parse_funds(f["funds"]) if f.get("funds", "").strip() else None
        except ValueError as e:
            problems.append(str(e))
        try:
            deadline = date.fromisoformat(f["deadline"]) if f.get("deadline") else None
        except ValueError:
            problems.append(f"deadline: '{f['deadline']}' is not a date (YYYY-MM-DD)")
        if problems:
            return c.refused(ctx, problems, 400)
        plan = Plan(
            goal=f.get("goal", "").strip(),
            measures=f.get("measures", "").strip(),
            funds=funds,
            materials=f.get("materials", "").strip(),
            organisation=f.get("organisation", "").strip(),
            persons=tuple(p.strip() for p in f.get("persons", "").replace("，", ",").split(",") if p.strip()),
            deadline=deadline,
            safety_measures=f.get("safety_measures", "").strip(),
            contingency_plan=f.get("contingency_plan", "").strip(),
        )
        step = Step(
            Action.PLAN, ctx.user.name, ctx.user.role, ctx.now, f.get("comment", "").strip(), plan.to_json()
        )
        try:
            await c.db(lambda conn: repo.add_step(conn, plant, int(raw), step))
        except RefusedError as e:
            return c.refused(ctx, e.reasons)
        await c.audit(ctx, "danger_plan", f"hidden-danger/{raw}", f"deadline {deadline}")
        return c.back(ctx, f"/dangers/{raw}")

    # ------------------------------------------------------------------ duties and commitment

    async def duty(ctx: Ctx) -> web.StreamResponse:
        state = await c.db(lambda conn: repo.load_state(conn, plant, now=ctx.now))
        rows = state.duties(ctx.now)
        cs = commitment_status(
            state.commitments, plant.supervision.commitment_due, state.started, ctx.now, c.tz
        )
        recent = await c.db(lambda conn: repo.list_checks(conn, eid))
        return c.render(
            ctx.request,
            "duty.html",
            ctx=ctx,
            rows=rows,
            cs=cs,
            recent=recent[:20],
            sources=sources,
            source_states=SOURCE_STATES,
            special_work=SPECIAL_WORK,
            roles=DUTY_ROLES,
            commitments=state.commitments,
        )

    async def record_check(ctx: Ctx) -> web.StreamResponse:
        f = ctx.form
        hs, role = f.get("hazard_source", ""), f.get("role", "")
        person = repo.responsible_of(plant).get(hs, {}).get(role, f.get("person", ""))
        check = DutyCheck(
            hazard_source=hs,
            role=role,
            person=person,
            at=ctx.now,
            what=f.get("what", "").strip(),
            findings=f.get("findings", "").strip(),
            recorded_by=ctx.user.name,
            recorded_role=ctx.user.role,
        )
        try:
            cid = await c.db(lambda conn: repo.add_check(conn, plant, check, ctx.now))
        except RefusedError as e:
            return c.refused(ctx, e.reasons, 400)
        await c.audit(ctx, "duty_check", f"duty-check/{cid}", f"{hs} {role} {person}")
        return c.back(ctx, "/duty")

    async def commit(ctx: Ctx) -> web.StreamResponse:
        f = ctx.form
        states = {hs: f.get(f"source_{hs}", "") for hs in sources}
        work: dict[str, int] = {}
        for k in SPECIAL_WORK:
            v = f.get(f"work_{k}", "").strip()
            if v and v != "0":
                if not v.isdigit():
                    return c.refused(ctx, [f"special work: {k}: '{v}' is not a whole number"], 400)
                work[k] = int(v)
        cm = Commitment(
            ctx.now.astimezone(c.tz).date(), ctx.user.name, ctx.now, states, work, f.get("note", "")
        )
        try:
            cid = await c.db(lambda conn: repo.file_commitment(conn, plant, cm, ctx.user.role))
        except RefusedError as e:
            return c.refused(ctx, e.reasons, 400)
        await c.audit(ctx, "commitment", f"commitment/{cid}", str(cm.day))
        return c.back(ctx, "/duty")

    # ------------------------------------------------------------------ assessments

    async def assessments(ctx: Ctx) -> web.StreamResponse:
        today = ctx.now.astimezone(c.tz).date()
        latest = await c.db(lambda conn: latest_assessments(conn, eid))
        rows = [(hs, assessment_status(latest.get(hs.id), hs, today)) for hs in plant.hazard_sources]
        rows.sort(key=lambda r: r[1].next_due)
        return c.render(ctx.request, "assessments.html", ctx=ctx, rows=rows, today=today)

    c.add("GET", "/dangers", c.page(dangers))
    c.add("POST", "/dangers", c.form(report, tuple(ACTION_ROLES[Action.REPORT])))
    c.add("GET", "/dangers/{id}", c.page(danger))
    c.add("POST", "/dangers/from-alarm/{id}", c.form(from_alarm, tuple(ACTION_ROLES[Action.REPORT])))
    c.add("POST", "/dangers/{id}/step", c.form(take_step))  # the register checks the role per step
    c.add(
        "POST",
        "/dangers/{id}/attach",
        c.form(attach, tuple(ACTION_ROLES[Action.ATTACH]), ATTACHMENT_MAX_BYTES),
    )
    c.add("GET", "/attachments/{att}", c.page(attachment))
    c.add("POST", "/dangers/{id}/plan", c.form(sign_plan, tuple(ACTION_ROLES[Action.PLAN])))
    c.add("POST", "/dangers/{id}/progress", c.form(progress, ("plant_manager",)))
    c.add("GET", "/duty", c.page(duty))
    c.add("POST", "/duty/check", c.form(record_check, PLANT_ROLES))
    c.add("POST", "/commitment", c.form(commit, ("plant_manager",)))
    c.add("GET", "/assessments", c.page(assessments))
