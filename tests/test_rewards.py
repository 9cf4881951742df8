"""LIMR's rule-based reward: a labelled table, pathological inputs, threads, API errors, properties."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given, settings as hsettings, strategies as st

from limr_exp.rewards import RewardSettings, judge, math_reward, score_batch, timeouts, warm_up


def boxed(x: str) -> str:
    return f"We compute step by step, and so the final answer is $\\boxed{{{x}}}$."


OK, WRONG, FORMAT = 1.0, -0.5, -1.0
CASES = [
    # (label, response, reference answer, expected reward)
    ("integer", boxed("42"), "42", OK),
    ("integer wrong", boxed("41"), "42", WRONG),
    ("negative", boxed("-7"), "-7", OK),
    ("decimal = fraction", boxed("0.5"), "\\frac{1}{2}", OK),
    ("dfrac", boxed("\\dfrac{3}{4}"), "\\frac{3}{4}", OK),
    ("tfrac", boxed("\\tfrac{3}{4}"), "\\frac34", OK),
    ("slash fraction", boxed("3/4"), "\\frac{3}{4}", OK),
    ("unreduced fraction", boxed("\\frac{6}{8}"), "\\frac{3}{4}", OK),
    ("fraction wrong", boxed("\\frac{4}{3}"), "\\frac{3}{4}", WRONG),
    ("negative fraction", boxed("-\\frac{1}{3}"), "\\frac{-1}{3}", OK),
    ("rounded decimal (6 places)", boxed("0.333333"), "\\frac{1}{3}", OK),
    ("too coarse decimal", boxed("0.33"), "\\frac{1}{3}", WRONG),
    ("radical", boxed("2\\sqrt{3}"), "\\sqrt{12}", OK),
    ("radical rationalised", boxed("\\frac{\\sqrt{2}}{2}"), "\\frac{1}{\\sqrt{2}}", OK),
    ("radical wrong", boxed("\\sqrt{3}"), "\\sqrt{2}", WRONG),
    ("cube root", boxed("\\sqrt[3]{27}"), "3", OK),
    ("pi", boxed("2\\pi"), "2\\pi", OK),
    ("pi order", boxed("\\pi \\cdot 2"), "2\\pi", OK),
    ("pi decimal is not pi", boxed("3.14"), "\\pi", WRONG),
    ("e", boxed("e^{2}"), "e^2", OK),
    ("sum order", boxed("\\sqrt{2} + 1"), "1+\\sqrt{2}", OK),
    ("expanded vs factored", boxed("x^2+2x+1"), "(x+1)^2", OK),
    ("polynomial wrong", boxed("x^2+2x+2"), "(x+1)^2", WRONG),
    ("polynomial other variable", boxed("y^2+2y+1"), "(x+1)^2", WRONG),
    ("tuple", boxed("(1, 2)"), "(1,2)", OK),
    ("tuple wrong", boxed("(2, 1)"), "(1,2)", WRONG),
    ("tuple vs number", boxed("3"), "(1,2)", WRONG),
    ("point with fraction", boxed("\\left(3, \\frac{\\pi}{2}\\right)"), "\\left( 3, \\frac{\\pi}{2} \\right)", OK),
    ("interval", boxed("[2, 5)"), "[2,5)", OK),
    ("interval wrong bracket", boxed("(2, 5)"), "[2,5)", WRONG),
    ("union", boxed("(-\\infty, 1) \\cup (2, \\infty)"), "(-\\infty,1)\\cup(2,\\infty)", OK),
    ("union vs number", boxed("2"), "(-\\infty,1)\\cup(2,\\infty)", WRONG),
    ("set", boxed("\\{1, 2, 3\\}"), "\\{3, 2, 1\\}", OK),
    ("list of roots any order", boxed("3, -3"), "-3, 3", OK),
    ("vector", boxed("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"), "\\begin{pmatrix}1\\\\2\\end{pmatrix}", OK),
    ("matrix wrong", boxed("\\begin{pmatrix} 1 & 0 \\\\ 0 & 2 \\end{pmatrix}"), "\\begin{pmatrix} 1 & 0 \\\\ 0 & 1 \\end{pmatrix}", WRONG),
    ("degrees", boxed("30^\\circ"), "30", OK),
    ("degrees braces", boxed("30^{\\circ}"), "30^\\circ", OK),
    ("percent", boxed("25\\%"), "25", OK),
    ("percent sign", boxed("25%"), "25\\%", OK),
    ("dollars", boxed("\\$18.90"), "18.90", OK),
    ("dollars integer", boxed("\\$5"), "5", OK),
    ("units text", boxed("12 \\text{ cm}"), "12", OK),
    ("units mbox", boxed("12\\mbox{ inches}"), "12", OK),
    ("units squared", boxed("50 \\text{ m}^2"), "50", OK),
    ("text answer", boxed("\\text{Monday}"), "\\text{Monday}", OK),
    ("text answer wrong", boxed("\\text{Tuesday}"), "\\text{Monday}", WRONG),
    ("multiple choice", boxed("\\textbf{(B)}"), "\\text{(B)}", OK),
    ("base subscript", boxed("1011_2"), "1011_2", OK),
    ("base subscript wrong", boxed("1012_3"), "1011_2", WRONG),
    ("scientific notation", boxed("2.5 \\times 10^{3}"), "2500", OK),
    ("scientific wrong", boxed("2.5 \\times 10^{4}"), "2500", WRONG),
    ("thousands separator", boxed("1,000,000"), "1000000", OK),
    ("latex thousands", boxed("10{,}000"), "10000", OK),
    ("thin-space thousands", boxed("11,\\!880"), "11880", OK),
    ("x = value", boxed("x = 5"), "5", OK),
    ("x = value wrong", boxed("x = 6"), "5", WRONG),
    ("equation of a line", boxed("y = 2x + 3"), "y=2x+3", OK),
    ("last box wins", "First guess $\\boxed{3}$, but wait, actually $\\boxed{4}$.", "4", OK),
    ("last box wins (wrong)", "It is $\\boxed{4}$. Hmm, no: $\\boxed{3}$.", "4", WRONG),
    ("nested braces", boxed("\\frac{\\sqrt{\\frac{1}{4}}}{2}"), "\\frac{1}{4}", OK),
    ("boxed without braces", "The answer is $\\boxed 7$.", "7", OK),
    ("no box", "The answer is 42.", "42", FORMAT),
    ("five boxes", " ".join(f"$\\boxed{{{i}}}$" for i in range(5)), "4", FORMAT),
    ("four boxes fine", " ".join(f"$\\boxed{{{i}}}$" for i in range(4)), "3", OK),
    ("unterminated box", "so the answer is $\\boxed{42", "42", FORMAT),
    ("empty box", "so the answer is $\\boxed{}$", "42", FORMAT),
    ("garbled", "\u0416\u0436\u042f\u2603\u2602\u2601" * 20 + boxed("42"), "42", FORMAT),
    ("repetition", "we get " + "again and " * 6 + boxed("42"), "42", FORMAT),
    ("repeated zeros are a number", boxed("1" + "0" * 30), "1" + "0" * 30, OK),
    ("spaces are not repetition", "x" + " " * 40 + boxed("42"), "42", OK),
    ("greek and symbols are not garbled", "Let α ≤ β and θ = π/2 × 2 ÷ 1 " + boxed("42"), "42", OK),
]


@pytest.fixture(scope="module", autouse=True)
def pool():
    warm_up()


@pytest.mark.parametrize("label,response,answer,expected", CASES, ids=[c[0] for c in CASES])
def test_labelled_cases(label, response, answer, expected):
    assert math_reward(response, answer) == expected


def test_table_is_large_enough():
    assert len(CASES) >= 60


def test_score_batch_matches_single_calls_in_order():
    responses, answers = [c[1] for c in CASES], [c[2] for c in CASES]
    assert score_batch(responses, answers) == [c[3] for c in CASES]


def test_judge_reports_reason_and_extracted_answer():
    j = judge(boxed("\\frac{1}{2}"), "0.5")
    assert (j.reward, j.correct, j.reason, j.extracted) == (1.0, True, "correct", "\\frac{1}{2}")
    assert judge("no box here", "1").reason == "no_box"
    assert judge(" ".join("$\\boxed{1}$" for _ in range(6)), "1").reason == "too_many_boxes"
    assert judge("$\\boxed{1", "1").reason == "unterminated_box"
    assert judge("blah " * 10 + boxed("1"), "1").reason == "repetition"
    assert judge(boxed("2"), "1").reason == "wrong"


def test_rules_can_be_switched_off_and_penalties_configured():
    s = RewardSettings(check_repetition=False, check_garbled=False, max_boxes=0, wrong=0.0, format_error=-2.0)
    assert math_reward("blah " * 10 + boxed("1"), "1", s) == 1.0
    assert math_reward(" ".join("$\\boxed{1}$" for _ in range(6)), "1", s) == 1.0
    assert math_reward(boxed("2"), "1", s) == 0.0
    assert math_reward("none", "1", s) == -2.0


PATHOLOGICAL = [
    ("power tower", boxed("9^{9^{9^{9}}}"), "3"),
    ("factorial tower", boxed("10^{10^{10}}!"), "5"),
    ("huge power", boxed("2^{2^{64}}"), "4"),
    ("deep braces", "$\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}$", "1"),
    ("100 KB answer", boxed("1" * 100_000), "1"),
    ("100 KB expression", boxed("x+" * 50_000 + "1"), "1"),
    ("python injection", boxed("__import__('os').system('touch /tmp/limr_pwned')"), "0"),
    ("sympy injection", boxed("\\text{eval(\"__import__('os').system('touch /tmp/limr_pwned')\")}"), "0"),
    ("lambda", boxed("(lambda: __import__('os').system('touch /tmp/limr_pwned'))()"), "1"),
    ("100 KB response no box", "a" * 100_000, "1"),
    ("100 KB of boxes", "\\boxed{1}" * 10_000, "1"),
]


@pytest.mark.parametrize("label,response,answer", PATHOLOGICAL, ids=[p[0] for p in PATHOLOGICAL])
def test_pathological_inputs_are_bounded_and_safe(label, response, answer, tmp_path):
    import os

    t = time.monotonic()
    reward = math_reward(response, answer)
    assert reward in (1.0, -0.5, -1.0)
    assert time.monotonic() - t < 3.0
    assert not os.path.exists("/tmp/limr_pwned")


def test_timeouts_score_minus_one_and_are_counted():
    before = timeouts()
    j = judge(boxed("9^{9^{9^{9}}}"), "3", RewardSettings(timeout_s=0.5))
    assert j.reward in (-1.0, -0.5)
    if j.reason == "timeout":
        assert timeouts() > before
    assert math_reward(boxed("2"), "2") == 1.0  # the pool recovered


def test_from_worker_threads_within_budget():
    """OpenRLHF calls the reward in worker threads: every call returns within budget, right."""
    cases = CASES + [(p[0], p[1], p[2], None) for p in PATHOLOGICAL[:3]]
    durations, wrong = [], []

    def call(case):
        label, response, answer, expected = case
        t = time.monotonic()
        r = math_reward(response, answer)
        durations.append(time.monotonic() - t)
        if expected is not None and r != expected:
            wrong.append(label)

    with ThreadPoolExecutor(8) as ex:
        list(ex.map(call, cases * 2))
    assert not wrong and max(durations) < 3.0 + 0.5


def test_bad_api_input_raises_clear_errors():
    with pytest.raises(TypeError, match="response must be a str"):
        math_reward(None, "1")
    with pytest.raises(TypeError, match="decode bytes"):
        math_reward(b"\\boxed{1}", "1")
    with pytest.raises(TypeError, match="answer must be a str"):
        math_reward(boxed("1"), 1)
    with pytest.raises(ValueError, match="answer is empty"):
        math_reward(boxed("1"), "  ")
    with pytest.raises(ValueError, match="one answer per response"):
        score_batch(["a", "b"], ["1"])
    with pytest.raises(TypeError, match="sequences"):
        score_batch("abc", "1")


LATEX_PIECES = list("0123456789+-*/^_{}()[],.= xyzabc\\\n$") + [
    "\\boxed{", "\\frac{", "\\sqrt{", "\\pi", "}", "\\left(", "\\right)", "\\text{", "^{", "!", "\\infty", "\\cup"]
LATEXISH = st.lists(st.sampled_from(LATEX_PIECES), max_size=40).map("".join)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(response=st.one_of(st.text(max_size=200), LATEXISH), answer=st.one_of(st.text(min_size=1, max_size=20).filter(str.strip), LATEXISH.filter(str.strip)))
def test_property_never_raises_and_stays_in_budget(response, answer):
    t = time.monotonic()
    assert math_reward(response, answer) in (1.0, -0.5, -1.0)
    assert time.monotonic() - t < 3.0


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pairs=st.lists(st.tuples(LATEXISH, LATEXISH.filter(str.strip)), min_size=1, max_size=8))
def test_property_from_threads(pairs):
    results = [None] * len(pairs)

    def run(i):
        results[i] = math_reward(*pairs[i])

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(pairs))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(10)
    assert all(r in (1.0, -0.5, -1.0) for r in results)
    assert score_batch([p[0] for p in pairs], [p[1] for p in pairs]) == results
