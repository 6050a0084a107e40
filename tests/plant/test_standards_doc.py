"""The project carries its own sources: docs/standards.md matches the table, and nothing names a file outside.

`plant/standards.py` cites docs/standards.md for every number; a clone anywhere can check a
safety number against its source without files that are not in the repository.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from hazmon.plant import standards
from hazmon.plant.standards import CHEMICALS, Chemical

ROOT = Path(__file__).resolve().parents[2]
DOC = ROOT / "docs" / "standards.md"
_SKIP_DIRS = {
    ".git",
    ".venv",
    "build",
    "__pycache__",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "node_modules",
}
# spelled in pieces so this file does not name them itself
_OUTSIDE = re.compile(
    "|".join(
        [r"\.\./" + "shared", "/work/" + "shared", "shared/" + r"[\w-]+\.(?:md|csv)", "DEVELOPERS" + r"\.md"]
    )
)


def _rows() -> dict[str, list[str]]:
    """Chemical id -> the cells of its row in the doc's chemicals table."""
    out: dict[str, list[str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        m = re.match(r"\| `([\w-]+)` \|", line)
        if m:
            out[m.group(1)] = [c.strip() for c in line.strip().strip("|").split(" | ")]
    return out


def _num(cell: str) -> float | None:
    """The first number of a cell ("5 [V]" -> 5.0), None for "—"."""
    m = re.match(r"-?\d+(?:\.\d+)?", cell)
    return float(m.group(0)) if m else None


@pytest.mark.parametrize("c", CHEMICALS, ids=lambda c: c.id)
def test_every_chemical_of_the_table_is_in_the_doc_with_the_same_numbers(c: Chemical) -> None:
    row = _rows().get(c.id)
    assert row is not None, f"{c.id}: no row in {DOC.relative_to(ROOT)}"
    _, _, cas, q, beta, _, lel_uel, _, _, idlh = row
    assert c.cas in cas
    assert (_num(q), _num(beta), _num(idlh)) == (c.q_t, c.beta, c.idlh_ppm)
    lel, _, uel = lel_uel.partition(" – ")
    assert (_num(lel), _num(uel)) == (c.lel_pct, c.uel_pct)
    # an unverified Q or beta is marked so in the doc, and only then
    assert ("[R]" in q or "[R]" in beta) == (not c.grading_verified)


def test_the_doc_has_no_row_the_table_lacks() -> None:
    assert set(_rows()) == {c.id for c in CHEMICALS}


def test_no_file_names_a_source_outside_the_repository() -> None:
    found = []
    for dirpath, dirnames, filenames in os.walk(ROOT):
        dirnames[:] = [d for d in dirnames if d not in _SKIP_DIRS and not d.endswith(".egg-info")]
        for name in filenames:
            path = Path(dirpath) / name
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue  # binary files
            for n, line in enumerate(text.splitlines(), 1):
                if _OUTSIDE.search(line):
                    found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()[:100]}")
    assert found == []


def test_the_pattern_catches_what_it_must() -> None:
    for bad in ("see ../" + "shared" + "/standards.md", "shared" + "/chemicals.csv", "(DEVELOPERS" + ".md)"):
        assert _OUTSIDE.search(bad), bad
    assert not _OUTSIDE.search("a shared subscription ($share/group/topic)")


def test_every_name_the_doc_points_at_exists_in_the_table() -> None:
    """`ALPHA_BANDS`, `AlarmTargets.flood_count`…: a renamed constant leaves no dead pointer behind."""
    text = DOC.read_text(encoding="utf-8")
    names = set(re.findall(r"`([A-Z][A-Za-z0-9_]*(?:\.[a-z_0-9]+)?)`", text))
    assert len(names) > 20
    missing = []
    for name in sorted(names):
        obj: object = standards
        for part in name.split("."):
            if not hasattr(obj, part):
                missing.append(name)
                break
            obj = getattr(obj, part)
    assert missing == []


def test_the_doc_states_the_values_the_table_holds() -> None:
    text = DOC.read_text(encoding="utf-8")
    for lo, alpha in standards.ALPHA_BANDS[:-1]:
        assert f"{lo}" in text and f"→ {alpha}" in text
    assert "R ≥ 100" in text and "50 ≤ R < 100" in text and "10 ≤ R < 50" in text
    assert [b for b, _ in standards.GRADE_BANDS[:-1]] == [100.0, 50.0, 10.0]
    for first, second in standards.GAS_SETPOINTS_MG_M3.values():
        assert f"{first:g}/{second:g}" in text
    for const in ("RETENTION_MIN_DAYS", "REASSESSMENT_YEARS", "FILING_DAYS"):
        assert f"`{const}`" in text
    assert (standards.RETENTION_MIN_DAYS, standards.REASSESSMENT_YEARS, standards.FILING_DAYS) == (30, 3, 15)
    for vp in standards.VAPOUR_PRESSURE.values():
        assert f"| {vp.c1:g} | {vp.c2:g}".replace("-", "−") in text
