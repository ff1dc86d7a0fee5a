"""The erasure half of every store (crypto-shredding): its key store, the key cache a read
page checks, ``forget`` and the forget log. See :mod:`eventkeep.store.shredding` and
docs/erasure.md. :class:`~eventkeep.store.base.EventStore` inherits it; a backend implements
the four ``_``-prefixed primitives at the end.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from eventkeep.errors import ConfigurationError, KeyConflictError, ValidationError
from eventkeep.store.personal import holds_personal_any
from eventkeep.store.shredding import (
    ForgetReport,
    ForgottenSubject,
    KeyStore,
    Shredder,
    subject_needle,
)
from eventkeep.store.validation import check_count, check_text

if TYPE_CHECKING:
    from eventkeep.store.codec import Codec
    from eventkeep.store.dcb import AppendCondition
    from eventkeep.store.recorded import RecordedEvent
    from eventkeep.store.types import AppendResult, PreparedAppend

__all__ = ["KEY_CONFLICT_RETRIES", "Erasure"]

KEY_CONFLICT_RETRIES = 3
"""How often an append that lost the race for a subject's first key is sealed again."""


class Erasure:
    """Mixed into ``EventStore``: everything about personal data and forgetting."""

    codec: Codec
    _key_store: KeyStore | None
    _stores_keys_in_append = False
    """True on a backend whose ``_append`` stores the events' new keys (``PreparedEvent.keys``)
    in its own transaction, refusing with ``KeyConflictError`` a key that lost the race."""

    if TYPE_CHECKING:  # EventStore's

        def joined_transaction(self) -> Any: ...

        def _clock(self, floor: int = 0) -> int: ...

    @property
    def key_store(self) -> KeyStore:
        """Where the per-subject keys of personal fields live (see docs/erasure.md)."""
        return self._shredder().key_store

    def _shredder(self) -> Shredder:
        shredder = self.codec.personal
        if shredder is None:
            given = self._key_store
            key_store = given if given is not None else self._default_key_store()
            shredder = self.codec.personal = Shredder(
                key_store, lambda: self.joined_transaction() is not None
            )
            shredder.keys_in_append = given is None and self._stores_keys_in_append
        return shredder

    def _append_sealed(
        self,
        append: Callable[[list[PreparedAppend], AppendCondition | None], list[AppendResult]],
        batches: list[PreparedAppend],
        condition: AppendCondition | None,
    ) -> list[AppendResult]:
        """Run a backend append; when it lost the race to make a subject's first key (another
        append stored one first), seal those values again with the stored key and retry.
        Then cache the keys it stored."""
        for attempt in range(KEY_CONFLICT_RETRIES + 1):
            try:
                results = append(batches, condition)
            except KeyConflictError as exc:
                if attempt == KEY_CONFLICT_RETRIES:
                    raise
                batches = self._resealed(batches, set(exc.subjects))
                continue
            made = [key for batch in batches for ev in batch.events for key in ev.keys]
            if made:
                self._shredder().adopt(made)
            return results
        raise AssertionError("unreachable")  # pragma: no cover

    def _resealed(self, batches: list[PreparedAppend], lost: set[str]) -> list[PreparedAppend]:
        shredder = self._shredder()
        out = []
        for batch in batches:
            events = []
            for ev in batch.events:
                mine = {s: k for s, k in ev.keys if s in lost}
                if mine:
                    ev = ev._replace(
                        data=shredder.reseal(ev.data, mine),
                        keys=tuple((s, k) for s, k in ev.keys if s not in lost),
                    )
                events.append(ev)
            out.append(batch._replace(events=events))
        return out

    def _with_personal(self, page: Sequence[RecordedEvent]) -> Sequence[RecordedEvent]:
        """A page about to be handed out: if it holds ciphertext, check the key cache (a
        forget elsewhere drops it) and fetch its subjects' keys in one call; if it holds
        none (one search of the page's data joined, not one per event), its events are
        marked so, and decoding them searches nothing."""
        raws = [event._raw_data for event in page]
        if not raws:
            return page
        if holds_personal_any(raws):
            self._shredder().page(raws)
            return page
        for event in page:
            event._plain = True
        return page

    # -- erasure (crypto-shredding, see docs/erasure.md) ----------------------------------------

    def forget(self, subject: str, *, by: str = "", reason: str = "") -> ForgetReport:
        """Forget data subject ``subject``: destroy its key, so that every personal field
        encrypted for it reads as its redacted value from now on, in every process.

        The forget is recorded in the store's forget log (``by``: who asked, ``reason``: why;
        the subject id and the time, never the data). Snapshots of the streams that hold the
        subject's ciphertext are deleted (a snapshot may hold the plaintext); projections
        with a ``forgotten`` hook are told by their runner. Forgetting a subject with no key
        (unknown, or forgotten before) is recorded too, and the report says so.
        """
        subject = check_text(subject, what="subject")
        if not subject:
            raise ValidationError("subject must not be empty")
        by = check_text(by, what="by")
        reason = check_text(reason, what="reason")
        shredder = self._shredder()
        earlier = tuple(entry for entry in self._forget_log(0) if entry.subject == subject)
        had_key = shredder.key_store.destroy_key(subject)
        shredder.drop(subject)
        entry = self._log_forget(subject, self._clock(), by, reason, had_key)
        deleted = self._delete_snapshots_holding(subject_needle(subject))
        return ForgetReport(subject, had_key, earlier, deleted, entry)

    def forgotten_subjects(self, after: int = 0) -> list[ForgottenSubject]:
        """The forget log after entry ``after`` (its ``seq``), oldest first."""
        return self._forget_log(check_count(after, what="after"))

    def _default_key_store(self) -> KeyStore:
        """The key store used when none is given: the store's own keys table."""
        raise ConfigurationError(f"{type(self).__name__} has no key store: pass key_store=")

    def _log_forget(
        self, subject: str, at_us: int, by: str, reason: str, had_key: bool
    ) -> ForgottenSubject:
        raise ConfigurationError(f"{type(self).__name__} cannot forget subjects")

    def _forget_log(self, after: int) -> list[ForgottenSubject]:
        return []

    def _delete_snapshots_holding(self, needle: bytes) -> int:
        """Delete the snapshots of streams whose events' data contains ``needle``."""
        return 0
