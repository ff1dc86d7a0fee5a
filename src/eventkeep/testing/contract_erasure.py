"""Erasure by crypto-shredding: personal fields are stored encrypted per data subject, and
``forget`` makes every read path show the redacted value while the history stays verifiable.

See :mod:`eventkeep.store.personal`, :mod:`eventkeep.store.shredding` and docs/erasure.md.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Annotated, Any, ClassVar

import msgspec
import pytest

from eventkeep.domain.aggregate import Aggregate, applies
from eventkeep.errors import ConfigurationError, DuplicateEventIdError, ValidationError
from eventkeep.projections.checkpoints import projection_status
from eventkeep.projections.projection import HandlerContext, Projection, handles
from eventkeep.projections.runner import Runner
from eventkeep.store import NO_STREAM, EventStore, StreamAppend
from eventkeep.store.anchors import load_key
from eventkeep.store.dcb import Query, QueryItem
from eventkeep.store.events import Event, NewEvent, RawEvent
from eventkeep.store.personal import REDACTED, Personal
from eventkeep.testing.base import ContractBase, assert_unchanged, state
from eventkeep.testing.events import CustomerRegistered, EmailChanged, Noted

__all__ = ["ErasureContract"]

ADA = "ada@example.com"
BOB = "bob@example.com"


def _register(store: EventStore, customer: str, email: str, **more: Any) -> None:
    store.append(
        f"customer-{customer}", [CustomerRegistered(customer_id=customer, email=email, **more)]
    )


def _every_read(store: EventStore, stream: str) -> list[tuple[str, Any, Any]]:
    """(path, typed event, data mapping) of the stream's first event, through every read path."""
    query = Query([QueryItem(types=["contract.CustomerRegistered"])])
    found = [
        ("read_stream", next(store.read_stream(stream))),
        ("read_stream backwards", list(store.read_stream(stream, backwards=True))[-1]),
        ("read_all", next(e for e in store.read_all() if e.stream_id == stream)),
        (
            "read_all by type",
            next(e for e in store.read_all(types=[CustomerRegistered]) if e.stream_id == stream),
        ),
        ("read(query)", next(e for e in store.read(query).events if e.stream_id == stream)),
    ]
    return [(path, recorded.event, recorded.data) for path, recorded in found]


class Contact(msgspec.Struct):
    """A nested type that marks a field Personal: refused in an event (only its own fields)."""

    customer_id: str
    email: Annotated[str, Personal(subject="customer_id")]


class CustomerProfile(Aggregate):
    """An aggregate whose state copies a personal field (and is snapshotted after each save)."""

    __category__ = "contractcustomer"
    __snapshot_every__ = 1

    email: str = ""
    changes: int = 0

    @applies(CustomerRegistered)
    def _registered(self, event: CustomerRegistered) -> None:
        self.email = event.email

    @applies(EmailChanged)
    def _changed(self, event: EmailChanged) -> None:
        self.email = event.email
        self.changes += 1


class Emails(Projection):
    """A read model (a dict) that copies a personal field, and erases it when told."""

    name = "contract.emails"
    transactional = False
    rows: ClassVar[dict[str, dict[str, str]]] = {}
    calls: ClassVar[dict[str, list[str]]] = {}

    def __init__(self, key: str) -> None:
        self.key = key
        self.rows.setdefault(key, {})
        self.calls.setdefault(key, [])

    @handles(CustomerRegistered)
    def registered(self, event: CustomerRegistered, ctx: HandlerContext) -> None:
        self.rows[self.key][event.customer_id] = event.email

    def reset(self) -> None:
        self.rows[self.key].clear()

    def forgotten(self, subject: str, ctx: HandlerContext) -> None:
        self.calls[self.key].append(subject)
        self.rows[self.key].pop(subject, None)


class EmailsV2(Emails):
    version = 2


