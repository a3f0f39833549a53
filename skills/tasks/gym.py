"""The embedded default task: reasoning-gym families with a skewed training pool (`PRESETS`).

Families differ in what a 135M student can learn at sgi's budget (bench/bench_learnability.py
measured 19: 1-2 digit addition is learnt from ~120 examples, word-list reversal and decimal
sums from a few hundred, weekdays and multi-term chains not at all). The default preset makes
the learnable families rare and the quickly learnt ones common, so a targeting method has
something to find; `hard` keeps the older pool whose rare families cannot be learnt. Configs
are small so questions stay short (< 60 tokens) and answers fit in a few tokens. Small
configs collide, so questions are de-duplicated across all splits.
"""

from __future__ import annotations

import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any, NamedTuple

import reasoning_gym

from sgi.skills.answers import extract_answer
from sgi.skills.records import Item


class FamilySpec(NamedTuple):
    generator: str  # reasoning-gym dataset name
    config: dict[str, Any]  # its config, without seed/size
    kind: str = "number"  # answer kind for `extract_answer`


FAMILY_SPECS: dict[str, FamilySpec] = {
    # chain_sum with 2 terms repeats basic_arithmetic's questions for the same seed; each
    # family gets its own seeds (see `_generate`) and basic_arithmetic always has 3 terms.
    "add_sub": FamilySpec("chain_sum", {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2}),
    "chain_sum": FamilySpec("chain_sum", {"min_terms": 3, "max_terms": 4, "min_digits": 1, "max_digits": 2}),
    "products": FamilySpec("products", {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 2}),
    "mixed_ops": FamilySpec(
        "basic_arithmetic",
        {"min_terms": 3, "max_terms": 3, "min_digits": 1, "max_digits": 1,
         "operators": ["+", "-", "*", "/"], "allow_negation": False},
    ),
    "gcd": FamilySpec("gcd", {"min_numbers": 2, "max_numbers": 2, "min_value": 2, "max_value": 60}),
    "lcm": FamilySpec("lcm", {"min_numbers": 2, "max_numbers": 2, "min_value": 2, "max_value": 40}),
    "fraction_simplification": FamilySpec(
        "fraction_simplification",
        {"min_value": 1, "max_value": 12, "min_factor": 2, "max_factor": 12, "styles": ["plain"]},
    ),
    # operators_weights needs one weight per operator, or the generator fails.
    "simple_equations": FamilySpec(
        "simple_equations",
        {"min_terms": 2, "max_terms": 2, "min_value": 1, "max_value": 10,
         "operators": ["+", "-", "*"], "operators_weights": [0.4, 0.4, 0.2]},
    ),
    # Short configs of other generators, candidates measured by bench/bench_learnability.py.
    "decimal_add": FamilySpec(
        "decimal_chain_sum",
        {"min_terms": 2, "max_terms": 2, "min_digits": 1, "max_digits": 1, "min_decimal_places": 1,
         "max_decimal_places": 1},
    ),
    "count_bits": FamilySpec("count_bits", {"min_n": 1, "max_n": 1000}),
    "prime_factorization": FamilySpec("prime_factorization", {"min_value": 2, "max_value": 1000}, "text"),
    "leg_counting": FamilySpec(
        "leg_counting", {"min_animals": 1, "max_animals": 2, "min_instances": 1, "max_instances": 4}),
    "base_conversion": FamilySpec(
        "base_conversion", {"min_base": 2, "max_base": 10, "min_value": 0, "max_value": 63}, "text"),
    "number_sequence": FamilySpec(
        "number_sequence", {"min_terms": 4, "max_terms": 5, "min_value": -10, "max_value": 10, "max_complexity": 1}),
    "leap_year": FamilySpec("calendar_arithmetic", {"tasks": ["is_leap_year"]}, "text"),
    "weekday": FamilySpec("calendar_arithmetic", {"tasks": ["weekday_of_date"]}, "text"),
    "word_reversal": FamilySpec("word_sequence_reversal", {"min_words": 3, "max_words": 4}, "text"),
    # Second batch of candidates (docs/benchmarks.md): copy-with-a-rule and short reasoning.
    "number_filtering": FamilySpec(
        "number_filtering",
        {"min_numbers": 3, "max_numbers": 4, "min_decimals": 0, "max_decimals": 0, "min_value": 1, "max_value": 99},
        "text"),
    "family_relationships": FamilySpec("family_relationships", {"min_family_size": 3, "max_family_size": 4}, "text"),
    "sentence_reordering": FamilySpec(
        "sentence_reordering", {"min_words_in_sentence": 3, "max_words_in_sentence": 6}, "sentence"),
    "count_primes": FamilySpec("count_primes", {"min_n": 1, "max_n": 50}),
    # General abilities outside the target skills: they detect forgetting.
    "letter_counting": FamilySpec("letter_counting", {"min_words": 3, "max_words": 6}),
    "spell_backward": FamilySpec("spell_backward", {"min_word_len": 3, "max_word_len": 6}, "text"),
}

