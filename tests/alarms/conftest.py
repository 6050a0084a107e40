"""Fixtures of the alarm tests: a real webhook receiver."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.alarms.helpers import SECRET
from tests.alarms.receivers import HttpReceiver


@pytest.fixture
async def hook() -> AsyncIterator[HttpReceiver]:
    """A webhook receiver on a free port, checking the shared secret's signature."""
    r = HttpReceiver(secret=SECRET)
    await r.start()
    yield r
    await r.stop()
