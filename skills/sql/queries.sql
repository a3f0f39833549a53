-- Named queries of the store; `-- name: X` starts query X. Parameters are always bound.

-- name: profile
SELECT skill, attempts, correct, missing, missing_rate, share, accuracy, floor
FROM profiles WHERE round = ? ORDER BY missing_rate DESC, skill;

-- name: skill_accuracy
SELECT skill, accuracy FROM profiles WHERE round = ?;

-- name: skill_states
SELECT skill, accuracy, floor, missing FROM profiles WHERE round = ? ORDER BY skill;

-- name: halfway_skill_states
-- The warm-up's half-way student per skill, as skill_states has a round: its probe accuracy,
-- the skill's floor (the same probe items as round 0's profile), no diagnoses.
SELECT p.skill, count(*) FILTER (WHERE h.correct) / count(*), p.floor, 0
FROM halfway_attempts h JOIN item_skills s USING (item_id) JOIN profiles p ON p.skill = s.skill AND p.round = 0
GROUP BY p.skill, p.floor ORDER BY p.skill;

-- name: halfway_ids
SELECT item_id FROM halfway_attempts;

-- name: halfway_correct
SELECT count(*) FILTER (WHERE correct) FROM halfway_attempts;

-- name: trained_per_skill
-- Round $1's training examples per skill they are labelled with (an example counts for each).
SELECT s.skill, count(*) FROM train_sets t JOIN item_skills s USING (item_id) WHERE t.round = ?
GROUP BY s.skill ORDER BY s.skill;

-- name: ledger
SELECT round, stage, status, seconds, detail FROM ledger ORDER BY started_at, round;

-- name: update_config
UPDATE runs SET config_yaml = ?;

-- name: stage_status
SELECT status FROM ledger WHERE round = ? AND stage = ?;

-- name: start_stage
INSERT INTO ledger (round, stage, status, started_at) VALUES (?, ?, 'running', now())
ON CONFLICT (round, stage) DO UPDATE SET status = 'running', started_at = now(), finished_at = NULL;

-- name: finish_stage
UPDATE ledger SET status = 'done', finished_at = now(),
    seconds = epoch(now() - started_at), detail = ?
WHERE round = ? AND stage = ?;

-- name: items
SELECT item_id, split, family, question, answer, supplied_skills, meta_json
FROM items WHERE split = coalesce(?, split) ORDER BY item_id;

-- name: catalogue
SELECT skill, description, family FROM skills ORDER BY skill;

-- name: labels
SELECT item_id, skill, score FROM item_skills ORDER BY item_id, skill;

-- name: attempts
SELECT item_id, sample, output, extracted, correct, n_tokens, mean_prob, min_prob
FROM attempts WHERE round = ? ORDER BY item_id, sample;

-- name: attempted_ids
SELECT DISTINCT item_id FROM attempts WHERE round = ?;

-- name: diagnosed_ids
SELECT DISTINCT item_id FROM diagnoses WHERE round = ?;

-- name: difficult
SELECT d.item_id, d.reason FROM difficulty d WHERE d.round = ? AND d.difficult ORDER BY d.item_id;

-- name: counts
SELECT 'items' AS what, count(*) AS n FROM items
UNION ALL SELECT 'skills', count(*) FROM skills
UNION ALL SELECT 'labels', count(*) FROM item_skills
UNION ALL SELECT 'attempts', count(*) FROM attempts
UNION ALL SELECT 'difficult', count(*) FILTER (WHERE difficult) FROM difficulty
UNION ALL SELECT 'diagnoses', count(*) FROM diagnoses;

-- name: split_counts
SELECT split, count(*) AS n FROM items GROUP BY split ORDER BY split;

-- name: rounds
SELECT DISTINCT round FROM attempts ORDER BY round;

-- name: run
SELECT run, config_yaml, created_at FROM runs;

-- name: missing_pairs
SELECT item_id, skill FROM diagnoses WHERE round = ? ORDER BY item_id, skill;

-- name: train_set
SELECT t.item_id, i.question, i.answer, t.skill, t.cause, t.reason
FROM train_sets t JOIN items i USING (item_id) WHERE t.round = ? ORDER BY t.position;

-- name: evaluated_ids
SELECT item_id FROM evals WHERE round = ?;

-- name: checkpoint
SELECT path FROM checkpoints WHERE round = ?;

-- name: round_summary
SELECT r.round, r.test_accuracy, r.weakest_accuracy, r.general_accuracy, r.train_examples,
       (SELECT sum(seconds) FROM ledger l WHERE l.round = r.round) AS seconds
FROM round_summary r ORDER BY r.round;

