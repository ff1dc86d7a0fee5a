"""Erasure's side tables: what export, import and copy carry of crypto-shredding.

Two :class:`~eventkeep.moving.side.SideTable`\\ s (see docs/moving.md and docs/erasure.md):

- ``forgotten_subject``: the forget log (who forgot which subject, when and why). Imported
  before the keys: a subject forgotten in the source is forgotten in the target too (its key
  there, if it has one, is destroyed), with the source's time, ``by`` and ``reason``.
- ``personal_key``: the key of every data subject whose encrypted values the source's events
  hold (found in the stored data, then asked of the source's key store, so any
  :class:`~eventkeep.store.shredding.KeyStore` works). A **secret**: ``copy`` carries it,
  an export only when asked (``export --with-keys``), since whoever holds an export with its
  keys can read the personal data in it. Without them the personal fields of the imported
  events read as redacted in the target, as if forgotten. A key the target holds already is
  kept when it is the same; another key for the same subject is refused (the imported
  ciphertext could not be read with it).

Both import idempotently.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Collection, Iterator
from typing import Any

from eventkeep.errors import IntegrityError, ValidationError
from eventkeep.store.base import EventStore
from eventkeep.store.hashing import ChainRow
from eventkeep.store.personal import holds_personal, holds_personal_any
from eventkeep.store.recorded import from_micros, to_micros
from eventkeep.store.shredding import subjects_in
from eventkeep.store.transfer import export_events
from eventkeep.store.validation import check_text

__all__ = ["FORGOTTEN", "KEYS", "KeyCarrier"]

_KEY_BYTES = 32


class _Forgotten:
    """The ``forgotten_subject`` side table: the forget log."""

    kind = "forgotten_subject"
    secret = False

    def export(self, source: EventStore) -> Iterator[dict[str, Any]]:
        for entry in source.forgotten_subjects():
            yield {
                "subject": entry.subject,
                "forgotten_at_us": to_micros(entry.forgotten_at),
                "by": entry.by,
                "reason": entry.reason,
                "had_key": entry.had_key,
            }

    def import_(self, target: EventStore, records: list[dict[str, Any]]) -> None:
        known = {(e.subject, to_micros(e.forgotten_at)) for e in target.forgotten_subjects()}
        for record in records:
            subject, at_us, by, reason, had_key = _forgotten(record)
            if (subject, at_us) in known:
                continue
            target.key_store.destroy_key(subject)
            target._log_forget(subject, at_us, by, reason, had_key)
            known.add((subject, at_us))


class _Keys:
    """The ``personal_key`` side table: the keys the source's encrypted values need."""

    kind = "personal_key"
    secret = True

    def export(self, source: EventStore) -> Iterator[dict[str, Any]]:
        subjects: set[str] = set()
        for row in export_events(source):
            subjects |= subjects_in(row.data)
        yield from self.records(source, subjects)

    def records(self, source: EventStore, subjects: Collection[str]) -> Iterator[dict[str, Any]]:
        """The records of the keys of ``subjects`` that ``source``'s key store holds."""
        if not subjects:
            return
        found = source.key_store.keys(sorted(subjects))
        for subject in sorted(found):
            yield {"subject": subject, "key": base64.b64encode(found[subject]).decode()}

    def import_(
        self,
        target: EventStore,
        records: list[dict[str, Any]],
        forgotten: Collection[str] | None = None,
    ) -> None:
        """``forgotten``: the subjects forgotten in ``target``, if the caller knows them."""
        if forgotten is None:
            forgotten = {entry.subject for entry in target.forgotten_subjects()}
        for record in records:
            subject, key = _key(record)
            if subject in forgotten:  # forgotten in the target (or with the import): stays so
                continue
            kept = target.key_store.create_key(subject, key)
            if kept != key:
                raise IntegrityError(
                    f"data subject {subject!r} has another key in the target store: the "
                    "imported events' personal values could not be read with it (import "
                    "into a store that does not hold this subject's data)"
                )


FORGOTTEN = _Forgotten()
KEYS = _Keys()


class KeyCarrier:
    """Carries the keys of the personal data in a copy's events page by page, each page's
    before its events are written (so a copy interrupted anywhere holds the keys of every
    event it holds), instead of a pass over the whole log first. A subject forgotten in the
    target (the forget log is carried before the events) stays without its key."""

    def __init__(self, source: EventStore, target: EventStore) -> None:
        self._source = source
        self._target = target
        self._seen: set[str] = set()
        self._forgotten = {entry.subject for entry in target.forgotten_subjects()}

    def carry(self, rows: list[ChainRow]) -> None:
        """Copy the keys of the subjects ``rows`` hold that no earlier page held."""
        subjects: set[str] = set()
        if not holds_personal_any([row.data for row in rows]):  # one search of the page
            return
        for row in rows:
            if holds_personal(row.data):
                subjects |= subjects_in(row.data)
        subjects -= self._seen
        if subjects:
            self._seen |= subjects
            records = list(KEYS.records(self._source, subjects))
            KEYS.import_(self._target, records, self._forgotten)


def _forgotten(record: dict[str, Any]) -> tuple[str, int, str, str, bool]:
    try:
        subject = check_text(record["subject"], what="forgotten subject")
        at_us = record["forgotten_at_us"]
        by = check_text(record.get("by", ""), what="by")
        reason = check_text(record.get("reason", ""), what="reason")
        had_key = record.get("had_key", True)
    except KeyError as exc:
        raise ValidationError(f"a forgotten_subject record lacks {exc.args[0]!r}") from None
    if not subject:
        raise ValidationError("a forgotten_subject record names no subject")
    if type(at_us) is not int or at_us < 0:
        raise ValidationError(f"forgotten_at_us must be microseconds, got {at_us!r}")
    if not isinstance(had_key, bool):
        raise ValidationError(f"had_key must be true or false, got {had_key!r}")
    from_micros(at_us)  # a time datetime can hold
    return subject, at_us, by, reason, had_key


def _key(record: dict[str, Any]) -> tuple[str, bytes]:
    subject = record.get("subject")
    encoded = record.get("key")
    if not isinstance(subject, str) or not subject:
        raise ValidationError(f"a personal_key record names no subject: {record!r:.80}")
    check_text(subject, what="subject")
    if not isinstance(encoded, str):
        raise ValidationError(f"the personal_key record of {subject!r} holds no key")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise ValidationError(f"the key of {subject!r} is not base64") from None
    if len(key) != _KEY_BYTES:
        raise ValidationError(f"the key of {subject!r} is {len(key)} bytes, not {_KEY_BYTES}")
    return subject, key
