"""``python runner_probe.py ARGS...`` runs ``python -m eventkeep ARGS...`` and also reports, on
stderr, what a standby runner does.

A standby logs nothing while it waits: until it takes a lease it has nothing to say. So a test
cannot tell a standby that tried for the lease and found it held from one that has not got that
far yet (under load, a process can take seconds to start). This wrapper logs one line per
projection the first time a lease attempt finds the lease held by another runner::

    probe: bank.transfers standing by behind host:1234:ab12cd34

It only observes: the runner's behaviour is unchanged.
"""

from __future__ import annotations

import runpy
import sys

from eventkeep.projections.job import Job

_take_or_renew = Job._lease
_reported: set[str] = set()


def _observed_lease(self: Job) -> None:
    _take_or_renew(self)
    record = self.record
    if self.active or record is None or record.owner in (None, self.owner):
        return
    if self.name not in _reported:
        _reported.add(self.name)
        print(f"probe: {self.name} standing by behind {record.owner}", file=sys.stderr, flush=True)


Job._lease = _observed_lease  # type: ignore[method-assign]

if __name__ == "__main__":
    sys.argv = ["eventkeep", *sys.argv[1:]]
    runpy.run_module("eventkeep", run_name="__main__", alter_sys=True)
