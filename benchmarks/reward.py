"""Benchmark: limr_exp.rewards.score_batch against Math-Verify called pair by pair, and latency under threads.

10,000 responses built from every MATH-FULL answer, the two empty ones included (each problem gets one
response, kinds in turn: correct, correct after an earlier box, two equivalent rewrites, two wrong, one
unformatted, one format error; the rest of the 10,000 go round again), scored by
  - score_batch (format rule + fast paths + Math-Verify in worker processes), and
  - the same rule with Math-Verify's parse/verify called for every formatted pair, in process.
Prints both throughputs, the ratio, the agreement on the pairs that have a reference answer (the pairs
without one score -1 `no_reference` here; Math-Verify alone has no such rule), and lists the pairs where
they differ. Then single `judge` calls from 1, 4 and 16 threads at once: p50/p99/max seconds per call,
waiting for a worker included; and the first call of a fresh process (cold start), with and without the
background start that the OpenRLHF reward file and the local trainer make when they load.

    python benchmarks/reward.py [--n 10000] [--data ../shared/data/limr/math_full_8523.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import random
import re
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = Path(os.environ.get("LIMR_DATA_DIR", ROOT.parent / "shared" / "data" / "limr")) / "math_full_8523.json"

FILLER = ("Let's think step by step. First we rewrite the condition as an equation and simplify both sides. "
          "Substituting $x = {a}$ gives ${a}^2 + {b} = {c}$, and checking the other case rules it out. "
          "Combining the two observations, the quantity we want follows directly. ")


def rewrite(answer: str, rng: random.Random) -> str:
    """An equivalent spelling of `answer`, as a model might write it."""
    a = answer.strip()
    if re.fullmatch(r"-?\d+", a):
        return rng.choice([f"{a}.0", f"x = {a}", f"{a}\\text{{ units}}", f"\\frac{{{2 * int(a)}}}{{2}}"])
    m = re.fullmatch(r"(-?)\\[dt]?frac\{(\d+)\}\{(\d+)\}", a)
    if m:
        return rng.choice([f"{m.group(1)}{m.group(2)}/{m.group(3)}", f"{m.group(1)}\\dfrac{{{m.group(2)}}}{{{m.group(3)}}}"])
    if a.startswith("\\frac"):
        return "\\dfrac" + a[5:]
    if "," in a and a.startswith("("):
        return a.replace(",", ", ")
    if "=" in a:
        return a.replace("=", " = ")
    return rng.choice([f"\\left({a}\\right)" if not a.startswith("(") else a.replace("(", "\\left(", 1), f"y = {a}"])


def wrong(answer: str, others: list[str], rng: random.Random) -> str:
    a = answer.strip()
    if re.fullmatch(r"-?\d+", a):
        return str(int(a) + rng.choice([-2, -1, 1, 3]))
    other = rng.choice(others)
    return other if other != a else a + "+1"


def build(data_path: Path, n: int, seed: int = 0) -> tuple[list[str], list[str], list[str]]:
    rows = json.loads(data_path.read_text())
    rng = random.Random(seed)
    rng.shuffle(rows)
    answers = [r["answer"] for r in rows if r["answer"].strip()]
    responses, golds, kinds = [], [], []
    for k in range(n):
        gold = rows[k % len(rows)]["answer"]
        text = FILLER.format(a=rng.randint(1, 9), b=rng.randint(1, 9), c=rng.randint(10, 90))
        box = lambda x, text=text: f"{text}Therefore the answer is $\\boxed{{{x}}}$."  # noqa: E731
        kind = KINDS[k % len(KINDS)]
        if kind == "correct":
            response = box(gold)
        elif kind == "correct_last_box":
            response = f"A first guess is $\\boxed{{{wrong(gold, answers, rng)}}}$, but wait. " + box(gold)
        elif kind == "rewritten":
            response = box(rewrite(gold, rng))
        elif kind == "wrong":
            response = box(wrong(gold, answers, rng))
        elif kind == "unformatted":
            response = f"{text}Therefore the answer is {gold}."
        else:
            response = rng.choice([text + "".join(f"\\boxed{{{gold}}} " for _ in range(5)),
                                   f"{text}Therefore the answer is $\\boxed{{{gold}",
                                   text + "so so so so so " * 8 + box(gold)])
        responses.append(response)
        golds.append(gold)
        kinds.append(kind)
    return responses, golds, kinds


KINDS = ("correct", "correct_last_box", "rewritten", "rewritten", "wrong", "wrong", "unformatted", "format_error")


def math_verify_pair_by_pair(responses: list[str], golds: list[str]) -> list[float]:
    """LIMR's rule with Math-Verify parse+verify called for every formatted pair (the usual way)."""
    from math_verify import LatexExtractionConfig, parse, verify

    from limr_exp.rewards.extract import format_problem
    from limr_exp.rewards.settings import RewardSettings

    settings, cfg = RewardSettings(), [LatexExtractionConfig()]
    out = []
    for response, gold in zip(responses, golds):
        extracted, problem = format_problem(response, settings)
        if problem is not None:
            out.append(settings.format_error)
            continue
        try:
            ok = verify(parse(f"${gold}$", extraction_config=cfg, parsing_timeout=None),
                        parse(f"${extracted}$", extraction_config=cfg, parsing_timeout=None), timeout_seconds=None)
        except Exception:
            ok = False
        out.append(settings.correct if ok else settings.wrong)
    return out


