"""Every selector through the registry, on one small reward history."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import compose_cfg, write_dataset

from limr_exp.data import load_problem_file
from limr_exp.errors import ConfigError, DataError
from limr_exp.history import History
from limr_exp.registry import Registry
from limr_exp.selection import SELECTORS, SelectionContext
from limr_exp.selection.lim import lim_scores, linear_baseline

ACC = {  # per-prompt accuracy over 4 epochs, 4 samples each
    "learns": [0.0, 0.25, 0.75, 1.0], "always": [1.0, 1.0, 1.0, 1.0], "never": [0.0, 0.0, 0.0, 0.0],
    "half": [0.5, 0.5, 0.5, 0.5], "noisy": [1.0, 0.0, 1.0, 0.0], "slow": [0.0, 0.0, 0.25, 0.5],
}


def history() -> History:
    ids, codes, epochs, rewards = list(ACC), [], [], []
    for c, curve in enumerate(ACC.values()):
        for k, a in enumerate(curve):
            n_ok = round(a * 4)
            for s in range(4):
                codes.append(c)
                epochs.append(k + 1)
                rewards.append(1.0 if s < n_ok else -0.5)
    return History.build(ids, codes, epochs, epochs, rewards)


@pytest.fixture
def problems(tmp_path):
    return load_problem_file(write_dataset(tmp_path / "d.json", list(ACC), ids=list(ACC)))


def select(name, problems, theta=0.6, seed=0, **selector_kw):
    cfg = compose_cfg([f"selector={name}"] + [f"selector.{k}={v}" for k, v in selector_kw.items()])
    ctx = SelectionContext(problems, theta, seed, cfg.selector, history())
    return SELECTORS.get(name)(cfg.selector).select(ctx)


def chosen(result):
    return {i for i, s in zip(result.ids, result.selected) if s}


def test_registry_lists_every_selector_and_rejects_duplicates():
    assert SELECTORS.names() == ["full", "learnability", "lim", "linear", "precomputed", "random", "variance"]
    with pytest.raises(ValueError, match="registered twice"):
        SELECTORS.register("lim")(object)
    with pytest.raises(ConfigError, match="unknown selector 'nope'"):
        SELECTORS.get("nope")
    r = Registry("thing", "thing")
    r.register("a")(1)
    assert r.get("a") == 1 and "a" in r


def test_lim_scores_formula():
    acc = np.array([[0.0, 0.5, 1.0]])
    mean = np.array([0.25, 0.5, 0.75])
    expected = 1 - (0.0625 + 0 + 0.0625) / (0.5625 + 0.25 + 0.0625)
    assert lim_scores(acc, mean)[0] == pytest.approx(expected, abs=1e-12)


def test_lim_scores_every_prompt_against_the_mean_curve(problems):
    r = select("lim", problems, theta=0.0)
    acc = np.array(list(ACC.values()))
    mean = acc.mean(axis=0)
    expected = 1 - ((acc - mean) ** 2).sum(axis=1) / ((1 - mean) ** 2).sum()
    assert r.scores == pytest.approx(expected, abs=1e-12)
    assert chosen(select("lim", problems, theta=0.6)) == {p for p, e in zip(ACC, expected) if e >= 0.6}


def test_linear_uses_the_least_squares_line(problems):
    mean = np.array([0.375, 0.2917, 0.5833, 0.5])
    line = linear_baseline(mean)
    slope, intercept = np.polyfit([1, 2, 3, 4], mean, 1)
    assert line == pytest.approx(np.clip(intercept + slope * np.arange(1, 5), 0, 1))
    assert linear_baseline(np.array([0.0, 0.5, 1.0, 1.0])).max() <= 1.0  # clipped
    r_lin, r_lim = select("linear", problems, theta=0.0), select("lim", problems, theta=0.0)
    assert not np.allclose(r_lin.scores, r_lim.scores)


def test_random_is_seeded_and_sized_like_lim_by_default(problems):
    n_lim = select("lim", problems, theta=0.3).n_selected
    a, b = select("random", problems, theta=0.3, seed=1), select("random", problems, theta=0.3, seed=1)
    assert a.n_selected == n_lim and chosen(a) == chosen(b)
    assert {frozenset(chosen(select("random", problems, theta=0.3, seed=s))) for s in range(10)} != {frozenset(chosen(a))}
    assert select("random", problems, size=2).n_selected == 2
    with pytest.raises(ConfigError, match="larger than the dataset"):
        select("random", problems, size=50)


def test_full_keeps_everything_without_history(problems):
    r = select("full", problems)
    assert chosen(r) == set(ACC) and np.isnan(r.scores).all()
    assert not SELECTORS.get("full")(None).needs_history()


def test_variance_and_learnability(problems):
    v = select("variance", problems, theta=0.0)
    s = dict(zip(v.ids, v.scores))
    assert s["noisy"] == pytest.approx(0.5) and s["always"] == 0.0
    assert chosen(select("variance", problems, size=2)) == {"noisy", "learns"}
    learn = select("learnability", problems, theta=0.99)
    assert chosen(learn) == {"half"}
    ls = dict(zip(learn.ids, learn.scores))
    assert ls["half"] == pytest.approx(1.0) and ls["never"] == 0.0 and ls["noisy"] == 0.0


def test_precomputed_by_text_and_by_id(problems, tmp_path):
    by_text = tmp_path / "scores.json"
    by_text.write_text(json.dumps([{"prompt": "learns", "score": 0.9}, {"prompt": "half", "score": 0.6},
                                   {"prompt": "never", "score": 0.59}]))
    assert chosen(select("precomputed", problems, scores_path=by_text)) == {"learns", "half"}  # >= theta
    csv = tmp_path / "scores.csv"
    pd.DataFrame({"prompt_id": ["slow", "always"], "score": [0.7, 0.1]}).to_csv(csv, index=False)
    assert chosen(select("precomputed", problems, scores_path=csv)) == {"slow"}
    parquet = tmp_path / "scores.parquet"
    pd.DataFrame({"prompt_id": ["noisy"], "score": [1.0]}).to_parquet(parquet)
    assert chosen(select("precomputed", problems, scores_path=parquet)) == {"noisy"}


@pytest.mark.parametrize("content,message", [
    ('[{"prompt": "learns", "sco', "the file is truncated"),
    ("", "is empty"),
    ('[{"prompt": "learns"}]', "needs columns"),
    ('[{"prompt": "unknown text", "score": 1}]', "matches the dataset"),
])
def test_bad_scores_files(problems, tmp_path, content, message):
    path = tmp_path / "s.json"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        select("precomputed", problems, scores_path=path)


def test_published_scores_reproduce_the_released_subset(shared_data, tmp_path):
    """LIMR's lim_scores.json at theta=0.6 on MATH-FULL selects exactly the released 1,389 problems."""
    from limr_exp.pipeline import run

    out = tmp_path / "out"
    run(compose_cfg(["experiment=limr_published", f"data_root={shared_data}", "logger=[]"], output_dir=out))
    selected = {json.loads(line)["id"] for line in open(out / "selection" / "selected.jsonl")}
    released = load_problem_file(shared_data / "limr_subset_hf", prompt_key="context")
    assert len(selected) == 1389 and selected == set(released.ids)
    assert (out / "plots" / "score_histogram.png").stat().st_size > 10_000


