"""Accuracy by training budget: what a sweep's arms score after every evaluated rollout step.

The paper's claim has two halves (LIMR, Figure 3 and Table 2): LIM reaches the full set's accuracy
sooner ("LIM is faster") and ends where the full set ends ("LIM is as good"). A table of final
accuracies mixes them up; this module reads them apart from the held-out evaluations made during
training (`trainer.eval_steps`):

  accuracy at budget b      mean ± std over seeds of each arm's accuracy at rollout step b
  steps to plateau          first step where a job's accuracy is within `tolerance` of its final one
                            ("still rising" when the evaluation before the last is not: no plateau yet)
  steps to reach <arm>      first step where an arm's mean accuracy reaches the reference arm's final
                            mean accuracy, less `tolerance`

The tolerance is twice the binomial standard error of one evaluation (2 sqrt(p(1-p)/n)), at least one
point: two accuracies closer than that are the same figure read twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd


def curve_table(curves: dict[str, list[list[tuple[int, float]]]]) -> pd.DataFrame:
    """{arm: [one job's [(step, accuracy)], ...]} -> rows (arm, step, mean, std, seeds) at every step that
    all of an arm's jobs evaluated (a step some seeds lack would mix seeds into a false mean)."""
    rows = []
    for arm, jobs in curves.items():
        jobs = [dict(c) for c in jobs if c]
        if not jobs:
            continue
        common = sorted(set.intersection(*(set(c) for c in jobs)))
        for step in common:
            values = np.array([c[step] for c in jobs], dtype=float)
            rows.append({"arm": arm, "step": step, "mean": values.mean(),
                         "std": values.std(ddof=1) if len(values) > 1 else float("nan"), "seeds": len(values)})
    return pd.DataFrame(rows, columns=["arm", "step", "mean", "std", "seeds"])


def tolerance(accuracy: float, n_samples: int | None) -> float:
    """Twice one evaluation's binomial standard error at `accuracy`, at least one point (0.01)."""
    if not n_samples:
        return 0.01
    return max(0.01, 2 * math.sqrt(max(accuracy * (1 - accuracy), 0.0) / n_samples))


def first_step_reaching(points: list[tuple[int, float]], target: float) -> int | None:
    """The first step whose accuracy is >= target (points in step order); None when none is."""
    return next((step for step, acc in sorted(points) if acc >= target), None)


def steps_to_plateau(points: list[tuple[int, float]], n_samples: int | None) -> int | None:
    """The first step within one tolerance of the job's final accuracy; None while the curve is still rising
    (the evaluation before the last is more than one tolerance below it: the run ended before a plateau)."""
    points = sorted(points)
    if len(points) < 2:
        return None
    final = points[-1][1]
    target = final - tolerance(final, n_samples)
    if points[-2][1] < target:
        return None
    return first_step_reaching(points, target)


def budget_summary(curves: dict[str, list[list[tuple[int, float]]]], n_samples: int | None,
                   reference: str | None, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per arm: final accuracy (mean, std), steps to plateau (mean over seeds, and the seeds' values), and
    the first step its mean curve reaches `reference`'s final mean accuracy (less one tolerance). `table` is
    curve_table(curves) when the caller has it."""
    table = curve_table(curves) if table is None else table
    if not len(table):
        return pd.DataFrame()
    finals = table.sort_values("step").groupby("arm").tail(1).set_index("arm")
    target = None
    if reference in finals.index:
        ref_final = float(finals.loc[reference, "mean"])
        target = ref_final - tolerance(ref_final, n_samples)
    rows = []
    for arm, jobs in curves.items():
        if arm not in finals.index:
            continue
        plateaus = [steps_to_plateau(c, n_samples) for c in jobs if c]
        mean_curve = [(int(r.step), float(r.mean)) for r in table[table["arm"] == arm].itertuples()]
        rows.append({"arm": arm, "final step": int(finals.loc[arm, "step"]), "final mean": float(finals.loc[arm, "mean"]),
                     "final std": float(finals.loc[arm, "std"]),
                     # a mean over the seeds that plateaued would hide the ones still rising
                     "steps to plateau": float(np.mean(plateaus)) if plateaus and None not in plateaus else float("nan"),
                     "plateau steps per seed": " / ".join("rising" if p is None else str(p) for p in plateaus)})
        if target is not None:
            rows[-1][f"steps to reach {reference}'s final"] = first_step_reaching(mean_curve, target)
    return pd.DataFrame(rows)


@dataclass
class Budget:
    """A sweep's curves read by budget, once: the per-step table, the per-arm summary, the reference arm."""

    table: pd.DataFrame
    summary: pd.DataFrame
    reference: str | None

    @property
    def is_curve(self) -> bool:
        """At least two evaluated steps: one point is no curve."""
        return bool(len(self.table)) and self.table["step"].nunique() >= 2


def read_budget(curves: dict[str, list[list[tuple[int, float]]]], n_samples: int | None, reference: str | None) -> Budget:
    table = curve_table(curves)
    return Budget(table, budget_summary(curves, n_samples, reference, table), reference)


def budget_markdown(budget: Budget, bench: str) -> list[str]:
    """The report's section: accuracy at every evaluated budget, then plateau and catch-up steps."""
    table, summary, reference = budget.table, budget.summary, budget.reference
    if not budget.is_curve:
        return []
    steps = sorted(table["step"].unique())
    arms = list(dict.fromkeys(table["arm"]))

    def cell(arm, step):
        r = table[(table["arm"] == arm) & (table["step"] == step)]
        if not len(r):
            return ""
        r = r.iloc[0]
        return f"{100 * r['mean']:.1f}" + ("" if np.isnan(r["std"]) else f" ± {100 * r['std']:.1f}")

    lines = [f"## Accuracy by training budget ({bench})", "",
             "Held-out accuracy in % after each evaluated rollout step (0 = base model), mean ± std over seeds: read "
             "\"is it faster\" across a row and \"is it as good\" in the last column.", "",
             "| arm | " + " | ".join(f"step {s}" for s in steps) + " |", "|---" * (1 + len(steps)) + "|"]
    lines += [f"| {arm} | " + " | ".join(cell(arm, s) for s in steps) + " |" for arm in arms]
    if len(summary):
        reach = f"steps to reach {reference}'s final"
        tol = "two standard errors of one evaluation (at least 1 point)"
        legend = (f"Steps to plateau: the first evaluated step within {tol} of the job's final accuracy (mean over seeds; "
                  f"each seed's value beside it); \"still rising\" when the evaluation before the last is not within it yet "
                  "(the run ended before a plateau: train longer to read \"as good\").")
        if reference:
            legend += (f" Steps to reach {reference}'s final: the first step where the arm's mean curve comes within {tol} "
                       f"of {reference}'s final mean.")
        lines += ["", legend, "",
                  "| arm | final (mean ± std) | steps to plateau | per seed |" + (f" {reach} |" if reference else ""),
                  "|---|---|---|---|" + ("---|" if reference else "")]
        for d in summary.to_dict("records"):
            std = "" if np.isnan(d["final std"]) else f" ± {100 * d['final std']:.1f}"
            plateau = "still rising" if np.isnan(d["steps to plateau"]) else f"{d['steps to plateau']:.0f}"
            line = f"| {d['arm']} | {100 * d['final mean']:.1f}{std} | {plateau} | {d['plateau steps per seed']} |"
            if reference:
                hit = d.get(reach)
                line += f" {'not reached' if hit is None or (isinstance(hit, float) and np.isnan(hit)) else int(hit)} |"
            lines.append(line)
    return lines + [""]


def plot_budget_curves(budget: Budget, bench: str, path) -> bool:
    """Each arm's mean held-out accuracy per step with its seeds' spread (band), the reference arm's final
    accuracy as a line: where an arm's curve crosses it is the step it reached that accuracy."""
    from limr_exp.plots import MARKERS, new_figure, save

    table, reference = budget.table, budget.reference
    if not budget.is_curve:
        return False
    fig = new_figure()
    ax = fig.add_subplot()
    for k, (arm, g) in enumerate(table.groupby("arm", sort=False)):
        g = g.sort_values("step")
        line, = ax.plot(g["step"], 100 * g["mean"], marker=MARKERS[k % len(MARKERS)], markersize=4,
                        label=f"{arm} ({int(g['seeds'].max())} seeds)")
        std = g["std"].fillna(0).to_numpy()
        ax.fill_between(g["step"], 100 * (g["mean"] - std), 100 * (g["mean"] + std), color=line.get_color(), alpha=0.15)
    if reference is not None and reference in set(table["arm"]):
        final = table[table["arm"] == reference].sort_values("step").iloc[-1]["mean"]
        ax.axhline(100 * final, linestyle=":", color="black", label=f"{reference}'s final accuracy")
    ax.set_xlabel("rollout step (0 = base model)")
    ax.set_ylabel(f"{bench} accuracy (%)")
    ax.set_title("Accuracy by training budget: mean ± std over seeds")
    ax.legend(fontsize=8)
    save(fig, path)
    return True