def latency_table(responses: list[str], golds: list[str], thread_counts=(1, 4, 16), calls_per_thread: int = 40) -> None:
    """Single `judge` calls from N threads at once (as OpenRLHF calls a reward function): seconds per call."""
    from concurrent.futures import ThreadPoolExecutor

    from limr_exp.rewards import judge, shutdown, warm_up

    rng = random.Random(1)
    print(f"\nlatency of single judge() calls, N threads at once ({calls_per_thread} calls each, waiting included;"
          f" fresh workers each row, so no verdict is cached):")
    print(f"{'threads':>8} {'p50 s':>8} {'p99 s':>8} {'max s':>8} {'calls/s':>9}")
    for n in thread_counts:
        picks = [rng.randrange(len(responses)) for _ in range(n * calls_per_thread)]
        shutdown()
        warm_up()

        def timed(i):
            t = time.perf_counter()
            judge(responses[i], golds[i])
            return time.perf_counter() - t

        t0 = time.perf_counter()
        with ThreadPoolExecutor(n) as ex:
            seconds = sorted(ex.map(timed, picks))
        wall = time.perf_counter() - t0
        pct = lambda q, seconds=seconds: seconds[min(len(seconds) - 1, int(q * len(seconds)))]  # noqa: E731
        print(f"{n:>8} {pct(0.5):>8.4f} {pct(0.99):>8.4f} {seconds[-1]:>8.4f} {len(seconds) / wall:>9.0f}")


COLD = r"""
import sys, time
t0 = time.perf_counter()
from limr_exp.rewards import judge, warm_up
if sys.argv[1] == "background":
    warm_up(wait=False)  # as RewardFunction.__init__ / the local trainer do when they load
    time.sleep(float(sys.argv[2]))  # the engine goes on starting meanwhile
t = time.perf_counter()
judge("so $\\boxed{\\frac{1}{2}}$", "0.5")
caller = time.perf_counter() - t
t = time.perf_counter()
judge("so $\\boxed{(x+1)^2}$", "x^2+2x+1")
print(caller, time.perf_counter() - t)
"""


def cold_start() -> None:
    """The first calls of a fresh process: one the caller decides, then one that needs Math-Verify."""
    import subprocess
    import sys

    print("\nfirst calls of a fresh process (seconds): decided in the caller / needing Math-Verify (a worker)")
    for label, args in (("cold, no background start", ["cold"]), ("background start at load, first call 5 s later", ["background", "5"])):
        out = subprocess.run([sys.executable, "-c", COLD, *args], capture_output=True, text=True, cwd=ROOT, check=True).stdout.split()
        print(f"  {label:<48} {float(out[0]):7.4f} / {float(out[1]):7.4f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--baseline-n", type=int, default=0, help="pairs timed for Math-Verify (default: all)")
    args = ap.parse_args()
    logging.disable(logging.WARNING)
    from limr_exp.rewards import has_reference, judge_batch, warm_up

    responses, golds, kinds = build(args.data, args.n)
    warm_up()  # start the verifier processes before timing (a one-off cost per training run)
    t = time.perf_counter()
    ours = judge_batch(responses, golds)
    ours_s = time.perf_counter() - t
    n_base = args.baseline_n or len(responses)
    t = time.perf_counter()
    base = math_verify_pair_by_pair(responses[:n_base], golds[:n_base])
    base_s = time.perf_counter() - t
    ours_rate, base_rate = len(responses) / ours_s, n_base / base_s
    referenced = [i for i in range(n_base) if has_reference(golds[i])]
    agree = sum(ours[i].reward == base[i] for i in referenced)
    no_ref = [ours[i] for i in range(len(responses)) if not has_reference(golds[i])]
    print(f"pairs: {len(responses)} ({', '.join(f'{k} {kinds.count(k)}' for k in dict.fromkeys(kinds))}) "
          f"over {len(set(golds))} distinct answers")
    print(f"without a reference answer: {len(no_ref)} pairs, rewards {sorted({j.reward for j in no_ref})}, "
          f"reasons {sorted({j.reason for j in no_ref})}")
    print(f"score_batch:              {ours_s:7.2f} s  {ours_rate:9.0f} pairs/s")
    print(f"Math-Verify pair by pair: {base_s:7.2f} s  {base_rate:9.0f} pairs/s  ({n_base} pairs)")
    print(f"speed-up: {ours_rate / base_rate:.1f}x   agreement on pairs with a reference: "
          f"{agree}/{len(referenced)} = {100 * agree / len(referenced):.2f}%")
    for i in referenced:
        if ours[i].reward != base[i]:
            print(f"  differs [{kinds[i]}] gold={golds[i]!r} answer={ours[i].extracted!r}: "
                  f"ours {ours[i].reward} ({ours[i].reason}), math-verify {base[i]}")
    latency_table(responses, golds)
    cold_start()


if __name__ == "__main__":
    main()
