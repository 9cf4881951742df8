"""Compare the jobs of a sweep: runs -> pandas DataFrame -> report.csv, report.md and plots.

    python -m limr_exp.report outputs/sweeps/<date>/<time>

One row per job folder (one that holds `.hydra/`): its overrides and key config values, status
(finished / failed, from status.json), selection size, evaluation accuracy per benchmark, the base
model's, and the final training reward. Plots: accuracy vs θ with the baselines as reference lines,
subset size vs θ, training reward curves per job, and the LIM trajectory figure of the sweep.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from limr_exp.run_folder import read_status

from limr_exp.io import atomic_path, write_text

KEY_COLUMNS = ["selector.name", "theta", "seed", "selector.size", "dataset.name", "model.name", "ppo.name",
               "ppo.advantage_estimator", "trainer.name", "eval.name"]


def job_folders(sweep_dir: Path) -> list[Path]:
    return sorted((p for p in Path(sweep_dir).iterdir() if (p / ".hydra").is_dir()),
                  key=lambda p: (int(p.name.split("_")[0]) if p.name.split("_")[0].isdigit() else 10**9, p.name))


def _read_yaml(path: Path) -> dict | list:
    from omegaconf import OmegaConf

    return OmegaConf.to_container(OmegaConf.load(path), resolve=False) if path.exists() else {}


def _get(d: dict, dotted: str):
    for part in dotted.split("."):
        if not isinstance(d, dict) or part not in d:
            return None
        d = d[part]
    return d


def reward_curve(job: Path, key: str = "train/reward_mean") -> list[tuple[int, float]]:
    path = job / "metrics.jsonl"
    if not path.exists():
        return []
    out = []
    for line in open(path, encoding="utf-8"):
        rec = json.loads(line)
        if key in rec and rec.get("step") is not None:
            out.append((rec["step"], rec[key]))
    return out


def job_row(job: Path) -> dict:
    row: dict = {"job": job.name, "path": str(job)}
    overrides = _read_yaml(job / ".hydra" / "overrides.yaml") or []
    row["overrides"] = " ".join(overrides)
    config = _read_yaml(job / ".hydra" / "config.yaml")
    for col in KEY_COLUMNS:
        row[col] = _get(config, col)
    for item in overrides:
        key, _, value = item.lstrip("+~").partition("=")
        if key not in row and not key.startswith("hydra."):
            row[key] = value
    status = read_status(job)
    if status["status"] == "missing":
        status = {"status": "failed", "error": "no status.json"}
    row["status"] = status.get("status", "failed")
    row["error"] = status.get("error")
    scores = job / "selection" / "scores.parquet"
    if scores.exists():
        s = pd.read_parquet(scores)
        row["n_prompts"], row["n_scored"], row["n_selected"] = len(s), int(s["score"].notna().sum()), int(s["selected"].sum())
    for name, prefix in (("metrics.json", "eval"), ("base_metrics.json", "eval_base")):
        path = job / "eval" / name
        if path.exists():
            m = json.loads(path.read_text())
            for bench, r in m.get("benchmarks", {}).items():
                row[f"{prefix}/{bench}/acc"] = r["acc"]
            row[f"{prefix}/avg"] = m.get("avg")
    curve = reward_curve(job)
    if curve:
        row["train/final_reward_mean"] = curve[-1][1]
    if row["status"] == "finished" and "eval/avg" not in row and (job / ".hydra").exists():
        stages = _get(config, "stages") or []
        if "eval" in stages:
            row["status"], row["error"] = "failed", "no eval/metrics.json"
    return row


def build_report(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per job of the sweep folder."""
    rows = [job_row(job) for job in job_folders(Path(sweep_dir))]
    frame = pd.DataFrame(rows)
    if len(frame) and "theta" in frame:
        frame["theta"] = pd.to_numeric(frame["theta"], errors="coerce")
    return frame


def markdown_table(frame: pd.DataFrame, columns: list[str]) -> str:
    cols = [c for c in columns if c in frame.columns]

    def fmt(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return ""
        return f"{v:.3f}" if isinstance(v, float) else str(v).replace("|", "\\|")

    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in frame[cols].itertuples(index=False)]
    return "\n".join(lines)


def _finish(fig, ax, path: Path, xlabel: str, ylabel: str, title: str, legend_size=None) -> bool:
    from limr_exp.plots import save

    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(fontsize=legend_size)
    save(fig, path)
    return True


