-- Version 5: System 1 + System 2 composition.

-- Compose (System 1 + System 2). Each solver's answer per item: 'system1' is the student
-- of round `round` (-1: the warm-up student) with its confidence features; a System-2
-- solver is named by its key, 'program@<digest of its settings>' (stages.system2_key), and
-- one that does not use the student ('program', 'teacher', 'oracle') is stored once,
-- under round -1. seconds is the item's share of its batch's wall time.
CREATE TABLE IF NOT EXISTS solutions (
    round     INTEGER NOT NULL,
    solver    VARCHAR NOT NULL,
    item_id   VARCHAR NOT NULL,
    output    VARCHAR NOT NULL,
    extracted VARCHAR NOT NULL,
    correct   BOOLEAN NOT NULL,
    n_tokens  INTEGER NOT NULL,
    seconds   DOUBLE NOT NULL,
    mean_prob DOUBLE,                     -- System 1 only
    min_prob  DOUBLE,
    margin    DOUBLE,                     -- mean top-1 minus top-2 probability (NULL: engine lacks it)
    PRIMARY KEY (round, solver, item_id)
);

-- The composed solver on the test split, per round and router: which system answered
-- each item and why (the threshold was chosen on the probe split).
CREATE TABLE IF NOT EXISTS routes (
    round     INTEGER NOT NULL,
    router    VARCHAR NOT NULL,
    item_id   VARCHAR NOT NULL,
    system2   VARCHAR NOT NULL,           -- the System-2 solver composed with, as stored in solutions
    s2_round  INTEGER NOT NULL,           -- the round its answers are stored under
    system    INTEGER NOT NULL,           -- 1 or 2: who answered
    reason    VARCHAR NOT NULL,
    score     DOUBLE NOT NULL,            -- the router's estimate that System 1 is right (router
                                          -- 'token': the share of the answer's tokens the student chose)
    threshold DOUBLE NOT NULL,
    correct   BOOLEAN NOT NULL,
    seconds   DOUBLE NOT NULL,
    tokens    INTEGER NOT NULL,
    PRIMARY KEY (round, router, item_id)
);

-- Accuracy against escalation rate over thresholds (the report's trade-off plot); `chosen`
-- marks the threshold picked on the probe split.
CREATE TABLE IF NOT EXISTS compose_curve (
    round      INTEGER NOT NULL,
    router     VARCHAR NOT NULL,
    split      VARCHAR NOT NULL,
    threshold  DOUBLE NOT NULL,
    escalation DOUBLE NOT NULL,
    accuracy   DOUBLE NOT NULL,
    seconds    DOUBLE NOT NULL,
    chosen     BOOLEAN NOT NULL,
    PRIMARY KEY (round, router, split, threshold)
);
