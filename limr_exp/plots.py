"""Figures written into a run's `plots/` folder (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from limr_exp.io import atomic_path


def new_figure(figsize=(7, 4.5)):
    """A figure on the Agg canvas, without pyplot (no global state, faster to import)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)


def lim_trajectories(acc: np.ndarray, scored: np.ndarray, mean: np.ndarray, curve_scores: np.ndarray, theta: float,
                     path: Path, max_curves: int = 300, seed: int = 0) -> None:
    """LIMR Figure 2b: the mean accuracy curve ā^k with sample prompts' curves a_i^k coloured by their score."""
    from matplotlib.collections import LineCollection
    from matplotlib.colors import Normalize

    scored = np.flatnonzero(scored & ~np.isnan(curve_scores))
    rng = np.random.default_rng(seed)
    shown = rng.choice(scored, size=min(max_curves, len(scored)), replace=False) if len(scored) else scored
    epochs = np.arange(1, acc.shape[1] + 1)
    fig = new_figure()
    ax = fig.add_subplot()
    lo = float(np.nanmin(curve_scores[scored])) if len(scored) else 0.0
    shown = shown[np.argsort(curve_scores[shown])]
    lines = LineCollection([np.column_stack([epochs, acc[i]]) for i in shown], cmap="coolwarm_r",
                           norm=Normalize(vmin=max(min(lo, 0.0), -1.0), vmax=1.0), linewidths=0.8, alpha=0.4)
    lines.set_array(curve_scores[shown])
    ax.add_collection(lines)
    ax.plot(epochs, mean, color="black", linewidth=2.5, label="mean accuracy ā^k (scored prompts)")
    ax.set_xlim(epochs[0], epochs[-1] if len(epochs) > 1 else epochs[0] + 1)
    fig.colorbar(lines, ax=ax, label=f"score s_i (selected when ≥ θ = {theta:g})")
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch k")
    ax.set_ylabel("accuracy a_i^k (share of samples correct)")
    ax.set_ylim(-0.03, 1.03)
    ax.set_title(f"Per-prompt learning trajectories ({len(shown)} of {len(scored)} scored prompts)")
    ax.legend(loc="lower right")
    save(fig, path)


def score_histogram(scores: np.ndarray, theta: float, selector: str, path: Path) -> None:
    """Histogram of selection scores with θ marked."""
    s = scores[~np.isnan(scores) & np.isfinite(scores)]
    fig = new_figure()
    ax = fig.add_subplot()
    ax.hist(s, bins=50, color="#4c72b0", edgecolor="white")
    n_sel = int((s >= theta).sum())
    ax.axvline(theta, color="#c44e52", linestyle="--", linewidth=2, label=f"θ = {theta:g}: {n_sel} of {len(s)} selected")
    ax.set_xlabel(f"{selector} score")
    ax.set_ylabel("prompts")
    ax.set_title(f"Distribution of {selector} scores")
    ax.legend()
    save(fig, path)


class BackgroundPlotter:
    """Renders figures in a forked child process that imports matplotlib while the parent works.

    `start()` forks early; `render(fn, *args)` queues jobs; `finish()` hands them over and waits.
    Where fork is unavailable the jobs run inline. A failed child raises RuntimeError in `finish`.
    """

    def __init__(self):
        self._jobs: list = []
        self._pid: int | None = None
        self._write_fd: int | None = None

    def start(self) -> "BackgroundPlotter":
        import os

        if not hasattr(os, "fork"):
            return self
        import gc

        read_fd, write_fd = os.pipe()
        gc.freeze()  # the child then leaves inherited objects (and their pages) alone
        pid = os.fork()
        if pid == 0:  # child: warm up matplotlib, then render what the parent sends
            code = 1
            try:
                os.close(write_fd)
                import pickle

                from matplotlib.backends import backend_agg  # noqa: F401
                from matplotlib import collections, figure  # noqa: F401

                with os.fdopen(read_fd, "rb") as f:
                    payload = f.read()
                for fn, args, kwargs in (pickle.loads(payload) if payload else []):
                    fn(*args, **kwargs)
                code = 0
            except BaseException:  # report and leave without running the parent's cleanup
                import traceback

                traceback.print_exc()
            finally:
                os._exit(code)
        gc.unfreeze()
        os.close(read_fd)
        self._pid, self._write_fd = pid, write_fd
        return self

    def render(self, fn, *args, **kwargs) -> None:
        self._jobs.append((fn, args, kwargs))

    def finish(self) -> None:
        import os
        import pickle

        if self._pid is None:
            for fn, args, kwargs in self._jobs:
                fn(*args, **kwargs)
            return
        try:
            with os.fdopen(self._write_fd, "wb") as f:
                f.write(pickle.dumps(self._jobs))
        except BrokenPipeError:
            pass
        _, status = os.waitpid(self._pid, 0)
        self._pid = None
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError("plotting failed in the background process (see the traceback above)")

    def cancel(self) -> None:
        """Stop the child without rendering (used when the stage fails)."""
        import os

        if self._pid is not None:
            os.close(self._write_fd)  # empty payload: the child exits without work
            os.waitpid(self._pid, 0)
            self._pid = None
