"""What a run and its trackers say is true, and a newcomer never hits a wall: final values where the
tracker shows them, a folder that refuses another experiment, one line for each fault, the hints."""

from __future__ import annotations

import errno
import json
import os
import subprocess
from pathlib import Path

import pytest
from conftest import cli_cases, compose_cfg
from test_cli import cli


def smoke(tmp_path, *overrides, logger=("jsonl",)):
    return compose_cfg(["experiment=smoke", f"cache_dir={tmp_path / 'cache'}", f"logger=[{','.join(logger)}]",
                        f"logger.mlflow.tracking_uri=sqlite:///{tmp_path}/m.db" if "mlflow" in logger else "seed=42", *overrides],
                       output_dir=tmp_path / "run")


# -- trackers: the final value is the final evaluation's ------------------------------------------------

@pytest.mark.slow
def test_every_trackers_final_value_is_metrics_json(tmp_path):
    """The final evaluation is logged at the trained step, after the evaluations during training: MLflow's
    latest value and W&B's last eval row are metrics.json's, with eval/step = the last rollout step; the
    config the trackers hold is resolved, and the runs carry their tags."""
    import mlflow
    from test_sweeps import history_value, wandb_records

    from limr_exp.pipeline import run

    cfg = smoke(tmp_path, logger=("jsonl", "wandb", "mlflow"))
    run(cfg)
    out = tmp_path / "run"
    metrics = json.loads((out / "eval" / "metrics.json").read_text())
    steps = [json.loads(line)["step"] for line in (out / "train" / "steps.jsonl").read_text().splitlines()]
    final_step = max(steps)
    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/m.db")
    run_id = json.loads((out / ".tracking.json").read_text())["mlflow_run_id"]
    mlrun = client.get_run(run_id)
    for name, bench in metrics["benchmarks"].items():
        key = f"eval/{name}/acc"
        history = client.get_metric_history(run_id, key)
        assert len(history) >= 2  # during training, then the final one
        latest = max(history, key=lambda m: (m.step, m.timestamp))
        assert latest.step == final_step and latest.value == pytest.approx(bench["acc"])
        assert mlrun.data.metrics[key] == pytest.approx(bench["acc"])  # what search_runs and the UI show
    assert "${" not in json.dumps(mlrun.data.params) and mlrun.data.params["data_root"] != ""
    assert mlrun.data.tags["selector"] == "lim" and mlrun.data.tags["seed"] == "42" and mlrun.data.tags["theta"] == "0.0"
    rows, tags, config = [], [], {}
    for run_file in (out / "wandb").glob("offline-run-*/run-*.wandb"):
        for rec in wandb_records(run_file):
            kind = rec.WhichOneof("record_type")
            if kind == "history":
                rows.append({i.key or "/".join(i.nested_key): history_value(i) for i in rec.history.item})
            elif kind == "run":
                tags = list(rec.run.tags)
                config = {i.key: i.value_json for i in rec.run.config.update}
    evals = [r for r in rows if "eval/toy_test/acc" in r]
    assert evals[-1]["eval/step"] == final_step
    assert evals[-1]["eval/toy_test/acc"] == pytest.approx(metrics["benchmarks"]["toy_test"]["acc"])
    assert "selector=lim" in tags and "seed=42" in tags
    assert not any("${" in v for v in config.values())


@pytest.mark.slow
def test_a_sweeps_mlflow_parent_has_its_params_and_is_continued_by_a_rerun(tmp_path):
    """After a kill, a rerun of the sweep in its folder continues the parent run (no second parent, no
    parent left RUNNING forever), and the parent holds the sweep's parameters."""
    import mlflow
    from omegaconf import OmegaConf

    from limr_exp.callbacks import SweepCallback

    uri = f"sqlite:///{tmp_path}/m.db"
    config = OmegaConf.create({"logger": {"mlflow": {"tracking_uri": uri}},
                               "hydra": {"sweep": {"dir": str(tmp_path / "sweep")}, "overrides": {"task": ["+sweep=theta"]},
                                         "sweeper": {"params": {"theta": "0.2,0.4", "seed": "1,2"}}}})
    SweepCallback().on_multirun_start(config)
    first = json.loads((tmp_path / "sweep" / "multirun.json").read_text())
    client = mlflow.MlflowClient(uri)
    parent = client.get_run(first["mlflow_parent_run_id"])
    assert parent.data.params["sweep.theta"] == "0.2,0.4" and parent.data.params["sweep.overrides"] == "+sweep=theta"
    SweepCallback().on_multirun_start(config)  # the sweep was SIGKILLed: its parent is still RUNNING; rerun
    again = json.loads((tmp_path / "sweep" / "multirun.json").read_text())
    assert again["mlflow_parent_run_id"] == first["mlflow_parent_run_id"] and again["id"] == first["id"]
    parents = client.search_runs([parent.info.experiment_id], filter_string="tags.`limr.sweep_dir` LIKE '%sweep'")
    assert len(parents) == 1 and parents[0].info.status == "RUNNING"
    client.set_tag(parent.info.run_id, "limr.pid", "999999999")  # that sweep's process is gone for good
    other = OmegaConf.merge(config, {"hydra": {"sweep": {"dir": str(tmp_path / "another")}}})
    SweepCallback().on_multirun_start(other)  # a new sweep closes the orphan honestly
    assert client.get_run(parent.info.run_id).info.status == "KILLED"


