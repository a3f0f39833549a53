"""The student: a Hugging Face causal LM answering prompts in batches, with confidences.

Batching is where the speed is on CPU: one prompt at a time SmolLM2 makes about 15
tokens/s on 2 cores, sixteen left-padded prompts together several times that, because
each decoding step is a matrix product instead of a matrix-vector product.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sgi.skills.records import Generation
from sgi.workers.models import resolve_dtype

_DTYPES = {"bfloat16": torch.bfloat16, "float32": torch.float32}


class TransformersStudent:
    """`StudentEngine` over `transformers.generate` (greedy sample 0, then sampled 1..n).

    Confidence per generation is the model's probability of each token it emitted
    (untempered softmax of the raw logits; for greedy this is the top-1 probability),
    taken over the generated tokens up to and including the EOS that ended the answer.
    """

    def __init__(
        self,
        model_path: str | Path,
        system_prompt: str | None = None,
        *,
        batch_size: int = 16,
        max_new_tokens: int = 16,
        dtype: str = "auto",
        threads: int | None = None,
        seed: int = 0,
        adapter_path: str | Path | None = None,
        shots: Sequence[tuple[str, str]] = (),
    ) -> None:
        dtype = resolve_dtype(dtype)
        if dtype not in _DTYPES:
            raise ValueError(f"student dtype {dtype!r} is not one of {sorted(_DTYPES)} or 'auto'")
        if threads:
            torch.set_num_threads(threads)
        self.system_prompt = system_prompt
        self.shots = tuple(shots)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.seed = seed
        self.tokenizer = AutoTokenizer.from_pretrained(model_path)
        self.tokenizer.padding_side = "left"  # generated tokens must follow every prompt directly
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        # Load and merge in fp32, then cast: merging LoRA deltas in bf16 would round them away.
        model = AutoModelForCausalLM.from_pretrained(model_path, dtype=torch.float32)
        if adapter_path is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, str(adapter_path)).merge_and_unload()
        # A GPU when Ray gave this actor one (it hides the others), else the CPU.
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device, _DTYPES[dtype]).eval()
        self.eos_ids = _eos_ids(self.model, self.tokenizer)
        self._prefix: tuple[tuple[int, ...], object] | None = None  # the last shared prompt prefix and its cache

    def render(self, prompt: str) -> str:
        """The chat-formatted text the model sees for a user message (shared with the trainer)."""
        return render_chat(self.tokenizer, self.system_prompt, prompt, self.shots)

    def generate(
        self, item_ids: Sequence[str], prompts: Sequence[str], *, samples: int = 0, temperature: float = 0.7
    ) -> list[Generation]:
        if len(item_ids) != len(prompts):
            raise ValueError(f"{len(item_ids)} item ids for {len(prompts)} prompts")
        texts = [self.render(p) for p in prompts]
        order = by_length(self.tokenizer, texts)  # output order is restored below
        out: dict[tuple[int, int], Generation] = {}
        rows = [(i, 0) for i in order]
        for start in range(0, len(rows), self.batch_size):
            self._run(rows[start : start + self.batch_size], item_ids, texts, out, sample=False, temperature=1.0)
        if samples > 0:
            rows = [(i, s) for i in order for s in range(1, samples + 1)]
            # A private RNG stream: the same seed gives the same samples, and the caller's
            # global torch RNG is left as it was.
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                for start in range(0, len(rows), self.batch_size):
                    chunk = rows[start : start + self.batch_size]
                    self._run(chunk, item_ids, texts, out, sample=True, temperature=temperature)
        return [out[(i, s)] for i in range(len(prompts)) for s in range(samples + 1)]

    @torch.inference_mode()
    def _run(self, rows, item_ids, texts, out, *, sample: bool, temperature: float) -> None:
        enc = self._encode([texts[i] for i, _ in rows])
        sampling = {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0} if sample else {"do_sample": False}
        res = self.model.generate(
            **enc,
            max_new_tokens=self.max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.eos_ids,
            output_logits=True,
            return_dict_in_generate=True,
            **sampling,
        )
        new = res.sequences[:, enc["input_ids"].shape[1] :]  # [rows, steps]
        logits = torch.stack(res.logits, dim=1).float()  # [rows, steps, vocab], raw (untempered)
        dist = torch.softmax(logits, dim=-1)
        probs = dist.gather(-1, new.unsqueeze(-1)).squeeze(-1)  # [rows, steps]
        top2 = dist.topk(2, dim=-1).values  # [rows, steps, 2]
        margins = top2[..., 0] - top2[..., 1]
        del dist
        for r, ((i, s), n) in enumerate(zip(rows, answer_lengths(new, self.eos_ids))):
            p = probs[r, :n]
            out[(i, s)] = Generation(
                item_id=item_ids[i],
                sample=s,
                text=self.tokenizer.decode(new[r, :n], skip_special_tokens=True).strip(),
                n_tokens=n,
                mean_prob=float(p.mean()),
                min_prob=float(p.min()),
                margin=float(margins[r, :n].mean()),
            )


    def _encode(self, texts: Sequence[str]) -> dict:
        """The batch as `generate` takes it. Where every prompt starts with the same long run of
        tokens (worked examples as chat turns: the program writer's ~370 of ~380), that prefix
        is run once and its keys and values are handed to `generate` for every row, padding
        between it and each row's own tail; otherwise plain left padding. Same answers (checked
        in tests/integration/test_student_engine.py), 5x faster for the program writer on 2 cores."""
        ids = [self.tokenizer(t, add_special_tokens=False).input_ids for t in texts]
        shared = min(_common_prefix(ids), min(map(len, ids)) - 1)  # every row keeps a token of its own
        if shared < PREFIX_REUSE_MIN:
            enc = self.tokenizer(list(texts), return_tensors="pt", padding=True, add_special_tokens=False)
            return {k: v.to(self.device) for k, v in enc.items()}
        prefix = tuple(ids[0][:shared])
        tail = max(len(row) - shared for row in ids)
        input_ids = torch.full((len(ids), shared + tail), self.tokenizer.pad_token_id, dtype=torch.long)
        mask = torch.zeros_like(input_ids)
        input_ids[:, :shared], mask[:, :shared] = torch.tensor(prefix), 1
        for r, row in enumerate(ids):  # [prefix][pad ...][the row's own tokens]: positions follow the mask
            input_ids[r, shared + tail - (len(row) - shared):] = torch.tensor(row[shared:])
            mask[r, shared + tail - (len(row) - shared):] = 1
        cache = copy.deepcopy(self._prefix_cache(prefix))
        cache.batch_repeat_interleave(len(ids))
        return {"input_ids": input_ids.to(self.device), "attention_mask": mask.to(self.device),
                cache_argument(self.model): cache}

    def _prefix_cache(self, prefix: tuple[int, ...]):
        """The keys and values of `prefix` (batch of one), computed once per prefix."""
        if self._prefix is None or self._prefix[0] != prefix:
            from transformers import DynamicCache

            cache = DynamicCache()
            self.model(torch.tensor([prefix], device=self.device), use_cache=True, **{cache_argument(self.model): cache})
            self._prefix = (prefix, cache)
        return self._prefix[1]


PREFIX_REUSE_MIN = 64  # shared tokens below this are cheaper to run again than to copy per row


def cache_argument(model) -> str:
    """What this transformers calls the key/value cache argument ('cache' since 5.2x)."""
    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


def _common_prefix(rows: Sequence[Sequence[int]]) -> int:
    first = rows[0]
    n = min(map(len, rows))
    for row in rows[1:]:
        k = 0
        while k < n and row[k] == first[k]:
            k += 1
        n = k
    return n


def render_chat(tokenizer, system_prompt: str | None, user_text: str,
                shots: Sequence[tuple[str, str]] = ()) -> str:
    """System prompt (if any) + worked (user, assistant) turns + user message + the
    assistant generation prompt. Few-shot as chat turns: a small instruct model copies
    the answer form far better than from shots pasted into one message."""
    messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
    for question, answer in shots:
        messages += [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]
    messages.append({"role": "user", "content": user_text})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def by_length(tokenizer, texts: Sequence[str]) -> list[int]:
    """Indices of `texts`, shortest first: similar lengths then share a batch, so little
    compute goes to padding."""
    return sorted(range(len(texts)), key=lambda i: len(tokenizer(texts[i], add_special_tokens=False).input_ids))


def answer_lengths(new: torch.Tensor, eos_ids: Sequence[int]) -> list[int]:
    """Per generated row [rows, steps]: its tokens up to and including the first EOS (what
    follows is padding), or all of them if it never ended."""
    is_eos = torch.isin(new, torch.tensor(eos_ids, device=new.device))
    return [int(row.nonzero()[0]) + 1 if row.any() else new.shape[1] for row in is_eos]


def _eos_ids(model, tokenizer) -> list[int]:
    eos = model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos] if eos is not None else [])
    ids.add(tokenizer.eos_token_id)
    return sorted(i for i in ids if i is not None)
