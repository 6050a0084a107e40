"""`hazmon run --check` checks and changes nothing: no token file, no data dir, no database."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import EXAMPLE_PLANT, free_port


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def test_run_check_creates_no_file(tmp_path: Path) -> None:
    cfg = tmp_path / "hazmon.yaml"
    # the database is a closed port: a check must not need (nor write to) it
    cfg.write_text(
        f"plant: {EXAMPLE_PLANT}\ndata_dir: data\n"
        f"database: {{dsn: 'postgresql://postgres@127.0.0.1:{free_port()}/nowhere'}}\n"
        "alarms:\n  token_file: secrets/alarm-tokens.yaml\n"
    )
    before = _tree(tmp_path)
    p = subprocess.run(
        [sys.executable, "-m", "hazmon", "run", "--check", "-c", str(cfg)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=120,
    )
    assert p.returncode == 0, p.stderr
    assert ": ok" in p.stdout
    assert _tree(tmp_path) == before
