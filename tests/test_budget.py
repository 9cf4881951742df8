"""Accuracy by training budget (limr_exp.budget): the report reads "faster" and "as good" apart."""

import math

import pandas as pd

from limr_exp.budget import budget_markdown, budget_summary, curve_table, read_budget, steps_to_plateau, tolerance

# three seeds per arm; LIM rises fast and flattens, FULL rises slowly to the same end, RANDOM ends lower
LIM = [[(0, .40), (10, .62), (20, .66), (30, .67), (40, .67)], [(0, .40), (10, .60), (20, .66), (30, .66), (40, .67)],
       [(0, .40), (10, .61), (20, .67), (30, .67), (40, .66)]]
FULL = [[(0, .40), (10, .48), (20, .56), (30, .62), (40, .67)], [(0, .40), (10, .47), (20, .57), (30, .63), (40, .66)],
        [(0, .40), (10, .49), (20, .55), (30, .64), (40, .68)]]
RANDOM = [[(0, .40), (10, .47), (20, .52), (30, .55), (40, .56)], [(0, .40), (10, .45), (20, .50), (30, .54), (40, .57)],
          [(0, .40), (10, .46), (20, .53), (30, .56), (40, .55)]]
CURVES = {"full": FULL, "random": RANDOM, "lim": LIM}


def test_mean_and_spread_at_every_budget_all_seeds_share():
    table = curve_table({"lim": LIM[:2] + [LIM[2][:-1]]})  # one seed lacks step 40: that step is left out
    assert list(table["step"]) == [0, 10, 20, 30]
    row = table[table["step"] == 10].iloc[0]
    assert math.isclose(row["mean"], 0.61) and math.isclose(row["std"], 0.01) and row["seeds"] == 3


def test_plateau_is_the_first_step_within_one_standard_error_of_the_end():
    assert steps_to_plateau(LIM[0], n_samples=2560) == 20  # 0.66 is within 2 x 0.93 points of 0.67
    assert steps_to_plateau(FULL[0], n_samples=2560) is None  # 0.62 at step 30, 0.67 at 40: still rising
    assert steps_to_plateau(FULL[0] + [(50, .67)], n_samples=2560) == 40
    assert tolerance(0.5, 100) == 0.1 and tolerance(0.5, None) == 0.01 and tolerance(0.99, 10**6) == 0.01


def test_lim_reaches_full_final_accuracy_in_fewer_steps_and_random_never():
    summary = budget_summary(CURVES, n_samples=2560, reference="full").set_index("arm")
    reach = "steps to reach full's final"
    assert summary.loc["lim", reach] == 20 and summary.loc["full", reach] == 40
    assert pd.isna(summary.loc["random", reach])
    assert pd.isna(summary.loc["full", "steps to plateau"]) and summary.loc["full", "plateau steps per seed"] == "rising / rising / rising"
    assert math.isclose(summary.loc["lim", "final mean"], 2 / 3) and summary.loc["lim", "plateau steps per seed"] == "20 / 20 / 20"


def test_markdown_has_a_row_per_arm_and_a_column_per_budget():
    lines = budget_markdown(read_budget(CURVES, 2560, "full"), "toy_test")
    text = "\n".join(lines)
    assert "| lim | 40.0 ± 0.0 | 61.0 ± 1.0 |" in text and "step 40" in text
    assert "| random | 56.0 ± 1.0 |" in text and "not reached" in text and "| full | 67.0 ± 1.0 | still rising |" in text
    assert budget_markdown(read_budget({"lim": [[(0, .4)]]}, 100, None), "toy_test") == []  # one point is no curve
