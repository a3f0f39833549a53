-- Version 9: the warm-up's half-way student on the probe (loop.warmup_rates).

-- Its greedy answers, scored as round attempts are: its per-skill accuracy against round 0's
-- is what the warm-up's second half taught each skill, round 0's learning rate.
CREATE TABLE IF NOT EXISTS halfway_attempts (
    item_id   VARCHAR NOT NULL PRIMARY KEY,
    output    VARCHAR NOT NULL,
    extracted VARCHAR NOT NULL,
    correct   BOOLEAN NOT NULL,
    n_tokens  INTEGER NOT NULL,
    mean_prob DOUBLE NOT NULL,
    min_prob  DOUBLE NOT NULL
);
