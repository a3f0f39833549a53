"""Runs as Ray jobs on a cluster: `sgi submit`, `sgi jobs`, `sgi logs`, `sgi stop`.

A submitted run is `sgi run` started by Ray's job server on the head node, with the
resolved config as its only uploaded file. The run directory must be on storage every
node reaches (checkpoints are written by the trainer wherever it runs and read by the
student actors); its DuckDB file is opened by one store actor pinned to the driver's
node. Submitting the same config again continues the run, as `sgi run` does locally.
"""

from __future__ import annotations

import asyncio
import re
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from sgi.orchestrator.config import ConfigError, RunConfig, dump_config

DEFAULT_ADDRESS = "http://127.0.0.1:8265"
CONFIG_NAME = "sgi-config.yaml"
CONNECT_TIMEOUT_S = 10.0
# Secrets go to the nodes' own environment (cluster setup or a secret store): Ray keeps a
# job's runtime_env in its control store and shows it on the dashboard.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)
ACTIVE = ("PENDING", "RUNNING")


class JobError(RuntimeError):
    """A job server that cannot be reached or used, or a job it does not know."""


def client(address: str, timeout_s: float = CONNECT_TIMEOUT_S) -> Any:
    """A Jobs SDK client for the dashboard at `address`, after a bounded reachability check
    (the SDK itself would wait as long as the operating system lets a connect hang)."""
    import requests

    url = urlparse(address)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise JobError(f"--address {address!r}: expected http://HOST:PORT, the Ray dashboard (port 8265 by default)")
    try:
        requests.get(f"{address.rstrip('/')}/api/version", timeout=timeout_s)  # any answer will do, 401 included
    except requests.RequestException as err:
        raise JobError(f"cannot reach the Ray job server at {address} within {timeout_s:g} s "
                       f"({type(err).__name__}); is the head running (`ray status` on it)?") from None
    from ray.exceptions import AuthenticationError
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(address)
    except AuthenticationError:
        raise JobError(f"the cluster at {address} wants its token: set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH) "
                       "in this shell, as on its nodes") from None
    except ConnectionError as err:
        raise JobError(f"the Ray job server at {address} did not answer as one: {err}") from None


def runtime_env(cfg: RunConfig, pip: Sequence[str] = (), env: Sequence[str] = ()) -> dict[str, Any]:
    """The job's runtime_env without its working_dir; checks, before any cluster is asked,
    that the run's paths mean the same there and that no secret rides along."""
    _check_portable(cfg)
    out: dict[str, Any] = {"env_vars": {"HF_HUB_OFFLINE": "1", **_env_vars(env)}}  # no downloads at run time
    if pip:
        out["pip"] = list(pip)
    return out


def submit(sdk: Any, cfg: RunConfig, env: dict[str, Any]) -> str:
    """Submit `cfg` as a run and return the job id; refuses a second job for a run in progress."""
    for job in sdk.list_jobs():
        if (job.metadata or {}).get("sgi_run_dir") == str(cfg.run_dir) and job.status.value in ACTIVE:
            raise JobError(f"{cfg.run_dir} is already running as job {job.submission_id}: "
                           f"`sgi logs {job.submission_id}` follows it, `sgi stop {job.submission_id}` stops it")
    with tempfile.TemporaryDirectory(prefix="sgi-submit-") as folder:
        (Path(folder) / CONFIG_NAME).write_text(dump_config(cfg), encoding="utf-8")
        return sdk.submit_job(  # uploads the folder before it returns
            entrypoint=f"sgi run {CONFIG_NAME} --progress json",
            submission_id=f"sgi-{cfg.name}-{time.strftime('%Y%m%d-%H%M%S')}",
            runtime_env={**env, "working_dir": folder},
            metadata={"sgi_run_dir": str(cfg.run_dir), "sgi_name": cfg.name},
            entrypoint_num_cpus=0,
        )


def _check_portable(cfg: RunConfig) -> None:
    """Paths the job reads and writes must mean the same on the cluster as here."""
    if not cfg.runs_dir.is_absolute():
        raise ConfigError(f"runs_dir {str(cfg.runs_dir)!r}: a submitted run needs an absolute path on storage "
                          "every node shares, e.g. --runs-dir /mnt/shared/sgi-runs")
    if cfg.task.kind == "file" and not Path(cfg.task.file.path).is_absolute():
        raise ConfigError(f"task.file.path {str(cfg.task.file.path)!r}: a submitted run needs an absolute path "
                          "on storage every node shares")


def _env_vars(pairs: Sequence[str]) -> dict[str, str]:
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
            raise ConfigError(f"--env {pair!r}: expected NAME=VALUE")
        if SECRET_NAME.search(name):
            raise ConfigError(f"--env {name}: looks like a secret; Ray stores a job's environment where the "
                              "dashboard shows it, so set it in the nodes' own environment instead")
        out[name] = value
    return out


def sgi_jobs(sdk: Any) -> list[Any]:
    """The cluster's sgi jobs, newest first."""
    jobs = [j for j in sdk.list_jobs() if (j.metadata or {}).get("sgi_run_dir")]
    return sorted(jobs, key=lambda j: j.start_time or 0, reverse=True)


def status(sdk: Any, job_id: str) -> str:
    try:
        return sdk.get_job_status(job_id).value
    except RuntimeError as err:  # the SDK's "Request failed with status code 404"
        raise JobError(f"job {job_id!r}: {_short(err)} (`sgi jobs` lists them)") from None


def logs(sdk: Any, job_id: str) -> str:
    status(sdk, job_id)
    return sdk.get_job_logs(job_id)


def follow(sdk: Any, job_id: str, write: Callable[[str], None]) -> str:
    """Stream the job's log until it ends; its final status."""
    status(sdk, job_id)

    async def tail() -> None:
        async for chunk in sdk.tail_job_logs(job_id):
            write(chunk)

    asyncio.run(tail())
    while (state := status(sdk, job_id)) in ACTIVE:  # the log can close just before the status is final
        time.sleep(0.5)
    return state


def stop(sdk: Any, job_id: str) -> bool:
    """Ask the job to stop (SIGTERM: sgi finishes the batch in hand, then exits resumable)."""
    status(sdk, job_id)
    return sdk.stop_job(job_id)


def _short(err: Exception) -> str:
    return str(err).strip().splitlines()[0][:200]
