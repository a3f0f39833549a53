-- Version 6: FS-GEN's token-level collaboration.

-- FS-GEN's token-level collaboration: round `round`'s student decoding with the larger
-- model `model` (its key, stages.token_model_key) choosing each token where the student's
-- top-1 probability was below `threshold`; threshold 'inf' is the larger model alone,
-- stored once under round -1.
CREATE TABLE IF NOT EXISTS token_solutions (
    round        INTEGER NOT NULL,
    model        VARCHAR NOT NULL,
    threshold    DOUBLE NOT NULL,
    item_id      VARCHAR NOT NULL,
    output       VARCHAR NOT NULL,
    extracted    VARCHAR NOT NULL,
    correct      BOOLEAN NOT NULL,
    n_tokens     INTEGER NOT NULL,
    large_tokens INTEGER NOT NULL,         -- of n_tokens, how many the larger model chose
    seconds      DOUBLE NOT NULL,
    PRIMARY KEY (round, model, threshold, item_id)
);