@pytest.mark.parametrize("curves,warned", [
    ({"solved": [1, 1, 1, 1], "rising": [0.0, 0.5, 1, 1], "never": [0, 0, 0, 0]}, False),  # mean 0.33 -> 0.67: scores -0.4
    ({"rising": [0.0, 0.25, 0.5, 0.5], "never": [0, 0, 0, 0], "never2": [0, 0, 0, 0]}, True),  # mean stays low
])
def test_selection_says_what_a_never_solved_prompt_scores(tmp_path, caplog, curves, warned):
    import logging

    from limr_exp.history import write_table
    from limr_exp.pipeline import run

    data = tmp_path / "d.jsonl"
    data.write_text("".join(json.dumps({"id": name, "prompt": f"Problem {name}", "answer": "1"}) + "\n" for name in curves))
    ids, codes, epochs, rewards = [], [], [], []
    for code, (name, accs) in enumerate(curves.items()):
        for epoch, acc in enumerate(accs, 1):
            for k in range(4):  # four samples per epoch, acc of them correct
                ids.append(name) if epoch == 1 and k == 0 else None
                codes.append(code), epochs.append(epoch), rewards.append(1.0 if k < 4 * acc else -0.5)
    write_table(History.build(list(curves), codes, epochs, epochs, rewards), tmp_path / "h.parquet")
    caplog.set_level(logging.INFO, logger="limr_exp")
    run(compose_cfg(["stages=[select]", "dataset=file", f"dataset.path={data}", f"trajectories.path={tmp_path / 'h.parquet'}",
                     "logger=[]", "theta=0.6"], output_dir=tmp_path / "run"))
    said = [r for r in caplog.records if "never-solved prompt scores" in r.message]
    assert said and any(r.levelname == "WARNING" for r in said) == warned
    if warned:
        assert any("probe.episodes" in r.message for r in said if r.levelname == "WARNING")


