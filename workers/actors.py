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

ACTOR_RESTARTS = 2  # a killed engine process is restarted and its call retried


class EngineHost:
    """The actor body: one engine and a generic method call."""

    def __init__(self, factory: Callable[..., Any], kwargs: dict[str, Any]):
        self.engine = factory(**kwargs)

    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return getattr(self.engine, method)(*args, **kwargs)


class Remote:
    """Synchronous proxy for an `EngineHost` actor."""

    def __init__(self, handle: Any):
        self.handle = handle

    def __getattr__(self, method: str) -> Callable[..., Any]:
        import ray

        def call(*args: Any, **kwargs: Any) -> Any:
            return ray.get(self.handle.call.remote(method, *args, **kwargs))

        return call

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
    num_cpus: float = 0,
    max_concurrency: int = 1,
) -> Any:
    """Build the engine here (inline) or inside a new restartable Ray actor."""
    if not use_ray:
        return factory(**kwargs)
    import ray

    actor = ray.remote(EngineHost).options(
        num_cpus=num_cpus,
        max_restarts=ACTOR_RESTARTS,
        max_task_retries=ACTOR_RESTARTS,
        max_concurrency=max_concurrency,
    )
    return Remote(actor.remote(factory, kwargs))


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
    engine: Any, method: str, args: tuple, kwargs: dict[str, Any], advance: Callable[[int], None], poll_s: float = 0.5
) -> Any:
    """Call `engine.method`, moving a progress bar from its `progress()` step count.

    On Ray the call runs in the actor while this process polls a second actor thread;
    inline, the engine's own step callback is not reachable, so the bar jumps at the end.
    """
    if not isinstance(engine, Remote):
        result = getattr(engine, method)(*args, **kwargs)
        advance(engine.progress())
        return result
    import ray

    ref = engine.submit(method, *args, **kwargs)
    shown = 0
    while True:
        ready, _ = ray.wait([ref], timeout=poll_s)
        step = engine.progress()
        advance(step - shown)
        shown = step
        if ready:
            return ray.get(ref)