# -- a run folder holds one experiment ------------------------------------------------------------------

def test_a_rerun_with_another_config_is_refused_naming_the_keys(tmp_path):
    from limr_exp.errors import LimrError
    from limr_exp.pipeline import run

    run(smoke(tmp_path, "stages=[select]", "selector=full"))
    out = tmp_path / "run"
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
    with pytest.raises(LimrError) as e:
        run(smoke(tmp_path, "stages=[select]", "selector=random", "selector.size=8", "seed=7", "ppo.actor_learning_rate=0.5"))
    message = str(e.value)
    assert "\n" not in message and "another configuration" in message and "hydra.run.dir=" in message
    assert "selector.name: full -> random" in message and "seed: 42 -> 7" in message and "ppo.actor_learning_rate" in message
    after = {p: p.read_bytes() for p in out.rglob("*") if p.is_file() and p.name != ".lock"}
    assert after == before  # nothing written: status.json still says how the first run ended
    assert json.loads((out / "status.json").read_text())["status"] == "finished"
    run(smoke(tmp_path, "stages=[select]", "selector=full", "threads=1", "logger=[]"))  # the same experiment: fine


@pytest.mark.slow
def test_the_refusal_on_the_cli_is_one_line(tmp_path):
    first = cli("experiment=smoke", "stages=[select]", "selector=full", "logger=[]", f"hydra.run.dir={tmp_path}/run",
                f"cache_dir={tmp_path}/cache")
    assert first.returncode == 0, first.stderr[-2000:]
    r = cli("experiment=smoke", "stages=[select]", "selector=full", "seed=7", "logger=[]", f"hydra.run.dir={tmp_path}/run",
            f"cache_dir={tmp_path}/cache")
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(err) == 1 and "seed: 42 -> 7" in err[0] and "Traceback" not in r.stderr, r.stderr
    assert "run folder" in first.stdout + first.stderr and str(tmp_path / "run") in first.stdout + first.stderr


def test_the_summary_names_the_run_folder():
    from limr_exp.pipeline import summary_table

    assert "run folder                  /x/run" in summary_table({"timings": {}, "run_folder": "/x/run"})


# -- one line for each fault ------------------------------------------------------------------------------

def test_torchs_full_disk_error_is_the_full_disk_line(tmp_path, monkeypatch):
    import shutil

    from limr_exp.pipeline import user_message

    cfg = smoke(tmp_path)
    error = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 576 vs 534")
    error.__context__ = RuntimeError("basic_ios::clear: iostream error")
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=1024))
    message = user_message(error, cfg)
    assert message and message.startswith("no space left on the device")
    monkeypatch.setattr(shutil, "disk_usage", real)
    assert user_message(error, cfg) is None  # the same words with space left: a bug, shown as one
    assert user_message(Exception("Error while serializing: I/O error: No space left on device (os error 28)"), cfg)


@pytest.mark.slow
def test_a_full_disk_during_the_checkpoint_is_one_line(tmp_path):
    """A real full disk (a 320 kB tmpfs as the run folder: the weights fit, torch.save of the trainer state does not)."""
    folder = tmp_path / "tiny"
    folder.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        r = cli("experiment=smoke", "stages=[train]", "logger=[]", f"hydra.run.dir={folder}/run", f"cache_dir={tmp_path}/cache")
        err = [line for line in r.stderr.splitlines() if line.strip()]
        assert r.returncode == 2 and len(err) == 1 and "no space left on the device" in err[0] and "Traceback" not in r.stderr, r.stderr
        status = json.loads((folder / "run" / "status.json").read_text())
        assert status["status"] == "failed"
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


