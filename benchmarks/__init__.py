"""eventkeep's benchmark harness: eventkeep against ``eventsourcing`` and the raw driver floor.

Not part of the test suite. Run it all with ``python -m benchmarks`` (``--quick`` for a smoke
run); see benchmarks/README.md.
"""
