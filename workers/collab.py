"""FS-GEN's token-level collaboration of a small and a larger model sharing a tokenizer.

The student (System 1) decodes greedily; wherever its top-1 probability for the next
token is below the threshold t, the larger model (System 2) picks that token instead.
FS-GEN finds that a small model needs the large one on a small share of decisions,
exactly where it is unsure; `large_tokens` per answer measures that share here.

The larger model is fed lazily: it reads the tokens written since its last call in one
chunk, only at steps where some row of the batch needs it, so at low thresholds it costs
a few chunked forward passes instead of one per token. t = 0 is the student alone
(token for token its greedy answer); t > 1 is the larger model alone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

from sgi.skills.records import TokenSolved
from sgi.workers.student import TransformersStudent, answer_lengths, by_length, cache_argument


def require_shared_tokenizer(student_tokenizer, large_tokenizer, large_path: str | Path) -> None:
    """Token-level collaboration hands token ids between the models: one vocabulary or none."""
    if large_tokenizer.get_vocab() != student_tokenizer.get_vocab():
        raise ValueError(f"compose.token.model {large_path}: its tokenizer differs from the student's "
                         f"({len(large_tokenizer)} vs {len(student_tokenizer)} tokens); token-level "
                         "collaboration needs one vocabulary (compose item by item instead)")


class TokenCollaboration:
    """A `TransformersStudent` and a larger causal LM decoding one answer together."""

    def __init__(self, large_path: str | Path, **student_args) -> None:
        """`student_args`: a `TransformersStudent`'s; the larger model runs on its device and dtype."""
        self.student = TransformersStudent(**student_args)
        require_shared_tokenizer(self.student.tokenizer, AutoTokenizer.from_pretrained(large_path), large_path)
        small = self.student.model
        large = AutoModelForCausalLM.from_pretrained(large_path, dtype=torch.float32)
        self.large = large.to(self.student.device, small.dtype).eval()
        self._cache_arg = cache_argument(small)

    def generate(self, item_ids: Sequence[str], prompts: Sequence[str], threshold: float) -> list[TokenSolved]:
        """One greedy answer per prompt, in order; similar lengths share a batch."""
        texts = [self.student.render(p) for p in prompts]
        order = by_length(self.student.tokenizer, texts)
        out: dict[int, TokenSolved] = {}
        size = self.student.batch_size
        for start in range(0, len(order), size):
            rows = order[start: start + size]
            began = time.perf_counter()
            decoded = self._decode([texts[i] for i in rows], threshold)
            seconds = (time.perf_counter() - began) / len(rows)
            for i, (text, n, large_n) in zip(rows, decoded):
                out[i] = TokenSolved(item_ids[i], text, n, large_n, seconds)
        return [out[i] for i in range(len(prompts))]

    @torch.inference_mode()
    def _decode(self, texts: list[str], threshold: float) -> list[tuple[str, int, int]]:
        """(text, tokens up to and including EOS, how many of them the larger model chose) per text."""
        s = self.student
        enc = s.tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(s.device)
        ids, mask = enc.input_ids, enc.attention_mask
        eos = torch.tensor(s.eos_ids, device=ids.device)
        prompt_len = ids.shape[1]
        small_cache, large_cache = DynamicCache(), DynamicCache()  # filled in place by each forward pass
        small_fed = large_fed = 0  # columns of `ids` each model has read
        done = torch.zeros(len(texts), dtype=torch.bool, device=ids.device)
        from_large = []
        for _ in range(s.max_new_tokens):
            positions = (mask.long().cumsum(-1) - 1).clamp(min=0)
            if threshold <= 1:  # above 1 every token is the larger model's: the student need not run
                logits = self._read(s.model, small_cache, ids, mask, positions, small_fed)
                small_fed = ids.shape[1]
                top_p, token = torch.softmax(logits, dim=-1).max(dim=-1)
                need = (top_p < threshold) & ~done
            else:
                token, need = torch.zeros_like(done, dtype=ids.dtype), ~done
            if need.any():
                logits = self._read(self.large, large_cache, ids, mask, positions, large_fed)
                large_fed = ids.shape[1]
                token = torch.where(need, logits.argmax(dim=-1), token)
            token = torch.where(done, torch.full_like(token, s.tokenizer.pad_token_id), token)
            from_large.append(need)
            ids = torch.cat([ids, token[:, None]], dim=1)
            mask = torch.cat([mask, torch.ones_like(mask[:, :1])], dim=1)
            done |= torch.isin(token, eos)
            if done.all():
                break
        new, chose = ids[:, prompt_len:], torch.stack(from_large, dim=1)
        return [(s.tokenizer.decode(new[r, :n], skip_special_tokens=True).strip(), n, int(chose[r, :n].sum()))
                for r, n in enumerate(answer_lengths(new, s.eos_ids))]

    def _read(self, model, cache, ids, mask, positions, fed: int) -> torch.Tensor:
        """The model's next-token logits after reading the columns of `ids` from `fed` on."""
        out = model(input_ids=ids[:, fed:], attention_mask=mask, position_ids=positions[:, fed:],
                    use_cache=True, logits_to_keep=1, **{self._cache_arg: cache})
        return out.logits[:, -1].float()