# -- probe.stop_when_stable: when the selection has settled ------------------------------------------------

def realistic_history(n_prompts: int = 300, epochs: int = 12, samples: int = 8, seed: int = 0):
    """A probe's history with the shapes of LIMR's Figure 2a, not straight ramps: never-solved prompts,
    quick learners (a steep logistic early), gradual learners (a shallow logistic, some late), solved from
    the start, and noisy plateaus; every accuracy is a binomial draw of `samples` samples."""
    import numpy as np

    from limr_exp.history import History

    rng = np.random.default_rng(seed)
    kinds = rng.choice(["never", "quick", "gradual", "solved", "plateau"], size=n_prompts, p=[0.25, 0.2, 0.3, 0.15, 0.1])
    k = np.arange(1, epochs + 1)
    codes, epoch, step, reward = [], [], [], []
    for i, kind in enumerate(kinds):
        if kind == "never":
            p = np.zeros(epochs)
        elif kind == "solved":
            p = np.full(epochs, 0.95)
        elif kind == "plateau":
            p = np.full(epochs, rng.uniform(0.3, 0.6))
        else:
            mid, slope = (rng.uniform(1.5, 3.5), rng.uniform(1.5, 3.0)) if kind == "quick" else (rng.uniform(3, 9), rng.uniform(0.4, 0.9))
            p = 0.05 + 0.9 / (1 + np.exp(-slope * (k - mid)))
        for e in range(epochs):
            hits = rng.binomial(samples, p[e])
            codes += [i] * samples
            epoch += [e + 1] * samples
            step += [e + 1] * samples
            reward += [1.0] * hits + [-0.5] * (samples - hits)
    return History.build([f"p{i}" for i in range(n_prompts)], codes, epoch, step, reward), kinds


def test_a_settled_selection_is_close_to_the_full_probes():
    """On a realistic history, LIM's selection settles well before the last epoch, and where it settles it
    is within Jaccard 0.8 of the full history's selection."""
    from limr_exp.data import ProblemSet
    from limr_exp.selection.stability import first_epochs, jaccard, selection_after, stability_curve, stop_epoch

    history, _ = realistic_history()
    problems = ProblemSet("p", [{"id": f"p{i}", "prompt": f"p{i}", "answer": "1"} for i in range(300)])
    cfg = compose_cfg(["selector=lim"]).selector
    curve = stability_curve(history, problems, 0.6, cfg)
    assert len(curve) == 11 and all(0 <= j <= 1 for j in curve)
    defaults = compose_cfg().probe  # the shipped stable_jaccard and stable_epochs
    stop = stop_epoch(curve, defaults.stable_jaccard, defaults.stable_epochs)
    assert stop is not None and stop <= 8  # at most 2/3 of the 12 epochs
    full, _ = selection_after(history, problems, 0.6, cfg)
    early, settled = selection_after(first_epochs(history, stop), problems, 0.6, cfg)
    assert settled and jaccard(early, full) >= 0.8
    naive = [jaccard(selection_after(first_epochs(history, k), problems, 0.6, cfg)[0],
                     selection_after(first_epochs(history, k + 1), problems, 0.6, cfg)[0]) for k in (1, 2)]
    assert min(naive) >= 0.9  # agreement alone would have stopped after epoch 3, where never-solved prompts are kept
    assert jaccard(selection_after(first_epochs(history, 3), problems, 0.6, cfg)[0], full) < 0.6


def test_stability_helpers():
    from limr_exp.selection.stability import is_stable, jaccard, stop_epoch

    assert jaccard(set(), set()) == 1.0 and jaccard({1, 2}, {2, 3}) == 1 / 3
    assert stop_epoch([0.5, 0.95, 0.97], 0.9, 2) == 4 and stop_epoch([0.5, 0.95, 0.5], 0.9, 2) is None
    assert is_stable([0.95], 0.9, 1) and not is_stable([0.95], 0.9, 2)
