"""Fixtures of the bureau tests."""

from __future__ import annotations

import pytest

from hazmon.plant import Plant
from tests.bureau.helpers import Enterprise


@pytest.fixture
def enterprise(example_plant: Plant) -> Enterprise:
    return Enterprise(example_plant)
