-- The run store's tables as of schema version 3, the oldest a store is upgraded from: a new
-- store is made from this file and then every numbered migration in migrations/, in order.
-- Natural keys make every write insert-or-ignore, so a stage repeated after a crash adds
-- nothing twice. Round -1 holds the setup stages.

CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);

CREATE TABLE IF NOT EXISTS runs (
    run         VARCHAR PRIMARY KEY,
    config_yaml VARCHAR NOT NULL,
    created_at  TIMESTAMP NOT NULL DEFAULT current_timestamp
);

CREATE TABLE IF NOT EXISTS items (
    item_id         VARCHAR PRIMARY KEY,
    split           VARCHAR NOT NULL,
    family          VARCHAR NOT NULL,
    question        VARCHAR NOT NULL,
    answer          VARCHAR NOT NULL,
    supplied_skills VARCHAR[] NOT NULL,
    meta_json       VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS skills (
    skill       VARCHAR PRIMARY KEY,
    description VARCHAR NOT NULL,
    family      VARCHAR NOT NULL,
    source      VARCHAR NOT NULL          -- which teacher (or 'supplied') named it
);

CREATE TABLE IF NOT EXISTS item_skills (
    item_id VARCHAR NOT NULL,
    skill   VARCHAR NOT NULL,
    score   DOUBLE NOT NULL,
    PRIMARY KEY (item_id, skill)
);

-- One row per student answer; sample 0 is the greedy answer that is scored for the MSP.
CREATE TABLE IF NOT EXISTS attempts (
    round     INTEGER NOT NULL,
    item_id   VARCHAR NOT NULL,
    sample    INTEGER NOT NULL,
    output    VARCHAR NOT NULL,
    extracted VARCHAR NOT NULL,
    correct   BOOLEAN NOT NULL,
    n_tokens  INTEGER NOT NULL,
    mean_prob DOUBLE NOT NULL,
    min_prob  DOUBLE NOT NULL,
    PRIMARY KEY (round, item_id, sample)
);

CREATE TABLE IF NOT EXISTS difficulty (
    round     INTEGER NOT NULL,
    item_id   VARCHAR NOT NULL,
    difficult BOOLEAN NOT NULL,
    reason    VARCHAR NOT NULL,           -- 'wrong', 'inconsistent' or 'ok'
    agreement INTEGER NOT NULL,           -- samples agreeing with the majority answer
    PRIMARY KEY (round, item_id)
);

CREATE TABLE IF NOT EXISTS diagnoses (
    round   INTEGER NOT NULL,
    item_id VARCHAR NOT NULL,
    skill   VARCHAR NOT NULL,
    reason  VARCHAR NOT NULL,
    PRIMARY KEY (round, item_id, skill)
);

-- The round's training set, one row per example (repeats allowed), with why it was chosen.
CREATE TABLE IF NOT EXISTS train_sets (
    round    INTEGER NOT NULL,
    position INTEGER NOT NULL,
    item_id  VARCHAR NOT NULL,
    skill    VARCHAR NOT NULL,            -- the missing skill it was chosen for ('' for baselines)
    cause    VARCHAR NOT NULL,            -- the difficult item that caused it ('' for baselines / fill)
    reason   VARCHAR NOT NULL,            -- pair, fill, uniform, embed, synthetic, mixture, targeted, replay
    strategy VARCHAR NOT NULL,
    PRIMARY KEY (round, position)
);

-- Every STAT-Syn candidate, kept or not; kept ones are also in items (split 'synthetic').
CREATE TABLE IF NOT EXISTS synthesized (
    item_id   VARCHAR PRIMARY KEY,
    round     INTEGER NOT NULL,
    skill     VARCHAR NOT NULL,
    cause     VARCHAR NOT NULL,
    question  VARCHAR NOT NULL,
    answer    VARCHAR NOT NULL,
    solutions VARCHAR[] NOT NULL,
    verified  BOOLEAN NOT NULL,
    kept      BOOLEAN NOT NULL
);

-- Held-out answers of the student *after* round `round`'s training (-1: the warm-up student).
CREATE TABLE IF NOT EXISTS evals (
    round     INTEGER NOT NULL,
    item_id   VARCHAR NOT NULL,
    output    VARCHAR NOT NULL,
    extracted VARCHAR NOT NULL,
    correct   BOOLEAN NOT NULL,
    n_tokens  INTEGER NOT NULL,
    mean_prob DOUBLE NOT NULL,
    min_prob  DOUBLE NOT NULL,
    PRIMARY KEY (round, item_id)
);

CREATE TABLE IF NOT EXISTS checkpoints (
    round      INTEGER PRIMARY KEY,
    path       VARCHAR NOT NULL,
    base       VARCHAR NOT NULL,          -- the checkpoint it continued from
    steps      INTEGER NOT NULL,
    examples   INTEGER NOT NULL,
    final_loss DOUBLE NOT NULL,
    seconds    DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS ledger (
    round       INTEGER NOT NULL,
    stage       VARCHAR NOT NULL,
    status      VARCHAR NOT NULL,         -- 'running' or 'done'
    started_at  TIMESTAMP NOT NULL,
    finished_at TIMESTAMP,
    seconds     DOUBLE,
    detail      VARCHAR NOT NULL DEFAULT '',
    PRIMARY KEY (round, stage)
);

-- Notes of a run (skipped rows, dropped labels, resumes). Keyed by their text, so a stage
-- redone after a crash does not log the same note twice.
CREATE TABLE IF NOT EXISTS events (
    ts      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    round   INTEGER NOT NULL,
    stage   VARCHAR NOT NULL,
    message VARCHAR NOT NULL,
    PRIMARY KEY (round, stage, message)
);
