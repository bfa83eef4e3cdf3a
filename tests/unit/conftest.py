from __future__ import annotations

import pytest

from tests.support.fake_steps import Tracker
from tests.support.fakes import FakeStore


@pytest.fixture
def store() -> FakeStore:
    return FakeStore()


@pytest.fixture
def tracker(store: FakeStore) -> Tracker:
    return Tracker(store)
