"""Figures written into a run's `plots/` folder (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from limr_exp.io import atomic_path


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def lim_trajectories(curves, curve_scores: np.ndarray, theta: float, path: Path, max_curves: int = 300, seed: int = 0) -> None:
    """LIMR Figure 2b: the mean accuracy curve with sample prompts' curves coloured by their score."""
    plt = _pyplot()
    scored = np.flatnonzero(curves.scored & ~np.isnan(curve_scores))
    rng = np.random.default_rng(seed)
    shown = rng.choice(scored, size=min(max_curves, len(scored)), replace=False) if len(scored) else scored
    epochs = np.arange(1, curves.acc.shape[1] + 1)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    cmap = plt.get_cmap("coolwarm_r")
    lo, hi = (np.nanmin(curve_scores[scored]), np.nanmax(curve_scores[scored])) if len(scored) else (0.0, 1.0)
    norm = plt.Normalize(vmin=min(lo, 0.0), vmax=max(hi, 1.0))
    for i in shown[np.argsort(curve_scores[shown])]:
        ax.plot(epochs, curves.acc[i], color=cmap(norm(curve_scores[i])), alpha=0.35, linewidth=0.8)
    ax.plot(epochs, curves.mean, color="black", linewidth=2.5, label="mean accuracy ā^k (scored prompts)")
    sm = plt.cm.ScalarMappable(cmap=cmap, norm=norm)
    fig.colorbar(sm, ax=ax, label=f"score s_i (selected when ≥ θ = {theta:g})")
    ax.set_xlabel("epoch k")
    ax.set_ylabel("accuracy a_i^k (share of samples correct)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"Per-prompt learning trajectories ({len(shown)} of {len(scored)} scored prompts)")
    ax.legend(loc="lower right")
    _save(fig, path)
    plt.close(fig)


def score_histogram(scores: np.ndarray, theta: float, selector: str, path: Path) -> None:
    """Histogram of selection scores with θ marked."""
    plt = _pyplot()
    s = scores[~np.isnan(scores) & np.isfinite(scores)]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.hist(s, bins=50, color="#4c72b0", edgecolor="white")
    n_sel = int((s >= theta).sum())
    ax.axvline(theta, color="#c44e52", linestyle="--", linewidth=2, label=f"θ = {theta:g}: {n_sel} of {len(s)} selected")
    ax.set_xlabel(f"{selector} score")
    ax.set_ylabel("prompts")
    ax.set_title(f"Distribution of {selector} scores")
    ax.legend()
    _save(fig, path)
    plt.close(fig)
