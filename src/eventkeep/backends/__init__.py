"""Storage backends: memory (the reference), SQLite (the embedded default), PostgreSQL."""
