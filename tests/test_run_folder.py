"""A run folder never lies: the lock, status.json through the run's life, signals, full disks,
strict config, the sweep report whatever a job raised, and a kill matrix (slow)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from conftest import ROOT, cli_cases
from test_cli import cli


def test_a_second_run_on_a_held_folder_stops_at_once_naming_the_holder(tmp_path):
    folder = tmp_path / "run"
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom limr_exp.run_folder import RunFolder\n"
                               f"with RunFolder({str(folder)!r}):\n    print('held', flush=True)\n    time.sleep(60)"],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        r = cli("experiment=smoke", "stages=[select]", "logger=[]", f"hydra.run.dir={folder}")
        err = [line for line in r.stderr.splitlines() if line.strip()]
        assert r.returncode == 2 and len(err) == 1 and "Traceback" not in r.stderr
        assert err[0] == f"limr-exp: error: the run folder {folder} is in use by pid {holder.pid}: wait for that run to end, " \
                         "or give this one its own hydra.run.dir"
        assert json.loads((folder / "status.json").read_text())["pid"] == holder.pid  # the holder's status stands
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("override", cli_cases("+unknown=1", "+selector.unknwon=1", "+trainer.gpus=2"))
def test_unknown_keys_fail_at_start_before_any_tracker(tmp_path, override):
    r = cli("experiment=smoke", override, f"hydra.run.dir={tmp_path / 'run'}", f"logger.mlflow.tracking_uri=sqlite:///{tmp_path}/m.db")
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(err) == 1 and "unknown config key" in err[0], r.stderr
    assert {p.name for p in (tmp_path / "run").iterdir()} == {".hydra", ".lock", "status.json", "__main__.log"}
    assert json.loads((tmp_path / "run" / "status.json").read_text())["status"] == "failed"
    assert not (tmp_path / "m.db").exists()


def run_main_in_process(argv: list[str], monkeypatch) -> int:
    """`python -m limr_exp ARGV` in this process (so a test can patch a stage); the exit code."""
    from limr_exp.__main__ import main

    monkeypatch.setattr(sys, "argv", ["limr_exp", *argv])
    try:
        main()
    except SystemExit as e:
        return int(e.code or 0)
    return 0


def test_a_full_disk_is_one_line_naming_the_path(tmp_path, monkeypatch, capsys):
    import limr_exp.pipeline as pipeline

    def full(path, rows):
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(pipeline, "write_jsonl", full)
    code = run_main_in_process(["experiment=smoke", "stages=[select]", "logger=[]", f"hydra.run.dir={tmp_path / 'run'}",
                                f"cache_dir={tmp_path / 'cache'}"], monkeypatch)
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("limr-exp")]
    assert code == 2 and err == [f"limr-exp: error: no space left on the device writing {tmp_path / 'run' / 'selection' / 'selected.jsonl'}: "  # noqa: E501
                                 "free some space, or point hydra.run.dir (and cache_dir) at another disk; rerun the same command to resume"]  # noqa: E501
    status = json.loads((tmp_path / "run" / "status.json").read_text())
    assert status["status"] == "failed" and "No space left" in status["error"]
    assert not (tmp_path / "run" / "selection" / "selected.jsonl").exists()


@pytest.mark.slow
def test_the_sweep_report_is_written_whatever_a_job_raised(tmp_path, monkeypatch, capsys):
    import limr_exp.pipeline as pipeline

    real = pipeline.select_stage

    def buggy(cfg, *args, **kwargs):
        if cfg.seed == 2:
            raise RuntimeError("a bug in one job")
        return real(cfg, *args, **kwargs)

    monkeypatch.setattr(pipeline, "select_stage", buggy)
    sweep = tmp_path / "sweep"
    code = run_main_in_process(["-m", "experiment=smoke", "stages=[select]", "selector=full", "seed=1,2,3", f"hydra.sweep.dir={sweep}",
                                f"logger.mlflow.tracking_uri=sqlite:///{tmp_path}/m.db", f"cache_dir={tmp_path / 'cache'}"], monkeypatch)
    assert code == 1
    frame = pd.read_csv(sweep / "report.csv").set_index("job")
    assert frame["status"].to_dict() == {"0_full-seed1": "finished", "1_full-seed2": "failed", "2_full-seed3": "finished"}
    assert "RuntimeError: a bug in one job" in frame.loc["1_full-seed2", "error"]
    assert "1 of 3 jobs failed" in capsys.readouterr().err
    import mlflow

    client = mlflow.MlflowClient(f"sqlite:///{tmp_path}/m.db")
    runs = client.search_runs([client.get_experiment_by_name("limr-exp").experiment_id])
    statuses = sorted(r.info.status for r in runs)
    assert statuses == ["FAILED", "FAILED", "FINISHED", "FINISHED"]  # the failed job, the sweep's parent, two good jobs
    assert all(r.data.tags.get("limr.run_dir") for r in runs if "mlflow.parentRunId" in r.data.tags)


def test_a_run_killed_outright_reads_as_interrupted(tmp_path):
    from limr_exp.run_folder import read_status

    proc = subprocess.Popen([sys.executable, "-c", "import time\nfrom limr_exp.run_folder import RunFolder\n"
                             f"with RunFolder({str(tmp_path)!r}):\n    print('in', flush=True)\n    time.sleep(60)"],
                            cwd=ROOT, stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "in"
    assert read_status(tmp_path)["status"] == "running"
    proc.kill()
    proc.wait()
    assert read_status(tmp_path)["status"] == "interrupted"


# -- the kill matrix ------------------------------------------------------------------------------------

STAGE_MARKERS = {"probe": "probe: RL on all", "select": "selection:", "train": "train: local on", "eval": "eval_base/"}
SLOW = ["experiment=smoke", "probe.episodes=6", "ppo.num_episodes=12", "trainer.save_steps=3", "eval.benchmarks.0.n_samples=8"]


def tracked_steps(run: Path, mlflow_uri: str) -> dict:
    """For each tracker: how many times each train step was logged."""
    import collections

    import mlflow

    jsonl = collections.Counter(row["step"] for row in map(json.loads, (run / "metrics.jsonl").read_text().splitlines())
                                if "train/reward_mean" in row)
    from test_sweeps import history_value, wandb_records

    client = mlflow.MlflowClient(mlflow_uri)
    ident = json.loads((run / ".tracking.json").read_text())
    ml = collections.Counter(m.step for m in client.get_metric_history(ident["mlflow_run_id"], "train/reward_mean"))
    wb = collections.Counter()
    for run_file in (run / "wandb").glob("offline-run-*/run-*.wandb"):  # one file per launch, all of one run id
        for rec in wandb_records(run_file):
            if rec.WhichOneof("record_type") == "history":
                items = {i.key or "/".join(i.nested_key): history_value(i) for i in rec.history.item}
                if "train/reward_mean" in items:
                    wb[int(items["train/step"])] += 1
    return {"jsonl": jsonl, "mlflow": ml, "wandb": wb}


@pytest.mark.slow
@pytest.mark.parametrize("stage", list(STAGE_MARKERS))
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=["KILL", "TERM", "INT"])
def test_kill_matrix(tmp_path, stage, sig):
    run, uri = tmp_path / "run", f"sqlite:///{tmp_path}/m.db"
    argv = [sys.executable, "-m", "limr_exp", *SLOW, f"hydra.run.dir={run}", f"cache_dir={tmp_path / 'cache'}",
            f"logger.mlflow.tracking_uri={uri}"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    seen = ""
    for line in proc.stdout:
        seen += line
        if STAGE_MARKERS[stage] in line:
            time.sleep(0.1)
            proc.send_signal(sig)
            break
    rest, _ = proc.communicate(timeout=120)
    seen += rest
    status = json.loads((run / "status.json").read_text())
    if status["status"] == "finished":  # the run ended before the signal landed: then it simply finished
        assert proc.returncode in (0, -sig)
    elif sig == signal.SIGKILL:
        from limr_exp.run_folder import read_status

        assert proc.returncode == -9 and read_status(run)["status"] == "interrupted"
    else:
        assert proc.returncode == 128 + sig and status["status"] == "interrupted", seen[-3000:]
        import shlex

        resume = f"limr-exp: interrupted ({signal.Signals(sig).name}): resume with: "
        last = seen.strip().splitlines()[-1]
        assert last.startswith(resume), last
        command = shlex.split(last[len(resume):])  # the exact command: the same overrides, this folder
        assert command[:3] == ["python", "-m", "limr_exp"] and f"hydra.run.dir={run.resolve()}" in command
        assert all(o in command for o in argv[3:] if not o.startswith("hydra.run.dir="))
        assert "Traceback" not in seen
    again = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=env, timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert json.loads((run / "status.json").read_text())["status"] == "finished"
    from limr_exp.history import read_table

    h = read_table(run / "train" / "trajectories.parquet")
    per_step = pd.Series(h.step).value_counts()
    assert sorted(per_step.index) == list(range(1, per_step.index.max() + 1)) and per_step.nunique() == 1  # every step once
    counts = tracked_steps(run, uri)
    for tracker, c in counts.items():
        assert sorted(c) == list(range(1, max(c) + 1)) and set(c.values()) == {1}, (tracker, c)


# -- hostile inputs: one line each, non-zero exit, no subset written ----------------------------------------

def hostile_table(path: Path, epochs, rewards=None) -> Path:
    from limr_exp.history import History, write_table

    n = len(epochs)
    write_table(History.build(["q0", "q1"], [i % 2 for i in range(n)], epochs, list(range(1, n + 1)),
                              rewards if rewards is not None else [1.0] * n), path)
    return path


@pytest.mark.parametrize("case,message", cli_cases(
    ("non_utf8_dump", "is not UTF-8 text"),
    ("non_utf8_dataset", "byte 26 (0xff) is not UTF-8 text"),
    ("nan_dump", "holds NaN, which JSON does not allow"),
    ("dev_null", "is neither a folder nor a regular file"),
    ("huge_epoch", "epochs must be positive and follow one another without gaps"),
    ("zero_epoch", "epochs must be positive"),
    ("nan_table", "NaN rewards"),
    ("foreign_ids", "matches 0 of the dataset's 2 prompts"),
    ("size_too_big", "selector.size=100000 is more than the dataset's 2 prompts"),
    ("negative_seed", "seed=-1 must be an integer"),
))
def test_hostile_inputs_get_one_line(tmp_path, case, message):
    data = tmp_path / "d.json"
    data.write_text(json.dumps([{"id": "q0", "prompt": "What is 1+1?", "answer": "2"},
                                {"id": "q1", "prompt": "What is 2+2?", "answer": "4"}]))
    dumps = tmp_path / "dumps"
    dumps.mkdir()
    args = ["stages=[select]", "dataset=file", f"dataset.path={data}", "trajectories.steps_per_epoch=1"]
    if case == "non_utf8_dataset":
        data.write_bytes(b'[{"id": "q0", "prompt": "x\xff", "answer": "1"}]')
        args += ["selector=full"]
    elif case in ("non_utf8_dump", "nan_dump"):
        (dumps / "step_1.json").write_bytes(b'[{"prompt": "What is 1+1?\xff", "reward": 1}]' if case == "non_utf8_dump"
                                            else b'[{"prompt": "What is 1+1?", "reward": NaN}]')
        args += [f"trajectories.path={dumps}"]
    elif case == "dev_null":
        args += ["trajectories.path=/dev/null"]
    elif case in ("huge_epoch", "zero_epoch", "nan_table", "foreign_ids"):
        epochs = {"huge_epoch": [1, 2, 10**8, 10**8], "zero_epoch": [0, 0, 1, 1]}.get(case, [1, 1, 2, 2])
        table = hostile_table(tmp_path / "t.parquet", epochs, [float("nan")] * 4 if case == "nan_table" else None)
        if case == "foreign_ids":
            data.write_text(json.dumps([{"id": "x0", "prompt": "a", "answer": "2"}, {"id": "x1", "prompt": "b", "answer": "4"}]))
        args += [f"trajectories.path={table}"]
    elif case == "size_too_big":
        args += ["selector=variance", "selector.size=100000", f"trajectories.path={hostile_table(tmp_path / 't.parquet', [1, 1, 2, 2])}"]
    elif case == "negative_seed":
        args += ["seed=-1", "selector=full"]
    r = cli(*args, "logger=[]", f"hydra.run.dir={tmp_path / 'run'}", f"cache_dir={tmp_path / 'cache'}")
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(err) == 1 and message in err[0] and "Traceback" not in r.stderr, r.stderr[-2000:]
    assert not (tmp_path / "run" / "selection" / "selected.jsonl").exists()
    assert json.loads((tmp_path / "run" / "status.json").read_text())["status"] == "failed"


@pytest.mark.slow
def test_a_corrupt_probe_cache_names_the_cache_and_says_deleting_it_is_safe(tmp_path):
    cache = tmp_path / "cache"
    args = ["experiment=smoke", "stages=[select]", "logger=[]", f"cache_dir={cache}"]
    assert cli(*args, f"hydra.run.dir={tmp_path / 'a'}").returncode == 0
    (table,) = (cache / "probes").glob("*/trajectories.parquet")
    table.write_bytes(b"not parquet")
    r = cli(*args, f"hydra.run.dir={tmp_path / 'b'}")
    err = [line for line in r.stderr.splitlines() if line.strip()]
    assert r.returncode == 2 and len(err) == 1
    assert err[0] == f"limr-exp: error: the cached probe run {table.parent} is corrupt: delete that folder (it is safe: the next run trains the probe again)"  # noqa: E501


def test_a_signal_inside_a_tracker_call_is_raised_when_the_call_ends():
    """MLflow's SQLAlchemy store logs a traceback when an interruption lands inside a write: tracker calls
    finish first, then the interruption is raised (once)."""
    from limr_exp.run_folder import Interrupted, raise_on_signals, signals_deferred

    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        raise_on_signals()
        finished = []
        with pytest.raises(Interrupted) as e:
            with signals_deferred():
                with signals_deferred():  # nested blocks raise at the outermost end
                    os.kill(os.getpid(), signal.SIGTERM)
                    finished.append("inner")
                finished.append("outer")
        assert finished == ["inner", "outer"] and e.value.exit_code == 143
        with pytest.raises(Interrupted):  # outside a block: at once
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(1)
        with signals_deferred():  # nothing pending any more
            pass
    finally:
        for s, h in saved.items():
            signal.signal(s, h)
