"""Engines as Ray actors, or in this process, behind the same synchronous calls.

Each engine is built *inside* its actor from a factory and plain arguments, so torch and
the model weights load only in that process. `Remote` turns `engine.method(...)` into
`ray.get(actor.call.remote("method", ...))`, so the loop reads the same either way
(`ray.enabled: false` is the inline executor, handy under a debugger).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any


class EngineHost:
    """The actor body: one engine and a generic method call."""

    def __init__(self, factory: Callable[..., Any], kwargs: dict[str, Any]):
        self.engine = factory(**kwargs)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.engine, method)(*args, **kwargs)


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
    max_concurrency: int = 1,
    max_restarts: int = 2,
) -> Any:
    """Build the engine here (inline) or inside a new restartable Ray actor.

    A killed actor process is restarted (its engine built again) up to `max_restarts`
    times and the call in flight is retried; then the caller gets `EngineDied`. The actor
    class is named after the role ("StudentEngine"), so `ps` and the Ray dashboard show
    which process is which.
    """
    if not use_ray:
        return factory(**kwargs)
    import ray

    host = type(f"{role.capitalize()}Engine", (EngineHost,), {"__doc__": f"The {role} engine's actor."})
    actor = ray.remote(host).options(
        num_cpus=num_cpus,
        max_restarts=max_restarts,
        max_task_retries=max_restarts,
        max_concurrency=max_concurrency,
    )
    return Remote(actor.remote(factory, kwargs), role)


def stop(engine: Any) -> None:
    """Release an engine's actor (no-op inline)."""
    if isinstance(engine, Remote):
        import ray

        ray.kill(engine.handle, no_restart=True)


def start_ray(address: str | None, num_cpus: int | None) -> None:
    """Join a cluster at `address`, or start a local one sized to this machine."""
    import ray

    if ray.is_initialized():
        return
    if address:
        ray.init(address=address, logging_level="WARNING")
    else:
        ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, logging_level="WARNING")


def call_with_progress(
    engine: Any, method: str, args: tuple, kwargs: dict[str, Any], advance: Callable[[int], None],
    stop: Callable[[], bool] = lambda: False, poll_s: float = 0.5,
) -> Any:
    """Call `engine.method`, moving a progress bar from its `progress()` step count.

    On Ray the call runs in the actor while this process polls a second actor thread,
    which also passes on a stop (`stop()` true: `engine.request_stop()` once); inline, the
    engine's own step callback is not reachable, so the bar jumps at the end.
    """
    if not isinstance(engine, Remote):
        result = getattr(engine, method)(*args, **kwargs)
        advance(engine.progress())
        return result
    import ray

    ref = engine.submit(method, *args, **kwargs)
    shown, asked = 0, False
    while True:
        ready, _ = ray.wait([ref], timeout=poll_s)
        if stop() and not asked:
            engine.request_stop()
            asked = True
        step = engine.progress()
        advance(step - shown)
        shown = step
        if ready:
            return engine.get(ref)