class ErasureContract(ContractBase):
    @pytest.fixture
    def other(self, store: EventStore) -> Iterator[EventStore]:
        handle = self.reopen(store)
        yield handle
        if handle is not store:
            handle.close()

    # -- stored form and reads ----------------------------------------------------------------

    def test_personal_fields_are_stored_encrypted_and_read_back_in_the_clear(
        self, store: EventStore
    ) -> None:
        _register(store, "c1", ADA, birth_year=1990, phone="+44 1")
        recorded = next(store.read_stream("customer-c1"))
        for secret in (b"ada@", b"1990", b"+44"):
            assert secret not in recorded.raw_data
        assert b'{"$eventkeep:personal":["c1",' in recorded.raw_data
        assert b'"plan":"basic"' in recorded.raw_data  # other fields stay in the clear
        for path, event, data in _every_read(store, "customer-c1"):
            assert event == CustomerRegistered(
                customer_id="c1", email=ADA, birth_year=1990, phone="+44 1"
            ), path
            assert (data["email"], data["birth_year"]) == (ADA, 1990), path

    def test_after_forget_every_read_path_shows_the_redacted_value(self, store: EventStore) -> None:
        _register(store, "c1", ADA, birth_year=1990, phone="+44 1")
        _register(store, "c2", BOB)
        for _ in _every_read(store, "customer-c1"):
            pass  # warm the key cache first
        report = store.forget("c1", by="dpo", reason="request 1")
        assert report.had_key
        for path, event, data in _every_read(store, "customer-c1"):
            assert event == CustomerRegistered(
                customer_id="c1", email=REDACTED, birth_year=0, phone=REDACTED
            ), path
            assert data == {
                "customer_id": "c1",
                "email": REDACTED,
                "birth_year": 0,
                "phone": REDACTED,
                "plan": "basic",
            }, path
        for path, event, _ in _every_read(store, "customer-c2"):
            assert event.email == BOB, path

    def test_an_unregistered_reader_sees_the_redacted_marker_in_the_raw_data(
        self, store: EventStore
    ) -> None:
        _register(store, "c1", ADA)
        store.forget("c1")
        store.registry.unregister(CustomerRegistered)
        try:
            recorded = next(store.read_stream("customer-c1"))
            assert recorded.event == RawEvent(
                "contract.CustomerRegistered",
                {
                    "customer_id": "c1",
                    "email": REDACTED,
                    "birth_year": 0,
                    "phone": REDACTED,  # str | None: a str first
                    "plan": "basic",
                },
            )
        finally:
            store.registry.register(CustomerRegistered)

    def test_forget_leaves_the_stored_bytes_hashes_verify_and_anchors_valid(
        self, store: EventStore
    ) -> None:
        key = load_key(b"k" * 32)
        _register(store, "c1", ADA)
        _register(store, "c2", BOB)
        before = [(e.raw_data, e.position) for e in store.read_all()]
        anchor = store.anchor(key)
        store.forget("c1")
        assert [(e.raw_data, e.position) for e in store.read_all()] == before
        report = store.verify(anchor=anchor, key=key)
        assert report.problems == ()
        assert report.ok
        later = store.anchor(key, previous=anchor)
        assert store.verify(anchor=later, key=key, trusted=anchor).ok

    # -- two handles and the key --------------------------------------------------------------

    def test_a_forget_through_another_handle_takes_effect_for_this_handles_reads(
        self, store: EventStore, other: EventStore
    ) -> None:
        _register(store, "c1", ADA)
        assert next(store.read_stream("customer-c1")).event.email == ADA  # type: ignore[union-attr]
        assert next(other.read_stream("customer-c1")).event.email == ADA  # type: ignore[union-attr]
        other.forget("c1")
        assert next(store.read_stream("customer-c1")).event.email == REDACTED  # type: ignore[union-attr]
        assert next(store.read_all()).data["email"] == REDACTED

    def test_the_key_cannot_be_read_after_forget(
        self, store: EventStore, other: EventStore
    ) -> None:
        _register(store, "c1", ADA)
        _register(store, "c2", BOB)
        assert set(store.key_store.keys(["c1", "c2"])) == {"c1", "c2"}
        store.forget("c1")
        assert set(store.key_store.keys(["c1", "c2"])) == {"c2"}
        assert set(other.key_store.keys(["c1", "c2"])) == {"c2"}
        fresh = self.reopen(store)
        try:
            assert next(fresh.read_stream("customer-c1")).event.email == REDACTED  # type: ignore[union-attr]
        finally:
            if fresh is not store:
                fresh.close()

    def test_a_subject_appended_again_after_forget_gets_a_new_key(self, store: EventStore) -> None:
        _register(store, "c1", ADA)
        store.forget("c1")
        store.append("customer-c1", [EmailChanged(customer_id="c1", email=BOB)])
        events = [e.event for e in store.read_stream("customer-c1")]
        assert events[0].email == REDACTED  # type: ignore[union-attr]
        assert events[1].email == BOB  # type: ignore[union-attr]

    def test_a_key_created_by_an_append_that_rolls_back_is_harmless(
        self, store: EventStore
    ) -> None:
        def append_then_fail() -> None:
            with store.transaction() as tx:
                tx.append("customer-c1", [CustomerRegistered(customer_id="c1", email=ADA)])
                raise RuntimeError("roll back")

        with pytest.raises(RuntimeError):
            append_then_fail()
        assert store.stream_version("customer-c1") == 0
        _register(store, "c1", BOB)
        assert next(store.read_stream("customer-c1")).event.email == BOB  # type: ignore[union-attr]

    def test_events_of_one_append_share_their_new_subjects_key(self, store: EventStore) -> None:
        store.append_many(
            [
                StreamAppend("a", [CustomerRegistered(customer_id="c1", email=ADA)]),
                StreamAppend(
                    "b",
                    [
                        EmailChanged(customer_id="c1", email=BOB),
                        EmailChanged(customer_id="c2", email=ADA),
                    ],
                ),
            ]
        )
        assert [e.data["email"] for e in store.read_all()] == [ADA, BOB, ADA]
        fresh = self.reopen(store)
        try:
            assert [e.data["email"] for e in fresh.read_all()] == [ADA, BOB, ADA]
        finally:
            if fresh is not store:
                fresh.close()
        assert sorted(store.key_store.keys(["c1", "c2"])) == ["c1", "c2"]

    def test_a_retried_append_with_personal_data_returns_the_original_result(
        self, store: EventStore
    ) -> None:
        events = [
            NewEvent(CustomerRegistered(customer_id="c1", email=ADA), event_id=uuid.uuid4()),
            NewEvent(EmailChanged(customer_id="c1", email=BOB), event_id=uuid.uuid4()),
        ]
        original = store.append("customer-c1", events, expected_version=NO_STREAM)
        assert store.append("customer-c1", events, expected_version=NO_STREAM) == original
        assert store.stream_version("customer-c1") == 2
        changed = [NewEvent(EmailChanged(customer_id="c1", email=ADA), event_id=events[1].event_id)]
        with pytest.raises(DuplicateEventIdError):
            store.append("customer-c1", changed)

    # -- the forget log -----------------------------------------------------------------------

    def test_forgetting_twice_or_an_unknown_subject_is_recorded_and_said(
        self, store: EventStore
    ) -> None:
        _register(store, "c1", ADA)
        first = store.forget("c1", by="dpo", reason="ticket 7")
        again = store.forget("c1", by="dpo", reason="ticket 7 again")
        unknown = store.forget("nobody")
        assert (first.had_key, first.earlier) == (True, ())
        assert again.had_key is False
        assert again.earlier == (first.entry,)
        assert (unknown.had_key, unknown.earlier) == (False, ())
        log = store.forgotten_subjects()
        assert [(e.seq, e.subject, e.by, e.reason, e.had_key) for e in log] == [
            (1, "c1", "dpo", "ticket 7", True),
            (2, "c1", "dpo", "ticket 7 again", False),
            (3, "nobody", "", "", False),
        ]
        assert log[0].forgotten_at <= log[1].forgotten_at <= log[2].forgotten_at
        assert store.forgotten_subjects(after=2) == log[2:]
        assert all(ADA not in repr(entry) for entry in log)

    def test_forget_refuses_a_subject_that_is_not_a_non_empty_str(self, store: EventStore) -> None:
        for bad in ("", 5, None):
            with pytest.raises(ValidationError):
                store.forget(bad)  # type: ignore[arg-type]
        assert store.forgotten_subjects() == []

    # -- aggregates, snapshots, projections ---------------------------------------------------

    def test_aggregates_read_redacted_values_and_forget_deletes_their_snapshots(
        self, store: EventStore
    ) -> None:
        repo = self.repository(store, CustomerProfile)
        profile = repo.create("c1")
        profile.record(CustomerRegistered(customer_id="c1", email=ADA))
        repo.save(profile)
        assert store.load_snapshot("contractcustomer-c1") is not None
        assert repo.load("c1").email == ADA
        report = store.forget("c1")
        assert report.snapshots_deleted >= 1
        assert store.load_snapshot("contractcustomer-c1") is None
        assert repo.load("c1").email == REDACTED

    def test_a_projection_is_told_once_and_a_rebuild_holds_no_personal_data(
        self, store: EventStore
    ) -> None:
        key = f"{type(self).__name__}-{id(store)}"
        _register(store, "c1", ADA)
        _register(store, "c2", BOB)
        assert Runner(store, [Emails(key)]).run(until_caught_up=True)
        assert Emails.rows[key] == {"c1": ADA, "c2": BOB}
        store.forget("c1", by="dpo")
        [status] = projection_status(store, "contract.emails")
        assert status.forgotten == ("c1",)
        for _ in range(2):
            assert Runner(store, [Emails(key)]).run(until_caught_up=True)
        assert Emails.calls[key] == ["c1"]  # once, however often it runs
        assert Emails.rows[key] == {"c2": BOB}
        assert Runner(store, [EmailsV2(key)]).run(until_caught_up=True)  # a rebuild
        assert Emails.rows[key] == {"c1": REDACTED, "c2": BOB}
        [status] = projection_status(store, "contract.emails")
        assert status.version == 2
        assert status.forgotten == ()

    # -- bad input ----------------------------------------------------------------------------

    def test_raw_data_using_the_reserved_key_is_refused_and_nothing_stored(
        self, store: EventStore
    ) -> None:
        before = state(store)
        for data in (
            {"$eventkeep:personal": ["c1", "AAAA"]},
            {"nested": {"$eventkeep:personal": 1}},
            {"value": "$eventkeep:personal"},
        ):
            with pytest.raises(ValidationError, match="reserved key"):
                store.append("s", [RawEvent("contract.Unregistered", data)])
        with pytest.raises(ValidationError, match="reserved key"):
            store.append("s", [Noted(details={"$eventkeep:personal": ["c1", "AAAA"]})])
        assert_unchanged(store, before)

    def test_a_personal_field_without_a_subject_id_is_refused(self, store: EventStore) -> None:
        before = state(store)
        with pytest.raises(ValidationError, match="subject"):
            store.append("s", [CustomerRegistered(customer_id="", email=ADA)])
        with pytest.raises(ValidationError, match="subject"):
            store.append(
                "s", [RawEvent("contract.EmailChanged", {"customer_id": "", "email": ADA})]
            )
        assert_unchanged(store, before)

    def test_raw_appends_of_a_registered_personal_type_are_encrypted_too(
        self, store: EventStore
    ) -> None:
        store.append(
            "s", [NewEvent(RawEvent("contract.EmailChanged", {"customer_id": "c9", "email": ADA}))]
        )
        recorded = next(store.read_stream("s"))
        assert b"ada@" not in recorded.raw_data
        assert recorded.data["email"] == ADA
        store.forget("c9")
        assert next(store.read_stream("s")).data["email"] == REDACTED

    def test_bad_personal_markers_are_refused_when_the_class_is_defined(self) -> None:
        with pytest.raises(ConfigurationError, match="names no field"):

            class MissingSubject(Event):
                __event_type__ = "contract.erasure.MissingSubject"
                email: Annotated[str, Personal(subject="customer_id")]

        with pytest.raises(ConfigurationError, match="no redacted value"):

            class NotRedactable(Event):
                __event_type__ = "contract.erasure.NotRedactable"
                customer_id: str
                age: Annotated[int, Personal(subject="customer_id")]

        with pytest.raises(ConfigurationError, match="not a value of the field's type"):

            class WrongRedacted(Event):
                __event_type__ = "contract.erasure.WrongRedacted"
                customer_id: str
                age: Annotated[int, Personal(subject="customer_id", redacted="none")]

        with pytest.raises(ConfigurationError, match="inside a nested type"):

            class NestedPersonal(Event):
                __event_type__ = "contract.erasure.NestedPersonal"
                customer_id: str
                contacts: list[Contact]

        with pytest.raises(ConfigurationError, match="itself Personal"):

            class PersonalSubject(Event):
                __event_type__ = "contract.erasure.PersonalSubject"
                customer_id: Annotated[str, Personal(subject="email")]
                email: Annotated[str, Personal(subject="customer_id")]

    # -- moving a store: the keys and the forget log go along -----------------------------------

    def test_a_copy_carries_the_keys_and_the_forget_log(
        self, store: EventStore, make_store: Any
    ) -> None:
        _register(store, "ada", ADA)
        _register(store, "bob", BOB)
        store.forget("bob", by="dpo", reason="request 7")
        target = make_store()
        self.copy_store(store, target)
        ada = next(target.read_stream("customer-ada")).event
        bob = next(target.read_stream("customer-bob")).event
        assert isinstance(ada, CustomerRegistered)
        assert isinstance(bob, CustomerRegistered)
        assert (ada.email, bob.email) == (ADA, REDACTED)
        [entry] = target.forgotten_subjects()
        assert (entry.subject, entry.by, entry.reason) == ("bob", "dpo", "request 7")
        assert entry.forgotten_at == store.forgotten_subjects()[0].forgotten_at
        assert target.verify().ok
        self.copy_store(store, target)  # again: nothing changes
        assert len(target.forgotten_subjects()) == 1
        target.forget("ada")  # the copy's own key: forgetting it there works as anywhere
        ada = next(target.read_stream("customer-ada")).event
        assert isinstance(ada, CustomerRegistered)
        assert ada.email == REDACTED
        kept = next(store.read_stream("customer-ada")).event
        assert isinstance(kept, CustomerRegistered)
        assert kept.email == ADA

    def test_an_export_holds_the_keys_only_when_asked(
        self, store: EventStore, make_store: Any
    ) -> None:
        import io

        _register(store, "ada", ADA)
        plain, keyed = io.BytesIO(), io.BytesIO()
        self.export_file(store, plain)
        self.export_file(store, keyed, with_keys=True)
        assert b'"personal_key"' not in plain.getvalue()
        assert b'"personal_key"' in keyed.getvalue()
        assert ADA.encode() not in plain.getvalue() + keyed.getvalue()
        without, with_keys = make_store(), make_store()
        self.import_file(without, io.BytesIO(plain.getvalue()))
        self.import_file(with_keys, io.BytesIO(keyed.getvalue()))
        bare = next(without.read_stream("customer-ada")).event
        full = next(with_keys.read_stream("customer-ada")).event
        assert isinstance(bare, CustomerRegistered)
        assert isinstance(full, CustomerRegistered)
        assert (bare.email, full.email) == (REDACTED, ADA)
        assert without.verify().ok
        assert with_keys.verify().ok

    def test_an_imported_key_that_differs_from_the_targets_is_refused(
        self, store: EventStore, make_store: Any
    ) -> None:
        import io

        from eventkeep.errors import IntegrityError

        _register(store, "ada", ADA)
        target = make_store()
        _register(target, "ada", BOB)  # the target made its own key for ada
        out = io.BytesIO()
        self.export_file(store, out, with_keys=True)
        with pytest.raises(IntegrityError, match="another key"):
            self.import_file(target, io.BytesIO(out.getvalue()))
        mine = next(target.read_stream("customer-ada")).event
        assert isinstance(mine, CustomerRegistered)
        assert mine.email == BOB