def test_permission_errors_are_one_line(tmp_path):
    from limr_exp.pipeline import user_message

    cfg = smoke(tmp_path)
    for code in (errno.EACCES, errno.EROFS):
        message = user_message(OSError(code, os.strerror(code), "outputs/cache/toy_model"), cfg)
        assert "cannot write outputs/cache/toy_model" in message and "cache_dir" in message


@pytest.mark.parametrize("fault", ["locked", "corrupt"])
def test_a_locked_or_corrupt_mlflow_store_is_one_line_at_once(tmp_path, fault, monkeypatch):
    import sqlite3
    import time

    from limr_exp import tracking
    from limr_exp.errors import ConfigError
    from limr_exp.tracking import MlflowLogger, RunInfo

    monkeypatch.setattr(tracking, "STORE_BUSY_TIMEOUT_S", 0.5)
    db = tmp_path / "m.db"
    holder = None
    if fault == "corrupt":
        db.write_bytes(b"this is not a database" * 100)
    else:
        holder = sqlite3.connect(str(db))
        holder.execute("CREATE TABLE t (x)")
        holder.execute("BEGIN EXCLUSIVE")
    t = time.monotonic()
    with pytest.raises(ConfigError) as e:
        MlflowLogger(RunInfo(tmp_path / "run", "r", "lim", {}), tracking_uri=f"sqlite:///{db}")
    assert "\n" not in str(e.value) and str(db) in str(e.value) and time.monotonic() - t < 10
    if holder is not None:
        holder.rollback()
        holder.close()


@pytest.mark.slow
def test_a_long_run_name_gets_a_folder_it_fits_in(tmp_path):
    from limr_exp.config import MAX_FOLDER_NAME, folder_name

    long = "x" * 300
    assert len(folder_name(long).encode()) <= MAX_FOLDER_NAME and folder_name(long) != folder_name(long + "y")
    assert folder_name("lim-theta0.6-seed42") == "lim-theta0.6-seed42" and "/" not in folder_name("a/b")
    r = cli("experiment=smoke", "stages=[select]", "selector=full", "logger=[]", f"run_name={long}", f"cache_dir={tmp_path}/cache",
            cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    runs = list((tmp_path / "outputs" / "runs").glob("*/*"))
    assert len(runs) == 1 and (runs[0] / "selection" / "selected.jsonl").exists()


@pytest.mark.slow  # a CLI run (the fast tier starts the CLI only for its one-line error contract)
def test_an_internal_schema_is_no_option(tmp_path):
    from hydra.errors import MissingConfigException

    with pytest.raises(MissingConfigException) as e:
        compose_cfg(["selector=schema_sized"])
    options = str(e.value).split("Available options in 'selector':")[-1].split("Config search path")[0]
    assert "lim" in options and "schema" not in options
    r = cli("--help")
    assert r.returncode == 0 and "schema" not in r.stdout.split("== Config ==")[0] and "selector: full" in r.stdout


def test_a_fifo_as_the_dataset_is_refused_at_once(tmp_path):
    from limr_exp.errors import ConfigError
    from limr_exp.plugins import validate

    fifo = tmp_path / "data.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="neither a folder nor a regular file"):
        validate(smoke(tmp_path, "dataset=file", f"dataset.path={fifo}"))


def test_a_utf8_bom_is_accepted(tmp_path):
    from limr_exp.data import load_problem_file

    rows = [{"id": "a", "prompt": "1+1?", "answer": "2"}]
    (tmp_path / "bom.json").write_bytes(b"\xef\xbb\xbf" + json.dumps(rows).encode())
    (tmp_path / "bom.jsonl").write_bytes(b"\xef\xbb\xbf" + json.dumps(rows[0]).encode() + b"\n")
    for name in ("bom.json", "bom.jsonl"):
        assert load_problem_file(str(tmp_path / name), prompt_key="prompt", answer_key="answer", id_key="id").rows[0]["id"] == "a"


def test_epochs_beyond_int32_are_refused_not_wrapped(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from limr_exp.errors import DataError
    from limr_exp.history import read_table

    table = pa.table({"prompt_id": ["a", "a"], "epoch": pa.array([1, 2**32 + 2], pa.int64()), "step": pa.array([1, 2], pa.int64()),
                      "reward": [1.0, -0.5], "correct": [True, False]})
    pq.write_table(table, tmp_path / "h.parquet")
    with pytest.raises(DataError, match="epoch 4294967298 is out of range"):
        read_table(tmp_path / "h.parquet")


@pytest.mark.slow
def test_wandbs_table_limit_is_said_in_one_line(tmp_path, monkeypatch, caplog):
    import logging

    import wandb

    from limr_exp.tracking import RunInfo, WandbLogger

    monkeypatch.setattr(wandb.Table, "MAX_ARTIFACT_ROWS", 5)
    logger = WandbLogger(RunInfo(tmp_path / "run", "r", "lim", {}))
    try:
        with caplog.at_level(logging.INFO, logger="limr_exp"):
            logger.log_table("selection/scores", [{"prompt_id": str(i), "score": float(i)} for i in range(12)],
                             full=tmp_path / "run" / "selection" / "scores.parquet")
    finally:
        logger.finish("finished")
    lines = [r.getMessage() for r in caplog.records if "W&B" in r.getMessage()]
    assert len(lines) == 1 and "first 5 of its 12 rows" in lines[0] and "scores.parquet" in lines[0]


# -- newcomer walls -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("argv,expected", cli_cases(
    (["selectr=lim"], "did you mean 'selector'"),
    (["theat=0.5"], "did you mean 'theta'"),
    (["stagez=[select]"], "did you mean 'stages'"),
))
def test_a_typo_gets_a_hint(argv, expected):
    r = cli(*argv)
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(err) == 1 and expected in err[0] and "+selectr" not in r.stderr, r.stderr


