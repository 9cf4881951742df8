"""Benchmark: `stages=[select]` on LIMR-scale step dumps, interpreter start included.

Builds synthetic step dumps (8,523 prompts x 21 epochs x 8 samples = 168 files of step_{n}.json,
~180 MB; `--scale 10` for 10x the prompts) once under outputs/bench/, then runs the CLI as a user
would and prints wall time and peak RSS (as /usr/bin/time reports it), then the process tree's memory
(sampled in a separate run, as sampling would slow the timed ones).

    python benchmarks/selection.py [--scale 1] [--repeats 3] [--released path/to/lim_selection.py]

With `--released` (LIMR's own `lim/lim_selection.py`, from github.com/GAIR-NLP/LIMR) the released
script runs on the same files in the same run, alternating with ours, and the ratios are printed.
Targets: under 2 s at scale 1; at scale 10 at least 5x faster and at most 1/5 of the released
script's memory.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
N_PROMPTS, EPOCHS, STEPS_PER_EPOCH, SAMPLES = 8523, 21, 8, 8


def build(folder: Path, scale: int, seed: int = 0) -> tuple[Path, Path]:
    """Synthetic dumps in the LIMR/OpenRLHF format: each step file is a list of {prompt, response, reward}."""
    dumps, dataset = folder / "dumps", folder / "dataset.json"
    if (folder / "done").exists():
        return dumps, dataset
    dumps.mkdir(parents=True, exist_ok=True)
    n = N_PROMPTS * scale
    rng = np.random.default_rng(seed)
    prompts = [f"Problem {i:06d}: find the value of x in the equation number {i}." for i in range(n)]
    dataset.write_text(json.dumps([{"id": f"id-{i}", "prompt": p, "answer": str(i % 97)} for i, p in enumerate(prompts)]))
    start = rng.uniform(0, 1, n)  # per-prompt learning curves: start level and speed
    speed = rng.uniform(-0.02, 0.08, n)
    rewards = np.array([1.0, -0.5, -1.0])
    step = 0
    for epoch in range(EPOCHS):
        p = np.clip(start + speed * epoch, 0, 1)
        order = rng.permutation(n)
        for chunk in np.array_split(order, STEPS_PER_EPOCH):
            step += 1
            recs = []
            for i in chunk:
                ok = rng.random(SAMPLES) < p[i]
                for s in range(SAMPLES):
                    r = 1.0 if ok[s] else float(rewards[1 + (s % 2)])
                    recs.append({"prompt": prompts[i], "response": f"... so x = {i % 97}. \\boxed{{{i % 97 if ok[s] else 0}}}", "reward": r})  # noqa: E501
            (dumps / f"step_{step}.json").write_text(json.dumps(recs))
    (folder / "done").touch()
    return dumps, dataset


def command(dumps: Path, dataset: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "limr_exp", "stages=[select]", "selector=lim", "theta=0.6", "dataset=file",
            f"dataset.path={dataset}", f"trajectories.path={dumps}", "trajectories.steps_per_epoch=8",
            "trajectories.max_epochs=21", "logger=[]", f"hydra.run.dir={out}"]


def released_command(script: Path, dumps: Path, dataset: Path, out: Path) -> list[str]:
    return [sys.executable, str(script), "--train_samples_path", str(dumps), "--original_prompts_path", str(dataset),
            "--output_path", str(out / "filtered.json"), "--steps_per_epoch", "8", "--max_epochs", "21",
            "--similarity_threshold", "0.6"]


def run_once(cmd: list[str]) -> tuple[float, float, str]:
    """Wall time and peak RSS as /usr/bin/time reports them: the largest ru_maxrss of the command and
    the children it waited for. Nothing samples the process meanwhile, so the timing is undisturbed."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    output = proc.stdout.read().decode()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"selection failed:\n{output}")
    return wall, usage.ru_maxrss / 1024, output.strip().splitlines()[-1]


def tree_memory(dumps: Path, dataset: Path, out: Path) -> tuple[float, float]:
    """Peak over time of the whole process tree's memory, sampled every 10 ms: the sum of RSS (which
    counts pages that forked workers share with the parent once per process) and of PSS (which splits them)."""
    import psutil

    proc = subprocess.Popen(command(dumps, dataset, out), cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ps, peak_rss, peak_pss = psutil.Process(proc.pid), 0, 0
    while proc.poll() is None:
        rss = pss = 0
        try:
            for p in [ps] + ps.children(recursive=True):
                m = p.memory_full_info()
                rss, pss = rss + m.rss, pss + m.pss
        except psutil.Error:
            pass
        peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
        time.sleep(0.01)
    return peak_rss / 2**20, peak_pss / 2**20


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--scale", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--released", type=Path, default=None, help="LIMR's lim/lim_selection.py, run side by side")
    args = ap.parse_args()
    folder = ROOT / "outputs" / "bench" / f"step_dumps_x{args.scale}"
    t = time.perf_counter()
    dumps, dataset = build(folder, args.scale)
    size = sum(f.stat().st_size for f in dumps.iterdir()) / 1e6
    print(f"dumps: {len(list(dumps.iterdir()))} files, {size:.0f} MB ({time.perf_counter() - t:.1f} s to build or find)")
    results, released = [], []
    for _ in range(args.repeats):  # alternating, so both see the same machine
        with tempfile.TemporaryDirectory() as out:
            results.append(run_once(command(dumps, dataset, Path(out))))
        if args.released is not None:
            with tempfile.TemporaryDirectory() as out:
                released.append(run_once(released_command(args.released, dumps, dataset, Path(out))))
    walls, rss = [r[0] for r in results], [r[1] for r in results]
    print(results[-1][2])
    print(f"stages=[select] x{args.scale}: wall {min(walls):.2f} s best, {np.median(walls):.2f} s median "
          f"({args.repeats} runs); peak RSS {max(rss):.0f} MB (largest process, as /usr/bin/time reports)")
    if released:
        r_walls, r_rss = [r[0] for r in released], [r[1] for r in released]
        print(f"released lim_selection.py x{args.scale}: {released[-1][2]}; wall {min(r_walls):.2f} s best, "
              f"{np.median(r_walls):.2f} s median; peak RSS {max(r_rss):.0f} MB")
        print(f"ratio: {np.median(r_walls) / np.median(walls):.1f}x faster (medians), "
              f"{max(r_rss) / max(rss):.1f}x less memory (peak RSS)")
    with tempfile.TemporaryDirectory() as out:
        tree_rss, tree_pss = tree_memory(dumps, dataset, Path(out))
    print(f"process tree (main, parse workers), peak of the sums: PSS {tree_pss:.0f} MB, "
          f"RSS {tree_rss:.0f} MB (RSS counts pages shared after fork once per process)")


if __name__ == "__main__":
    main()
