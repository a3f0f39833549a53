-- Named queries of the skill-gap report only; `-- name: X` starts query X. Parameters are
-- always bound. The report also reads the store's own queries (skills/queries.sql: run,
-- round_summary, compose_summary), and its figures come from the store's views (profiles,
-- skill_evals, round_summary, compose_summary), so the report and `sgi status` can never disagree.

-- name: totals
SELECT (SELECT count(*) FROM items), (SELECT count(*) FROM skills), (SELECT count(*) FROM attempts),
       (SELECT count(*) FROM diagnoses), (SELECT count(*) FROM train_sets), (SELECT count(*) FROM synthesized);

-- name: ledger_times
SELECT round, stage, status, seconds, detail, started_at, finished_at FROM ledger ORDER BY started_at, round;

-- name: teacher_tokens
SELECT round, stage, count(*) AS tries, sum(prompt_tokens) AS prompt_tokens,
       sum(completion_tokens) AS completion_tokens
FROM teacher_calls GROUP BY round, stage ORDER BY round, min(created_at);

-- name: test_curve
SELECT round, router, escalation, accuracy, chosen
FROM compose_curve WHERE split = 'test' ORDER BY round, router, escalation, threshold;

-- name: profiled_rounds
SELECT DISTINCT round FROM attempts ORDER BY round;

-- name: missing_map
-- Skills x profiled rounds: the probe's missing rate and accuracy.
SELECT skill, round, missing_rate, accuracy FROM profiles ORDER BY skill, round;

-- name: held_out_map
-- Skills x evaluated rounds: held-out accuracy on the test split.
SELECT skill, round, accuracy FROM skill_evals WHERE split = 'test' ORDER BY skill, round;

-- name: skill_table
-- Every catalogue skill with its latest profile and the change since the round before.
WITH changes AS (
    SELECT skill, round, attempts, missing, missing_rate, accuracy,
           missing_rate - lag(missing_rate) OVER (PARTITION BY skill ORDER BY round) AS change,
           row_number() OVER (PARTITION BY skill ORDER BY round DESC) AS newest
    FROM profiles
),
held_out AS (
    SELECT skill, arg_max(accuracy, round) AS accuracy FROM skill_evals WHERE split = 'test' GROUP BY skill
)
SELECT k.skill, k.family, c.round, coalesce(c.attempts, 0) AS attempts, coalesce(c.missing, 0) AS missing,
       c.missing_rate, c.change, c.accuracy, h.accuracy AS held_out
FROM skills k
LEFT JOIN changes c ON c.skill = k.skill AND c.newest = 1
LEFT JOIN held_out h ON h.skill = k.skill
ORDER BY c.missing_rate DESC NULLS LAST, k.skill;

-- name: msp
-- The Missing-Skill-Profile of every round, its $1 most missed skills first.
SELECT round, skill, missing, share, missing_rate, attempts FROM profiles
WHERE missing > 0
QUALIFY row_number() OVER (PARTITION BY round ORDER BY missing DESC, skill) <= $1
ORDER BY round, missing DESC, skill;

-- name: skill
SELECT skill, description, family, source FROM skills WHERE skill = ?;

-- name: skill_names
SELECT skill FROM skills ORDER BY skill;

-- name: skill_rounds
SELECT p.round, p.attempts, p.correct, p.missing, p.missing_rate, p.accuracy, e.accuracy AS held_out
FROM profiles p LEFT JOIN skill_evals e ON e.round = p.round AND e.skill = p.skill AND e.split = 'test'
WHERE p.skill = ? ORDER BY p.round;

-- name: labelled_count
SELECT count(*) FROM item_skills WHERE skill = ?;

-- name: labelled
SELECT i.item_id, i.split, i.question, i.answer, s.score
FROM item_skills s JOIN items i USING (item_id)
WHERE s.skill = ? ORDER BY i.split, i.item_id LIMIT ? OFFSET ?;

-- name: failing_count
SELECT count(*) FROM attempts a JOIN item_skills s USING (item_id)
WHERE s.skill = ? AND a.sample = 0 AND NOT a.correct;

-- name: failing
-- The student's wrong greedy answers on items labelled with the skill, with what the
-- teacher said: its reason when it named this skill, and every skill it named.
WITH failed AS (
    SELECT a.round, a.item_id, a.output, a.extracted
    FROM attempts a JOIN item_skills s USING (item_id)
    WHERE s.skill = $1 AND a.sample = 0 AND NOT a.correct
    ORDER BY a.round, a.item_id LIMIT $2 OFFSET $3
)
SELECT f.round, f.item_id, i.question, f.output, f.extracted, i.answer,
       max(d.reason) FILTER (WHERE d.skill = $1) AS reason,
       list(d.skill ORDER BY d.skill) FILTER (WHERE d.skill IS NOT NULL) AS named
FROM failed f
JOIN items i USING (item_id)
LEFT JOIN diagnoses d ON d.round = f.round AND d.item_id = f.item_id
GROUP BY f.round, f.item_id, i.question, f.output, f.extracted, i.answer
ORDER BY f.round, f.item_id;

-- name: chosen_count
SELECT (SELECT count(*) FROM train_sets WHERE skill = $1) + (SELECT count(*) FROM synthesized WHERE skill = $1);

-- name: chosen
-- What later rounds trained on for the skill: pool items selected (train_sets) and new
-- items the teacher wrote (synthesized, kept or not), each with the difficult item behind it.
WITH chosen AS (
    SELECT t.round, t.reason AS kind, t.item_id, i.question, i.answer, t.cause, NULL::BOOLEAN AS kept, t.position
    FROM train_sets t JOIN items i USING (item_id) WHERE t.skill = $1
    UNION ALL
    SELECT round, 'written' AS kind, item_id, question, answer, cause, kept, NULL AS position
    FROM synthesized WHERE skill = $1
)
SELECT c.round, c.kind, c.item_id, c.question, c.answer, c.cause, cause.question AS cause_question, c.kept
FROM chosen c LEFT JOIN items cause ON cause.item_id = c.cause
ORDER BY c.round, c.kind, c.position NULLS LAST, c.item_id LIMIT $2 OFFSET $3;

-- name: final_skill_evals
-- Held-out test accuracy per skill in the last evaluated round.
SELECT skill, items, accuracy FROM skill_evals
WHERE split = 'test' AND round = (SELECT max(round) FROM evals) ORDER BY skill;

-- name: freshness
SELECT max(coalesce(finished_at, started_at)),
       (SELECT round || ' ' || stage FROM ledger WHERE status = 'running' ORDER BY started_at DESC LIMIT 1)
FROM ledger;

-- name: rl_steps
-- The RL round's GRPO steps: mean reward (and its parts), KL from the model RL started from.
SELECT round, step, reward, reward_std, correct, format, kl, loss FROM rl_steps ORDER BY round, step;
