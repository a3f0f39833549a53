"""The stages of a round. Each reads its inputs from the store and writes its outputs there.

Reading inputs back from the store (not from the previous stage's return value) is what
lets a killed run resume at any stage. Work is written per batch, so a stage that was
interrupted redoes at most one batch, and idempotent inserts make that harmless.

One module per concern: `measure` (items, labels, probe answers, difficulty, diagnosis),
`select` (the training set, synthesis, the RL round's prompts), `warmup` (its examples, cache and
half-way student), `train` (and RL), `evaluate` and `compose`; what they share
is in `context` and `answering`. The stage functions the loop runs are named here.
"""

from sgi.orchestrator.stages.compose import compose
from sgi.orchestrator.stages.context import Context
from sgi.orchestrator.stages.evaluate import evaluate
from sgi.orchestrator.stages.measure import answer_probe, diagnose, label_items, load_task, mark_difficult
from sgi.orchestrator.stages.select import build_train_set
from sgi.orchestrator.stages.train import reinforce, train
from sgi.orchestrator.stages.warmup import answer_halfway, warmup_dir, warmup_examples

__all__ = ["Context", "answer_halfway", "answer_probe", "build_train_set", "compose", "diagnose", "evaluate", "label_items",
           "load_task", "mark_difficult", "reinforce", "train", "warmup_dir", "warmup_examples"]
