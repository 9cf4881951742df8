"""Multiruns as researchers run them: W&B and MLflow read back, the report, failures, the notebook."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT
from test_cli import cli

from limr_exp.config import run_name
from limr_exp.report import main as report_main

pytestmark = pytest.mark.slow  # multiruns of the CLI


def wandb_records(run_file: Path):
    """The records of an offline W&B run file (LevelDB-log framing of wandb_internal_pb2.Record)."""
    from wandb.proto import wandb_internal_pb2 as pb

    data, pos, block, pending = run_file.read_bytes(), 7, 32768, b""
    while pos + 7 <= len(data):
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        length, kind = int.from_bytes(data[pos + 4:pos + 6], "little"), data[pos + 6]
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 0:
            continue
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(pending + chunk)
            pending = b""
            yield record
        else:
            pending = (pending if kind == 3 else b"") + chunk


def history_value(item):
    """A logged value: JSON-encoded in older files, a typed field in newer ones."""
    if item.value_json:
        return json.loads(item.value_json)
    oneof = item.DESCRIPTOR.oneofs[0].name if item.DESCRIPTOR.oneofs else None
    return getattr(item, item.WhichOneof(oneof)) if oneof and item.WhichOneof(oneof) else None


def wandb_summary(job: Path) -> dict:
    files = list((job / "wandb").glob("offline-run-*/run-*.wandb"))
    assert len(files) == 1, files
    out = {"history": {}}
    for rec in wandb_records(files[0]):
        kind = rec.WhichOneof("record_type")
        if kind == "run":
            out.update(group=rec.run.run_group, job_type=rec.run.job_type, name=rec.run.display_name,
                       config={i.key: json.loads(i.value_json) for i in rec.run.config.update})
        elif kind == "history":
            for item in rec.history.item:
                out["history"][item.key or "/".join(item.nested_key)] = history_value(item)
        elif kind == "exit":
            out["exit_code"] = rec.exit.exit_code
    return out


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    s = tmp_path_factory.mktemp("sweep")
    r = cli("-m", "experiment=smoke", "selector=lim,linear", "theta=0.4,0.6", f"hydra.sweep.dir={s}",
            f"logger.mlflow.tracking_uri=sqlite:///{s}/mlflow.db", f"cache_dir={s}/cache")
    assert r.returncode == 0, r.stderr[-3000:]
    return s


def test_run_names_tell_runs_apart():
    assert run_name("lim", 0.6, None, 42) == "lim-theta0.6-seed42"
    assert run_name("random", 0.6, 1389, 1) == "random-n1389-seed1"
    assert run_name("full", 0.6, None, 3) == "full-seed3"


def test_sweep_jobs_have_results_and_wandb_runs_carry_the_group(sweep):
    jobs = sorted(p for p in sweep.iterdir() if (p / ".hydra").is_dir())
    assert [j.name for j in jobs] == ["0_lim-theta0.4-seed42", "1_lim-theta0.6-seed42", "2_linear-theta0.4-seed42",
                                      "3_linear-theta0.6-seed42"]
    group = json.loads((sweep / "multirun.json").read_text())["id"]
    for job in jobs:
        assert (job / "eval" / "metrics.json").exists()
        w = wandb_summary(job)
        assert w["group"] == group and w["job_type"] == job.name.split("_")[1].split("-")[0]
        assert w["name"].startswith(job.name.split("_", 1)[1] + "-") and w.get("exit_code", 0) == 0  # + the time stamp
        assert "eval/toy_test/acc" in w["history"] and "selection/n_selected" in w["history"]
        assert w["config"]["theta"] in (0.4, 0.6)


def test_mlflow_parent_with_nested_runs(sweep):
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{sweep}/mlflow.db")
    info = json.loads((sweep / "multirun.json").read_text())
    parent = client.get_run(info["mlflow_parent_run_id"])
    assert parent.info.status == "FINISHED"
    children = client.search_runs([parent.info.experiment_id], filter_string=f"tags.mlflow.parentRunId = '{parent.info.run_id}'")
    assert len(children) == 4
    for run in children:
        assert run.info.status == "FINISHED"
        assert run.data.params["selector.name"] in ("lim", "linear") and run.data.params["theta"] in ("0.4", "0.6")
        assert "eval/toy_test/acc" in run.data.metrics and "selection/n_selected" in run.data.metrics
        names = [a.path for a in client.list_artifacts(run.info.run_id)]
        assert {"dataset", "eval", "plots"} <= set(names)


def test_report_has_a_row_per_job_and_plots(sweep):
    frame = pd.read_csv(sweep / "report.csv")
    assert len(frame) == 4 and set(frame["status"]) == {"finished"}
    assert {"selector.name", "theta", "n_selected", "eval/toy_test/acc", "eval_base/avg"} <= set(frame.columns)
    for png in ("accuracy_vs_theta.png", "subset_size_vs_theta.png", "train_reward_curves.png", "accuracy_by_arm.png",
                "eval_curves.png", "lim_trajectories_theta0.4.png", "lim_trajectories_theta0.6.png",  # one Figure 2b per theta
                "curve_groups_theta0.4.png"):
        assert (sweep / "plots" / png).read_bytes()[:4] == b"\x89PNG"
    assert "| job | status |" in (sweep / "report.md").read_text()
    (sweep / "report.csv").unlink()
    assert report_main([str(sweep)]) == 0 and (sweep / "report.csv").exists()  # python -m limr_exp.report <folder>
    assert report_main([str(sweep / "nope")]) == 2


def test_a_failed_job_does_not_stop_the_others(tmp_path):
    s = tmp_path / "sweep"
    r = cli("-m", "experiment=smoke", "theta=0.6,abc", f"hydra.sweep.dir={s}", f"logger.mlflow.tracking_uri=sqlite:///{s}/mlflow.db",
            f"cache_dir={tmp_path}/cache")
    assert r.returncode != 0 and "1 of 2 jobs failed" in r.stderr and "Traceback" not in r.stderr
    frame = pd.read_csv(s / "report.csv").set_index("job")
    assert frame.loc["0_lim-theta0.6-seed42", "status"] == "finished"
    assert frame.loc["1_lim-thetaabc-seed42", "status"] == "failed" and "theta" in frame.loc["1_lim-thetaabc-seed42", "error"]
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{s}/mlflow.db")
    experiment = client.get_experiment_by_name("limr-exp").experiment_id
    runs = {r.info.run_name.rsplit("-", 2)[0]: r.info.status for r in client.search_runs([experiment])}
    assert runs["lim-theta0.6-seed42"] == "FINISHED"
    assert "lim-thetaabc-seed42" not in runs  # an invalid config stops before any tracker starts
    assert not (s / "1_lim-thetaabc-seed42" / "wandb").exists()


def test_notebook_runs_against_a_sweep(sweep, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    monkeypatch.setenv("LIMR_SWEEP_DIR", str(sweep))
    nb = nbformat.read(ROOT / "notebooks" / "compare_runs.ipynb", as_version=4)
    NotebookClient(nb, timeout=180, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    outputs = "".join(o.get("text", "") + json.dumps(o.get("data", {})) for c in nb.cells if c.cell_type == "code" for o in c.outputs)
    assert "4 nested runs" in outputs and "lim-theta0.4-seed42" in outputs and "image/png" in outputs


def test_notebook_runs_with_nbconvert_from_the_checkout(sweep, tmp_path):
    """As README says: `jupyter nbconvert --execute` from the checkout, LIMR_SWEEP_DIR relative to it
    (nbconvert runs the kernel in notebooks/)."""
    import os
    import shutil
    import subprocess

    jupyter = shutil.which("jupyter", path=os.path.dirname(sys.executable)) or shutil.which("jupyter")
    assert jupyter, "nbconvert is in the dev extra"
    env = {**os.environ, "LIMR_SWEEP_DIR": os.path.relpath(sweep, ROOT)}
    r = subprocess.run([jupyter, "nbconvert", "--to", "notebook", "--execute", "--output", str(tmp_path / "out.ipynb"),
                        "notebooks/compare_runs.ipynb"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "4 nested runs" in (tmp_path / "out.ipynb").read_text()


def _arm_frame(values: dict[str, list[float]], n_problems: int = 640) -> pd.DataFrame:
    rows = []
    for arm, accs in values.items():
        for seed, acc in enumerate(accs, 1):
            rows.append({"job": f"{arm}-{seed}", "path": "/nowhere", "status": "finished", "selector.name": arm, "theta": 0.6,
                         "seed": seed, "n_selected": 62, "eval/toy_test/acc": acc, "eval/toy_test/n_problems": n_problems})
    return pd.DataFrame(rows)


def test_report_compares_lim_with_each_baseline_against_the_noise():
    from limr_exp.report import comparison_markdown, selector_comparison

    frame = _arm_frame({"full": [0.51, 0.50, 0.52], "random": [0.50, 0.53, 0.49], "lim": [0.66, 0.67, 0.65],
                        "linear": [0.655, 0.665, 0.66]})
    arms, diffs = selector_comparison(frame)
    assert list(arms["arm"]) == ["full", "random", "lim", "linear"] and list(arms["seeds"]) == [3, 3, 3, 3]
    lim = arms[arms["arm"] == "lim"].iloc[0]
    assert lim["eval/toy_test/acc mean"] == pytest.approx(0.66) and lim["eval/toy_test/acc std"] == pytest.approx(0.01)
    verdict = {d["comparison"]: d["exceeds noise"] for _, d in diffs.iterrows()}
    assert verdict == {"lim - full": True, "lim - random": True, "lim - linear": False}
    # three seeds that agree exactly still carry one evaluation's binomial error: the noise is never zero
    same = selector_comparison(_arm_frame({"random": [0.6] * 3, "lim": [0.61] * 3}))[1].iloc[0]
    assert same["noise"] == pytest.approx(((0.6 * 0.4 / 640 + 0.61 * 0.39 / 640) / 3) ** 0.5) and not same["exceeds noise"]
    text = "\n".join(comparison_markdown(arms, diffs))
    assert "| lim | 3 | 62 | 66.0 ± 1.0 [65.0, 67.0] |" in text and "| lim - random | eval/toy_test/acc | +15.3 |" in text


def test_the_mean_over_benchmarks_carries_their_noise_with_one_seed():
    """eval/avg of one seed per arm: its noise is the benchmarks' binomial errors (sum of variances / k^2),
    so a 0.8-point difference is never read as beyond the noise (it was: noise 0.0, 'exceeds: yes')."""
    from limr_exp.report import selector_comparison

    frame = _arm_frame({"random": [0.332], "lim": [0.324]})
    frame["eval/greedy/acc"], frame["eval/greedy/n_problems"] = [0.34, 0.33], 640
    frame["eval/avg"] = (frame["eval/toy_test/acc"] + frame["eval/greedy/acc"]) / 2
    _, diffs = selector_comparison(frame)
    avg = diffs[diffs["metric"] == "eval/avg"].iloc[0]
    var = lambda p: p * (1 - p) / 640  # noqa: E731
    expected = ((var(0.324) + var(0.33)) / 4 + (var(0.332) + var(0.34)) / 4) ** 0.5
    assert avg["noise"] == pytest.approx(expected) and not avg["exceeds noise"]


def test_failed_jobs_are_left_out_of_the_comparison():
    from limr_exp.report import selector_comparison

    frame = _arm_frame({"random": [0.5, 0.5], "lim": [0.6, 0.9]})
    frame.loc[frame["job"] == "lim-2", "status"] = "failed"
    arms, _ = selector_comparison(frame)
    assert arms.set_index("arm").loc["lim", "seeds"] == 1


def _job_folder(sweep: Path, name: str, overrides: list[str], config: dict, acc: float) -> None:
    """A finished job folder as a sweep leaves it: Hydra's overrides and config, status.json, eval metrics."""
    job = sweep / name
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    (job / ".hydra" / "config.yaml").write_text(json.dumps(config))
    (job / "status.json").write_text(json.dumps({"status": "finished"}))
    (job / "eval").mkdir()
    (job / "eval" / "metrics.json").write_text(json.dumps({"benchmarks": {"toy_test": {"acc": acc, "n_problems": 640}},
                                                           "avg": acc}))


