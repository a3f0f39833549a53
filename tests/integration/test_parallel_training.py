"""Data-parallel training through Ray Train (`ray.trainer_workers > 1`): two real gloo workers
on a local Ray cluster train the same steps on the same batches as one process, and a
stopped group resumes from its saved state to the weights one uninterrupted process reaches.

A tiny random Llama with SmolLM2's tokenizer keeps each step in milliseconds; the cost is
Ray Train starting its worker group.
"""

from __future__ import annotations

import time

import pytest

from support.training import SYSTEM, additions

pytestmark = pytest.mark.slow

ARGS = dict(system_prompt=SYSTEM, batch_size=4, seed=1, bf16=False)


@pytest.fixture(scope="module")
def local_ray():
    import ray

    from sgi.workers import actors

    actors.start_ray(None, 2, state_api=True)
    yield
    ray.shutdown()


def _host(workers: int):
    from sgi.workers import actors
    from sgi.workers.train_host import TrainerHost

    return actors.spawn(TrainerHost, {"workers": workers, "worker_cpus": 1}, use_ray=True, role="trainer",
                        max_concurrency=4)


def _weights(out):
    from safetensors.torch import load_file

    return load_file(out / "adapter" / "adapter_model.safetensors")


def test_two_workers_train_what_one_process_trains(tiny_model, local_ray, tmp_path):
    import torch

    from sgi.workers import actors
    from sgi.workers.trainer import fine_tune

    data = additions(0, 12)  # 3 batches an epoch: 6 steps cross an epoch boundary
    alone = fine_tune(tiny_model, data, tmp_path / "alone", steps=6, **ARGS)
    host = _host(2)
    shown = []
    parallel = actors.call_with_progress(host, "train", (tiny_model, data, tmp_path / "parallel"), {"steps": 6, **ARGS},
                                         shown.append)
    actors.stop(host)
    # same batches, gradients averaged over the two halves: equal up to float summation order
    assert parallel["losses"] == pytest.approx(alone["losses"], abs=1e-4)
    a, b = _weights(tmp_path / "alone"), _weights(tmp_path / "parallel")
    assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert sum(shown) == 6  # rank 0's steps reached the driver's bar
    assert sorted(p.name for p in (tmp_path / "parallel").iterdir()) == ["adapter", "merged", "metrics.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["alone", "parallel"]  # nothing left beside them


def test_a_stopped_group_resumes_to_the_uninterrupted_weights(tiny_model, local_ray, tmp_path):
    import torch

    from sgi.workers import actors
    from sgi.workers.trainer import saved_step, fine_tune

    data, steps = additions(0, 16), 16
    whole = fine_tune(tiny_model, data, tmp_path / "whole", steps=steps, **ARGS)  # one process, never stopped

    host = _host(2)
    out = tmp_path / "round"
    ref = host.submit("train", tiny_model, data, out, steps=steps, state_every=1, resume=True, **ARGS)
    while host.progress() < 3:
        time.sleep(0.01)
    host.request_stop()  # rank 0 reads it after its next step and every rank stops there
    stopped = host.get(ref)
    assert "stopped_at" in stopped and stopped["stopped_at"] < steps, stopped
    assert not out.exists() and saved_step(out) == stopped["stopped_at"]

    resumed = host.train(tiny_model, data, out, steps=steps, state_every=1, resume=True, **ARGS)
    actors.stop(host)
    assert resumed["resumed_from"] == stopped["stopped_at"]
    assert resumed["losses"] == pytest.approx(whole["losses"], abs=1e-4)
    a, b = _weights(tmp_path / "whole"), _weights(out)
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