class Preset(NamedTuple):
    """A task: pool sizes per family, the general-ability families, and what each family is
    for (the study reports accuracy by role)."""

    families: dict[str, int]  # family -> training-pool size
    general: dict[str, int]  # general-ability family -> held-out items (forgetting)
    roles: dict[str, str]  # family -> "common" | "rare learnable" | "not learnable" | "rare hard" | ...
    about: str


GENERAL: dict[str, int] = {"letter_counting": 50, "spell_backward": 50}

PRESETS: dict[str, Preset] = {
    # Built from bench/bench_learnability.py (docs/benchmarks.md, "Which skills can the student
    # learn?"): common families the student learns quickly, so the warm-up saturates them; rare
    # ones it can learn from a few hundred examples but barely sees in the warm-up (what STAT
    # must find and fix); lcm, which it learns slowly; and weekday, which it cannot learn at
    # this budget (where a good targeting method must not spend it).
    "learnable": Preset(
        families={"add_sub": 400, "products": 400, "number_sequence": 300, "word_reversal": 80, "decimal_add": 80,
                  "fraction_simplification": 80, "lcm": 80, "weekday": 80},
        general=GENERAL,
        roles={"add_sub": "common", "products": "common", "number_sequence": "common",
               "word_reversal": "rare learnable", "decimal_add": "rare learnable",
               "fraction_simplification": "rare learnable", "lcm": "rare slow", "weekday": "not learnable"},
        about="common families learnt quickly, rare learnable ones, a slow one and one not learnable at this budget",
    ),
    # Built from the second batch of the same measurement: two more families the student
    # learns from a few hundred examples (family relationships, sentence reordering) join the
    # rare learnable ones, so four of the eight test families are what targeting can fix;
    # fractions and lcm (late and slow learners) leave; weekday stays as the family it cannot learn.
    "frontier": Preset(
        families={"add_sub": 400, "products": 400, "number_sequence": 300, "word_reversal": 80,
                  "family_relationships": 80, "sentence_reordering": 80, "decimal_add": 80, "weekday": 80},
        general=GENERAL,
        roles={"add_sub": "common", "products": "common", "number_sequence": "common",
               "word_reversal": "rare learnable", "family_relationships": "rare learnable",
               "sentence_reordering": "rare learnable", "decimal_add": "rare learnable", "weekday": "not learnable"},
        about="common families learnt quickly, four rare learnable ones and one not learnable at this budget",
    ),
    # The default before 2026-12, kept so the regime where targeting cannot win stays
    # reproducible: the rare families are the hard ones (lcm, fractions, equations), which
    # the 135M student barely learns at this budget (docs/benchmarks.md, the first study).
    "hard": Preset(
        families={"add_sub": 300, "products": 250, "chain_sum": 200, "gcd": 150, "mixed_ops": 80, "lcm": 60,
                  "fraction_simplification": 40, "simple_equations": 40},
        general=GENERAL,
        roles={"add_sub": "common", "products": "common", "chain_sum": "common", "gcd": "common",
               "mixed_ops": "rare hard", "lcm": "not learnable", "fraction_simplification": "rare hard",
               "simple_equations": "not learnable"},
        about="common easy families, rare hard ones",
    ),
}
DEFAULT_PRESET = "learnable"

_MAX_BATCHES = 20  # bounded re-seeding when a small config keeps colliding
TEST_RESERVE = 100  # test questions a family always set aside (see GymTask.load_items)


