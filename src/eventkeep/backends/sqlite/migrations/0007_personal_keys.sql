-- Crypto-shredding (see eventkeep.store.shredding and docs/erasure.md).
--
-- One AES-GCM key per data subject, created the first time an append holds personal data of
-- the subject; forgetting the subject deletes its row for good. The epoch row counts the
-- deletions: every process checks it (one indexed read) before it trusts its cached keys.
CREATE TABLE personal_keys (
    subject    TEXT    PRIMARY KEY,
    key        BLOB    NOT NULL,
    created_at INTEGER NOT NULL        -- microseconds since the Unix epoch, UTC
) WITHOUT ROWID;

CREATE TABLE personal_key_epoch (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    epoch INTEGER NOT NULL
);

INSERT INTO personal_key_epoch (id, epoch) VALUES (1, 0);

-- The forget log: who forgot which subject, when and why; never the data. Append-only.
CREATE TABLE forgotten_subjects (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,
    subject      TEXT    NOT NULL,
    forgotten_at INTEGER NOT NULL,     -- microseconds since the Unix epoch, UTC
    by           TEXT    NOT NULL,
    reason       TEXT    NOT NULL,
    had_key      INTEGER NOT NULL
);

CREATE TRIGGER forgotten_subjects_are_append_only_update BEFORE UPDATE ON forgotten_subjects
BEGIN
    SELECT RAISE(ABORT, 'eventkeep: the forget log is append-only; UPDATE is refused');
END;

CREATE TRIGGER forgotten_subjects_are_append_only_delete BEFORE DELETE ON forgotten_subjects
BEGIN
    SELECT RAISE(ABORT, 'eventkeep: the forget log is append-only; DELETE is refused');
END;
