from __future__ import annotations

import pytest

from tests.unit.fakes import FakeStore
from tests.unit.helpers import Tracker


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def tracker(store: FakeStore) -> Tracker:
    return Tracker(store)