def test_known_keys_and_groups_get_no_hint():
    from limr_exp.config import override_hint

    assert override_hint(["selector=lim", "theta=0.4", "ppo.max_steps=3", "hydra.run.dir=/x", "+sweep=theta", "-m",
                          "--cfg", "job", "hydra/launcher=basic", "stages=[select]"]) is None


def test_a_launcher_without_its_plugin_names_the_extra(monkeypatch):
    import importlib.util

    from limr_exp.config import override_hint

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if "launcher" in name else real(name, *a))
    hint = override_hint(["-m", "hydra/launcher=joblib"])
    assert hint and "pip install -e '.[sweeps]'" in hint


def test_one_data_root_default_for_the_cli_and_the_tests():
    from conftest import SHARED_DATA

    from limr_exp.config import default_data_root

    assert str(SHARED_DATA) == default_data_root() == str(compose_cfg().data_root)


def test_eval_limit_evaluates_the_first_n_problems(tmp_path):
    from limr_exp.pipeline import run

    run(smoke(tmp_path, "stages=[eval]", "eval.limit=3", "eval.evaluate_base=false"))
    metrics = json.loads((tmp_path / "run" / "eval" / "metrics.json").read_text())
    assert {b["n_problems"] for b in metrics["benchmarks"].values()} == {3}


def test_a_busy_machine_gets_a_threads_hint(monkeypatch):
    from limr_exp import cpus

    monkeypatch.setattr(cpus, "usable_cpus", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (3.5, 3.0, 2.0))
    assert "threads=1" in cpus.busy_hint(2)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.2, 0.1, 0.1))
    assert cpus.busy_hint(2) is None


def test_judge_folders_of_killed_runs_are_removed_at_the_next_start(tmp_path):
    import tempfile

    from limr_exp.rewards.pool import remove_stale_dirs

    dead = Path(tempfile.gettempdir()) / "limr-judge-999999999-abc"  # no such pid
    live = Path(tempfile.gettempdir()) / f"limr-judge-{os.getpid()}-keep"
    dead.mkdir(exist_ok=True)
    live.mkdir(exist_ok=True)
    try:
        remove_stale_dirs()
        assert not dead.exists() and live.exists()
    finally:
        live.rmdir()


# -- plots and the report ----------------------------------------------------------------------------------

@pytest.mark.slow
def test_a_select_run_draws_figures_2a_and_2b(tmp_path):
    from limr_exp.pipeline import run

    run(smoke(tmp_path, "stages=[select]"))
    plots = tmp_path / "run" / "plots"
    assert (plots / "lim_trajectories.png").stat().st_size > 5000 and (plots / "curve_groups.png").stat().st_size > 5000


