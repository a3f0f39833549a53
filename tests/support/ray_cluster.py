"""A real two-node Ray cluster on this machine: `ray start --head` and a second `ray start`,
both as processes the test owns (stopped by their process groups, never `ray stop`).

Every port is chosen free on 127.0.0.1 (two raylets on one host would otherwise collide
on the agent and metrics ports), the cluster uses token authentication with a token made
for it, and `sgi` is put first on the nodes' PATH, as a node set up from ray_cluster.yaml
would have it. Meant to run inside the loopback-only namespace `make test` uses, where the
nodes register as 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

from support.ports import free_port

RAY = str(Path(sys.executable).with_name("ray"))


class LocalCluster:
    def __init__(self, head_cpus: int = 2, node_cpus: int = 1, node_resource: str = "node2"):
        self.folder = Path(tempfile.mkdtemp(prefix="sgi-ray-", dir="/tmp"))  # short: Ray's socket paths
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(32),
                    "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
                    "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1"}
        self.gcs_port = free_port()
        self.dashboard_port = free_port()
        self.address = f"http://127.0.0.1:{self.dashboard_port}"
        self.processes: dict[str, subprocess.Popen] = {}
        self.head_cpus, self.node_cpus, self.node_resource = head_cpus, node_cpus, node_resource

    def start(self) -> LocalCluster:
        self._start("head", ["--head", f"--port={self.gcs_port}", "--dashboard-host=127.0.0.1",
                             f"--dashboard-port={self.dashboard_port}", f"--ray-client-server-port={free_port()}",
                             f"--temp-dir={self.folder / 't'}", "--include-dashboard=true",
                             f"--num-cpus={self.head_cpus}", *self._ports(30000)])
        self._wait(lambda: self._answers(), "the head's job server", 120)
        # its own temp dir, as on a separate machine: sharing the head's, its runtime-env agent
        # would unpack a job's working_dir over the head's copy (the driver's cwd vanished)
        self._start("node2", [f"--address=127.0.0.1:{self.gcs_port}", f"--num-cpus={self.node_cpus}",
                              f"--temp-dir={self.folder / 'n2'}",
                              f"--resources={json.dumps({self.node_resource: 1})}", *self._ports(31000)])
        self._wait(lambda: len(self.alive_nodes()) == 2, "the second node to join", 120)
        return self

    def _ports(self, worker_base: int) -> list[str]:
        return ["--node-ip-address=127.0.0.1", f"--node-manager-port={free_port()}",
                f"--object-manager-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
                f"--dashboard-agent-grpc-port={free_port()}", f"--metrics-export-port={free_port()}",
                f"--runtime-env-agent-port={free_port()}", f"--min-worker-port={worker_base}",
                f"--max-worker-port={worker_base + 200}", "--object-store-memory=300000000", "--disable-usage-stats"]

    def _start(self, name: str, args: list[str]) -> None:
        log = (self.folder / f"{name}.log").open("w")
        self.processes[name] = subprocess.Popen([RAY, "start", "--block", *args], env=self.env, stdout=log,
                                                stderr=subprocess.STDOUT, start_new_session=True)

    def _answers(self) -> bool:
        try:
            return requests.get(f"{self.address}/api/version", timeout=2).status_code in (200, 401)
        except requests.RequestException:
            return False

    def _wait(self, ready, what: str, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not ready():
            if any(p.poll() is not None for p in self.processes.values()) or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"waiting for {what} failed; logs:\n{self.logs()}")
            time.sleep(1)

    def query(self, code: str) -> object:
        """Run `code` (which prints JSON) in a fresh Python with the cluster's token, so this
        test process never takes on the cluster's authentication settings."""
        done = subprocess.run([sys.executable, "-c", code], env=self.env, capture_output=True, text=True, timeout=120)
        if done.returncode:
            raise RuntimeError(done.stderr[-2000:])
        return json.loads(done.stdout.strip().splitlines()[-1])

    def alive_nodes(self) -> list[dict]:
        try:
            return self.query(f"""
import json
from ray.util.state import list_nodes
print(json.dumps([n.__dict__ for n in list_nodes(address={self.address!r}) if n.state == "ALIVE"], default=str))
""")
        except (RuntimeError, ValueError):
            return []

    def actors(self, class_name: str) -> list[dict]:
        """Every actor of that class the cluster has seen, dead ones included."""
        return self.query(f"""
import json
from ray.util.state import list_actors
rows = list_actors(address={self.address!r}, filters=[("class_name", "=", {class_name!r})], detail=True, limit=1000)
print(json.dumps([{{"node_id": a.node_id, "state": a.state, "actor_id": a.actor_id}} for a in rows]))
""")

    def node_id(self, resource: str) -> str:
        return next(n["node_id"] for n in self.alive_nodes() if resource in n.get("resources_total", {}))

    def raylet(self, name: str) -> psutil.Process:
        """The raylet process `ray start` started for node `name`."""
        parent = psutil.Process(self.processes[name].pid)
        return next(p for p in parent.children(recursive=True) if p.name() == "raylet")

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}" for p in self.folder.glob("*.log"))

    def stop(self) -> None:
        """Both nodes at once: SIGTERM to each `ray start` group, SIGKILL what is left after
        3 s (a node drains for up to 30 s otherwise; the cluster's runs are done, so there is
        nothing to drain: the 10 s it had were each module's last 10 s)."""
        for proc in self.processes.values():
            _signal_group(proc, signal.SIGTERM)
        deadline = time.monotonic() + 3
        for proc in self.processes.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                pass
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
        self.processes.clear()
        shutil.rmtree(self.folder, ignore_errors=True)


def _signal_group(proc: subprocess.Popen, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        pass
