"""Rows of the bureau's supervision tables (0870) around the edges of February 2024 and its quarter.

Asia/Shanghai (UTC+8, no daylight saving). February 2024 has 29 days: [2024-01-31 16:00 UTC,
2024-02-29 16:00 UTC). Enterprises:

- A (320116, registered 2023): source S1 grade II (major), S2 not major;
- B (320115, registered 2024-02-10 12:00 local, in the middle of the month): source T1 grade I;
- C (110105, registered 2023): no source, no report;
- D (320116, registered 2024-03-05): after the month, never counted for it.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from zoneinfo import ZoneInfo

from psycopg.types.json import Jsonb

from tests.bureau.warnings_rows import Conn, add_enterprise, add_source

SH = ZoneInfo("Asia/Shanghai")


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0, s: int = 0) -> datetime:
    return datetime(y, mo, d, h, mi, s, tzinfo=SH)


def danger(
    c: Conn,
    did: str,
    eid: str,
    level: str,
    found: datetime,
    *,
    rectified: datetime | None = None,
    deadline: date | None = None,
) -> None:
    c.execute(
        "INSERT INTO bureau_hidden_danger (danger_id, enterprise_id, title, found_by, level, criteria, state,"
        " deadline, found_at, rectified_at, last_seq, updated_at)"
        " VALUES (%s, %s, %s, 'inspection', %s, %s, %s, %s, %s, %s, 1, %s)",
        (
            did,
            eid,
            f"隐患 {did}",
            level,
            [1] if level == "major" else [],
            "accepted" if rectified else "rectifying",
            deadline,
            found,
            rectified,
            rectified or found,
        ),
    )


def check(c: Conn, eid: str, cid: int, source: str, role: str, at: datetime) -> None:
    c.execute(
        "INSERT INTO bureau_duty_check (enterprise_id, check_id, hazard_source, role, person, checked_at, what,"
        " message_id) VALUES (%s, %s, %s, %s, '张三', %s, '巡查', %s)",
        (eid, cid, source, role, at, uuid.uuid4()),
    )


def commitment(c: Conn, eid: str, day: date, filed: datetime) -> None:
    c.execute(
        "INSERT INTO bureau_commitment (enterprise_id, day, commitment_id, sources, filed_by, filed_at, message_id)"
        " VALUES (%s, %s, %s, %s, '李四', %s, %s)",
        (eid, day, day.toordinal(), Jsonb({"S1": "running"}), filed, uuid.uuid4()),
    )


def supervision(
    c: Conn,
    eid: str,
    region: str,
    opened: datetime,
    deadline: date,
    *,
    danger_id: str | None = None,
    closed: datetime | None = None,
) -> None:
    c.execute(
        "INSERT INTO bureau_supervision (enterprise_id, danger_id, region_code, title, level, opened_level, state,"
        " deadline, bureau_person, opened_at, opened_by, closed_at, updated_at)"
        " VALUES (%s, %s, %s, '挂牌督办', 'county', 'county', %s, %s, '王五', %s, 'officer', %s, %s)",
        (eid, danger_id, region, "closed" if closed else "open", deadline, opened, closed, closed or opened),
    )


def seed(c: Conn) -> None:
    add_enterprise(c, "A", "320116", local(2023, 1, 1))
    add_source(c, "A", "S1", "II")
    add_source(c, "A", "S2", None)
    add_enterprise(c, "B", "320115", local(2024, 2, 10, 12))
    add_source(c, "B", "T1", "I")
    add_enterprise(c, "C", "110105", local(2023, 1, 1))
    add_enterprise(c, "D", "320116", local(2024, 3, 5))
    add_source(c, "D", "S1", "III")
    # A's hidden dangers
    danger(
        c, "A:1", "A", "general", local(2024, 2, 1), rectified=local(2024, 2, 29, 23, 59, 59)
    )  # first instant
    danger(c, "A:2", "A", "general", local(2024, 1, 31, 23, 59, 59), deadline=date(2024, 2, 15))  # January's
    danger(  # found on the leap day, accepted at the first instant of March: not rectified in February
        c,
        "A:3",
        "A",
        "major",
        local(2024, 2, 29, 12),
        rectified=local(2024, 3, 1),
        deadline=date(2024, 2, 29),
    )
    danger(c, "A:4", "A", "major", local(2024, 3, 1))  # March's
    danger(
        c, "A:5", "A", "general", local(2024, 2, 10), rectified=local(2024, 2, 20), deadline=date(2024, 2, 20)
    )
    danger(c, "B:1", "B", "general", local(2024, 2, 20), deadline=date(2024, 3, 10))
    danger(c, "D:1", "D", "major", local(2024, 3, 6))
    # responsible persons' checks (operational: weekly, Monday to Monday; principal, technical: quarterly)
    check(c, "A", 1, "S1", "operational", local(2024, 1, 30))  # week ending Mon 5 Feb
    check(c, "A", 2, "S1", "operational", local(2024, 2, 6))  # week ending 12 Feb
    check(c, "A", 3, "S1", "operational", local(2024, 2, 25, 23, 59, 59))  # Sunday: week ending 26 Feb
    check(c, "A", 4, "S2", "operational", local(2024, 2, 14))  # S2 is not a major hazard source
    check(c, "A", 5, "S1", "principal", local(2024, 2, 10))
    check(c, "A", 6, "S1", "technical", local(2024, 4, 1))  # the first instant of the second quarter
    check(c, "B", 1, "T1", "operational", local(2024, 2, 13))  # week ending 19 Feb
    # daily commitments, due 10:00 local
    commitment(c, "A", date(2024, 2, 1), local(2024, 2, 1, 9, 59))
    commitment(c, "A", date(2024, 2, 15), local(2024, 2, 15, 10, 0, 1))  # a second late
    commitment(c, "A", date(2024, 2, 29), local(2024, 2, 29, 10, 0, 0))  # at the due time: on time
    commitment(c, "A", date(2024, 3, 1), local(2024, 3, 1, 8))
    commitment(c, "B", date(2024, 2, 10), local(2024, 2, 10, 13))  # its 10:00 was before it registered
    commitment(c, "B", date(2024, 2, 11), local(2024, 2, 11, 8))
    # 挂牌督办
    supervision(c, "A", "320116", local(2024, 2, 29, 20), date(2024, 3, 31), danger_id="A:3")
    supervision(c, "A", "320116", local(2024, 1, 10), date(2024, 2, 10), closed=local(2024, 3, 1))