def test_one_seed_is_shown_without_a_spread_and_the_jobs_table_is_short(tmp_path):
    import pandas as pd

    from limr_exp.report import write_report

    frame = pd.DataFrame([{"job": f"{k}_{name}-seed1", "status": "finished", "selector.name": name, "theta": 0.6, "seed": 1,
                           "n_selected": 10, "eval/toy_test/acc": 0.5 + 0.1 * k, "eval/toy_test/n_problems": 640,
                           "eval_base/toy_test/acc": 0.4, "train/final_reward_mean": 0.1, "path": str(tmp_path),
                           **{f"param.{i}": i for i in range(20)}} for k, name in enumerate(["full", "lim"])])
    write_report(frame, tmp_path)
    text = (tmp_path / "report.md").read_text()
    assert "± 0.0" not in text and "(1 seed)" in text
    jobs = text.split("## Jobs")[1].strip().splitlines()[0]
    assert jobs.count("|") - 1 <= 10 and "param." not in jobs


def test_a_compressed_dataset_is_named_as_such(tmp_path):
    import gzip

    from limr_exp.data import load_problem_file
    from limr_exp.errors import DataError

    (tmp_path / "d.json").write_bytes(gzip.compress(b'[{"id": "a", "prompt": "1+1?", "answer": "2"}]'))
    with pytest.raises(DataError, match="gzip-compressed: decompress it first"):
        load_problem_file(str(tmp_path / "d.json"), prompt_key="prompt", answer_key="answer", id_key="id")


def test_a_run_folder_below_a_file_is_one_line(tmp_path):
    from limr_exp.config import override_hint

    (tmp_path / "f").write_text("x")
    hint = override_hint([f"hydra.run.dir={tmp_path}/f/run"])
    assert hint and "is a file, not a folder" in hint
    assert override_hint([f"hydra.run.dir={tmp_path}/new/run", f"hydra.sweep.dir={tmp_path}"]) is None


@pytest.mark.slow
def test_a_probe_that_stops_when_stable_says_so(tmp_path):
    """probe.stop_when_stable on a real (smoke) probe: its record, its history's epochs and the summary agree."""
    from limr_exp.history import read_table
    from limr_exp.pipeline import run, summary_table

    summary = run(smoke(tmp_path, "stages=[select]", "probe.episodes=5", "probe.stop_when_stable=true", "probe.stable_epochs=1",
                        "theta=0.9"))
    stop = summary["probe_stop"]
    assert stop["of"] == 5 and 2 <= stop["epochs"] <= 5 and len(stop["jaccard"]) == stop["epochs"] - (1 if stop["stopped"] else 2)
    probe = next((tmp_path / "cache" / "probes").glob("*/trajectories.parquet"))
    assert len(set(read_table(probe).epoch.tolist())) == stop["epochs"]
    assert "probe epochs" in summary_table(summary)


@pytest.mark.slow
def test_the_selection_is_measured_against_other_probe_seeds(tmp_path):
    """probe.sensitivity_seeds: one probe per seed (cached), the subset of each, its Jaccard with the run's own
    subset in selection/probe_seeds.json and in the report; the probe's own seed in the list is one line."""
    import json

    import pandas as pd

    from limr_exp.data import load_problems
    from limr_exp.io import read_jsonl
    from limr_exp.pipeline import run
    from limr_exp.report import probe_seed_markdown
    from limr_exp.selection.stability import jaccard, selection_after
    from limr_exp.training.probe import probe_history

    cfg = smoke(tmp_path, "stages=[select]", "theta=0.5", "probe.sensitivity_seeds=[1,2]", "dataset.toy.n_train=24")
    run(cfg)
    record = json.loads((tmp_path / "run" / "selection" / "probe_seeds.json").read_text())
    assert record["seeds"] == [0, 1, 2] and record["theta"] == 0.5 and record["selector"] == "lim"
    chosen = {r["id"] for r in read_jsonl(tmp_path / "run" / "selection" / "selected.jsonl")}
    problems = load_problems(cfg.dataset)
    from omegaconf import OmegaConf

    for seed, j, size in zip([1, 2], record["jaccard_with_this_probe"], record["sizes"][1:]):
        other, _ = selection_after(probe_history(OmegaConf.merge(cfg, {"probe": {"seed": seed}}), problems), problems, 0.5,
                                   cfg.selector, cfg.seed)
        assert abs(jaccard(chosen, other) - j) < 1e-4 and len(other) == size
    assert len(list((tmp_path / "cache" / "probes").glob("*/done"))) == 3
    lines = probe_seed_markdown(pd.DataFrame({"path": [str(tmp_path / "run")]}))
    assert any(line.startswith("| lim | 0.5 | 0, 1, 2 |") for line in lines)
    from limr_exp.errors import ConfigError
    from limr_exp.plugins import validate

    with pytest.raises(ConfigError, match="holds the probe's own seed 0"):
        validate(smoke(tmp_path, "probe.sensitivity_seeds=[0,3]"))
