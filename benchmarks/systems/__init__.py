"""One adapter per system under test, all with the same methods (see ``base.Subject``).

- ``eventkeep``: eventkeep's ``Repository`` and ``BankAccount`` example over ``open_store``.
- ``eventsourcing``: the incumbent (9.5.x), an ``Application`` with an equivalent aggregate.
- ``raw``: the equivalent driver floor, plain ``sqlite3`` / ``psycopg`` storing and reading the
  same row as an event store (event id, metadata, timestamp, type index), without its machinery.
- ``raw-min``: the minimal floor of earlier runs (stream id, version, type, data); shown for the
  batch append and the command loop only.
"""
