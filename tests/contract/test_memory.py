"""The in-memory reference backend passes the whole contract suite."""

from __future__ import annotations

import pytest

from eventkeep.backends.memory import MemoryStore
from eventkeep.testing import StoreContract, StoreFactory


class TestMemoryStore(StoreContract):
    @pytest.fixture
    def make_store(self) -> StoreFactory:
        return lambda **options: MemoryStore(**options)
