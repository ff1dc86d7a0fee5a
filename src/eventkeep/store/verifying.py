"""Checking a store's history: ``verify`` (hash chains, heads, the database's own structures,
the lifecycle's log and, given an anchor, the history as a whole) and ``anchor`` (a signed
statement of the history, see :mod:`eventkeep.store.anchors`). Mixed into
:class:`~eventkeep.store.base.EventStore`; a backend implements the primitives at the end.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from eventkeep.errors import ConfigurationError, ValidationError
from eventkeep.store.anchors import Anchor, AnchorKey, AnchorSource, check_anchor, make_anchor
from eventkeep.store.hashing import VerifyReport
from eventkeep.store.types import StorageCheck

if TYPE_CHECKING:
    from eventkeep.store.lifecycle import Removal

__all__ = ["Verifying"]


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"


class Verifying(abc.ABC):
    """Mixed into ``EventStore``: ``verify`` and ``anchor``."""

    # False for a store that keeps no stream heads (PostgreSQL: a stream's head is its last
    # event): verify then says it had none to check.
    _STORES_HEADS = True

    if TYPE_CHECKING:  # Reading's and LifecycleMixin's

        def head_position(self) -> int: ...

        def _check_lifecycle(self) -> StorageCheck: ...

        @contextlib.contextmanager
        def _anchor_view(self) -> Iterator[tuple[AnchorSource, list[str]]]: ...

        def _removals(self, stream_id: str | None) -> list[Removal]: ...

    def verify(
        self,
        *,
        deep: bool = True,
        anchor: Anchor | None = None,
        key: AnchorKey | None = None,
        trusted: Anchor | None = None,
        progress: Callable[[int, int], object] | None = None,
    ) -> VerifyReport:
        """Check the stored history; the report says what was checked and what was found.

        Always: every stream's hash chain (the first broken link per stream is reported), every
        stored stream head against its chain's last event (memory and SQLite; PostgreSQL stores
        none), and that positions increase with versions within each stream. ``deep`` (the
        default) also checks the database's own structures:
        ``PRAGMA integrity_check`` on SQLite, amcheck's ``bt_index_check`` on PostgreSQL when
        the extension is installed (else the report lists it under ``not_checked``).

        ``anchor`` (with the ``key`` it was signed with; an Ed25519 public key suffices) also
        proves that the store still holds exactly the history it states up to its position: a
        recomputed chain, a deleted or forged event, a deleted stream, a moved head, reordered
        positions, a truncated or replaced database. ``trusted``: an earlier anchor of the same
        history, already checked, from which to start. An anchor that is malformed or not
        signed by ``key`` raises :class:`~eventkeep.errors.AnchorError`. See docs/security.md.

        ``progress(checked, total)`` is called as the chains are walked (every few thousand
        events, and once at the end with ``checked == report.events_checked``), on the thread
        that runs verify: ``total`` is the log's head position when verify began, an upper
        bound of the events to check (removed events and concurrent appends make it inexact).
        """
        if progress is not None and not callable(progress):
            raise ValidationError(f"progress must be callable, got {type(progress).__name__}")
        if anchor is not None and key is None:
            raise ConfigurationError("verify(anchor=...) needs the key the anchor was signed with")
        if trusted is not None and anchor is None:
            raise ConfigurationError("verify(trusted=...) checks an anchor: give anchor= too")
        if progress is None:
            report = self._verify()
        else:
            total = self.head_position()
            report = self._verify(lambda done: progress(done, max(done, total)))
        checked = [
            f"the hash chains of {_count(report.streams_checked, 'stream')} "
            f"({_count(report.events_checked, 'event')})",
            *(["every stream head against its chain's last event"] if self._STORES_HEADS else []),
            "positions increase with versions within each stream",
        ]
        storage = (
            self._check_storage()
            if deep
            else StorageCheck(
                not_checked=("the database's own structures (skipped: not a deep check)",)
            )
        )
        lifecycle = self._check_lifecycle()
        checked.extend(storage.checked + lifecycle.checked)
        problems = list(storage.problems + lifecycle.problems)
        not_checked = list(storage.not_checked + lifecycle.not_checked)
        if not self._STORES_HEADS:
            not_checked.append(
                "stream heads against their chains: none is stored (a stream's head is its last "
                "event), so a tail cut off behind the triggers is found only with an anchor"
            )
        if anchor is not None and key is not None:
            with self._anchor_view() as (source, missing):
                what, found = check_anchor(source, anchor, key, trusted)
            if missing and found:
                # Removed events the archives could not give back: the anchor cannot be
                # checked over them, and the log says precisely what they were.
                not_checked.append(f"{what}: " + "; ".join(missing))
            else:
                checked.append(
                    what
                    + (
                        " (removed events read back from their archives)"
                        if self._removals(None)
                        else ""
                    )
                )
                problems.extend(found)
        else:
            not_checked.append(
                "the history as a whole (no anchor given): without one, a recomputed chain, a "
                "deleted stream, a cut tail with its head moved back, reordered streams or a "
                "replaced database cannot be told from a genuine history"
            )
        return report._replace(
            problems=tuple(problems), checked=tuple(checked), not_checked=tuple(not_checked)
        )

    def anchor(
        self,
        key: AnchorKey,
        *,
        previous: Anchor | None = None,
        publish: Callable[[Anchor], object] | None = None,
    ) -> Anchor:
        """A signed statement of the whole history up to the log's head position: keep it
        where the database's administrator cannot rewrite it, and check the store against it
        with ``verify(anchor=..., key=...)``. See :mod:`eventkeep.store.anchors`.

        ``previous``: an earlier anchor of this store (signed with ``key``) to extend: only the
        events after it are digested (the ones before are taken on its word; verify checks
        them). ``publish``: called with the new anchor before it is returned (write it to a
        bucket, a transparency log, another machine).
        """
        if not isinstance(key, AnchorKey):
            raise ValidationError(f"key must be an AnchorKey (see load_key), got {key!r:.80}")
        with self._anchor_source() as source:
            made = make_anchor(source, key, previous)
        if publish is not None:
            publish(made)
        return made

    # -- backend primitives -------------------------------------------------------------------

    @abc.abstractmethod
    def _verify(self, progress: Callable[[int], object] | None = None) -> VerifyReport: ...

    def _check_storage(self) -> StorageCheck:
        """Check the database's own structures (files, pages, indexes)."""
        return StorageCheck(not_checked=("the database's own structures (this store has none)",))

    @abc.abstractmethod
    def _anchor_source(self) -> contextlib.AbstractContextManager[AnchorSource]:
        """Rows for anchors, all read from one snapshot."""
