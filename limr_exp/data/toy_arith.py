"""The toy world's problem set: arithmetic problem families (DESIGN.md, "The toy world").

A family is a finite space of distinct problems of one kind. What a family means for the model is
set by the model's pretraining (`model.toy.pretrain_families`), which gives the miniature the
structure of LIMR's Figure 2a:

  add   two-digit plus one-digit (900 problems)    pretrained and boxed: already solved
  sub   two-digit minus one-digit (900 problems)   pretrained, rarely boxed: RL teaches it, gradually
  mul   two-digit times two-digit (8,100 problems) never pretrained: unlearnable for this model

Train and test splits draw distinct problems without replacement, disjoint, in exact shares per
family (`dataset.toy.families`); both are a pure function of `dataset.toy.seed`. Answers are strings.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from limr_exp.errors import ConfigError


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    operator: str
    left: range
    right: range

    @property
    def size(self) -> int:
        return len(self.left) * len(self.right)

    def problem(self, index: int) -> tuple[str, str]:
        """The (expression, answer) pair number `index` of this family's problem space."""
        a, b = self.left[index // len(self.right)], self.right[index % len(self.right)]
        value = {"+": a + b, "-": a - b, "*": a * b}[self.operator]
        return f"{a} {self.operator} {b}", str(value)


FAMILIES = {f.name: f for f in (
    Family("add1", "one-digit plus one-digit", "+", range(0, 10), range(0, 10)),
    Family("add", "two-digit plus one-digit", "+", range(10, 100), range(0, 10)),
    Family("sub", "two-digit minus one-digit", "-", range(10, 100), range(0, 10)),
    Family("mul", "two-digit times two-digit", "*", range(10, 100), range(10, 100)),
)}


def family(name: str) -> Family:
    if name not in FAMILIES:
        raise ConfigError(f"toy family {name!r} does not exist: use {', '.join(FAMILIES)}")
    return FAMILIES[name]


def prompt_text(expression: str) -> str:
    return f"What is {expression}?"


def split_counts(n: int, shares: dict[str, float], key: str) -> dict[str, int]:
    """n split over the families in proportion to their shares, exactly (largest remainder)."""
    if not shares:
        raise ConfigError(f"{key} is empty: give each family a share, e.g. {{add: 0.4, sub: 0.3, mul: 0.3}}")
    for name, share in shares.items():
        family(name)
        if not share >= 0:
            raise ConfigError(f"{key}.{name}={share} must be a non-negative share")
    total = sum(shares.values())
    if total <= 0:
        raise ConfigError(f"{key} has no positive share: give at least one family a share above 0")
    exact = {name: n * share / total for name, share in shares.items()}
    counts = {name: int(x) for name, x in exact.items()}
    for name in sorted(exact, key=lambda k: counts[k] - exact[k])[:n - sum(counts.values())]:
        counts[name] += 1
    return counts


@cache
def _splits(n_train: int, n_test: int, shares: tuple[tuple[str, float], ...], seed: int) -> dict[str, tuple[dict, ...]]:
    rng = random.Random(seed)
    train_counts = split_counts(n_train, dict(shares), "dataset.toy.families")
    test_counts = split_counts(n_test, dict(shares), "dataset.toy.families")
    out: dict[str, list[dict]] = {"train": [], "test": []}
    for name in sorted(train_counts):
        fam = FAMILIES[name]
        need = train_counts[name] + test_counts[name]
        if need > fam.size:
            raise ConfigError(f"toy family {name} has {fam.size} distinct problems, fewer than the {need} its share asks for: "
                              "lower dataset.toy.n_train/n_test or its share")
        drawn = rng.sample(range(fam.size), need)
        for split, indices in (("test", drawn[:test_counts[name]]), ("train", drawn[test_counts[name]:])):
            for i in indices:
                expr, answer = fam.problem(i)
                out[split].append({"prompt": prompt_text(expr), "answer": answer, "family": name, "expression": expr})
    for split, rows in out.items():
        random.Random(f"{seed}-{split}").shuffle(rows)  # families interleaved, as a real problem set
        for i, row in enumerate(rows):
            row["id"] = f"toy-{split}-{i:05d}"
    return {split: tuple(rows) for split, rows in out.items()}


def toy_splits(toy_cfg) -> dict[str, list[dict]]:
    """{'train': rows, 'test': rows} for the `dataset.toy` config (fresh row dicts on every call)."""
    shares = tuple(sorted((str(k), float(v)) for k, v in dict(toy_cfg.families).items()))
    splits = _splits(int(toy_cfg.n_train), int(toy_cfg.n_test), shares, int(toy_cfg.seed))
    return {split: [dict(r) for r in rows] for split, rows in splits.items()}
