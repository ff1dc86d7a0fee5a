"""``StoreContract``: the specification every event store backend must pass.

Subclass it in a test module and override the ``make_store`` fixture (see
:mod:`eventkeep.testing.base` for what the factory must do)::

    import pytest
    from eventkeep.backends.memory import MemoryStore
    from eventkeep.testing import StoreContract

    class TestMemoryStore(StoreContract):
        @pytest.fixture
        def make_store(self):
            return lambda **options: MemoryStore(**options)

A backend other than memory and SQLite also overrides the hooks ``tamper(store, stream_id,
version)`` and ``reopen(store)``.
"""

from __future__ import annotations

from eventkeep.testing.contract_anchors import AnchorContract
from eventkeep.testing.contract_append import AppendContract
from eventkeep.testing.contract_carry import LifecycleMovingContract
from eventkeep.testing.contract_dcb import DcbContract
from eventkeep.testing.contract_envelope import EnvelopeContract
from eventkeep.testing.contract_erasure import ErasureContract
from eventkeep.testing.contract_handles import HandlesContract
from eventkeep.testing.contract_input import BadInputContract
from eventkeep.testing.contract_integrity import IntegrityContract
from eventkeep.testing.contract_lifecycle import LifecycleContract
from eventkeep.testing.contract_moving import MovingContract
from eventkeep.testing.contract_read import ReadContract
from eventkeep.testing.contract_transactions import TransactionContract
from eventkeep.testing.properties import PropertyContract
from eventkeep.testing.properties_input import BadInputPropertyContract

__all__ = ["StoreContract"]


class StoreContract(
    AppendContract,
    ReadContract,
    EnvelopeContract,
    BadInputContract,
    IntegrityContract,
    AnchorContract,
    HandlesContract,
    TransactionContract,
    DcbContract,
    MovingContract,
    LifecycleContract,
    LifecycleMovingContract,
    ErasureContract,
    PropertyContract,
    BadInputPropertyContract,
):
    """Every guarantee of the ``EventStore`` API, as tests a backend's subclass inherits."""
