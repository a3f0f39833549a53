-- Version 7: routers measured as RouteLLM measures them; evaluation answers System 1 can reuse.

-- Per round, router and split: RouteLLM's measures of the composition (Ong et al. 2024):
-- APGR, the performance gap between System 1 and System 2 recovered, averaged over
-- escalation rates 0..1; CPT(x), the escalation needed to recover x of that gap. Routers
-- 'random' and 'oracle' are the references computed from the same answers. NULL where
-- System 2 is no better than System 1 (no gap), or a share is never recovered.
CREATE TABLE IF NOT EXISTS compose_metrics (
    round            INTEGER NOT NULL,
    router           VARCHAR NOT NULL,
    split            VARCHAR NOT NULL,
    system1_accuracy DOUBLE NOT NULL,
    system2_accuracy DOUBLE NOT NULL,
    apgr             DOUBLE,
    cpt50            DOUBLE,
    cpt80            DOUBLE,
    cpt95            DOUBLE,
    PRIMARY KEY (round, router, split)
);

-- What the evaluate stage's answers need besides `evals` to serve as System 1's answers
-- in the compose stage of the same round (which then answers no test item again): the
-- top-1/top-2 margin and the item's share of its batch's wall time.
CREATE TABLE IF NOT EXISTS eval_signals (
    round   INTEGER NOT NULL,
    item_id VARCHAR NOT NULL,
    margin  DOUBLE,                       -- NULL: the engine does not report it
    seconds DOUBLE NOT NULL,
    PRIMARY KEY (round, item_id)
);
