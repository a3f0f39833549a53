-- sgi run store, one DuckDB file per run directory. SCHEMA_VERSION in store.py must be
-- bumped with every change here. Natural keys make every write insert-or-ignore, so a
-- stage repeated after a crash adds nothing twice. Round -1 holds the setup stages.

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

-- Notes of a run (skipped rows, dropped labels, resumes). Keyed by their text, so a stage
-- redone after a crash does not log the same note twice.
CREATE TABLE IF NOT EXISTS events (
    ts      TIMESTAMP NOT NULL DEFAULT current_timestamp,
    round   INTEGER NOT NULL,
    stage   VARCHAR NOT NULL,
    message VARCHAR NOT NULL,
    PRIMARY KEY (round, stage, message)
);

-- The Missing-Skill-Profile: the one place its numbers are computed. attempts and
-- correct count greedy answers of items labelled with the skill; missing counts the
-- teacher's diagnoses naming it; share is its part of all mentions in the round;
-- floor is the accuracy of always giving the skill's most common reference answer.
CREATE OR REPLACE VIEW profiles AS
WITH labelled AS (
    SELECT a.round, s.skill, a.correct, i.answer
    FROM attempts a
    JOIN item_skills s USING (item_id)
    JOIN items i USING (item_id)
    WHERE a.sample = 0
),
tried AS (
    SELECT round, skill, count(*) AS attempts, count(*) FILTER (WHERE correct) AS correct
    FROM labelled GROUP BY round, skill
),
floors AS (
    SELECT round, skill, max(n) / sum(n) AS floor
    FROM (SELECT round, skill, answer, count(*) AS n FROM labelled GROUP BY round, skill, answer)
    GROUP BY round, skill
),
missed AS (
    SELECT round, skill, count(*) AS missing FROM diagnoses GROUP BY round, skill
),
mentions AS (
    SELECT round, count(*) AS total FROM diagnoses GROUP BY round
)
SELECT
    t.round,
    t.skill,
    t.attempts,
    t.correct,
    coalesce(m.missing, 0)                          AS missing,
    coalesce(m.missing, 0) / t.attempts             AS missing_rate,
    coalesce(m.missing, 0) / nullif(n.total, 0)     AS share,
    t.correct / t.attempts                          AS accuracy,
    f.floor
FROM tried t
JOIN floors f USING (round, skill)
LEFT JOIN missed m USING (round, skill)
LEFT JOIN mentions n USING (round);

-- Held-out accuracy per (round, split, skill): the one place the per-skill eval is computed.
CREATE OR REPLACE VIEW skill_evals AS
SELECT e.round, i.split, s.skill, count(*) AS items, count(*) FILTER (WHERE e.correct) AS correct,
       count(*) FILTER (WHERE e.correct) / count(*) AS accuracy
FROM evals e JOIN items i USING (item_id) JOIN item_skills s USING (item_id)
GROUP BY e.round, i.split, s.skill;

-- Per round: overall test accuracy, accuracy on test items of the skills that were the
-- weakest third on the round-0 probe, general-split accuracy (forgetting), training size.
CREATE OR REPLACE VIEW round_summary AS
WITH weakest AS (
    SELECT skill FROM (
        SELECT skill, ntile(3) OVER (ORDER BY accuracy, skill) AS third FROM profiles WHERE round = 0
    ) WHERE third = 1
),
answered AS (
    SELECT e.round, i.split, e.item_id, e.correct,
           e.item_id IN (SELECT s.item_id FROM item_skills s JOIN weakest USING (skill)) AS weak
    FROM evals e JOIN items i USING (item_id)
)
SELECT
    round,
    avg(correct::INTEGER) FILTER (WHERE split = 'test')             AS test_accuracy,
    avg(correct::INTEGER) FILTER (WHERE split = 'test' AND weak)    AS weakest_accuracy,
    avg(correct::INTEGER) FILTER (WHERE split = 'general')          AS general_accuracy,
    (SELECT count(*) FROM train_sets t WHERE t.round = a.round)     AS train_examples
FROM answered a
GROUP BY round;

-- Per round and router on the test split: System 1 alone, System 2 alone, composed; the
-- escalation rate; mean latency per item of each. The one place these figures are computed.
-- For the token router System 2 is the larger model alone and escalation the mean share of
-- an answer's tokens it chose.
CREATE OR REPLACE VIEW compose_summary AS
SELECT r.round, r.router, any_value(r.system2) AS system2, count(*) AS items,
       avg(s1.correct::INTEGER)        AS system1_accuracy,
       avg(coalesce(s2.correct, t2.correct)::INTEGER) AS system2_accuracy,
       avg(r.correct::INTEGER)         AS composed_accuracy,
       avg(CASE WHEN r.router = 'token' THEN 1 - r.score ELSE (r.system = 2)::INTEGER END) AS escalation,
       avg(s1.seconds)                 AS system1_seconds,
       avg(coalesce(s2.seconds, t2.seconds)) AS system2_seconds,
       avg(r.seconds)                  AS composed_seconds,
       any_value(r.threshold)          AS threshold
FROM routes r
JOIN solutions s1 ON s1.round = r.round AND s1.solver = 'system1' AND s1.item_id = r.item_id
LEFT JOIN solutions s2 ON s2.round = r.s2_round AND s2.solver = r.system2 AND s2.item_id = r.item_id
LEFT JOIN token_solutions t2 ON r.router = 'token' AND t2.round = r.s2_round AND t2.model = r.system2
                             AND t2.threshold = 'inf'::DOUBLE AND t2.item_id = r.item_id
GROUP BY r.round, r.router;
