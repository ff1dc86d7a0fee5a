"""One adapter per system under test, all with the same methods (see ``base.Subject``).

- ``eventkeep``: eventkeep's ``Repository`` and ``BankAccount`` example over ``open_store``.
- ``eventsourcing``: the incumbent (9.5.x), an ``Application`` with an equivalent aggregate.
- ``raw``: the driver floor, plain ``sqlite3`` / ``psycopg`` doing the same selects and inserts.
"""
