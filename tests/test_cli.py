"""The CLI as a user runs it: `python -m limr_exp ...` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from conftest import ROOT, cli_cases, write_dataset, write_step_dumps


def cli(*args, cwd=ROOT):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run([sys.executable, "-m", "limr_exp", *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


@pytest.fixture
def select_inputs(tmp_path):
    epochs = [{f"Problem {i}": [1.0] * min(8, k + i % 5) + [-0.5] * (8 - min(8, k + i % 5)) for i in range(20)} for k in range(5)]
    dumps = write_step_dumps(tmp_path / "dumps", epochs, steps_per_epoch=8)
    data = write_dataset(tmp_path / "d.json", [f"Problem {i}" for i in range(20)])
    return dumps, data


@pytest.mark.slow  # a CLI run (the fast tier starts the CLI only for its one-line error contract)
def test_select_stage_end_to_end(tmp_path, select_inputs):
    dumps, data = select_inputs
    out = tmp_path / "OUT"
    r = cli("stages=[select]", "selector=lim", "theta=0.6", "dataset=file", f"dataset.path={data}",
            f"trajectories.path={dumps}", "trajectories.steps_per_epoch=8", "trajectories.max_epochs=21",
            "logger=[]", f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr
    summary = [line for line in (r.stdout + r.stderr).splitlines() if "selection: lim" in line]
    assert summary and "scored 20 of 20 prompts, selected" in summary[0]
    import pandas as pd

    scores = pd.read_parquet(out / "selection" / "scores.parquet")
    assert list(scores.columns) == ["prompt_id", "score", "selected"] and len(scores) == 20
    rows = [json.loads(x) for x in open(out / "selection" / "selected.jsonl")]
    assert {r["id"] for r in rows} == set(scores.prompt_id[scores.selected]) and all("extra" in r for r in rows)
    for png in ("lim_trajectories.png", "score_histogram.png"):
        assert (out / "plots" / png).read_bytes()[:4] == b"\x89PNG"
    assert (out / ".hydra" / "config.yaml").exists()


@pytest.mark.parametrize("case", cli_cases("theta_text", "theta_range", "missing_dataset", "truncated_dataset", "no_answer",
                                           "empty_dataset", "missing_trajectories", "steps_zero", "truncated_scores"))
def test_bad_input_exits_with_one_clear_line(tmp_path, select_inputs, case):
    dumps, data = select_inputs
    out = tmp_path / "OUT"
    args = {"stages": "[select]", "selector": "lim", "theta": "0.6", "dataset": "file", "dataset.path": str(data),
            "trajectories.path": str(dumps), "trajectories.steps_per_epoch": "8", "logger": "[]"}
    bad = tmp_path / "bad.json"
    key = {"theta_text": "theta", "theta_range": "theta", "missing_dataset": "dataset.path", "truncated_dataset": "dataset.path",
           "no_answer": "dataset.answer_key", "empty_dataset": "dataset.path", "missing_trajectories": "trajectories.path",
           "steps_zero": "trajectories.steps_per_epoch", "truncated_scores": "selector.scores_path"}[case]
    if case == "theta_text":
        args["theta"] = "abc"
    elif case == "theta_range":
        args["theta"] = "1.5"
    elif case == "missing_dataset":
        args["dataset.path"] = str(tmp_path / "nope.json")
    elif case == "truncated_dataset":
        bad.write_text(data.read_text()[:50])
        args["dataset.path"] = str(bad)
    elif case == "no_answer":
        bad.write_text(json.dumps([{"id": "a", "prompt": "p"}]))
        args["dataset.path"] = str(bad)
    elif case == "empty_dataset":
        bad.write_text("")
        args["dataset.path"] = str(bad)
    elif case == "missing_trajectories":
        args["trajectories.path"] = str(tmp_path / "no_such_folder")
    elif case == "steps_zero":
        args["trajectories.steps_per_epoch"] = "0"
    elif case == "truncated_scores":
        bad.write_text('[{"prompt": "Problem 1", "score": 0.')
        args.update({"selector": "precomputed", "selector.scores_path": str(bad)})
    r = cli(*[f"{k}={v}" for k, v in args.items()], f"hydra.run.dir={out}")
    assert r.returncode != 0
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith("limr-exp: error: ") and key in err[0], r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    assert not (out / "selection" / "selected.jsonl").exists()


@pytest.mark.slow
def test_smoke_experiment_end_to_end(tmp_path):
    """experiment=smoke runs every stage: probe, LIM selection, training, evaluation, summary table."""
    out = tmp_path / "run"
    r = cli("experiment=smoke", f"cache_dir={tmp_path}/cache", f"hydra.run.dir={out}")
    assert r.returncode == 0, r.stderr[-3000:]
    for path in ("selection/scores.parquet", "selection/selected.jsonl", "plots/lim_trajectories.png",
                 "train/trajectories.parquet", "train/checkpoint/config.json", "train/checkpoint/model.safetensors",
                 "eval/toy_test.jsonl", "eval/metrics.json", "eval/base_metrics.json", "metrics.jsonl",
                 "train/steps.jsonl", "eval/step_1/metrics.json", "plots/training_curves.png"):
        assert (out / path).exists(), path
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    assert set(metrics) == {"benchmarks", "avg"} and metrics["benchmarks"]["toy_test"]["n_samples"] == 10 * 4
    groups = metrics["benchmarks"]["toy_test"]["groups"]  # accuracy per family, every sample counted once
    assert set(groups) == {"add", "sub", "mul"} and sum(g["n_samples"] for g in groups.values()) == 40
    assert abs(sum(g["acc"] * g["n_samples"] for g in groups.values()) / 40 - metrics["benchmarks"]["toy_test"]["acc"]) < 1e-9
    steps = [json.loads(line) for line in open(out / "train" / "steps.jsonl")]
    assert [r["step"] for r in steps] == [1, 2] and "eval/toy_test/acc" in steps[0] and "train/reward_mean" in steps[1]
    log_file = (out / "__main__.log").read_text()  # progress reaches the log file when output is not a terminal
    assert "probe: 4/4 steps (100%)" in log_file and "train: 2/2 steps (100%)" in log_file
    sample = json.loads(open(out / "eval" / "toy_test.jsonl").readline())
    assert {"prompt", "responses", "extracted", "rewards"} <= set(sample)
    tail = r.stdout.strip().splitlines()
    assert "limr-exp summary" in r.stdout and any(line.startswith("time eval") for line in tail[-4:])
    for stage in ("model build", "probe", "select", "train", "eval"):
        assert any(line.startswith(f"time {stage} ") for line in tail), stage
    assert any("accuracy toy_test" in line and "base" in line and "trained" in line for line in tail)


@pytest.mark.slow  # a CLI run (the fast tier starts the CLI only for its one-line error contract)
def test_training_bad_input_via_cli(tmp_path):
    r = cli("experiment=smoke", f"cache_dir={tmp_path}/cache", "ppo.rollout_batch_size=500", "stages=[train]",
            "logger=[]", f"hydra.run.dir={tmp_path}/run")
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode != 0 and len(err) == 1 and "ppo.rollout_batch_size" in err[0], r.stderr
    assert not (tmp_path / "run" / "train" / "checkpoint").exists()


@pytest.mark.slow  # a CLI run (the fast tier starts the CLI only for its one-line error contract)
def test_training_on_problems_without_a_reference_stops_with_one_line(tmp_path):
    data = tmp_path / "d.json"
    data.write_text(json.dumps([{"id": "a", "prompt": "What is 1+1?", "answer": "2"},
                                {"id": "b", "prompt": "What is 2+2?", "answer": ""}]))
    r = cli("experiment=smoke", "dataset=file", f"dataset.path={data}", "stages=[train]", "logger=[]",
            f"hydra.run.dir={tmp_path / 'OUT'}", f"cache_dir={tmp_path / 'cache'}")
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1] == (
        f"limr-exp: error: dataset.path={data}: 1 problem(s) have no reference answer (row 1 (id b)): "
        "fix them, or set dataset.drop_unanswered=true to leave them out")


@pytest.mark.slow
def test_grouping_by_a_field_the_problems_lack_is_one_line(tmp_path):
    r = cli("experiment=smoke", "stages=[eval]", "logger=[]", "eval.benchmarks.0.group_by=level", f"cache_dir={tmp_path}/cache",
            f"hydra.run.dir={tmp_path}/run")
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(err) == 1, r.stderr
    assert err[0].startswith("limr-exp: error: eval.benchmarks[toy_test].group_by=level: no problem of toy_test has that field")
