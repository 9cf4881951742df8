"""Figures written into a run's `plots/` folder (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from limr_exp.io import atomic_path

MARKERS = "osD^vP*X"  # one marker per line or arm, in turn


def new_figure(figsize=(7, 4.5), right: float | None = None):
    """A figure on the Agg canvas, without pyplot (no global state, faster to import).
    With `right` the margins are fixed (the axes end at that fraction of the width): the run's own plots
    use this, as matplotlib's layout engine draws each figure twice; otherwise constrained layout."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    if right is None:
        fig = Figure(figsize=figsize, layout="constrained")
    else:
        fig = Figure(figsize=figsize)
        fig.subplots_adjust(left=0.1, right=right, bottom=0.11, top=0.92)
    FigureCanvasAgg(fig)
    return fig


def save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, pil_kwargs={"compress_level": 1})


def lim_trajectories(acc: np.ndarray, scored: np.ndarray, mean: np.ndarray, curve_scores: np.ndarray, theta: float,
                     path: Path, max_curves: int = 300, seed: int = 0) -> None:
    """LIMR Figure 2b: the mean accuracy curve ā^k with sample prompts' curves a_i^k coloured by their score."""
    from matplotlib.collections import LineCollection
    from matplotlib.colors import TwoSlopeNorm

    scored = np.flatnonzero(scored & ~np.isnan(curve_scores))
    rng = np.random.default_rng(seed)
    shown = rng.choice(scored, size=min(max_curves, len(scored)), replace=False) if len(scored) else scored
    epochs = np.arange(1, acc.shape[1] + 1)
    fig = new_figure(right=0.86)
    ax = fig.add_subplot()
    lo = float(np.nanmin(curve_scores[scored])) if len(scored) else 0.0
    shown = shown[np.argsort(curve_scores[shown])]
    # the colour turns at θ: red below (left out), blue at and above (selected)
    vmin = min(max(min(lo, 0.0), -1.0), theta - 1e-3)
    norm = TwoSlopeNorm(vcenter=min(max(theta, vmin + 1e-3), 1.0 - 1e-3), vmin=vmin, vmax=1.0)
    lines = LineCollection([np.column_stack([epochs, acc[i]]) for i in shown], cmap="coolwarm_r",
                           norm=norm, linewidths=0.8, alpha=0.4)
    lines.set_array(curve_scores[shown])
    ax.add_collection(lines)
    ax.plot(epochs, mean, color="black", linewidth=2.5, label="mean accuracy ā^k (scored prompts)")
    ax.set_xlim(epochs[0], epochs[-1] if len(epochs) > 1 else epochs[0] + 1)
    bar = fig.colorbar(lines, cax=fig.add_axes((0.88, 0.11, 0.022, 0.81)), label=f"score s_i (selected when ≥ θ = {theta:g})")
    bar.ax.axhline(theta, color="black", linewidth=2)
    bar.ax.text(-0.3, theta, "θ", transform=bar.ax.get_yaxis_transform(), ha="right", va="center", fontsize=10)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch k")
    ax.set_ylabel("accuracy a_i^k (share of samples correct)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"Per-prompt learning trajectories, θ = {theta:g} ({len(shown)} of {len(scored)} scored prompts)")
    ax.legend(loc="lower right")
    save(fig, path)


def curve_groups(acc: np.ndarray, path: Path) -> None:
    """LIMR Figure 2a in numbers: each group's mean accuracy per epoch (left, with its share of the prompts),
    and per epoch the shares of prompts unsolved, partly solved and solved (right)."""
    from limr_exp.history import curve_groups as groups_of

    epochs = np.arange(1, acc.shape[1] + 1)
    fig = new_figure(figsize=(11, 4.2))
    left, right = fig.subplots(1, 2)
    colors = {"stay at 0": "#c44e52", "start ≥ 0.9": "#4c72b0", "improve by ≥ 0.25": "#55a868"}
    for name, mask in groups_of(acc).items():
        if mask.any():
            left.plot(epochs, acc[mask].mean(axis=0), marker="o", color=colors[name],
                      label=f"{name}: {100 * mask.mean():.0f}% of prompts")
    left.plot(epochs, acc.mean(axis=0), color="black", linewidth=2.5, label="all prompts")
    left.set_ylim(-0.03, 1.03)
    left.set_xlabel("epoch k")
    left.set_ylabel("mean accuracy of the group")
    left.set_title("Curve groups (Figure 2a)")
    left.legend(fontsize=8)
    zero, solved = (acc == 0).mean(axis=0), (acc >= 0.9).mean(axis=0)
    right.stackplot(epochs, 100 * zero, 100 * (1 - zero - solved), 100 * solved, colors=["#c44e52", "#dd8452", "#4c72b0"],
                    labels=["unsolved (a = 0)", "partly solved", "solved (a ≥ 0.9)"], alpha=0.8)
    right.set_ylim(0, 100)
    right.set_xlabel("epoch k")
    right.set_ylabel("prompts (%)")
    right.set_title("Shares of prompts per epoch")
    right.legend(fontsize=8, loc="upper right")
    from matplotlib.ticker import MaxNLocator

    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    save(fig, path)


def score_histogram(scores: np.ndarray, theta: float, selector: str, path: Path) -> None:
    """Histogram of selection scores with θ marked."""
    s = scores[~np.isnan(scores) & np.isfinite(scores)]
    fig = new_figure(right=0.97)
    ax = fig.add_subplot()
    counts, edges = np.histogram(s, bins=50)
    ax.stairs(counts, edges, fill=True, color="#4c72b0")  # one artist, not 50 bar patches: a third of the drawing time
    n_sel = int((s >= theta).sum())
    ax.axvline(theta, color="#c44e52", linestyle="--", linewidth=2, label=f"θ = {theta:g}: {n_sel} of {len(s)} selected")
    ax.set_xlabel(f"{selector} score")
    ax.set_ylabel("prompts")
    ax.set_title(f"Distribution of {selector} scores")
    ax.legend(loc="upper left")
    save(fig, path)


def run_curves(steps: list[dict], evals: list[tuple[int, dict]], path: Path, title: str) -> bool:
    """A run's own story: training reward and accuracy per rollout step (left), and held-out accuracy per
    benchmark at the steps it was evaluated (right: base model at step 0, during training, final)."""
    if not steps and not evals:
        return False
    fig = new_figure(figsize=(11, 4.2))
    left, right = fig.subplots(1, 2)
    x = [r["step"] for r in steps]
    for key, label, color in (("train/reward_mean", "mean reward", "#4c72b0"), ("train/accuracy", "accuracy (share correct)", "#55a868")):
        ys = [r.get(key) for r in steps]
        if any(y is not None for y in ys):
            left.plot(x, ys, marker=".", color=color, label=label)
    left.set_xlabel("rollout step")
    left.set_ylabel("training batch")
    left.set_title("Training reward")
    if left.lines:
        left.legend(fontsize=8)
    names = sorted({k for _, m in evals for k in m})
    for name in names:
        pts = sorted((s, m[name]) for s, m in evals if name in m)
        right.plot([s for s, _ in pts], [100 * a for _, a in pts], marker="o", label=name)
    right.set_xlabel("rollout step (0 = base model)")
    right.set_ylabel("held-out accuracy (%)")
    right.set_title("Evaluation during training")
    if names:
        right.legend(fontsize=8)
    from matplotlib.ticker import MaxNLocator

    for ax in (left, right):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle(title)
    save(fig, path)
    return True
