"""The architecture, checked: imports run one way, roof -> components -> ground."""

from __future__ import annotations

import ast
import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# The floors of the house, lowest first. A folder imports its own floor's folder (itself) and
# every floor below, never a neighbour on its own floor and never up. The ground is the
# exception inside: store/ builds on plant/, plant/ on nothing of ours.
FLOORS: tuple[tuple[str, frozenset[str]], ...] = (
    ("ground", frozenset({"plant", "store"})),
    # services: tools the features share (rules, weather and plan logic, simulators, boards)
    ("services", frozenset({"rules", "weather", "simulators", "grafana"})),
    # features: what a daemon does (collect, alarm, report to the bureau, supervise, the bureau)
    ("features", frozenset({"collector", "alarms", "uplink", "supervision", "bureau"})),
    # faces: pages for people, on top of the features' public functions
    ("faces", frozenset({"console"})),
)
GROUND = FLOORS[0][1]
COMPONENTS = frozenset().union(*(folders for _, folders in FLOORS[1:]))
ROOF = "hazmon"


def _floor(folder: str) -> int:
    return next(i for i, (_, folders) in enumerate(FLOORS) if folder in folders)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


def _hazmon_target(module: str) -> str | None:
    """The folder a hazmon.* import lands in: a component, ground or 'hazmon' (roof)."""
    parts = module.split(".")
    if parts[0] != "hazmon":
        return None
    if len(parts) > 1 and parts[1] in GROUND | COMPONENTS:
        return parts[1]
    return ROOF


def _allowed(folder: str) -> set[str]:
    if folder == "plant":
        return {"plant"}
    if folder in GROUND:
        return set(GROUND)
    below = {f for i, (_, folders) in enumerate(FLOORS) if i < _floor(folder) for f in folders}
    return below | {folder}


def _violations(folder: str) -> list[str]:
    allowed = _allowed(folder)
    bad = []
    if not (ROOT / folder).is_dir():
        return bad
    for py in sorted((ROOT / folder).rglob("*.py")):
        for line, mod in _imports(py):
            target = _hazmon_target(mod)
            if target is not None and target not in allowed:
                bad.append(
                    f"{py.relative_to(ROOT)}:{line}: imports {mod} ({folder} may import only "
                    f"{', '.join(sorted('hazmon.' + a for a in allowed))})"
                )
    return bad


@pytest.mark.parametrize("folder", sorted(GROUND | COMPONENTS))
def test_imports_run_from_roof_to_ground(folder: str) -> None:
    assert _violations(folder) == []


def test_every_package_is_listed_in_pyproject() -> None:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    mapping = cfg["package-dir"]
    expected = set()
    for pkg, folder in mapping.items():
        for init in (ROOT / folder).rglob("__init__.py"):
            rel = init.parent.relative_to(ROOT / folder)
            expected.add(".".join([pkg, *rel.parts]) if rel.parts else pkg)
    assert expected - listed == set(), "add these to [tool.setuptools] packages"


def test_the_rule_is_checked_by_the_test() -> None:
    """The checker itself flags a component importing another component."""
    assert _hazmon_target("hazmon.rules.engine") == "rules"
    assert _hazmon_target("hazmon.cli") == ROOF
    assert _hazmon_target("numpy") is None
    assert "rules" in _allowed("alarms") and "alarms" not in _allowed("rules")
    assert "collector" not in _allowed("alarms"), "a feature never imports a neighbour feature"
    assert "alarms" in _allowed("console") and "console" not in _allowed("alarms")
    assert _allowed("plant") == {"plant"} and "rules" not in _allowed("store")


_IMPORT = re.compile(r"\s*(?:from|import)\s+([\w.]+)")


def _script_imports(path: Path) -> list[tuple[int, str]]:
    """Imports of a file, those of the Python scripts it embeds in strings too (bench subprocesses)."""
    text = path.read_text(encoding="utf-8")
    found = [(n, m.group(1)) for n, line in enumerate(text.splitlines(), 1) if (m := _IMPORT.match(line))]
    return sorted(set(_imports(path)) | set(found))


def test_bench_imports_no_tests_and_testkit_stands_alone() -> None:
    """bench/ and the tests share tools/testkit; bench never imports the tests, testkit nothing of ours."""
    bad = []
    for folder, banned in (("bench", {"tests"}), ("tools/testkit", {"tests", "bench", "hazmon"})):
        for py in sorted((ROOT / folder).rglob("*.py")):
            for line, mod in _script_imports(py):
                if mod.split(".")[0] in banned:
                    bad.append(f"{py.relative_to(ROOT)}:{line}: imports {mod}")
    assert bad == []
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert not any("testkit" in p for p in [*cfg["packages"], *cfg["package-dir"].values()])


MAX_LINES = 800  # a production file a newcomer can still hold


def test_no_roof_file_over_800_lines() -> None:
    """The roof (`hazmon/`): the daemon's wiring, loops and commands each stay a readable room."""
    big = {
        str(py.relative_to(ROOT)): n
        for py in sorted((ROOT / ROOF).glob("*.py"))
        if (n := len(py.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert big == {}


# Data tables may be longer: the cited standards table is one row per chemical (docs/standards.md).
DATA_TABLES = {"plant/standards.py"}


def test_no_production_file_over_800_lines() -> None:
    """Every production folder (roof, components, ground), data tables aside."""
    big = {
        rel: n
        for folder in sorted({ROOF, *COMPONENTS, *GROUND})
        if (ROOT / folder).is_dir()
        for py in sorted((ROOT / folder).rglob("*.py"))
        if (rel := str(py.relative_to(ROOT))) not in DATA_TABLES
        and (n := len(py.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert big == {}
