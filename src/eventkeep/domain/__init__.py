"""The domain layer: aggregates and deciders, the repository that loads and saves them through
a store or a transaction, snapshots, temporal queries, conflict rules and the command context.
It talks to storage only through :mod:`eventkeep.store`'s writer interface.
"""
