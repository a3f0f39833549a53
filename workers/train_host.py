"""The trainer as an engine whose progress can be read while it trains (warm-up and rounds).

Its actor runs with several threads (max_concurrency): one trains, the others answer
`progress()` and `request_stop()`, so the driver's bar moves with the real step count and
a graceful stop ends training after the current step, its state saved.

With `workers > 1` the host trains data-parallel through Ray Train: a `TorchTrainer`
starts that many workers (each `worker_cpus` CPUs and `worker_gpus` GPUs, on any node),
joins them in a torch process group (gloo on CPUs, NCCL on GPUs), and every worker runs
`fine_tune` on its slice of each step's batch. Rank 0 reports its steps and its result
back to this host, and asks it whether to stop; the answer is broadcast so every rank stops
at the same step. A lost worker restarts the group, which continues from the last saved
state (`train.state_every`).
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any


class TrainerHost:
    def __init__(self, threads: int | None = None, workers: int = 1, worker_cpus: float = 1.0,
                 worker_gpus: float = 0.0, max_failures: int = 2) -> None:
        # Ray sets OMP_NUM_THREADS to the actor's CPU reservation (1); training wants every core.
        if threads and workers == 1:
            import torch

            torch.set_num_threads(threads)
        self.workers, self.worker_cpus, self.worker_gpus = workers, worker_cpus, worker_gpus
        self.max_failures = max_failures
        self.step = 0
        self.stopping = False
        self.result: dict | None = None

    def train(self, base: Path, examples: list[tuple[str, str]], out: Path, **args: Any) -> dict:
        self.step = 0
        self.stopping = False
        if self.workers > 1:
            return self._train_parallel(base, examples, out, args)
        from sgi.workers.trainer import fine_tune

        return fine_tune(base, examples, out, progress=self.report_step, should_stop=lambda: self.stopping, **args)

    def reinforce(self, base: Path, prompts: list, out: Path, **args: Any) -> dict:
        """GRPO on `prompts` (`workers.rl.reinforce`), in this process."""
        if self.workers > 1:
            raise ValueError("GRPO trains in one process; set ray.trainer_workers: 1")
        self.step = 0
        self.stopping = False
        from sgi.workers.rl import reinforce

        return reinforce(base, prompts, out, progress=self.report_step, should_stop=lambda: self.stopping, **args)

    def _train_parallel(self, base: Path, examples: list[tuple[str, str]], out: Path, args: dict) -> dict:
        import ray
        from ray.train import FailureConfig, RunConfig, ScalingConfig
        from ray.train.torch import TorchTrainer

        self.result = None
        out = Path(out)
        storage = out.parent / ".ray-train"  # Ray Train's own bookkeeping (no checkpoints of ours)
        TorchTrainer(
            _worker_loop,
            train_loop_config={"host": ray.get_runtime_context().current_actor, "base": str(base),
                               "examples": examples, "out": str(out), "args": args},
            scaling_config=ScalingConfig(num_workers=self.workers, use_gpu=self.worker_gpus > 0,
                                         resources_per_worker={"CPU": self.worker_cpus, "GPU": self.worker_gpus}),
            run_config=RunConfig(name=out.name, storage_path=str(storage),
                                 failure_config=FailureConfig(max_failures=self.max_failures)),
        ).fit()
        shutil.rmtree(storage, ignore_errors=True)
        if self.result is None:
            raise RuntimeError(f"data-parallel training of {out} ended without a result from rank 0")
        return self.result

    # --- called by the driver ---
    def progress(self) -> int:
        return self.step

    def request_stop(self) -> None:
        self.stopping = True

    # --- called by rank 0 of a data-parallel training ---
    def report_step(self, step: int, total: int, loss: float) -> None:
        self.step = step

    def stop_requested(self) -> bool:
        return self.stopping

    def put_result(self, result: dict) -> None:
        self.result = result


def _worker_loop(config: dict) -> None:
    """One data-parallel worker: `fine_tune` on this rank's slice; rank 0 talks to the host."""
    import ray
    import ray.train
    import torch
    import torch.distributed as dist
    from ray.train.torch import get_device

    from sgi.workers.trainer import fine_tune

    host = config["host"]  # the EngineHost actor around the TrainerHost (`call` reaches its methods)
    rank0 = ray.train.get_context().get_world_rank() == 0

    def should_stop() -> bool:
        flag = torch.tensor([int(rank0 and ray.get(host.call.remote("stop_requested")))], device=get_device())
        dist.broadcast(flag, src=0)  # gloo and NCCL alike: every rank leaves at the same step
        return bool(flag.item())

    def progress(step: int, total: int, loss: float) -> None:
        host.call.remote("report_step", step, total, loss)

    result = fine_tune(config["base"], config["examples"], config["out"], should_stop=should_stop,
                       progress=progress if rank0 else None, **config["args"])
    if rank0:
        ray.get(host.call.remote("put_result", result))
