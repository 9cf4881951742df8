"""LIM parity with the released LIMR selection semantics (DESIGN.md "LIM, exactly").

A hand-computed example fixes the numbers; a randomized comparison against a plain-Python
reference written from the semantics covers gaps, extra epochs, duplicates and unmatched prompts.
"""

from __future__ import annotations

import json
import random
from fractions import Fraction

import numpy as np
import pytest
from conftest import compose_cfg, write_dataset, write_step_dumps

from limr_exp.data import load_problem_file
from limr_exp.history import load_history, unmatched_id
from limr_exp.pipeline import run
from limr_exp.selection import SELECTORS, SelectionContext

# accuracy per epoch as rewards of 4 samples: 1 = correct; -0.5 wrong; -1 format error; 0.9999 is not 1
R = {0: [-0.5, -1, -0.5, 0.9999], 0.25: [1, -0.5, -1, -0.5], 0.5: [1, -0.5, 1, -1], 0.75: [1, 1, -0.5, 1], 1: [1, 1, 1, 1]}
CURVES = {  # None = absent from that epoch; the 4th epoch is past max_epochs=3
    "A": [0, 0.5, 1, 1], "B": [1, 1, 1, 1], "C": [0.5, None, 0.25, 1], "D": [0, 0, 0, 1], "E": [0.25, 0.5, 0.75, 1],
    "F": [0.5, None, None, 1], "G": [0.5, 0.5, None, 1], "H": [None, 0.75, 1, 1],
}
# by hand: scored A B C D E H; mean = (5/12, 1/2, 2/3); denominator = 101/144
EXPECTED = {"A": Fraction(60, 101), "B": Fraction(0), "C": Fraction(66, 101), "D": Fraction(-24, 101),
            "E": Fraction(96, 101), "H": Fraction(60, 101)}


def hand_example(tmp_path):
    epochs = [{p: R[c[k]] for p, c in CURVES.items() if c[k] is not None} for k in range(4)]
    dumps = write_step_dumps(tmp_path / "dumps", epochs, steps_per_epoch=2)
    prompts = ["A", "B", "C", "D", "E", "E", "F", "G", "H", "Z"]
    data = write_dataset(tmp_path / "d.json", prompts, ids=["a", "b", "c", "d", "e1", "e2", "f", "g", "h", "z"])
    return dumps, data


@pytest.mark.parametrize("theta,selected", [
    (0.6, {"c", "e1", "e2"}),
    (0.59, {"a", "c", "e1", "e2", "h"}),
    (0.0, {"a", "b", "c", "e1", "e2", "h"}),
    (1.0, set()),
])
def test_lim_hand_computed_example(tmp_path, theta, selected):
    dumps, data = hand_example(tmp_path)
    out = tmp_path / "out"
    cfg = compose_cfg(["stages=[select]", "selector=lim", f"theta={theta}", "dataset=file", f"dataset.path={data}",
                       f"trajectories.path={dumps}", "trajectories.steps_per_epoch=2", "trajectories.max_epochs=3",
                       "logger=[]"], output_dir=out)
    run(cfg)
    import pandas as pd

    scores = pd.read_parquet(out / "selection" / "scores.parquet").set_index("prompt_id")
    for pid, text in zip(["a", "b", "c", "d", "e1", "e2", "h"], "ABCDEEH"):
        assert abs(scores.loc[pid, "score"] - float(EXPECTED[text])) < 1e-9
    for pid in ("f", "g", "z"):  # two-epoch gap, missing last epoch, never trained: unscored
        assert pd.isna(scores.loc[pid, "score"]) and not scores.loc[pid, "selected"]
    got = {json.loads(line)["id"] for line in open(out / "selection" / "selected.jsonl")}
    assert got == selected == set(scores.index[scores["selected"]])
    first = json.loads(open(out / "selection" / "selected.jsonl").readline()) if selected else None
    if first:
        assert {"id", "prompt", "answer", "extra"} <= set(first)  # all original fields kept


def test_selected_subset_is_written_only_once_scores_and_figures_exist(tmp_path):
    """selected.jsonl is the last file the stage writes: if a figure can't be written, there is no subset
    (and no stale one from an earlier run)."""
    dumps, data = hand_example(tmp_path)
    out = tmp_path / "out"
    cfg = compose_cfg(["stages=[select]", "selector=lim", "dataset=file", f"dataset.path={data}",
                       f"trajectories.path={dumps}", "trajectories.steps_per_epoch=2", "logger=[]"], output_dir=out)
    run(cfg)
    assert (out / "selection" / "selected.jsonl").exists()
    for png in (out / "plots").iterdir():
        png.unlink()
    (out / "plots").rmdir()
    (out / "plots").write_text("a file where the plots folder belongs")
    with pytest.raises(OSError):
        run(cfg)
    assert not (out / "selection" / "selected.jsonl").exists()


