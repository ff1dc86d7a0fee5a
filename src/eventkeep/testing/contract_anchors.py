"""What ``verify`` reports it checked, and anchors: signed statements of the whole history.

Tampering that needs the database itself (dropping triggers, editing rows or files) is tested
per backend; here, what every backend does through the API alone.
"""

from __future__ import annotations

import msgspec
import pytest

from eventkeep.errors import AnchorError, ConfigurationError
from eventkeep.store import EventStore
from eventkeep.store.anchors import Anchor, AnchorKey, generate_ed25519_key, load_key, read_anchor
from eventkeep.testing.base import ContractBase, StoreFactory, deposits
from eventkeep.testing.contract_integrity import fill

__all__ = ["AnchorContract"]

SECRET = b"contract-suite anchor secret, 40 bytes.."


def keys() -> dict[str, tuple[AnchorKey, AnchorKey]]:
    """Per algorithm: (the signing key, the key that checks)."""
    private, public = generate_ed25519_key()
    hmac_key = load_key(SECRET)
    return {"hmac": (hmac_key, hmac_key), "ed25519": (load_key(private), load_key(public))}


class AnchorContract(ContractBase):
    # -- what verify says it checked ----------------------------------------------------------

    def test_verify_says_what_it_checked_and_what_it_did_not(self, store: EventStore) -> None:
        fill(store)
        report = store.verify()
        assert report.ok
        assert report.problems == ()
        text = " ".join(report.checked)
        assert "hash chains of 3 streams (8 events)" in text
        # Checked where heads are stored; where none is (PostgreSQL), said not checked.
        assert "stream head" in " ".join((*report.checked, *report.not_checked))
        assert "positions" in text
        assert any("no anchor" in item for item in report.not_checked)

    def test_a_quick_verify_says_it_skipped_the_database_structures(
        self, store: EventStore
    ) -> None:
        fill(store)
        report = store.verify(deep=False)
        assert report.ok
        assert any("skipped" in item for item in report.not_checked)
        assert not any("integrity_check" in item or "amcheck" in item for item in report.checked)

    # -- anchors ------------------------------------------------------------------------------

    @pytest.mark.parametrize("algorithm", ["hmac", "ed25519"])
    def test_an_anchor_of_an_intact_store_verifies(self, store: EventStore, algorithm: str) -> None:
        sign, check = keys()[algorithm]
        where = fill(store)
        anchor = store.anchor(sign)
        assert (anchor.position, anchor.events, anchor.streams) == (
            max(max(p) for p in where.values()),
            8,
            3,
        )
        assert anchor.format == 1
        report = store.verify(anchor=anchor, key=check)
        assert report.ok, report
        assert any(f"anchor at position {anchor.position}" in item for item in report.checked)

    def test_an_anchor_of_an_empty_store_verifies(self, store: EventStore) -> None:
        key = load_key(SECRET)
        anchor = store.anchor(key)
        assert (anchor.position, anchor.events, anchor.streams) == (0, 0, 0)
        assert store.verify(anchor=anchor, key=key).ok

    def test_events_appended_after_the_anchor_do_not_matter(self, store: EventStore) -> None:
        key = load_key(SECRET)
        fill(store)
        anchor = store.anchor(key)
        store.append("a", deposits(9))
        store.append("new", deposits(1, 2))
        assert store.verify(anchor=anchor, key=key).ok

    def test_an_anchor_round_trips_through_its_json_document(self, store: EventStore) -> None:
        key = load_key(SECRET)
        fill(store)
        anchor = store.anchor(key)
        document = anchor.to_json()
        assert len(document) < 1000
        assert read_anchor(document) == anchor
        assert store.verify(anchor=read_anchor(document), key=key).ok

    def test_an_anchor_is_handed_to_publish_before_it_is_returned(self, store: EventStore) -> None:
        published: list[Anchor] = []
        fill(store)
        anchor = store.anchor(load_key(SECRET), publish=published.append)
        assert published == [anchor]

    def test_an_anchor_extends_a_previous_one_to_the_same_digest(self, store: EventStore) -> None:
        key = load_key(SECRET)
        fill(store)
        first = store.anchor(key)
        store.append("b", deposits(7, 8))
        store.append("d", deposits(1))
        extended = store.anchor(key, previous=first)
        fresh = store.anchor(key)
        assert extended.extends is not None
        assert extended.extends.position == first.position
        assert (extended.position, extended.events, extended.streams) == (
            fresh.position,
            11,
            4,
        )
        assert extended.log_digest == fresh.log_digest
        assert extended.heads_digest == fresh.heads_digest
        assert store.verify(anchor=extended, key=key).ok
        assert store.verify(anchor=extended, key=key, trusted=first).ok

    def test_another_store_with_the_same_shape_does_not_match(
        self, store: EventStore, make_store: StoreFactory
    ) -> None:
        key = load_key(SECRET)
        fill(store)
        other = make_store()
        fill(other)
        report = other.verify(anchor=store.anchor(key), key=key)
        assert not report.ok
        assert report.broken == ()
        assert [p for p in report.problems if "not the anchored ones" in p]

    def test_a_store_shorter_than_its_anchor_is_reported(
        self, store: EventStore, make_store: StoreFactory
    ) -> None:
        key = load_key(SECRET)
        fill(store)
        anchor = store.anchor(key)
        empty = make_store()
        report = empty.verify(anchor=anchor, key=key)
        assert not report.ok
        assert "before the anchor's position" in report.problems[0]

    # -- anchors that cannot be used ----------------------------------------------------------

    def test_an_anchor_checked_with_another_key_is_an_anchor_error(self, store: EventStore) -> None:
        fill(store)
        anchor = store.anchor(load_key(SECRET))
        _, other_public = keys()["ed25519"]
        with pytest.raises(AnchorError, match="signed with hmac-sha256 key"):
            store.verify(anchor=anchor, key=other_public)
        with pytest.raises(AnchorError, match="not with the given"):
            store.verify(anchor=anchor, key=load_key(SECRET.upper()))

    def test_a_changed_anchor_has_a_bad_signature(self, store: EventStore) -> None:
        key = load_key(SECRET)
        fill(store)
        anchor = store.anchor(key)
        forged = msgspec.structs.replace(anchor, events=anchor.events - 1)
        with pytest.raises(AnchorError, match="bad signature"):
            store.verify(anchor=forged, key=key)
        with pytest.raises(AnchorError, match="bad signature"):
            store.anchor(key, previous=forged)

    @pytest.mark.parametrize(
        "document",
        [b"", b"{", b"[]", b'{"format": 1}', b"\xff\xfe", b'{"format": 99, "position": 1}'],
        ids=["empty", "truncated", "array", "missing-fields", "binary", "future-format"],
    )
    def test_a_malformed_anchor_document_is_an_anchor_error(self, document: bytes) -> None:
        with pytest.raises(AnchorError, match="anchor"):
            read_anchor(document)

    def test_an_anchor_of_a_future_format_says_so(self, store: EventStore) -> None:
        document = msgspec.json.decode(store.anchor(load_key(SECRET)).to_json())
        document.update(format=2, new_field=[1, 2])
        with pytest.raises(AnchorError, match="anchor format 2 is not one this eventkeep reads"):
            read_anchor(msgspec.json.encode(document))

    def test_a_public_key_checks_anchors_but_cannot_sign_them(self, store: EventStore) -> None:
        sign, public = keys()["ed25519"]
        fill(store)
        assert store.verify(anchor=store.anchor(sign), key=public).ok
        with pytest.raises(ConfigurationError, match="public key"):
            store.anchor(public)

    def test_verify_with_an_anchor_needs_its_key(self, store: EventStore) -> None:
        anchor = store.anchor(load_key(SECRET))
        with pytest.raises(ConfigurationError, match="key"):
            store.verify(anchor=anchor)

    @pytest.mark.parametrize("secret", [b"", b"short secret", b" " * 40])
    def test_a_short_hmac_secret_is_refused(self, secret: bytes) -> None:
        with pytest.raises(ConfigurationError, match="at least 32 bytes"):
            load_key(secret)
