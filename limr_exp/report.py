"""Compare the jobs of a sweep: runs -> pandas DataFrame -> report.csv, report.md and plots.

    python -m limr_exp.report outputs/sweeps/<date>/<time>

One row per job folder (one that holds `.hydra/`): its overrides and key config values, status
(finished / failed, from status.json), selection size, evaluation accuracy per benchmark (and per
family or level), the base model's, and the final training reward. The arms (selector, and θ when
it varies) are compared over seeds: mean ± spread, and LIM minus each other arm against the noise
(arms.csv, differences.csv), and read by training budget: accuracy at every evaluated step, steps
to plateau and steps to reach the full set's final accuracy (budget.csv, limr_exp.budget). Plots:
accuracy per arm, held-out accuracy and training reward per
step for every job, accuracy and subset size vs θ (θ sweeps), and the LIM trajectory figure.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from limr_exp.budget import budget_markdown, plot_budget_curves, read_budget
from limr_exp.io import atomic_path, write_text
from limr_exp.layout import RunLayout
from limr_exp.plots import MARKERS
from limr_exp.run_folder import read_status

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


def training_steps(job: Path) -> list[dict]:
    """Per-step training metrics: the local trainer's `train/steps.jsonl`, else the jsonl logger's rows."""
    from limr_exp.io import read_jsonl

    run = RunLayout(job)
    for path in (run.train.steps, run.tracker_rows):
        if path.exists():
            return [r for r in read_jsonl(path) if r.get("step") is not None and any(k.startswith("train/") for k in r)]
    return []


def reward_curve(job: Path, key: str = "train/reward_mean") -> list[tuple[int, float]]:
    return [(r["step"], r[key]) for r in training_steps(job) if key in r]


def is_benchmark_accuracy(key: str) -> bool:
    """eval/<benchmark>/acc (not a family's eval/<benchmark>/<family>/acc, nor eval/avg)."""
    return key.startswith("eval/") and key.endswith("/acc") and key.count("/") == 2


def benchmark_accuracies(metrics_file: Path) -> dict[str, float]:
    """{benchmark: accuracy} of a metrics.json."""
    return {b: r["acc"] for b, r in json.loads(metrics_file.read_text())["benchmarks"].items()}


def evaluation_curve(job: Path, steps: list[dict] | None = None) -> list[tuple[int, dict[str, float]]]:
    """[(step, {benchmark: accuracy})]: the base model at step 0, evaluations during training, the final one."""
    steps = training_steps(job) if steps is None else steps
    points = []
    base, final = RunLayout(job).base_metrics, RunLayout(job).metrics
    if base.exists():
        points.append((0, benchmark_accuracies(base)))
    for row in steps:
        accs = {k.split("/")[1]: v for k, v in row.items() if is_benchmark_accuracy(k)}
        if accs:
            points.append((row["step"], accs))
    if final.exists():
        points.append((max((r["step"] for r in steps), default=0), benchmark_accuracies(final)))
    return points


def job_row(job: Path) -> dict:
    row: dict = {"job": job.name, "path": str(job)}
    overrides = _read_yaml(job / ".hydra" / "overrides.yaml") or []
    row["overrides"] = " ".join(overrides)
    config = _read_yaml(job / ".hydra" / "config.yaml")
    for col in KEY_COLUMNS:
        row[col] = _get(config, col)
    values = {}
    for item in overrides:
        key, _, value = item.lstrip("+~").partition("=")
        if not key.startswith("hydra."):
            values[key] = value
            row.setdefault(key, value)
    row["override_values"] = json.dumps(values)  # the overrides as typed, by key: what arm_labels tells arms apart by
    status = read_status(job)
    if status["status"] == "missing":
        status = {"status": "failed", "error": "no status.json"}
    row["status"] = status.get("status", "failed")
    row["error"] = status.get("error")
    scores = RunLayout(job).scores
    if scores.exists():
        s = pd.read_parquet(scores)
        row["n_prompts"], row["n_scored"], row["n_selected"] = len(s), int(s["score"].notna().sum()), int(s["selected"].sum())
    for path, prefix in ((RunLayout(job).metrics, "eval"), (RunLayout(job).base_metrics, "eval_base")):
        if path.exists():
            m = json.loads(path.read_text())
            for bench, r in m.get("benchmarks", {}).items():
                row[f"{prefix}/{bench}/acc"] = r["acc"]
                row[f"{prefix}/{bench}/n_problems"] = r.get("n_problems")
                for group, gr in r.get("groups", {}).items():
                    row[f"{prefix}/{bench}/{group}/acc"] = gr["acc"]
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
    span = float(np.ptp(ok["theta"].dropna())) if ok["theta"].notna().any() else 1.0
    for k, (name, g) in enumerate(by_theta.groupby("selector.name")):
        stats = g.groupby("theta")["eval/avg"].agg(["mean", "std"]).reset_index()
        nudge = 0.01 * (span or 1.0) * (k - 1)  # equal curves stay visible side by side
        ax.errorbar(stats["theta"] + nudge, 100 * stats["mean"], yerr=100 * stats["std"].fillna(0), marker=MARKERS[k % len(MARKERS)],
                    capsize=3, label=name)
    colors = iter(["#555555", "#c44e52", "#8172b2", "#ccb974"])
    styles = iter(["--", "-.", (0, (5, 2, 1, 2)), (0, (1, 1))])
    for name, g in ok[~ok.index.isin(by_theta.index)].groupby("selector.name"):
        ax.axhline(100 * g["eval/avg"].mean(), linestyle=next(styles, "--"), color=next(colors, "#999999"), label=f"{name} (baseline)")
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
    span = float(np.ptp(g["theta"])) or 1.0
    for k, (name, sub) in enumerate(g.groupby("selector.name")):
        stats = sub.groupby("theta")["n_selected"].mean().reset_index()
        ax.plot(stats["theta"] + 0.01 * span * (k - 1), stats["n_selected"], marker=MARKERS[k % len(MARKERS)],
                linestyle=["-", "--", "-.", ":"][k % 4], label=name)  # nudged: equal sizes stay visible
    return _finish(fig, ax, path, "θ", "prompts selected", "Subset size vs θ")


# ---------------------------------------------------------------- selectors compared over seeds

def metric_columns(frame: pd.DataFrame) -> list[str]:
    """The headline accuracies: eval/<benchmark>/acc per benchmark, then eval/avg."""
    benches = [c for c in frame.columns if is_benchmark_accuracy(c)]
    return benches + (["eval/avg"] if "eval/avg" in frame.columns and len(benches) > 1 else [])


# overrides that never name an arm: the seed is what an arm's jobs differ in; the selector and θ head the label
NOT_ARM_KEYS = ("seed", "selector", "theta")


def _overrides(row) -> dict:
    """The job's overrides as typed, by key ({} for a row without them)."""
    text = row.get("override_values")
    return json.loads(text) if isinstance(text, str) else {}


def arm_labels(frame: pd.DataFrame) -> pd.Series:
    """A job's arm: its selector, θ when the sweep varies θ (not for full, which θ does not change), and every
    other override whose value differs between the jobs (`selector=random selector.size=16,64` makes two arms,
    `random selector.size=16` and `random selector.size=64`), so jobs that differ in more than their seed are
    never averaged as if they were seeds of one arm."""
    several_thetas = "theta" in frame and frame["theta"].dropna().nunique() > 1
    overrides = [_overrides(r) for _, r in frame.iterrows()]
    keys = [k for k in dict.fromkeys(k for o in overrides for k in o) if k not in NOT_ARM_KEYS]
    varying = [k for k in keys if len({o.get(k) for o in overrides}) > 1]

    def label(r, given: dict) -> str:
        parts = [str(r["selector.name"])]
        if several_thetas and not pd.isna(r["theta"]) and r["selector.name"] != "full":
            parts.append(f"θ={r['theta']:g}")
        return " ".join(parts + [f"{k}={given[k]}" for k in varying if k in given])

    return pd.Series([label(r, o) for (_, r), o in zip(frame.iterrows(), overrides)], index=frame.index, dtype=object)


def reference_arm(frame: pd.DataFrame) -> str | None:
    """The full set's arm, that others are read against by budget; None when the sweep has none or several."""
    ok = finished_jobs(frame)
    labels = set(ok.loc[ok["selector.name"] == "full", "arm"]) if len(ok) else set()
    return labels.pop() if len(labels) == 1 else None


def finished_jobs(frame: pd.DataFrame) -> pd.DataFrame:
    """The finished jobs (all of them when there is no status column), each with its `arm`."""
    ok = frame[frame["status"] == "finished"].copy() if "status" in frame else frame.copy()
    if len(ok):
        ok["arm"] = arm_labels(ok)
    return ok


def _n_problems(g: pd.DataFrame, metric: str):
    """The problems one evaluation of a benchmark's accuracy (eval/<bench>/acc) was taken over, in these jobs."""
    return g.get(metric.replace("/acc", "/n_problems"), pd.Series(dtype=float)).max()


def _standard_error(values: pd.Series, n_problems: float | None, floor_var: float = 0.0) -> float:
    """Standard error of a mean accuracy over seeds: the seeds' spread, and at least the binomial error of
    one evaluation on n_problems problems (three seeds estimate a spread poorly), or `floor_var` when the
    caller knows that error another way (eval/avg: the mean of the benchmarks' errors)."""
    n = len(values)
    p = float(values.mean())
    var = float(values.var(ddof=1)) if n > 1 else 0.0
    if n_problems:
        var = max(var, p * (1 - p) / n_problems)
    return (max(var, floor_var) / max(n, 1)) ** 0.5


def _binomial_var(g: pd.DataFrame, metric: str) -> float:
    """One evaluation's binomial variance of a benchmark's mean accuracy in these jobs (0 when unknown)."""
    n = _n_problems(g, metric)
    p = float(g[metric].mean())
    return p * (1 - p) / n if n and not pd.isna(n) else 0.0


def selector_comparison(frame: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-arm mean, std, min, max and standard error of every headline accuracy over its seeds;
    LIM minus each other arm, with the noise of that difference and whether it exceeds twice the noise)."""
    ok = finished_jobs(frame)
    metrics = metric_columns(ok)
    if not len(ok) or not metrics:
        return pd.DataFrame(), pd.DataFrame()
    rows = []
    for arm, g in ok.groupby("arm", sort=False):
        row = {"arm": arm, "seeds": len(g), "subset": g["n_selected"].mean() if "n_selected" in g else np.nan}
        benches = [m for m in metrics if m != "eval/avg"]
        for m in metrics:
            n_prob = _n_problems(g, m) if m != "eval/avg" else None
            # the mean of k benchmarks: var = sum of their variances / k^2 (one seed alone has no spread to show)
            floor = sum(_binomial_var(g, b) for b in benches) / len(benches) ** 2 if m == "eval/avg" and benches else 0.0
            row |= {f"{m} mean": g[m].mean(), f"{m} std": g[m].std(ddof=1) if len(g) > 1 else 0.0,
                    f"{m} min": g[m].min(), f"{m} max": g[m].max(), f"{m} se": _standard_error(g[m].dropna(), n_prob, floor)}
        rows.append(row)
    arms = pd.DataFrame(rows)
    reference = next((a for a in arms["arm"] if str(a).startswith("lim")), None)
    diffs = []
    if reference is not None:
        ref = arms[arms["arm"] == reference].iloc[0]
        for _, other in arms[arms["arm"] != reference].iterrows():
            for m in metrics:
                diff = ref[f"{m} mean"] - other[f"{m} mean"]
                noise = (ref[f"{m} se"] ** 2 + other[f"{m} se"] ** 2) ** 0.5
                diffs.append({"comparison": f"{reference} - {other['arm']}", "metric": m, "difference": diff, "noise": noise,
                              "exceeds noise": bool(abs(diff) > 2 * noise)})
    return arms, pd.DataFrame(diffs)


def comparison_markdown(arms: pd.DataFrame, diffs: pd.DataFrame) -> list[str]:
    if not len(arms):
        return []
    metrics = [c[:-len(" mean")] for c in arms.columns if c.endswith(" mean")]
    lines = ["## Selectors over seeds", "", "Accuracy in % as mean ± standard deviation over seeds [min, max] (one seed: its "
             "value, without a spread).", "",
             "| arm | seeds | subset | " + " | ".join(metrics) + " |", "|---" * (3 + len(metrics)) + "|"]
    for _, r in arms.iterrows():
        if r["seeds"] > 1:
            cells = [f"{100 * r[f'{m} mean']:.1f} ± {100 * r[f'{m} std']:.1f} [{100 * r[f'{m} min']:.1f}, {100 * r[f'{m} max']:.1f}]"
                     for m in metrics]
        else:  # a spread of one seed is no spread: "± 0.0" would claim a precision nobody measured
            cells = [f"{100 * r[f'{m} mean']:.1f} (1 seed)" for m in metrics]
        subset = "" if pd.isna(r["subset"]) else f"{r['subset']:.0f}"
        lines.append(f"| {r['arm']} | {r['seeds']} | {subset} | " + " | ".join(cells) + " |")
    if len(diffs):
        lines += ["", "Differences in points; noise is the standard error of the difference (the seeds' spread, at least "
                  "the binomial error of one evaluation); a difference exceeds the noise when it is more than twice that.", "",
                  "| comparison | metric | difference | noise | exceeds noise |", "|---|---|---|---|---|"]
        for _, d in diffs.iterrows():
            lines.append(f"| {d['comparison']} | {d['metric']} | {100 * d['difference']:+.1f} | {100 * d['noise']:.1f} | "
                         f"{'yes' if d['exceeds noise'] else 'no'} |")
    return lines + [""]


ARM_COLORS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b2", "#937860", "#da8bc3", "#8c8c8c"]


def _arm_colors(arms) -> dict:
    return {arm: ARM_COLORS[i % len(ARM_COLORS)] for i, arm in enumerate(arms)}


def plot_accuracy_by_selector(frame: pd.DataFrame, path: Path) -> bool:
    """Each arm's accuracy per seed (dots, spread sideways so equal values stay visible) and its mean ± std."""
    from limr_exp.plots import new_figure

    ok = finished_jobs(frame)
    metrics = [m for m in metric_columns(ok) if m != "eval/avg"]
    if not len(ok) or not metrics:
        return False
    arms = list(dict.fromkeys(ok["arm"]))
    colors = _arm_colors(arms)
    fig = new_figure(figsize=(4.2 * len(metrics), 4.2))
    axes = np.atleast_1d(fig.subplots(1, len(metrics)))
    for ax, m in zip(axes, metrics):
        for i, arm in enumerate(arms):
            values = 100 * ok.loc[ok["arm"] == arm, m].dropna().to_numpy()
            if not len(values):
                continue
            offsets = np.linspace(-0.15, 0.15, len(values)) if len(values) > 1 else np.zeros(1)
            ax.scatter(i + offsets, values, color=colors[arm], s=22, alpha=0.8, zorder=3)
            ax.errorbar(i + 0.3, values.mean(), yerr=values.std(ddof=1) if len(values) > 1 else 0, fmt="D",
                        color=colors[arm], capsize=4, markersize=6)
        base = m.replace("eval/", "eval_base/")
        if base in ok and ok[base].notna().any():
            ax.axhline(100 * ok[base].mean(), linestyle=":", color="black", label="base model")
        from matplotlib.lines import Line2D

        handles = [Line2D([], [], marker="o", linestyle="", color=colors[a], label=a) for a in arms]
        handles += [Line2D([], [], marker="D", linestyle="", color="gray", label="mean ± std")]
        handles += [h for h in ax.get_lines() if h.get_label() == "base model"]
        ax.legend(handles=handles, fontsize=8, title="arm", title_fontsize=8)
        ax.set_xticks(range(len(arms)), arms, rotation=20)
        ax.set_ylabel("held-out accuracy (%)")
        ax.set_title(m.split("/")[1])
    fig.suptitle("Accuracy per arm: seeds (dots) and mean ± std (diamond)")
    from limr_exp.plots import save

    save(fig, path)
    return True


def plot_curves_by_arm(frame: pd.DataFrame, path: Path, kind: str) -> bool:
    """kind="reward": training reward per rollout step; kind="eval": held-out accuracy (first benchmark) per
    step. One colour per arm, one marker per seed, each line nudged sideways so identical curves stay visible."""
    from limr_exp.plots import new_figure

    if not len(frame):
        return False
    data = frame.copy()
    data["arm"] = arm_labels(data)
    colors = _arm_colors(list(dict.fromkeys(data["arm"])))
    markers = MARKERS
    fig = new_figure()
    ax = fig.add_subplot()
    drawn, bench = 0, None
    for k, (_, row) in enumerate(data.iterrows()):
        job = Path(row["path"])
        if kind == "reward":
            pts = reward_curve(job)
        else:
            curve = evaluation_curve(job)
            bench = bench or next((b for _, accs in curve for b in accs), None)
            pts = [(s, 100 * accs[bench]) for s, accs in curve if bench in accs]
        if not pts:
            continue
        nudge = 0.12 * ((k % 5) - 2)
        ax.plot([s + nudge for s, _ in pts], [v for _, v in pts], color=colors[row["arm"]], marker=markers[k % len(markers)],
                markersize=3.5, linewidth=1.1, alpha=0.8, label=f"{row['arm']} seed {row.get('seed')}")
        drawn += 1
    if not drawn:
        return False
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if kind == "reward":
        return _finish(fig, ax, path, "rollout step", "mean reward (train/reward_mean)", "Training reward per job", legend_size=7)
    return _finish(fig, ax, path, "rollout step (0 = base model)", f"{bench} accuracy (%)", "Held-out accuracy during training",
                   legend_size=7)


def copy_run_figures(frame: pd.DataFrame, plots: Path, per_theta: bool) -> list[str]:
    """Figure 2b (and 2a) of the sweep's first job that has them; in a θ sweep one per θ, each marked with its θ."""
    made = []
    jobs = frame.sort_values("theta") if per_theta else frame
    seen = set()
    for _, row in jobs.iterrows():
        theta = row.get("theta") if per_theta else None
        if theta in seen:
            continue
        for name in ("lim_trajectories", "curve_groups"):
            source = RunLayout(row["path"]).plot(name)
            if source.exists():
                target = f"{name}_theta{theta:g}.png" if theta is not None and not pd.isna(theta) else f"{name}.png"
                if target in made:
                    continue
                plots.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source, plots / target)
                made.append(target)
                seen.add(theta)
        if not per_theta and made:
            break
    return made


