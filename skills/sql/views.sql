-- The store's views: the one place the profile, per-skill evals and summaries are computed.
-- Recreated on every write open, so an upgraded store reads like a new one.

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
