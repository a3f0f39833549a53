"""Every stage a run goes through, in the order it runs: what redoing it deletes and which
config fields decide its output.

The one list of stages: the loop's stage runner refuses a name not here, `rundir` orders
`--force-from` and guards config changes by it, the store's reset runs its statements, and
`sgi status` lists the ledger in its order.
"""

from __future__ import annotations

from dataclasses import dataclass

from sgi.skills.runs import SETUP_ROUND


@dataclass(frozen=True)
class Stage:
    """One stage: once per run (setup) or once per round."""

    name: str
    # SQL that forgets the stage's output when it is redone; a `?` is bound to the round
    resets: tuple[str, ...] = ()
    # config keys (dotted prefixes) whose change alters this stage's output and all after it
    fields: tuple[str, ...] = ()
    # a stage only some rounds run (RL): its fields alter the rounds that ran it, from it on,
    # and none of the rounds before (whose later stages sort after it in position())
    own_rounds: bool = False


_EVALUATE_RESETS = ("DELETE FROM evals WHERE round = ?", "DELETE FROM eval_signals WHERE round = ?")
_COMPOSE_RESETS = ("DELETE FROM routes WHERE round = ?", "DELETE FROM compose_curve WHERE round = ?",
                   "DELETE FROM compose_metrics WHERE round = ?",
                   "DELETE FROM solutions WHERE round = ? AND solver = 'system1'",
                   # the larger model's answers alone (threshold inf) stay: they do not depend on the student
                   "DELETE FROM token_solutions WHERE round = ? AND threshold <> 'inf'::DOUBLE")

SETUP_STAGES: tuple[Stage, ...] = (
    Stage("task", tuple(f"DELETE FROM {t}" for t in (
        "items", "skills", "item_skills", "attempts", "difficulty", "diagnoses", "train_sets", "synthesized",
        "evals", "eval_signals", "checkpoints", "rl_steps", "halfway_attempts")), fields=("seed", "task")),
    Stage("label", ("DELETE FROM item_skills", "DELETE FROM skills"), fields=("teacher",)),
    # the warm-up trains with train.bf16 too
    Stage("warmup", fields=("warmup", "student.model", "train.bf16")),
    # the warm-up's half-way student answers the probe (loop.warmup_rates; skipped otherwise)
    Stage("halfway", ("DELETE FROM halfway_attempts",), fields=("student",)),
    Stage("evaluate", _EVALUATE_RESETS),
    Stage("compose", _COMPOSE_RESETS),
)
ROUND_STAGES: tuple[Stage, ...] = (
    Stage("infer", ("DELETE FROM attempts WHERE round = ?",), fields=("difficulty",)),
    Stage("difficulty", ("DELETE FROM difficulty WHERE round = ?",)),
    Stage("diagnose", ("DELETE FROM diagnoses WHERE round = ?",)),
    Stage("profile"),
    Stage("select", (
        "DELETE FROM item_skills WHERE item_id IN (SELECT item_id FROM synthesized WHERE round = ?)",
        "DELETE FROM items WHERE split = 'synthetic' AND item_id IN (SELECT item_id FROM synthesized WHERE round = ?)",
        "DELETE FROM synthesized WHERE round = ?",
        "DELETE FROM train_sets WHERE round = ?",
    ), fields=("loop.strategy", "loop.k", "loop.syn_per_pair", "loop.syn_share", "loop.eta", "loop.weighting",
               "loop.replay", "loop.prior_examples", "loop.explore", "loop.warmup_rates",
               "train")),  # the budget (steps x batch) sizes the training set
    Stage("train", ("DELETE FROM checkpoints WHERE round = ?",)),
    # the RL round (after loop.rounds supervised ones) runs this in place of select and train
    Stage("rl", ("DELETE FROM rl_steps WHERE round = ?", "DELETE FROM train_sets WHERE round = ?",
                 "DELETE FROM checkpoints WHERE round = ?"), fields=("loop.rl",), own_rounds=True),
    Stage("evaluate", _EVALUATE_RESETS),
    Stage("compose", _COMPOSE_RESETS),
)
# Fields that change nothing already computed (where to run, how often to checkpoint, how
# many more rounds); compose only reads what the loop wrote, and `sgi compose` redoes it.
HARMLESS = ("name", "runs_dir", "ray", "loop.rounds", "train.state_every", "compose")


def stages_of(round_: int) -> tuple[Stage, ...]:
    return SETUP_STAGES if round_ == SETUP_ROUND else ROUND_STAGES


def stage(round_: int, name: str) -> Stage:
    """The stage `name` of a round (SETUP_ROUND: of the run's setup); ValueError naming the known ones."""
    for known in stages_of(round_):
        if known.name == name:
            return known
    names = ", ".join(s.name for s in stages_of(round_))
    raise ValueError(f"unknown stage {name!r}; stages are {names}")


def position(round_: int, name: str) -> tuple[int, int]:
    """Sort key of a stage in a run: set-up stages, then each round's stages in order."""
    return round_, stages_of(round_).index(stage(round_, name))


def field_stages() -> dict[str, tuple[int, str]]:
    """Config key -> the first (round, stage) whose output it decides (setup stages, or round 0's)."""
    return {field: (round_, s.name) for round_ in (SETUP_ROUND, 0) for s in stages_of(round_) for field in s.fields}
