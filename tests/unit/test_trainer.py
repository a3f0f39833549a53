"""The SFT trainer's batching and masking, and its answer-only loss against the model's own."""

from __future__ import annotations

import random

from support.training import SYSTEM, additions

from sgi.workers.models import resolve_model
from sgi.workers.trainer import IGNORE, _batch_at, _collate


def test_collate_pads_right_and_masks_padding():
    batch = _collate([([5, 6, 7], [IGNORE, IGNORE, 7]), ([5, 8], [IGNORE, 8])], pad_id=0)
    assert batch["input_ids"].tolist() == [[5, 6, 7], [5, 8, 0]]
    assert batch["labels"].tolist() == [[IGNORE, IGNORE, 7], [IGNORE, 8, IGNORE]]
    assert batch["attention_mask"].tolist() == [[1, 1, 1], [1, 1, 0]]
    # only the positions whose next token is an answer token are projected onto the vocabulary
    assert batch["logits_to_keep"].tolist() == [[False, True, False], [True, False, False]]


def test_answer_loss_equals_the_models_own_loss():
    """Projecting only the kept positions changes the cost, not the loss."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sgi.workers.trainer import _answer_loss, _encode

    path = resolve_model()
    tok, model = AutoTokenizer.from_pretrained(path), AutoModelForCausalLM.from_pretrained(path)
    batch = _collate([_encode(tok, SYSTEM, q, a, 128) for q, a in additions(0, 3) + [("What is 7 + 8?", "15")]],
                     tok.eos_token_id)
    with torch.no_grad():
        full = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
        kept = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                     logits_to_keep=batch["logits_to_keep"])
    assert kept.logits.shape[0] == int((batch["labels"] != IGNORE).sum())  # answer tokens only, not every position
    assert abs(float(_answer_loss(kept, batch["labels"])) - float(full)) < 1e-5
    # transformers before 5.20 takes no mask: the loss picks the same positions from full logits
    with torch.no_grad():
        every = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    assert abs(float(_answer_loss(every, batch["labels"])) - float(full)) < 1e-5


def test_batches_are_seeded_full_epochs():
    first = [_batch_at(10, 4, 3, step) for step in range(1, 5)]
    assert first == [_batch_at(10, 4, 3, step) for step in range(1, 5)]  # a pure function of (seed, step)
    assert all(len(x) == 4 for x in first)  # the ragged tail of an epoch is dropped
    assert len(set(first[0] + first[1])) == 8  # no repeats within an epoch
    assert first[2] != first[0]  # a new epoch is a new permutation
    assert first != [_batch_at(10, 4, 4, step) for step in range(1, 5)]
    assert sorted(_batch_at(3, 8, 0, 1)) == [0, 1, 2]  # fewer examples than a batch: all of them


def test_length_grouped_batches_cover_each_epoch_and_pad_less():
    lengths = [random.Random(i).randint(40, 90) for i in range(256)]
    def pad(batch):
        return len(batch) * max(lengths[i] for i in batch)
    grouped = [_batch_at(256, 8, 0, s, lengths) for s in range(1, 33)]
    assert grouped == [_batch_at(256, 8, 0, s, lengths) for s in range(1, 33)]
    assert sorted(i for b in grouped for i in b) == list(range(256))
    plain = [_batch_at(256, 8, 0, s) for s in range(1, 33)]
    assert sum(map(pad, grouped)) < 0.85 * sum(map(pad, plain))
