"""The toy world's problem set: seeded arithmetic with difficulty levels (DESIGN.md, "The toy world").

Level 1: one-digit sums; 2: a two-digit plus a one-digit number; 3: two-digit sums and
differences; 4: one-digit times two-digit; 5: short chains (a * b + c). Answers are strings. Train and test splits are
disjoint and a pure function of the seed.
"""

from __future__ import annotations

import random

from limr_exp.data.problems import ProblemSet
from limr_exp.errors import ConfigError

MAX_LEVEL = 5


def make_problem(level: int, rng: random.Random) -> tuple[str, str]:
    """One (expression, answer) pair of the given difficulty level."""
    r = rng.randint
    if level == 1:
        a, b = r(0, 9), r(0, 9)
        return f"{a} + {b}", str(a + b)
    if level == 2:
        a, b = r(10, 99), r(0, 9)
        return f"{a} + {b}", str(a + b)
    if level == 3:
        a, b = r(10, 99), r(10, 99)
        if rng.random() < 0.5:
            return f"{a} + {b}", str(a + b)
        a, b = max(a, b), min(a, b)
        return f"{a} - {b}", str(a - b)
    if level == 4:
        a, b = r(2, 9), r(10, 99)
        return f"{a} * {b}", str(a * b)
    if level == 5:
        a, b, c = r(2, 9), r(11, 99), r(10, 99)
        return f"{a} * {b} + {c}", str(a * b + c)
    raise ConfigError(f"toy level {level} does not exist: use levels between 1 and {MAX_LEVEL}")


def prompt_text(expression: str) -> str:
    return f"What is {expression}?"


def generate(n: int, levels: list[int], rng: random.Random, exclude: set[str]) -> list[dict]:
    """n distinct problems spread evenly over the levels, none of whose expressions is in `exclude`."""
    rows: list[dict] = []
    attempts = 0
    while len(rows) < n:
        level = levels[len(rows) % len(levels)]
        expr, answer = make_problem(level, rng)
        attempts += 1
        if attempts > 200 * max(n, 1):
            raise ConfigError(f"cannot draw {n} distinct toy problems at levels {levels}: lower dataset.toy.n_train/n_test")
        if expr in exclude:
            continue
        exclude.add(expr)
        rows.append({"prompt": prompt_text(expr), "answer": answer, "level": level, "expression": expr})
    return rows


def toy_splits(toy_cfg) -> dict[str, list[dict]]:
    levels = [int(x) for x in toy_cfg.levels]
    if not levels:
        raise ConfigError("dataset.toy.levels is empty: list difficulty levels, e.g. [1, 2, 3, 4, 5]")
    for lv in levels:
        if not 1 <= lv <= MAX_LEVEL:
            raise ConfigError(f"dataset.toy.levels has {lv}: levels run from 1 to {MAX_LEVEL}")
    rng = random.Random(toy_cfg.seed)
    seen: set[str] = set()
    test = generate(toy_cfg.n_test, levels, rng, seen)
    train = generate(toy_cfg.n_train, levels, rng, seen)
    out = {}
    for split, rows in (("train", train), ("test", test)):
        for i, row in enumerate(rows):
            row["id"] = f"toy-{split}-{i:05d}"
        out[split] = rows
    return out


def toy_problem_set(toy_cfg, split: str = "train") -> ProblemSet:
    if split not in ("train", "test"):
        raise ConfigError(f"the toy dataset has splits train and test, not {split!r}")
    rows = toy_splits(toy_cfg)[split]
    return ProblemSet(f"toy_arith-{split}", rows, source=f"toy_arith(seed={toy_cfg.seed})")
