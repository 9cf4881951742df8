"""The toy world's problem set: arithmetic problem families (DESIGN.md, "The toy world").

A family is a finite space of distinct problems of one kind, cut once (by a fixed rule) into a pretraining
half and a held-out half: the toy model's pretraining draws its solved examples only from the first, the
dataset's train and test splits only from the second, so every problem RL or evaluation sees is new to
the model (glimpsed problems, below, excepted). What a family means for the model is set by its
pretraining (`model.toy.pretrain_families`, `pretrain_weights`), which gives the miniature the structure
of LIMR's Figure 2a:

  add   two-digit plus one-digit (900 problems)     pretrained and boxed: already solved
  sub   two-digit minus one-digit (900 problems)    pretrained, rarely boxed: RL teaches it, gradually
  mul   two-digit times two-digit (8,100 problems)  never pretrained: unlearnable for this model

and, not in the default world, `add2` (two-digit plus two-digit, 8,100): pretrained on even left operands
only (`pretrain_weights` sets how much), so its held-out half (odd left operands) is structurally new.
RL teaches it as a skill, not a format: the held-out accuracy rises with the number of distinct add2
problems trained on (measured with weight 0.5, actor LR 2e-4, 80 steps on add2 alone: 50 / 100 / 150
distinct problems -> 22 / 38 / 51 % held-out add2, from 1 %), where
the boxing that `sub` teaches is learned from a handful of problems and carries over to every family.

Glimpsed problems (`Family.glimpsed`, add2 only): a fixed 128 of add2's held-out half that the pretraining
may show with half-right answers (`model.toy.pretrain_glimpses`), as a math model has half-seen its RL
training problems. With `dataset.toy.glimpsed_train: [add2]` add2's train split is drawn from those and its
test split from the never-seen rest (experiment=toy_glimpsed).

Train and test splits draw distinct problems without replacement, disjoint, in exact shares per
family (`dataset.toy.families`); both are a pure function of `dataset.toy.seed`. Answers are strings.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from functools import cache

from limr_exp.errors import ConfigError

# What the families and their pretraining halves are; part of every cache key built on the toy world (the
# toy model, its probes and base evaluations), so a checkout that changes them never reuses an older build.
WORLD_VERSION = "toy-world-2: held-out halves, add2"


@dataclass(frozen=True)
class Family:
    name: str
    description: str
    operator: str
    left: range
    right: range
    pretrain_on_even_left: bool = False  # the pretraining half: even left operands (else a fixed shuffle's first half)
    glimpsed: int = 0  # held-out problems the pretraining glimpsed: the train split draws from these, the test from the rest

    @property
    def size(self) -> int:
        return len(self.left) * len(self.right)

    def half(self, pretraining: bool) -> tuple[int, ...]:
        """The problem indices of the pretraining half (True) or of the held-out half the dataset draws from."""
        return _halves(self)[0 if pretraining else 1]

    def glimpsed_problems(self) -> tuple[int, ...]:
        """The held-out problems the pretraining may glimpse (a fixed shuffle's first `glimpsed`)."""
        return _glimpsed(self)[0]

    def never_seen(self) -> tuple[int, ...]:
        """The held-out problems outside the glimpsed ones."""
        return _glimpsed(self)[1]

    def problem(self, index: int) -> tuple[str, str]:
        """The (expression, answer) pair number `index` of this family's problem space."""
        a, b = self.left[index // len(self.right)], self.right[index % len(self.right)]
        value = {"+": a + b, "-": a - b, "*": a * b}[self.operator]
        return f"{a} {self.operator} {b}", str(value)


@cache
def _halves(fam: Family) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(pretraining half, held-out half) of a family's problem indices, each in index order."""
    if fam.pretrain_on_even_left:
        even = [fam.left[i // len(fam.right)] % 2 == 0 for i in range(fam.size)]
        return tuple(i for i, e in enumerate(even) if e), tuple(i for i, e in enumerate(even) if not e)
    order = list(range(fam.size))
    random.Random(f"toy-family-{fam.name}").shuffle(order)
    return tuple(sorted(order[:fam.size // 2])), tuple(sorted(order[fam.size // 2:]))


@cache
def _glimpsed(fam: Family) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(glimpsed, never seen): a fixed shuffle of the held-out half cut after `fam.glimpsed`, each in index order."""
    order = list(fam.half(pretraining=False))
    random.Random(f"toy-glimpsed-{fam.name}").shuffle(order)
    return tuple(sorted(order[:fam.glimpsed])), tuple(sorted(order[fam.glimpsed:]))


def glimpsing_family(name: str, key: str) -> Family:
    """The family `name`, named by config key `key`, which must have glimpsed problems (one line if not)."""
    fam = family(name)
    if not fam.glimpsed:
        raise ConfigError(f"{key}: family {name} has no glimpsed problems (those that have: "
                          f"{', '.join(f for f, other in FAMILIES.items() if other.glimpsed)})")
    return fam


FAMILIES = {f.name: f for f in (
    Family("add1", "one-digit plus one-digit", "+", range(0, 10), range(0, 10)),
    Family("add", "two-digit plus one-digit", "+", range(10, 100), range(0, 10)),
    Family("add2", "two-digit plus two-digit", "+", range(10, 100), range(10, 100), pretrain_on_even_left=True,
           glimpsed=128),
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
def _splits(n_train: int, n_test: int, shares: tuple[tuple[str, float], ...], seed: int,
            glimpsed_train: frozenset[str] = frozenset()) -> dict[str, tuple[dict, ...]]:
    rng = random.Random(seed)
    for name in sorted(glimpsed_train):
        if name not in dict(shares):
            raise ConfigError(f"dataset.toy.glimpsed_train names {name}, which is not in dataset.toy.families: give it a share")
        glimpsing_family(name, "dataset.toy.glimpsed_train")
    train_counts = split_counts(n_train, dict(shares), "dataset.toy.families")
    test_counts = split_counts(n_test, dict(shares), "dataset.toy.families")
    out: dict[str, list[dict]] = {"train": [], "test": []}
    for name in sorted(train_counts):
        fam = FAMILIES[name]
        if name in glimpsed_train:  # train from the glimpsed problems, test from the never-seen rest
            for split, pool, count in (("train", fam.glimpsed_problems(), train_counts[name]),
                                       ("test", fam.never_seen(), test_counts[name])):
                if count > len(pool):
                    what = "glimpsed problems (the train split draws from those)" if split == "train" else "never-seen problems"
                    raise ConfigError(f"toy family {name} has {len(pool)} {what}, fewer than the {count} its share asks "
                                      f"for: lower dataset.toy.n_{split} or {name}'s share")
            test, train = rng.sample(fam.never_seen(), test_counts[name]), rng.sample(fam.glimpsed_problems(), train_counts[name])
        else:
            need, held_out = train_counts[name] + test_counts[name], fam.half(pretraining=False)
            if need > len(held_out):
                raise ConfigError(f"toy family {name} has {len(held_out)} problems outside the pretraining, fewer than the "
                                  f"{need} its share asks for: lower dataset.toy.n_train/n_test or its share")
            drawn = rng.sample(held_out, need)
            test, train = drawn[:test_counts[name]], drawn[test_counts[name]:]
        for split, indices in (("test", test), ("train", train)):
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
    glimpsed = frozenset(str(f) for f in (toy_cfg.get("glimpsed_train") or ()))
    splits = _splits(int(toy_cfg.n_train), int(toy_cfg.n_test), shares, int(toy_cfg.seed), glimpsed)
    return {split: [dict(r) for r in rows] for split, rows in splits.items()}