def test_jobs_that_differ_in_more_than_their_seed_are_separate_arms(tmp_path):
    """`-m selector=random selector.size=16,64 seed=1,2`: two arms of two seeds each, not one arm of four
    (the report averaged the sizes as seeds, 'random | 4 seeds | subset 40'); θ sweeps keep full as one arm."""
    from limr_exp.report import build_report, reference_arm, selector_comparison

    for i, (size, seed, acc) in enumerate([(16, 1, 0.40), (16, 2, 0.42), (64, 1, 0.60), (64, 2, 0.62)]):
        _job_folder(tmp_path, f"{i}_random", ["+sweep=x", "selector=random", f"selector.size={size}", f"seed={seed}"],
                    {"selector": {"name": "random", "size": size}, "theta": 0.6, "seed": seed}, acc)
    _job_folder(tmp_path, "4_full", ["+sweep=x", "selector=full", "seed=1"], {"selector": {"name": "full"}, "theta": 0.6,
                                                                             "seed": 1}, 0.7)
    frame = build_report(tmp_path)
    arms = selector_comparison(frame)[0].set_index("arm")
    assert list(arms.index) == ["random selector.size=16", "random selector.size=64", "full"]
    assert list(arms["seeds"]) == [2, 2, 1]
    assert arms.loc["random selector.size=64", "eval/toy_test/acc mean"] == pytest.approx(0.61)
    assert reference_arm(frame) == "full"

    thetas = tmp_path / "thetas"
    for i, (name, theta, seed) in enumerate([("lim", 0.5, 1), ("lim", 0.7, 1), ("full", 0.5, 1), ("full", 0.7, 2)]):
        _job_folder(thetas, f"{i}_{name}", [f"selector={name}", f"theta={theta}", f"seed={seed}"],
                    {"selector": {"name": name}, "theta": theta, "seed": seed}, 0.5)
    arms = selector_comparison(build_report(thetas))[0]
    assert list(arms["arm"]) == ["lim θ=0.5", "lim θ=0.7", "full"] and list(arms["seeds"]) == [1, 1, 2]
