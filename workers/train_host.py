"""The trainer as an engine whose progress can be read while it trains (warm-up and rounds).

Its actor runs with two threads (max_concurrency=2): one trains, the other answers
`progress()` and `request_stop()`, so the driver's bar moves with the real step count and
a graceful stop ends training after the current step, its state saved.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class TrainerHost:
    def __init__(self, threads: int | None = None) -> None:
        # Ray sets OMP_NUM_THREADS to the actor's CPU reservation (1); training wants every core.
        if threads:
            import torch

            torch.set_num_threads(threads)
        self.step = 0
        self.stopping = False

    def train(self, base: Path, examples: list[tuple[str, str]], out: Path, **args: Any) -> dict:
        from sgi.workers.trainer import train_lora

        self.step = 0
        self.stopping = False
        return train_lora(base, examples, out, progress=self._on_step, should_stop=lambda: self.stopping, **args)

    def _on_step(self, step: int, total: int, loss: float) -> None:
        self.step = step

    def progress(self) -> int:
        return self.step

    def request_stop(self) -> None:
        self.stopping = True
