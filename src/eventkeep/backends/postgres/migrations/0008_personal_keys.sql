-- Crypto-shredding (see eventkeep.store.shredding and docs/erasure.md).
--
-- One AES-GCM key per data subject, created the first time an append holds personal data of
-- the subject; forgetting the subject deletes its row for good. The epoch row counts the
-- deletions: every process checks it (one indexed read) before it trusts its cached keys.
CREATE TABLE personal_keys (
    subject    text COLLATE "C" PRIMARY KEY,
    key        bytea       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE personal_key_epoch (
    id    integer PRIMARY KEY CHECK (id = 1),
    epoch bigint  NOT NULL
);

INSERT INTO personal_key_epoch (id, epoch) VALUES (1, 0);

-- The forget log: who forgot which subject, when and why; never the data. Append-only.
CREATE TABLE forgotten_subjects (
    seq          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    subject      text        NOT NULL,
    forgotten_at timestamptz NOT NULL,
    by_whom      text        NOT NULL,
    reason       text        NOT NULL,
    had_key      boolean     NOT NULL
);

CREATE FUNCTION eventkeep_refuse_forget_log_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'eventkeep: the forget log is append-only; % is refused', TG_OP
        USING ERRCODE = 'restrict_violation';
END;
$$;

CREATE TRIGGER forgotten_subjects_refuse_change BEFORE UPDATE OR DELETE ON forgotten_subjects
    FOR EACH ROW EXECUTE FUNCTION eventkeep_refuse_forget_log_change();

CREATE TRIGGER forgotten_subjects_refuse_truncate BEFORE TRUNCATE ON forgotten_subjects
    FOR EACH STATEMENT EXECUTE FUNCTION eventkeep_refuse_forget_log_change();
