"""`sgi submit` / `jobs` / `logs` / `stop` refuse what cannot work with one clear line and a
bounded wait: malformed and unreachable addresses, paths a cluster cannot share, secrets in
the job's environment; and a local run asking for GPUs this machine lacks fails at once."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from support.ports import free_port
from support.runs import SGI



def sgi(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run([*SGI, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.mark.parametrize("address", ["garbage", "127.0.0.1:8265", "ftp://127.0.0.1:8265", "http://"])
def test_a_malformed_address_is_named(address):
    done = sgi("jobs", "--address", address)
    assert done.returncode == 2
    assert done.stderr.startswith(f"error: --address '{address}': expected http://HOST:PORT")


def test_an_unreachable_head_fails_quickly_with_the_address():
    address = f"http://127.0.0.1:{free_port()}"
    for command in (["jobs"], ["logs", "sgi-x"], ["stop", "sgi-x"]):
        done = sgi(*command, "--address", address)  # the subprocess limit catches a hang
        assert done.returncode == 2, done.stderr
        assert f"cannot reach the Ray job server at {address} within 10 s" in done.stderr


def test_submit_needs_paths_every_node_shares(tmp_path):
    relative = sgi("submit", "--set", "runs_dir=runs", "--address", "http://127.0.0.1:1")
    assert relative.returncode == 2
    assert "runs_dir 'runs': a submitted run needs an absolute path" in relative.stderr
    data = sgi("submit", "--runs-dir", str(tmp_path), "--set", "task.kind=file", "--set", "task.file.path=items.jsonl",
               "--set", "teacher.kind=embed",
               "--address", "http://127.0.0.1:1")
    assert data.returncode == 2
    assert "task.file.path 'items.jsonl'" in data.stderr


@pytest.mark.parametrize("pair", ["OPENAI_API_KEY=sk-123", "HF_TOKEN=hf_1", "db_password=x"])
def test_secrets_never_ride_in_the_jobs_environment(pair, tmp_path):
    done = sgi("submit", "--runs-dir", str(tmp_path), "--env", pair, "--address", "http://127.0.0.1:1")
    assert done.returncode == 2
    assert "looks like a secret" in done.stderr
    assert pair.split("=", 1)[1] not in done.stderr + done.stdout  # the value is not echoed either


def test_a_malformed_env_pair_is_named(tmp_path):
    done = sgi("submit", "--runs-dir", str(tmp_path), "--env", "NOVALUE", "--address", "http://127.0.0.1:1")
    assert done.returncode == 2 and "--env 'NOVALUE': expected NAME=VALUE" in done.stderr


def test_a_local_run_asking_for_gpus_fails_at_once_naming_the_shortfall(tmp_path):
    done = sgi("run", "--quiet", "--set", f"runs_dir={tmp_path / 'runs'}", "--set", "ray.student_gpus=1",
               "--set", "ray.student_actors=2", "--set", "ray.num_cpus=2")
    assert done.returncode == 2, done.stderr[-2000:]
    # no wait on a local cluster, which never grows
    assert "ray: the config needs 2 GPU (the cluster has 0), waited 0 s" in done.stderr
    assert "ray.student_actors" in done.stderr
    assert not (tmp_path / "runs" / "default").exists()  # nothing half-written


def test_parallel_training_needs_ray_and_batches_that_split():
    from sgi.orchestrator.config import ConfigError, load_config

    with pytest.raises(ConfigError, match="train.batch_size 8 does not split over ray.trainer_workers 3"):
        load_config(None, ["ray.trainer_workers=3"])
    with pytest.raises(ConfigError, match="needs ray.enabled: true"):
        load_config(None, ["ray.trainer_workers=2", "ray.enabled=false"])
    assert load_config(None, ["ray.trainer_workers=4"]).ray.trainer_workers == 4


def test_the_cluster_file_is_valid_for_the_ray_cluster_launcher():
    import yaml
    from ray.autoscaler._private.commands import prepare_config
    from ray.autoscaler._private.util import validate_config

    raw = yaml.safe_load((Path(__file__).parents[2] / "ray_cluster.yaml").read_text())
    config = prepare_config(raw)  # fills the provider's defaults, then checks Ray's schema
    validate_config(config)
    assert {"head", "gpu_worker"} <= set(config["available_node_types"])
    assert any("pip install" in c and "~/sgi[vllm]" in c for c in raw["worker_setup_commands"])
    assert any("pip install" in c and "~/sgi" in c for c in raw["head_setup_commands"])
