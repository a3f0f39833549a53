"""The `local` teacher's model: chat completions from a causal LM in this process.

For users without a server: the same prompts, parsing, retries and cache as the `llm`
teacher (`ChatClient(..., sender=LocalSender(path))`), answered by transformers inside
the teacher's Ray actor. There is no guided decoding here, so a small local model leans
on the parse-and-retry path; point `teacher.local.model` at the strongest model the
machine holds.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sgi.workers.models import resolve_dtype


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
