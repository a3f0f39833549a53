-- Version 4: the LLM teacher's requests, the cache a resumed run reads.

-- Every request to an LLM teacher, one row per try: usable replies (status 'ok') are the
-- cache a resumed or repeated run reads instead of asking again; failures keep the error
-- and the raw text. round/stage are the ledger's stage that was running. Never reset:
-- a stage redone with --force-from asks the teacher nothing it has answered.
CREATE TABLE IF NOT EXISTS teacher_calls (
    key               VARCHAR NOT NULL,   -- sha256 of (model, template, messages, schema, sampling)
    attempt           INTEGER NOT NULL,
    template          VARCHAR NOT NULL,   -- e.g. 'label.v1'
    model             VARCHAR NOT NULL,
    status            VARCHAR NOT NULL,   -- 'ok' or 'error'
    response          VARCHAR NOT NULL,   -- the raw text the server sent
    error             VARCHAR NOT NULL,
    prompt_tokens     INTEGER NOT NULL,
    completion_tokens INTEGER NOT NULL,
    seconds           DOUBLE NOT NULL,
    round             INTEGER NOT NULL,
    stage             VARCHAR NOT NULL,
    created_at        TIMESTAMP NOT NULL DEFAULT current_timestamp,
    PRIMARY KEY (key, attempt)
);
