"""Helpers the tests and the benches share: free ports, a private Mosquitto, bare OPC UA load servers.

In ``tools/``, not in ``tests/``: ``bench/`` must not import the tests. The tests find it
through pytest's ``pythonpath = ["tools"]`` (pyproject.toml), the benches by putting
``tools/`` on ``sys.path``; only ``tools/`` goes on the path, so no bare component folder
(``plant``, ``rules``…) becomes importable by accident. Not part of the wheel
(``[tool.setuptools] packages`` does not list it). It imports nothing of ``hazmon``,
``tests`` or ``bench`` (tests/test_layout.py checks that, and that bench/ imports no tests).
"""

from __future__ import annotations

from testkit.mosquitto import PrivateMosquitto
from testkit.net import free_port, wait_port
from testkit.opcua import big_server, write_tick
from testkit.plantfile import EXAMPLE_PLANT, private_plant_file

__all__ = [
    "EXAMPLE_PLANT",
    "PrivateMosquitto",
    "big_server",
    "free_port",
    "private_plant_file",
    "wait_port",
    "write_tick",
]
