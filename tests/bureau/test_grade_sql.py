"""bureau_grade_number (migration 0860) reads every spelling of a grade as hazmon.bureau.figures does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from hazmon.bureau.figures import grade_of
from tests.bureau.warnings_rows import Conn, add_enterprise, add_source, connect

SPELLINGS = ["I", "II", "III", "IV", "i", " iv ", "one", "Two", "3", "四级", "一级", "V", "", "5", "major"]


@pytest.fixture
def conn(db_dsn: str) -> Iterator[Conn]:
    yield from connect(db_dsn)


def test_sql_grade_number_agrees_with_grade_of(conn: Conn) -> None:
    for text in [*SPELLINGS, None]:
        row = conn.execute("SELECT bureau_grade_number(%s)", (text,)).fetchone()
        g = grade_of(text)
        assert row == (None if g is None else int(g),), text


def test_risk_view_weighs_the_grades_the_link_sends(conn: Conn) -> None:
    """G of the risk formula: 一级 4 … 四级 1, no grade 1 (GRADE_WEIGHT), for "I".."IV" as registered."""
    for eid, grade in (("E1", "I"), ("E2", "II"), ("E3", "III"), ("E4", "IV"), ("E5", None)):
        add_enterprise(conn, eid, "320116", datetime(2026, 1, 1, tzinfo=UTC))
        add_source(conn, eid, "T1", grade)
    add_source(conn, "E4", "T2", "II")  # the most severe of an enterprise's sources counts
    rows = dict(conn.execute("SELECT enterprise_id, grade_weight FROM bureau_risk_24h_view").fetchall())
    assert rows == {"E1": 4, "E2": 3, "E3": 2, "E4": 3, "E5": 1}