def reference_lim(dump_dir, steps_per_epoch, max_epochs, dataset_rows, theta):
    """Plain-Python statement of the released script's semantics (independent of limr_exp)."""
    files = sorted(dump_dir.glob("step_*.json"), key=lambda p: int(p.stem.split("_")[1]))
    epochs = []
    for e in range(max_epochs):
        group = files[e * steps_per_epoch:(e + 1) * steps_per_epoch]
        if len(group) < steps_per_epoch:
            break
        samples = [s for f in group for s in json.loads(f.read_text())]
        epochs.append(samples)
    prompts = {s["prompt"].strip() for ep in epochs for s in ep}
    acc = {p: [] for p in prompts}
    for ep in epochs:
        counts = {}
        for s in ep:
            c = counts.setdefault(s["prompt"].strip(), [0, 0])
            c[1] += 1
            c[0] += s["reward"] == 1
        for p in prompts:
            acc[p].append(counts[p][0] / counts[p][1] if p in counts else -1)
    for seq in acc.values():
        for i in range(len(seq) - 1):
            if seq[i] == -1 and seq[i + 1] != -1:
                seq[i] = seq[i + 1]
    valid = {p: s for p, s in acc.items() if -1 not in s}
    mean = [sum(s[k] for s in valid.values()) / len(valid) for k in range(len(epochs))]
    denom = sum((1 - m) ** 2 for m in mean)
    scores = {p: 1 - sum((a - m) ** 2 for a, m in zip(s, mean)) / denom for p, s in valid.items()}
    chosen = {p for p, v in scores.items() if v >= theta}
    return scores, [r["id"] for r in dataset_rows if r["prompt"].strip() in chosen]


@pytest.mark.parametrize("seed", range(6))
def test_lim_matches_reference_on_random_logs(tmp_path, seed):
    rng = random.Random(seed)
    n_prompts, spe, max_epochs, extra_epochs = 40, 3, 5, 2
    texts = [f"Problem {i}: compute {rng.randint(1, 99)} things" for i in range(n_prompts)]
    texts[7] = texts[3]  # a text that occurs twice in the dataset
    history_texts = sorted(set(texts)) + ["not in the dataset 1", "  not in the dataset 2 "]
    skill = {t: (rng.random(), rng.uniform(-0.1, 0.2)) for t in history_texts}
    epochs = []
    for k in range(max_epochs + extra_epochs):
        epoch = {}
        for t in history_texts:
            if rng.random() < 0.15:  # absent from this epoch: one-epoch and longer gaps occur
                continue
            p = min(1.0, max(0.0, skill[t][0] + skill[t][1] * k))
            epoch[t] = [1.0 if rng.random() < p else rng.choice([-0.5, -1.0]) for _ in range(rng.choice([4, 8]))]
        epochs.append(epoch)
    dumps = write_step_dumps(tmp_path / "dumps", epochs, steps_per_epoch=spe)
    data = write_dataset(tmp_path / "d.json", texts)
    problems = load_problem_file(data)
    cfg = compose_cfg(["stages=[select]", "dataset=file", f"dataset.path={data}", f"trajectories.path={dumps}",
                       f"trajectories.steps_per_epoch={spe}", f"trajectories.max_epochs={max_epochs}"])
    history = load_history(cfg.trajectories, problems.text_to_first_id(), workers=1)
    for theta in (0.5, 0.6, 0.7):
        ref_scores, ref_selected = reference_lim(dumps, spe, max_epochs, problems.rows, theta)
        result = SELECTORS.get("lim")(cfg.selector).select(SelectionContext(problems, theta, 0, cfg.selector, history))
        assert [i for i, s in zip(result.ids, result.selected) if s] == ref_selected
        for row, score in zip(problems.rows, result.scores):
            ref = ref_scores.get(row["prompt"].strip())
            assert (ref is None and np.isnan(score)) or abs(ref - score) < 1e-9


def test_step_dumps_parse_in_parallel_identically(tmp_path):
    """Forked workers code the texts they read; the parent only names texts the dataset lacks. Both paths
    must give the same table: same ids (only those with rows), same rows, unmatched texts kept."""
    texts = [f"p{i}" for i in range(30)] + ["  p3\n", "not in the set", "also missing"]
    epochs = [{t: [1, -0.5] if (i + k) % 3 else [1, 1] for i, t in enumerate(texts)} for k in range(6)]
    dumps = write_step_dumps(tmp_path / "dumps", epochs, steps_per_epoch=2)
    cfg = compose_cfg([f"trajectories.path={dumps}", "trajectories.steps_per_epoch=2"])
    ids = {f"p{i}": f"id{i}" for i in range(40)}  # p30..p39 have no rows: not in the table
    one, two = load_history(cfg.trajectories, ids, workers=1), load_history(cfg.trajectories, ids, workers=2)
    assert one.prompt_ids == two.prompt_ids and (one.codes == two.codes).all() and (one.reward == two.reward).all()
    assert set(one.prompt_ids) == {f"id{i}" for i in range(30)} | {unmatched_id("not in the set"), unmatched_id("also missing")}
    named = [one.prompt_ids[c] for c in one.codes]
    assert named.count("id3") == 2 * named.count("id4")  # "  p3\n" is p3 once stripped
