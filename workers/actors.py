"""Engines as Ray actors, or in this process, behind the same synchronous calls.

Each engine is built *inside* its actor from a factory and plain arguments, so torch and
the model weights load only in that process. `Remote` turns `engine.method(...)` into
`ray.get(actor.call.remote("method", ...))`, so the loop reads the same either way
(`ray.enabled: false` is the inline executor, handy under a debugger).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent import futures
from pathlib import Path
from typing import Any


class EngineHost:
    """The actor body: one engine and a generic method call."""

    def __init__(self, factory: Callable[..., Any], kwargs: dict[str, Any]):
        self.engine = factory(**kwargs)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.engine, method)(*args, **kwargs)

    def timed_call(self, method: str, *args: Any, **kwargs: Any) -> tuple[float, Any]:
        """The call and the seconds it took in here (the pool's busy time, without transport)."""
        began = time.perf_counter()
        result = getattr(self.engine, method)(*args, **kwargs)
        return time.perf_counter() - began, result

    def node(self) -> str:
        """The Ray node this engine runs on."""
        import ray

        return ray.get_runtime_context().get_node_id()


class EngineDied(RuntimeError):
    """An engine's actor died more often than it may be restarted."""


class Remote:
    """Synchronous proxy for an `EngineHost` actor."""

    def __init__(self, handle: Any, role: str = "engine"):
        self.handle = handle
        self.role = role

    def __getattr__(self, method: str) -> Callable[..., Any]:
        # Only engine methods: pickling (a Remote handed to another actor) probes dunders,
        # and reads `handle` before it is set.
        if method.startswith("__") or method in ("handle", "role"):
            raise AttributeError(method)

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.get(self.handle.call.remote(method, *args, **kwargs))

        return call

    def get(self, ref: Any) -> Any:
        """`ray.get`, with an actor that stayed dead reported as `EngineDied` naming the role."""
        import ray

        try:
            return ray.get(ref)
        except ray.exceptions.RayActorError as err:
            raise EngineDied(f"the {self.role} engine died and could not be restarted ({type(err).__name__})") from err

    def submit(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Start a call without waiting; `ray.get` the returned reference later."""
        return self.handle.call.remote(method, *args, **kwargs)

    def submit_timed(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """As `submit`, for `(seconds inside the actor, result)`."""
        return self.handle.timed_call.remote(method, *args, **kwargs)


class Pool:
    """Copies of one engine answering a list of calls together (the student's actor pool).

    `imap` keeps `depth` calls queued at each engine, so an engine starts its next batch
    while the last one's result travels back, and yields each result as it arrives;
    the caller writes it at once (one writer, per batch). Inline engines run the calls in
    order. `busy_s` and `wall_s` add up what the engines and the caller spent, for the
    orchestration overhead (time the pool's engines were not generating).
    """

    def __init__(self, engines: Sequence[Any], depth: int = 2):
        self.engines = list(engines)
        self.depth = depth
        self.busy_s = 0.0
        self.wall_s = 0.0

    def imap(self, method: str, calls: Sequence[tuple[tuple, dict[str, Any]]]) -> Iterator[tuple[int, float, Any]]:
        """(index into `calls`, seconds the engine spent, result), in order of completion."""
        began = time.perf_counter()
        try:
            if not isinstance(self.engines[0], Remote):
                for i, (args, kwargs) in enumerate(calls):
                    start = time.perf_counter()
                    result = getattr(self.engines[0], method)(*args, **kwargs)
                    seconds = time.perf_counter() - start
                    self.busy_s += seconds
                    yield i, seconds, result
                return
            yield from self._imap_remote(method, calls)
        finally:
            self.wall_s += time.perf_counter() - began

    def _imap_remote(self, method: str, calls: Sequence[tuple[tuple, dict[str, Any]]]) -> Iterator[tuple[int, float, Any]]:
        import ray

        todo = list(enumerate(calls))[::-1]  # popped from the end: first call first
        in_flight: dict[Any, tuple[int, Remote]] = {}
        load = {id(e): 0 for e in self.engines}

        def fill() -> None:
            for engine in self.engines:
                while todo and load[id(engine)] < self.depth:
                    i, (args, kwargs) = todo.pop()
                    in_flight[engine.submit_timed(method, *args, **kwargs)] = (i, engine)
                    load[id(engine)] += 1

        fill()
        while in_flight:
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            i, engine = in_flight.pop(ready[0])
            load[id(engine)] -= 1
            seconds, result = engine.get(ready[0])
            self.busy_s += seconds
            fill()
            yield i, seconds, result

    def mark(self) -> tuple[float, float]:
        return self.busy_s, self.wall_s

    def overhead(self, since: tuple[float, float] = (0.0, 0.0)) -> float:
        """Share of the engines' time (since `mark()`) not spent inside calls: transport,
        scheduling, and the caller scoring and writing while an engine has nothing queued."""
        capacity = (self.wall_s - since[1]) * len(self.engines)
        return max(0.0, 1 - (self.busy_s - since[0]) / capacity) if capacity > 0 else 0.0

    def nodes(self) -> list[str]:
        """The Ray node of each engine (empty inline)."""
        return [e.get(e.handle.node.remote()) for e in self.engines if isinstance(e, Remote)]


class Lazy:
    """An engine built on first use, so a stage the ledger skips never loads a model."""

    def __init__(self, build: Callable[[], Any]):
        self._build = build
        self._engine: Any = None

    def __getattr__(self, name: str) -> Any:
        if self._engine is None:
            self._engine = self._build()
        return getattr(self._engine, name)


def spawn(
    factory: Callable[..., Any],
    kwargs: dict[str, Any],
    *,
    use_ray: bool,
    role: str = "engine",
    num_cpus: float = 0,
    num_gpus: float = 0,
    max_concurrency: int = 1,
    max_restarts: int = 2,
    placement: str | None = None,
) -> Any:
    """Build the engine here (inline) or inside a new restartable Ray actor.

    A killed actor process is restarted (its engine built again) up to `max_restarts`
    times and the call in flight is retried; then the caller gets `EngineDied`. The actor
    class is named after the role ("StudentEngine"), so `ps` and the Ray dashboard show
    which process is which. `placement` is "driver" (this process's node: the one DuckDB
    writer must live beside its file), "spread" (a pool over the cluster's nodes) or None.
    """
    if not use_ray:
        return factory(**kwargs)
    import ray

    host = type(f"{role.capitalize()}Engine", (EngineHost,), {"__doc__": f"The {role} engine's actor."})
    extra = {"runtime_env": {"env_vars": dict(_worker_env)}} if _worker_env else {}
    actor = ray.remote(host).options(
        **extra,
        num_cpus=num_cpus,
        num_gpus=num_gpus,
        max_restarts=max_restarts,
        max_task_retries=max_restarts,
        max_concurrency=max_concurrency,
        scheduling_strategy=_strategy(placement),
    )
    return Remote(actor.remote(factory, kwargs), role)


def _strategy(placement: str | None) -> Any:
    if placement == "spread":
        return "SPREAD"
    if placement == "driver":
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        return NodeAffinitySchedulingStrategy(node_id=ray.get_runtime_context().get_node_id(), soft=False)
    return "DEFAULT"


def stop(engine: Any) -> None:
    """Release an engine's actor (no-op inline)."""
    if isinstance(engine, Remote):
        import ray

        ray.kill(engine.handle, no_restart=True)


# The driver's quieting settings (cli.quiet_libraries), for actors on a cluster's nodes,
# whose processes do not inherit the driver's environment as a local cluster's do.
WORKER_ENV = ("TRANSFORMERS_VERBOSITY", "HF_HUB_DISABLE_PROGRESS_BARS", "HF_HUB_OFFLINE", "PYTHONWARNINGS")
_worker_env: dict[str, str] = {}


def start_ray(address: str | None, num_cpus: int | None, state_api: bool = False) -> None:
    """Join a cluster at `address`, or start a local one sized to this machine.

    A local cluster runs without its dashboard (seconds of start-up, a port) unless
    `state_api`: Ray Train's placement-group cleaner watches its controller through the
    dashboard's state API, and without it logs a warning every few seconds of training.
    """
    # torch (and the MKL inside libtorch_cpu) must load before Ray's threads start: loaded
    # after `ray.init`, MKL's initialisation aborted a Ray job's driver ("Intel oneMKL FATAL
    # ERROR: Cannot load libtorch_cpu.so", ray 2.60, about every other try).
    import torch  # noqa: F401
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS")  # set for a driver that Ray Jobs started
    if address:
        _worker_env.update({k: os.environ[k] for k in WORKER_ENV if k in os.environ})
        ray.init(address=address, logging_level="WARNING")
    else:
        # "local": a new cluster even where `ray start` left one on this machine, which ray.init()
        # would otherwise join (and refuse, being given num_cpus)
        ray.init(address="local", num_cpus=num_cpus or os.cpu_count(), include_dashboard=state_api,
                 dashboard_host="127.0.0.1", logging_level="WARNING")
        _private_auth_token()


def _private_auth_token() -> None:
    """Ray's core servers listen on every interface (ray 2.60 has no loopback-only option);
    what guards them is its auth token, which it writes readable by every local user. Make
    the token ours alone, so another user of a shared machine cannot join the cluster."""
    token = Path.home() / ".ray" / "auth_token"
    try:
        if token.is_file() and not token.is_symlink() and token.stat().st_uid == os.getuid():
            token.chmod(0o600)
    except OSError:
        pass  # not ours to change: docs/reliability.md says what that means


def call_with_progress(
    engine: Any, method: str, args: tuple, kwargs: dict[str, Any], advance: Callable[[int], None],
    stop: Callable[[], bool] = lambda: False, poll_s: float = 0.5,
) -> Any:
    """Call `engine.method`, moving a progress bar from its `progress()` step count.

    The call runs in the actor on Ray, in a worker thread inline, while this thread polls
    the engine's step count and passes on a stop (`stop()` true: `engine.request_stop()`
    once), so a run without Ray shows each step and stops mid-training as one on Ray does.
    """
    if isinstance(engine, Remote):
        import ray

        ref = engine.submit(method, *args, **kwargs)
        return _poll(engine, lambda: bool(ray.wait([ref], timeout=poll_s)[0]), lambda: engine.get(ref),
                     advance, stop)
    with futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=method) as pool:
        future = pool.submit(getattr(engine, method), *args, **kwargs)
        try:
            return _poll(engine, lambda: not futures.wait([future], timeout=poll_s).not_done, future.result,
                         advance, stop)
        except BaseException:  # an abort (a second Ctrl-C): the pool waits for the thread, so end it at its step
            engine.request_stop()
            raise


def _poll(engine: Any, finished: Callable[[], bool], result: Callable[[], Any], advance: Callable[[int], None],
          stop: Callable[[], bool]) -> Any:
    """Until `finished()` (which waits up to a poll), move the bar to the engine's step and
    ask it to stop once `stop()` says so; then the call's result."""
    shown, asked = 0, False
    while True:
        done = finished()
        if stop() and not asked:
            engine.request_stop()
            asked = True
        step = engine.progress()
        advance(step - shown)
        shown = step
        if done:
            return result()


class ClusterTooSmall(RuntimeError):
    """The cluster lacks the CPUs or GPUs the config asks for (after waiting for them)."""


def check_resources(needs: dict[str, float], wait_s: float, poll_s: float = 2.0) -> None:
    """Wait up to `wait_s` for the cluster to offer `needs` (an autoscaler may be adding
    nodes), then fail naming what is missing instead of leaving actors pending forever."""
    import ray

    deadline = time.monotonic() + wait_s
    while True:
        have = ray.cluster_resources()
        missing = {k: v for k, v in needs.items() if v > 0 and have.get(k, 0) + 1e-9 < v}
        if not missing:
            return
        if time.monotonic() >= deadline:
            lacking = ", ".join(f"{v:g} {k} (the cluster has {have.get(k, 0):g})" for k, v in missing.items())
            raise ClusterTooSmall(f"the config needs {lacking}, waited {wait_s:g} s")
        time.sleep(poll_s)
