"""The PostgreSQL backend (``pip install 'eventkeep[postgres]'``): psycopg 3 and psycopg_pool."""

from eventkeep.backends.postgres.store import DEFAULT_SCHEMA, PostgresStore

__all__ = ["DEFAULT_SCHEMA", "PostgresStore"]
