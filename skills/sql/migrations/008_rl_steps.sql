-- Version 8: the RL round's GRPO steps (loop.rl), one row per optimizer step.

-- Per step: the mean reward over the step's completions and its standard deviation, the
-- two parts of the reward (the task's checker; the answer alone), the KL divergence from
-- the model RL started from, GRPO's loss and the mean completion length in tokens.
CREATE TABLE IF NOT EXISTS rl_steps (
    round             INTEGER NOT NULL,
    step              INTEGER NOT NULL,
    reward            DOUBLE NOT NULL,
    reward_std        DOUBLE,
    correct           DOUBLE,
    format            DOUBLE,
    kl                DOUBLE,
    loss              DOUBLE,
    completion_tokens DOUBLE,
    PRIMARY KEY (round, step)
);
