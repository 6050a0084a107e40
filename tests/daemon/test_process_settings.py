"""In-process daemons (the tests) run with the interpreter settings of `hazmon run` (hazmon.runtime)."""

from __future__ import annotations

import argparse
import asyncio
import gc
import sys
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

import pytest

from hazmon import cmd_run
from hazmon.config import DaemonConfig
from hazmon.daemon import Daemon
from hazmon.plant import Plant
from hazmon.runtime import SWITCH_INTERVAL_S
from tests.daemon.helpers import daemon_config, mqtt_only


async def test_an_in_process_daemon_runs_with_the_settings_of_hazmon_run(
    example_plant: Plant, db_dsn: str, topic_prefix: str, tmp_path: Path
) -> None:
    plant = mqtt_only(example_plant.retarget(topic_prefix=topic_prefix))
    async with Daemon(daemon_config(tmp_path, db_dsn, plant), plant):
        assert sys.getswitchinterval() == SWITCH_INTERVAL_S
        assert gc.get_freeze_count() > 0  # what the daemon built at start is out of the collector's sight


def test_hazmon_run_sets_the_same_switch_interval(
    example_plant: Plant, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg: DaemonConfig = daemon_config(tmp_path, "postgresql://unused", example_plant)
    monkeypatch.setattr(cmd_run, "load_config", lambda path, **_: (cfg, example_plant))
    seen: list[float] = []

    def run(main: Coroutine[Any, Any, None]) -> None:  # the daemon's loop is not started
        seen.append(sys.getswitchinterval())
        main.close()

    monkeypatch.setattr(asyncio, "run", run)
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)  # Python's default
    try:
        assert cmd_run._run(argparse.Namespace(config="hazmon.yaml", check=False)) == 0
    finally:
        sys.setswitchinterval(before)
    assert seen == [SWITCH_INTERVAL_S]
