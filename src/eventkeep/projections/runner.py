"""The runner: feeds projections from the log, one batch at a time, until told to stop.

::

    runner = Runner(store, [AccountBalances(), TransferProcessor()])
    runner.run()                  # until SIGTERM / stop(); or run(until_caught_up=True)

One thread, one loop: each projection (a :class:`~eventkeep.projections.job.Job`) renews or
takes its lease when due and processes one batch; when none had work, the runner waits for new
events (bounded, so stop requests, lease renewals and retries are never late). A projection that
fails stops alone; the others keep running. ``stop()`` (and SIGTERM, with
``install_signal_handlers``) lets the current batch finish, then releases the leases so a
standby takes over at once.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

from eventkeep.errors import ValidationError
from eventkeep.projections.checkpoints import make_owner
from eventkeep.projections.job import Job, RetryPolicy
from eventkeep.projections.projection import Projection
from eventkeep.store import EventStore
from eventkeep.store.validation import check_seconds

__all__ = ["Runner"]

log = logging.getLogger("eventkeep.projections")

IDLE_WAIT = 0.25
DEFAULT_LEASE_TTL = 10.0


class Runner:
    """Runs projections against one store, holding a lease on each so only one runner does."""

    def __init__(
        self,
        store: EventStore,
        projections: Sequence[Projection],
        *,
        owner: str | None = None,
        lease_ttl: float = DEFAULT_LEASE_TTL,
        retry: RetryPolicy | None = None,
    ) -> None:
        if isinstance(projections, Projection | str | bytes):
            raise ValidationError(
                f"Runner takes a list of projections, got a single {type(projections).__name__}"
            )
        projections = list(projections)
        for projection in projections:
            if not isinstance(projection, Projection):
                raise ValidationError(f"Runner takes Projection instances, got {projection!r:.80}")
        names = [p.name for p in projections]
        if len(set(names)) != len(names):
            raise ValidationError(f"two projections share a name: {names}")
        check_seconds(lease_ttl, what="lease_ttl")
        if not lease_ttl > 0:
            raise ValidationError(f"lease_ttl must be > 0 seconds, got {lease_ttl!r}")
        if retry is not None and not isinstance(retry, RetryPolicy):
            raise ValidationError(f"retry must be a RetryPolicy, got {retry!r:.80}")
        self.store = store
        self.owner = owner or make_owner()
        self.jobs = [
            Job(
                store,
                projection,
                owner=self.owner,
                lease_ttl=lease_ttl,
                retry=retry or RetryPolicy(),
            )
            for projection in projections
        ]
        self._stop = threading.Event()

    def stop(self) -> None:
        """Finish the current batch, then return from ``run``."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def install_signal_handlers(self) -> None:
        """Stop cleanly on SIGTERM and SIGINT (call from the main thread).

        The first signal asks the runner to stop after the current batch. A second one, while
        it is still stopping (a handler that hangs), exits the process at once with status
        128 + the signal's number (130 for Ctrl-C): the open batch is rolled back by the
        database, and the leases are taken over once they expire (at once by a standby on the
        same host).
        """

        def handler(signum: int, frame: FrameType | None) -> None:
            name = signal.Signals(signum).name
            if self._stop.is_set():
                log.warning("received %s again: exiting now, without finishing the batch", name)
                logging.shutdown()
                os._exit(128 + signum)
            log.info("received %s: finishing the current batch (again to exit at once)", name)
            self.stop()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def step(self) -> bool:
        """One round: every projection renews its lease if due and handles one batch.

        A projection's failures (the store's, or its own code's, whatever the exception) are
        its own: it backs off and the others go on.
        """
        worked = False
        for job in self.jobs:
            if self._stop.is_set():
                break
            worked = job.tick() or worked
        return worked

    def failed(self) -> list[str]:
        """The projections that are failed (waiting for a retry or an operator)."""
        return [
            job.name for job in self.jobs if job.record is not None and job.record.state == "failed"
        ]

    def caught_up(self, *, or_failed: bool = False) -> bool:
        """True when every projection holds its lease, is caught up and is not rebuilding
        (with ``or_failed``: or is failed, waiting for a retry or an operator)."""
        return all(
            (job.active and job.caught_up and not job.rebuilding)
            or (or_failed and job.name in self.failed())
            for job in self.jobs
        )

    def run(
        self,
        *,
        until: Callable[[], bool] | None = None,
        until_caught_up: bool = False,
        stop_on_failure: bool = False,
        timeout: float | None = None,
        on_step: Callable[[], None] | None = None,
    ) -> bool:
        """Run until stopped (or ``until()`` / caught up / ``timeout``); True unless timed out.

        With ``until_caught_up`` and ``stop_on_failure``, a failed projection counts as done
        (see :meth:`failed`), so that a batch run ends instead of waiting for retries.

        Leases are released on the way out.
        """
        if timeout is not None:
            timeout = check_seconds(timeout, what="timeout (or None)")
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while not self._stop.is_set():
                worked = self.step()
                if on_step is not None:
                    on_step()
                if until is not None and until():
                    return True
                if until_caught_up and not worked and self.caught_up(or_failed=stop_on_failure):
                    return True
                if deadline is not None and time.monotonic() >= deadline:
                    return False
                if not worked:
                    self._wait(deadline)
            return True
        finally:
            self.release()

    def _wait(self, deadline: float | None) -> None:
        """Sleep until the next projection's turn: new events for one that would handle them,
        or the soonest lease renewal, retry or end of a backoff. Projections that are backing
        off are not waited for events (they would wake the loop at once, and spin)."""
        now = time.monotonic()
        limit = min([IDLE_WAIT, *(job.next_deadline - now for job in self.jobs)])
        if deadline is not None:
            limit = min(limit, deadline - now)
        if limit <= 0:
            return
        listening = [job.scanned for job in self.jobs if job.listening]
        if listening:
            try:
                self.store.wait_for_events(min(listening), limit)
                return
            except Exception as exc:  # the store is in trouble: the jobs will back off
                log.debug("waiting for events failed: %s", exc)
        self._stop.wait(limit)

    def release(self) -> None:
        for job in self.jobs:
            try:
                job.release()
            except Exception as exc:
                log.warning("projection %s: could not release its lease: %s", job.name, exc)