def plot_accuracy_vs_theta(frame: pd.DataFrame, path: Path) -> bool:
    from limr_exp.plots import new_figure

    ok = frame[frame["status"] == "finished"] if "status" in frame else frame
    if "eval/avg" not in ok or ok["eval/avg"].isna().all():
        return False
    fig = new_figure()
    ax = fig.add_subplot()
    by_theta = ok[ok["selector.name"].isin(["lim", "linear", "variance", "learnability"]) & ok["theta"].notna()]
    for name, g in by_theta.groupby("selector.name"):
        stats = g.groupby("theta")["eval/avg"].agg(["mean", "std"]).reset_index()
        ax.errorbar(stats["theta"], 100 * stats["mean"], yerr=100 * stats["std"].fillna(0), marker="o", capsize=3, label=name)
    colors = iter(["#555555", "#c44e52", "#8172b2", "#ccb974"])
    for name, g in ok[~ok.index.isin(by_theta.index)].groupby("selector.name"):
        ax.axhline(100 * g["eval/avg"].mean(), linestyle="--", color=next(colors, "#999999"), label=f"{name} (baseline)")
    if "eval_base/avg" in ok and ok["eval_base/avg"].notna().any():
        ax.axhline(100 * ok["eval_base/avg"].mean(), linestyle=":", color="black", label="base model")
    return _finish(fig, ax, path, "θ (LIM threshold)", "evaluation accuracy, mean over benchmarks (%)",
                   "Accuracy after RL on the selected subset")


def plot_subset_size(frame: pd.DataFrame, path: Path) -> bool:
    from limr_exp.plots import new_figure

    if "n_selected" not in frame or frame["n_selected"].isna().all():
        return False
    g = frame[frame["theta"].notna() & frame["n_selected"].notna()] if "theta" in frame else frame.iloc[0:0]
    if not len(g):
        return False
    fig = new_figure()
    ax = fig.add_subplot()
    for name, sub in g.groupby("selector.name"):
        stats = sub.groupby("theta")["n_selected"].mean().reset_index()
        ax.plot(stats["theta"], stats["n_selected"], marker="o", label=name)
    return _finish(fig, ax, path, "θ", "prompts selected", "Subset size vs θ")


def plot_reward_curves(frame: pd.DataFrame, path: Path) -> bool:
    from limr_exp.plots import new_figure

    curves = [(row["job"], reward_curve(Path(row["path"]))) for _, row in frame.iterrows()]
    curves = [(name, c) for name, c in curves if c]
    if not curves:
        return False
    fig = new_figure()
    ax = fig.add_subplot()
    for name, c in curves:
        steps, values = zip(*c)
        ax.plot(steps, values, label=name, linewidth=1.2)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    return _finish(fig, ax, path, "rollout step", "mean reward (train/reward_mean)", "Training reward per job", legend_size=7)


def write_report(frame: pd.DataFrame, sweep_dir: str | Path) -> None:
    sweep_dir = Path(sweep_dir)
    with atomic_path(sweep_dir / "report.csv") as tmp:
        frame.to_csv(tmp, index=False)
    plots = sweep_dir / "plots"
    made = []
    if len(frame):
        for fn, name in ((plot_accuracy_vs_theta, "accuracy_vs_theta.png"), (plot_subset_size, "subset_size_vs_theta.png"),
                         (plot_reward_curves, "train_reward_curves.png")):
            if fn(frame, plots / name):
                made.append(name)
        lim_fig = [Path(p) / "plots" / "lim_trajectories.png" for p in frame["path"]]
        lim_fig = [p for p in lim_fig if p.exists()]
        if lim_fig:
            plots.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(lim_fig[0], plots / "lim_trajectories.png")
            made.append("lim_trajectories.png")
    metric_cols = [c for c in frame.columns if c.startswith(("eval/", "eval_base/"))] if len(frame) else []
    cols = ["job", "status", "selector.name", "theta", "seed", "selector.size", "n_selected"] + metric_cols + ["train/final_reward_mean", "error"]
    text = [f"# Sweep report: {sweep_dir}", "", f"{len(frame)} jobs, "
            f"{int((frame['status'] == 'finished').sum()) if len(frame) else 0} finished.", ""]
    text.append(markdown_table(frame, cols) if len(frame) else "(no jobs)")
    text += [""] + [f"![{m}](plots/{m})" for m in made]
    write_text(sweep_dir / "report.md", "\n".join(text) + "\n")


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1 or argv[0] in ("-h", "--help"):
        print("usage: python -m limr_exp.report <sweep folder>", file=sys.stderr)
        return 2
    sweep_dir = Path(argv[0])
    if not sweep_dir.is_dir():
        print(f"limr-exp: error: {sweep_dir} is not a folder: pass a multirun's sweep folder (hydra.sweep.dir)", file=sys.stderr)
        return 2
    frame = build_report(sweep_dir)
    if not len(frame):
        print(f"limr-exp: error: {sweep_dir} holds no job folders (folders with .hydra/)", file=sys.stderr)
        return 2
    write_report(frame, sweep_dir)
    print(f"report: {sweep_dir / 'report.md'} ({len(frame)} jobs, {int((frame['status'] == 'finished').sum())} finished)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