def arm_curves(frame: pd.DataFrame) -> tuple[str | None, dict[str, list[list[tuple[int, float]]]], int | None]:
    """(first benchmark, {arm: [each finished job's [(step, accuracy)]]}, samples of one evaluation) from the
    evaluations made during training (limr_exp.budget reads them by budget)."""
    ok = finished_jobs(frame)
    if not len(ok):
        return None, {}, None
    bench, curves, n_samples = None, {}, None
    for _, row in ok.iterrows():
        job = Path(row["path"])
        curve = evaluation_curve(job)
        bench = bench or next((b for _, accs in curve for b in accs), None)
        curves.setdefault(row["arm"], []).append([(s, accs[bench]) for s, accs in curve if bench in accs])
        final = RunLayout(job).metrics
        if n_samples is None and bench and final.exists():
            n_samples = json.loads(final.read_text())["benchmarks"].get(bench, {}).get("n_samples")
    return bench, curves, n_samples


def probe_seed_markdown(frame: pd.DataFrame) -> list[str]:
    """The jobs' `selection/probe_seeds.json` (probe.sensitivity_seeds), one line per selector and θ."""
    records = {}
    for path in frame.get("path", []):
        file = RunLayout(path).probe_seeds
        if file.exists():
            r = json.loads(file.read_text())
            records.setdefault((r["selector"], r["theta"]), r)
    if not records:
        return []
    lines = ["## Probe-seed sensitivity", "", "How far the selection moves with the probe's seed (`probe.sensitivity_seeds`): "
             "the same selector and θ on probes that differ only in their seed.", "",
             "| selector | θ | probe seeds | subset sizes | Jaccard with the sweep's probe | pairwise mean (min) | in every / any subset |",
             "|---|---|---|---|---|---|---|"]
    for (selector, theta), r in sorted(records.items()):
        lines.append(f"| {selector} | {theta:g} | {', '.join(map(str, r['seeds']))} | {' / '.join(map(str, r['sizes']))} | "
                     f"{' / '.join(f'{j:.2f}' for j in r['jaccard_with_this_probe'])} | {r['pairwise_mean']:.2f} "
                     f"({r['pairwise_min']:.2f}) | {r['in_every_subset']} / {r['in_any_subset']} |")
    return lines + [""]