class GymTask:
    """Items from reasoning-gym generators, checked by each generator's own scorer."""

    name = "gym"

    def __init__(
        self,
        *,
        families: dict[str, int] | None = None,
        probe_per_family: int = 40,
        test_per_family: int = 100,
        general: dict[str, int] | None = None,
        seed: int = 0,
    ) -> None:
        self.families = dict(PRESETS[DEFAULT_PRESET].families if families is None else families)
        self.general = dict(PRESETS[DEFAULT_PRESET].general if general is None else general)
        unknown = sorted((set(self.families) | set(self.general)) - set(FAMILY_SPECS))
        if unknown:
            raise ValueError(f"unknown gym families {unknown}; known: {sorted(FAMILY_SPECS)}")
        self.probe_per_family = probe_per_family
        self.test_per_family = test_per_family
        self.seed = seed

    def load_items(self) -> list[Item]:
        """Test first, then probe, pool and general, so held-out items never change when
        the pool sizes do; every later split skips questions already taken.

        At least TEST_RESERVE test questions a family are taken (and kept out of the later
        splits) whatever `test_per_family` is, and its first `test_per_family` are the test
        split: a smaller test split leaves probe and pool as they are, so a study can measure
        the default's training on more held-out items than the default answers.
        """
        reserve = max(self.test_per_family, TEST_RESERVE)
        plan = [(f, "test", reserve, self.test_per_family) for f in self.families]
        plan += [(f, "probe", self.probe_per_family, self.probe_per_family) for f in self.families]
        plan += [(f, "pool", n, n) for f, n in self.families.items()]
        plan += [(f, "general", n, n) for f, n in self.general.items()]
        seen: set[str] = set()
        items: list[Item] = []
        for family, split, taken, kept in plan:
            items += self._generate(family, split, taken, seen)[:kept]
        return items

    def _generate(self, family: str, split: str, count: int, seen: set[str]) -> list[Item]:
        spec = FAMILY_SPECS[family]
        out: list[Item] = []
        for batch in range(_MAX_BATCHES):
            seed = self.seed * 1_000_003 + zlib.crc32(f"{family}/{split}/{batch}".encode())
            data = reasoning_gym.create_dataset(spec.generator, seed=seed, size=2 * count + 10, **spec.config)
            for entry in data:
                if entry["question"] in seen:
                    continue
                seen.add(entry["question"])
                out.append(_item(family, split, len(out), entry))
                if len(out) == count:
                    return out
        raise ValueError(
            f"gym family {family!r}: only {len(out)} distinct {split} questions after {_MAX_BATCHES} "
            f"batches (asked for {count}); lower the count or widen FAMILY_SPECS[{family!r}]"
        )

    def extract(self, item: Item, output: str) -> str:
        kind = FAMILY_SPECS[item.family].kind
        answer = extract_answer(output, kind)
        return _canonical_integer(answer) if kind == "number" else answer

    def is_correct(self, item: Item, answer: str) -> bool:
        """The generator's scorer, binarised: it gives partial credit (0.01) to wrong answers.

        Some scorers raise on an answer they cannot parse (prime_factorization on "2 x 31"):
        model text that a scorer cannot read is a wrong answer, not a crash.
        """
        entry = {"question": item.question, "answer": item.answer, "metadata": item.meta}
        try:
            return _scorer(item.family).score_answer(answer, entry) >= 0.999
        except (ValueError, TypeError, KeyError, IndexError, ArithmeticError):
            return False


def _item(family: str, split: str, index: int, entry: dict[str, Any]) -> Item:
    return Item(
        item_id=f"{family}-{split}-{index}",
        question=entry["question"],
        answer=entry["answer"],
        split=split,
        family=family,
        meta=_jsonable(entry["metadata"]),
    )


def _jsonable(value: Any) -> Any:
    """Metadata as the store will give it back (tuples become lists), so scoring and the
    rules teacher see the same shape before and after a round trip."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value if isinstance(value, (str, int, float, bool)) or value is None else str(value)


@cache
def _scorer(family: str):
    spec = FAMILY_SPECS[family]
    return reasoning_gym.create_dataset(spec.generator, seed=0, size=1, **spec.config)


def _canonical_integer(answer: str) -> str:
    """'12.0' and '+12' mean 12; the exact-match scorers (gcd, lcm, equations) would not
    credit them. Fractions and non-integral decimals pass through unchanged."""
    try:
        value = Decimal(answer)
    except InvalidOperation:
        return answer
    return str(int(value)) if value == value.to_integral_value() else answer


def trivial_baseline(items: Iterable[Item]) -> dict[str, float]:
    """Per family, the accuracy of always giving its most common answer (e.g. gcd "1"):
    the floor to report beside the student's accuracy."""
    answers: dict[str, list[str]] = defaultdict(list)
    for item in items:
        answers[item.family].append(item.answer)
    return {f: Counter(a).most_common(1)[0][1] / len(a) for f, a in answers.items()}

