"""Duty periods at their boundaries, the daily commitment, and the findings for the alarms (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from hazmon.plant.findings import Condition
from hazmon.plant.standards import Level
from hazmon.plant.supervision_standards import DUTY_ROLES, MAJOR_CRITERIA, Period, SupervisionSettings
from hazmon.supervision.attachments import ATTACHMENT_MAX_BYTES, AttachmentError, check_attachment
from hazmon.supervision.dangers import Action, State, Step, decide, fold
from hazmon.supervision.duty import Commitment, DutyCheck, commitment_status, duty_status, period_bounds
from hazmon.supervision.findings import SupervisionState, supervision_findings
from tests.supervision.test_dangers import full_plan, record_in

SH = ZoneInfo("Asia/Shanghai")


def sh(*a: int) -> datetime:
    return datetime(*a, tzinfo=SH)


# ----------------------------------------------------------------------- periods


@pytest.mark.parametrize(
    ("at", "period", "start", "end"),
    [
        # quarter ends: the last minute of Q1 and the first of Q2, local time
        (sh(2028, 3, 31, 23, 59), Period.QUARTER, sh(2028, 1, 1), sh(2028, 4, 1)),
        (sh(2028, 4, 1, 0, 0), Period.QUARTER, sh(2028, 4, 1), sh(2028, 7, 1)),
        (sh(2027, 12, 31, 23, 59), Period.QUARTER, sh(2027, 10, 1), sh(2028, 1, 1)),
        # a UTC time that is already the next local day in Shanghai (16:30Z = 00:30 +08:00)
        (datetime(2028, 3, 31, 16, 30, tzinfo=UTC), Period.QUARTER, sh(2028, 4, 1), sh(2028, 7, 1)),
        (datetime(2028, 3, 31, 15, 59, tzinfo=UTC), Period.QUARTER, sh(2028, 1, 1), sh(2028, 4, 1)),
        # 29 February 2028 (a Tuesday): its week runs Monday 28 Feb to Monday 6 March
        (sh(2028, 2, 29, 12, 0), Period.WEEK, sh(2028, 2, 28), sh(2028, 3, 6)),
        (sh(2028, 2, 29, 12, 0), Period.MONTH, sh(2028, 2, 1), sh(2028, 3, 1)),
        # Sunday 23:59 and Monday 00:00 local
        (sh(2028, 3, 5, 23, 59), Period.WEEK, sh(2028, 2, 28), sh(2028, 3, 6)),
        (sh(2028, 3, 6, 0, 0), Period.WEEK, sh(2028, 3, 6), sh(2028, 3, 13)),
        # Sunday 17:00 UTC is Monday 01:00 in Shanghai: the new week
        (datetime(2028, 3, 5, 17, 0, tzinfo=UTC), Period.WEEK, sh(2028, 3, 6), sh(2028, 3, 13)),
    ],
)
def test_period_bounds(at: datetime, period: Period, start: datetime, end: datetime) -> None:
    assert period_bounds(period, at, SH) == (start, end)


def check(at: datetime, role: str = "technical") -> DutyCheck:
    return DutyCheck("cl2-tankfarm", role, "李明", at, "relief valves, level alarms")


STARTED = sh(2027, 1, 1)


def status(
    checks: list[DutyCheck], now: datetime, period: Period = Period.QUARTER, role: str = "technical"
) -> str:
    return duty_status("cl2-tankfarm", role, period, checks=checks, started=STARTED, now=now, tz=SH).status


def test_quarterly_check_on_the_last_evening_of_the_quarter_counts_for_that_quarter() -> None:
    q1 = check(datetime(2028, 3, 31, 15, 0, tzinfo=UTC))  # 23:00 on 31 March local
    q4 = check(sh(2027, 12, 1))
    assert status([q4, q1], sh(2028, 3, 31, 23, 30)) == "done"
    assert status([q4, q1], sh(2028, 4, 1, 0, 0)) == "due"  # Q2 begins, Q1 was met
    assert status([q4, q1], sh(2028, 6, 30, 23, 59)) == "due"
    st = duty_status(
        "cl2-tankfarm",
        "technical",
        Period.QUARTER,
        checks=[q4, q1],
        started=STARTED,
        now=sh(2028, 7, 1),
        tz=SH,
    )
    assert (st.status, st.missed_deadline) == ("overdue", sh(2028, 7, 1))


def test_a_check_at_0030_local_that_is_the_previous_day_in_utc_counts_for_the_new_quarter() -> None:
    q4 = check(sh(2027, 12, 1))
    early = check(datetime(2028, 3, 31, 16, 30, tzinfo=UTC))  # 00:30 on 1 April in Shanghai
    # Q1 2028 had no check: overdue from 1 April 00:00 local, and the 00:30 check clears it
    assert status([q4], sh(2028, 4, 1, 0, 10)) == "overdue"
    assert status([q4, early], sh(2028, 4, 1, 0, 40)) == "done"


def test_weekly_boundaries_around_29_february_2028() -> None:
    leap = check(sh(2028, 2, 29, 9, 0), role="operational")
    week_before = check(sh(2028, 2, 22, 9, 0), role="operational")
    checks = [week_before, leap]
    assert status(checks, sh(2028, 3, 5, 23, 59), Period.WEEK, "operational") == "done"
    assert status(checks, sh(2028, 3, 6, 0, 0), Period.WEEK, "operational") == "due"
    assert status(checks, sh(2028, 3, 13, 0, 0), Period.WEEK, "operational") == "overdue"
    late = check(sh(2028, 3, 14, 8, 0), role="operational")
    assert status([*checks, late], sh(2028, 3, 14, 9, 0), Period.WEEK, "operational") == "done"


def test_periods_ending_before_supervision_began_are_not_counted() -> None:
    st = duty_status(
        "cl2-tankfarm",
        "technical",
        Period.QUARTER,
        checks=[],
        started=sh(2028, 4, 1, 0, 0),
        now=sh(2028, 4, 2),
        tz=SH,
    )
    assert st.status == "due"


def test_duty_defaults_and_their_marks() -> None:
    assert DUTY_ROLES["technical"].period is Period.QUARTER and DUTY_ROLES["technical"].verified
    assert DUTY_ROLES["operational"].period is Period.WEEK and not DUTY_ROLES["operational"].verified
    assert DUTY_ROLES["principal"].period is Period.QUARTER and not DUTY_ROLES["principal"].verified
    assert [i for i, c in MAJOR_CRITERIA.items() if not c.verified] == [16, 17, 18, 19, 20]


# ----------------------------------------------------------------------- commitment


def commit(day: date, at: datetime) -> Commitment:
    return Commitment(day, "张建国", at, {"cl2-tankfarm": "running"})


def test_commitment_due_by_ten_local() -> None:
    due = time(10, 0)
    assert commitment_status([], due, STARTED, sh(2028, 2, 29, 9, 59), SH).missing_day == date(2028, 2, 28)
    filed = [commit(date(2028, 2, 28), sh(2028, 2, 28, 8)), commit(date(2028, 2, 29), sh(2028, 2, 29, 9, 30))]
    assert commitment_status(filed[:1], due, STARTED, sh(2028, 2, 29, 9, 59), SH).missing_day is None
    st = commitment_status(filed[:1], due, STARTED, sh(2028, 2, 29, 10, 0), SH)
    assert (st.missing_day, st.missing_since) == (date(2028, 2, 29), sh(2028, 2, 29, 10))
    assert commitment_status(filed, due, STARTED, sh(2028, 2, 29, 10, 0), SH).missing_day is None
    # 02:30 UTC on the 29th is 10:30 local: due; 01:59 UTC is 09:59 local: not yet
    assert (
        commitment_status(filed[:1], due, STARTED, datetime(2028, 2, 29, 1, 59, tzinfo=UTC), SH).missing_day
        is None
    )
    assert commitment_status(
        filed[:1], due, STARTED, datetime(2028, 2, 29, 2, 30, tzinfo=UTC), SH
    ).missing_day


# ----------------------------------------------------------------------- findings


def state(**kw: object) -> SupervisionState:
    base = SupervisionState(
        enterprise="hx-chem",
        tz=SH,
        settings=SupervisionSettings(),
        sources={"cl2-tankfarm": {"principal": "张建国", "technical": "李明", "operational": "王强"}},
        started=sh(2027, 6, 1),
        checks=(
            check(sh(2027, 6, 2, 9), "principal"),
            check(sh(2027, 6, 2, 9), "technical"),
            check(sh(2027, 7, 1, 9), "operational"),
        ),
        commitments=(
            commit(date(2027, 7, 1), sh(2027, 7, 1, 8)),
            commit(date(2027, 7, 2), sh(2027, 7, 2, 8)),
        ),
    )
    return replace(base, **kw)  # type: ignore[arg-type]


def test_a_rectification_overdue_by_one_day_yields_exactly_one_finding() -> None:
    d = record_in(
        __import__("hazmon.supervision.dangers", fromlist=["State"]).State.RECTIFYING
    )  # deadline 30 June
    st = state(dangers=(d,))
    one_day_late = sh(2027, 7, 2, 0, 0)
    sweep = supervision_findings(st, one_day_late)
    assert [(f.condition, f.sensor, f.active, f.level) for f in sweep.findings] == [
        (Condition.RECTIFICATION_OVERDUE, "hidden-danger/1", True, Level.FIRST)
    ]
    assert "2027-06-30" in sweep.findings[0].message_en and sweep.findings[0].value == 1.0
    # called again and again (every tick, a restart with the stored told): nothing more
    st2 = replace(st, told=sweep.told)
    for later in (one_day_late + timedelta(minutes=1), sh(2027, 7, 2, 9), sh(2027, 7, 2, 9, 59)):
        again = supervision_findings(st2, later)
        assert again.findings == []
        st2 = replace(st2, told=again.told)
    # accepted: one clearing finding, then silence
    d = st2.dangers[0]
    acc = decide(d, Step(Action.APPLY, "张建国", "plant_manager", sh(2027, 7, 2, 10)), SH)
    d = fold(1, (*d.steps, acc))
    acc = decide(d, Step(Action.ACCEPT, "赵验收", "plant_manager", sh(2027, 7, 2, 11)), SH)
    d = fold(1, (*d.steps, acc))
    cleared = supervision_findings(replace(st2, dangers=(d,)), sh(2027, 7, 2, 11, 1))
    assert [(f.condition, f.active, f.level) for f in cleared.findings] == [
        (Condition.RECTIFICATION_OVERDUE, False, Level.FIRST)
    ]
    assert supervision_findings(replace(st2, dangers=(d,), told=cleared.told), sh(2027, 7, 3)).findings == []


def test_a_new_deadline_that_passes_again_is_one_more_finding() -> None:
    d = record_in(State.RECTIFYING)
    s1 = supervision_findings(state(dangers=(d,)), sh(2027, 7, 1, 0, 0))
    assert [f.sensor for f in s1.findings if f.condition is Condition.RECTIFICATION_OVERDUE] == [
        "hidden-danger/1"
    ]
    rev = decide(
        d,
        Step(
            Action.PLAN,
            "张建国",
            "plant_manager",
            sh(2027, 7, 1, 9),
            data=full_plan(deadline=date(2027, 7, 2)).to_json(),
        ),
        SH,
    )
    d2 = fold(1, (*d.steps, rev))
    s2 = supervision_findings(state(dangers=(d2,), told=s1.told), sh(2027, 7, 1, 9, 1))
    # (the operational check at 09:00 and the commitment filed at 08:00 clear their findings too)
    assert sorted((f.condition.value, f.active) for f in s2.findings) == [
        ("commitment_missing", False),
        ("duty_check_overdue", False),
        ("rectification_overdue", False),
    ]
    s3 = supervision_findings(state(dangers=(d2,), told=s2.told), sh(2027, 7, 3, 0, 0))
    assert [f.active for f in s3.findings if f.condition is Condition.RECTIFICATION_OVERDUE] == [True]
    assert supervision_findings(state(dangers=(d2,), told=s3.told), sh(2027, 7, 3, 1)).findings == []


def test_missed_weekly_check_and_missing_commitment_become_findings_once() -> None:
    st = state()
    # Monday 5 July 2027 00:00: the week of 28 June had its operational check (1 July) -> nothing;
    # Monday 12 July 10:00: no check since 1 July, no commitment on the 12th
    sweep = supervision_findings(st, sh(2027, 7, 12, 10, 0))
    got = {(f.hazard_source, f.sensor, f.condition) for f in sweep.findings}
    assert got == {
        ("cl2-tankfarm", "duty/operational", Condition.DUTY_CHECK_OVERDUE),
        ("hx-chem", None, Condition.COMMITMENT_MISSING),
    }
    assert supervision_findings(replace(st, told=sweep.told), sh(2027, 7, 12, 10, 5)).findings == []
    # the check is done late: one clearing finding for the duty; the commitment stays missing
    late = replace(st, checks=(*st.checks, check(sh(2027, 7, 12, 11), "operational")), told=sweep.told)
    after = supervision_findings(late, sh(2027, 7, 12, 11, 1))
    assert [(f.sensor, f.active) for f in after.findings] == [("duty/operational", False)]


def test_naive_now_is_refused() -> None:
    with pytest.raises(ValueError, match="time zone"):
        supervision_findings(state(), datetime(2027, 7, 12, 10))


# ----------------------------------------------------------------------- attachments


JPEG = b"\xff\xd8\xff\xe0" + b"\0" * 100
PDF = b"%PDF-1.7\n" + b"x" * 100


def test_attachments_accepted() -> None:
    assert check_attachment("photo.JPG", JPEG).content_type == "image/jpeg"
    assert check_attachment("plan.pdf", PDF, "application/pdf").size == len(PDF)


@pytest.mark.parametrize(
    ("name", "content", "ctype", "reason"),
    [
        ("big.pdf", b"%PDF-" + b"x" * ATTACHMENT_MAX_BYTES, None, "is over the limit of 10485760 bytes"),
        ("tool.exe", b"MZ" + b"\0" * 10, None, "the type '.exe' is not accepted; only image/jpeg"),
        ("clip.mp4", b"\0\0\0\x18ftyp", "video/mp4", "the type 'video/mp4' is not accepted"),
        ("fake.jpg", b"MZ" + b"\0" * 10, None, "the content is not a image/jpeg file"),
        ("empty.png", b"", None, "the file is empty"),
    ],
)
def test_attachments_refused(name: str, content: bytes, ctype: str | None, reason: str) -> None:
    with pytest.raises(AttachmentError, match=reason):
        check_attachment(name, content, ctype)