-- name: family_evals
-- Held-out accuracy per round and family of the split (what the study's per-family table reads).
SELECT e.round, i.family, count(*) AS items, count(*) FILTER (WHERE e.correct) / count(*) AS accuracy
FROM evals e JOIN items i USING (item_id) WHERE i.split = ? GROUP BY e.round, i.family ORDER BY e.round, i.family;

-- name: skill_evals
SELECT skill, items, correct, accuracy FROM skill_evals WHERE round = ? AND split = ? ORDER BY skill;

-- name: synthesized
SELECT skill, cause, item_id, kept FROM synthesized WHERE round = coalesce(?, round) ORDER BY item_id;

-- name: synthesized_counts
SELECT count(*) AS candidates, count(*) FILTER (WHERE kept) AS kept FROM synthesized WHERE round = ?;

-- name: test_floor
-- Accuracy of always answering each skill's most common reference answer on the test split.
WITH per_answer AS (
    SELECT s.skill, i.answer, count(*) AS n
    FROM items i JOIN item_skills s USING (item_id) WHERE i.split = 'test' GROUP BY s.skill, i.answer
)
SELECT sum(top) / sum(total) FROM (SELECT skill, max(n) AS top, sum(n) AS total FROM per_answer GROUP BY skill);

-- name: teacher_cached
SELECT key, any_value(response ORDER BY attempt) FROM teacher_calls
WHERE status = 'ok' AND key IN (SELECT unnest(?::VARCHAR[])) GROUP BY key;

-- name: teacher_usage
SELECT round, stage, template, count(*) AS calls, count(*) FILTER (WHERE status = 'error') AS errors,
       sum(prompt_tokens) AS prompt_tokens, sum(completion_tokens) AS completion_tokens, sum(seconds) AS seconds
FROM teacher_calls GROUP BY round, stage, template ORDER BY round, min(created_at), template;

-- name: solved_ids
SELECT item_id FROM solutions WHERE round = ? AND solver = ?;

-- name: token_solved_ids
SELECT item_id FROM token_solutions WHERE round = ? AND model = ? AND threshold = ?;

-- name: token_rows
-- Round $1's token-level answers with the larger model $2, and that model alone (round -1, inf).
SELECT t.threshold, t.item_id, i.split, t.correct, t.n_tokens, t.large_tokens, t.seconds
FROM token_solutions t JOIN items i USING (item_id)
WHERE t.model = $2 AND (t.round = $1 OR (t.round = -1 AND t.threshold = 'inf'::DOUBLE))
ORDER BY t.threshold, i.split, t.item_id;

-- name: compose_rows
-- What the routers read per item: both systems' outcomes, System 1's confidence feature
-- ($4), and the probe accuracy (System 1, this round) of the item's weakest labelled skill.
WITH s1 AS (SELECT * FROM solutions WHERE round = $1 AND solver = 'system1'),
skill_accuracy AS (
    SELECT k.skill, avg(s1.correct::INTEGER) AS accuracy
    FROM s1 JOIN items i USING (item_id) JOIN item_skills k USING (item_id)
    WHERE i.split = 'probe' GROUP BY k.skill
),
weakest AS (
    SELECT k.item_id, min(a.accuracy) AS accuracy FROM item_skills k JOIN skill_accuracy a USING (skill)
    GROUP BY k.item_id
)
SELECT s1.item_id, i.split, s1.correct, s2.correct,
       coalesce(CASE $4 WHEN 'mean_prob' THEN s1.mean_prob WHEN 'margin' THEN s1.margin ELSE s1.min_prob END, 0.0),
       coalesce(w.accuracy, 1.0), s1.seconds, s2.seconds, s1.n_tokens, s2.n_tokens
FROM s1 JOIN items i USING (item_id)
JOIN solutions s2 ON s2.round = $2 AND s2.solver = $3 AND s2.item_id = s1.item_id
LEFT JOIN weakest w USING (item_id)
ORDER BY i.split, s1.item_id;

-- name: reuse_eval_answers
-- Round $1's evaluation answers to the items $2 as its System-1 solutions (compose).
INSERT OR IGNORE INTO solutions
SELECT e.round, 'system1', e.item_id, e.output, e.extracted, e.correct, e.n_tokens, g.seconds, e.mean_prob,
       e.min_prob, g.margin
FROM evals e JOIN eval_signals g USING (round, item_id)
WHERE e.round = $1 AND list_contains($2, e.item_id);

-- name: router_signals
-- What the learned router reads of round $1's System-1 answers: confidence, lengths, skills.
SELECT s.item_id, i.split, s.min_prob, s.mean_prob, s.margin, s.n_tokens, length(i.question),
       coalesce((SELECT list(k.skill ORDER BY k.skill) FROM item_skills k WHERE k.item_id = s.item_id), [])
FROM solutions s JOIN items i USING (item_id)
WHERE s.round = $1 AND s.solver = 'system1'
ORDER BY i.split, s.item_id;

-- name: compose_metrics
SELECT round, router, split, system1_accuracy, system2_accuracy, apgr, cpt50, cpt80, cpt95
FROM compose_metrics ORDER BY round, split, router;

-- name: compose_summary
SELECT round, router, system2, items, system1_accuracy, system2_accuracy, composed_accuracy, escalation,
       system1_seconds, system2_seconds, composed_seconds, threshold
FROM compose_summary ORDER BY round, router;

-- name: compose_curve
SELECT round, router, split, threshold, escalation, accuracy, seconds, chosen
FROM compose_curve ORDER BY round, router, split, escalation, threshold;