# the jobs table: what tells the jobs apart and what they scored (every column stays in report.csv)
JOB_COLUMNS = ["job", "status", "selector.name", "theta", "seed", "selector.size", "n_selected"]


def write_report(frame: pd.DataFrame, sweep_dir: str | Path) -> None:
    sweep_dir = Path(sweep_dir)
    with atomic_path(sweep_dir / "report.csv") as tmp:
        frame.to_csv(tmp, index=False)
    plots = sweep_dir / "plots"
    made = []
    if len(frame):
        several_thetas = "theta" in frame and frame["theta"].dropna().nunique() > 1
        figures = [(plot_accuracy_by_selector, "accuracy_by_arm.png"),
                   (lambda f, p: plot_curves_by_arm(f, p, "eval"), "eval_curves.png"),
                   (lambda f, p: plot_curves_by_arm(f, p, "reward"), "train_reward_curves.png")]
        if several_thetas:
            figures[:0] = [(plot_accuracy_vs_theta, "accuracy_vs_theta.png"), (plot_subset_size, "subset_size_vs_theta.png")]
        for fn, name in figures:
            if fn(frame, plots / name):
                made.append(name)
        made += copy_run_figures(frame, plots, several_thetas)
    metric_cols = [c for c in metric_columns(frame)] if len(frame) else []
    cols = [c for c in JOB_COLUMNS if c in frame.columns and (c in ("job", "status") or frame[c].notna().any())] + metric_cols
    if len(frame) and "error" in frame and frame["error"].notna().any():
        cols.append("error")
    text = [f"# Sweep report: {sweep_dir}", "", f"{len(frame)} jobs, "
            f"{int((frame['status'] == 'finished').sum()) if len(frame) else 0} finished.", ""]
    if len(frame):
        arms, diffs = selector_comparison(frame)
        text += comparison_markdown(arms, diffs)
        bench, curves, n_samples = arm_curves(frame)
        if bench is not None:
            budget = read_budget(curves, n_samples, reference_arm(frame))
            text += budget_markdown(budget, bench)
            if plot_budget_curves(budget, bench, plots / "accuracy_by_budget.png"):
                text.append("![accuracy_by_budget.png](plots/accuracy_by_budget.png)\n")
            if len(budget.summary):
                with atomic_path(sweep_dir / "budget.csv") as tmp:
                    budget.summary.to_csv(tmp, index=False)
        for table, name in ((arms, "arms.csv"), (diffs, "differences.csv")):
            if len(table):
                with atomic_path(sweep_dir / name) as tmp:
                    table.to_csv(tmp, index=False)
        text += probe_seed_markdown(frame)
    text.append("## Jobs")
    text.append("")
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
