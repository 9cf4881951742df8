"""LIMR's rule-based reward: a labelled table, pathological inputs, threads, API errors, properties."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

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

# Families where a fast path must not say "wrong" before Math-Verify is asked (graders accept these).
FAMILIES = [
    # a label or an `=` around the answer
    ("label: tuple", boxed("(p,q)=(3,2)"), "(3,2)", OK),
    ("label: tuple wrong", boxed("(p,q)=(2,3)"), "(3,2)", WRONG),
    ("label: function value", boxed("f(x)=1"), "1", OK),
    ("label: function value wrong", boxed("f(x)=2"), "1", WRONG),
    ("label: segment length", boxed("|AB|=1"), "1", OK),
    ("label: ratio", boxed("V_1:V_2=11:21"), "11:21", OK),
    ("label: ratio wrong", boxed("V_1:V_2=21:11"), "11:21", WRONG),
    ("label: named fraction", boxed("\\frac{NO}{BO}=\\frac1{\\sqrt6}"), "\\frac{1}{\\sqrt{6}}", OK),
    ("label: subscripted", boxed("a_{10} = 55"), "55", OK),
    ("label on the reference", boxed("7"), "n = 7", OK),
    ("equation rearranged", boxed("2x+4y-3=0"), "y=-\\frac{x}{2}+\\frac{3}{4}", OK),
    ("equation wrong", boxed("2x+4y-5=0"), "y=-\\frac{x}{2}+\\frac{3}{4}", WRONG),
    # words for units and percent
    ("unit words in text", boxed("\\frac{1}{3}\\text{ meters}"), "\\frac13", OK),
    ("unit words bold", boxed("4\\textbf{ meters}"), "4", OK),
    ("unit words plain", boxed("12 inches"), "12", OK),
    ("unit words wrong value", boxed("13\\text{ inches}"), "12", WRONG),
    ("percent word", boxed("28 percent"), "28\\%", OK),
    ("pct", boxed("28 pct"), "28", OK),
    ("percent in text", boxed("28\\text{ percent}"), "28", OK),
    ("percent word wrong", boxed("27 percent"), "28\\%", WRONG),
    # connectives between answers
    ("and between numbers", boxed("6 and 8"), "6, 8", OK),
    ("and in text", boxed("6 \\text{ and } 8"), "8,6", OK),
    ("or between tuples", boxed("(11,7) or (7,11)"), "(11,7),(7,11)", OK),
    ("labelled list with and", boxed("p=-1 and p=15/8"), "-1, \\frac{15}{8}", OK),
    ("and with a wrong member", boxed("6 and 9"), "6, 8", WRONG),
    # matrices
    ("bmatrix vs pmatrix", boxed("\\begin{bmatrix}1\\\\2\\end{bmatrix}"), "\\begin{pmatrix}1\\\\2\\end{pmatrix}", OK),
    ("array in brackets", boxed("\\left[\\begin{array}{cc}1&2\\\\3&4\\end{array}\\right]"),
     "\\begin{pmatrix}1&2\\\\3&4\\end{pmatrix}", OK),
    ("row break with a space", boxed("\\begin{pmatrix}1\\\\ 3\\end{pmatrix}"), "\\begin{pmatrix}1\\\\3\\end{pmatrix}", OK),
    ("row break with a space, wrong", boxed("\\begin{pmatrix}1\\\\ 4\\end{pmatrix}"), "\\begin{pmatrix}1\\\\3\\end{pmatrix}", WRONG),
    ("bmatrix wrong entry", boxed("\\begin{bmatrix}1\\\\5\\end{bmatrix}"), "\\begin{pmatrix}1\\\\2\\end{pmatrix}", WRONG),
    # plus-minus, element counts, mixed numbers, intervals
    ("pm vs set", boxed("\\pm 2021"), "\\{-2021, 2021\\}", OK),
    ("set vs pm", boxed("-2021, 2021"), "\\pm 2021", OK),
    ("pm radical", boxed("1\\pm\\sqrt{2}"), "1+\\sqrt{2}, 1-\\sqrt{2}", OK),
    ("repeated root listed once", boxed("1, 2"), "1, 1, 2", OK),
    ("list missing a member", boxed("1, 3"), "1, 2, 3", WRONG),
    ("mixed number", boxed("918\\frac{1}{2}"), "918.5", OK),
    ("mixed number wrong", boxed("918\\frac{1}{4}"), "918.5", WRONG),
    ("x in interval", boxed("x\\in[-2,7]"), "[-2,7]", OK),
    ("chain inequality", boxed("-2\\le x\\le 7"), "[-2,7]", OK),
    ("chain inequality, open end", boxed("-2 < x \\leq 7"), "(-2,7]", OK),
    ("chain inequality wrong end", boxed("-2\\le x\\le 8"), "[-2,7]", WRONG),
    ("interval vs number", boxed("7"), "[-2,7]", WRONG),
    # plain numbers: "not equal" only when rounding cannot bridge the gap
    ("decimal close to a fraction", boxed("0.333333"), "\\frac13", OK),
    ("numbers far apart", boxed("3.5"), "\\frac{7}{3}", WRONG),
    ("number tuple other order", boxed("(2,1)"), "(1,2)", WRONG),
    ("number tuple same values", boxed("(1, 2.0)"), "(1,2)", OK),
    ("unbracketed list any order", boxed("2, 1"), "1, 2", OK),
    ("set with a stranger", boxed("\\{1,4\\}"), "\\{1,2\\}", WRONG),
    ("bare list vs tuple, other order", boxed("\\left(1 + \\sqrt{2}, 1 - \\sqrt{2}\\right)"), "1-\\sqrt{2}, 1+\\sqrt{2}", OK),
    ("bare list vs closed interval", boxed("[1, 2]"), "1, 2", WRONG),
    # numbers against expressions, unions and complex numbers: wrong in every reading
    ("number vs polynomial", boxed("72"), "2x^3-10x^2-24x+72", WRONG),
    ("number vs union", boxed("45"), "(-\\infty,-4)\\cup(-4,\\infty)", WRONG),
    ("number vs complex", boxed("\\sqrt{10}"), "2-6i", WRONG),
    ("complex written otherwise", boxed("-6i+2"), "2-6i", OK),
    ("trailing unit letter", boxed("5 m"), "5", OK),
    # the answer itself may repeat; only the prose around it is checked for loops
    ("zero matrix is not a loop", boxed("\\begin{pmatrix}" + "\\\\".join(["0&0&0&0&0"] * 5) + "\\end{pmatrix}"),
     "\\begin{pmatrix}" + "\\\\".join(["0&0&0&0&0"] * 5) + "\\end{pmatrix}", OK),
    ("repeated root listed five times", boxed(", ".join(["\\frac{1}{2}"] * 5)), "\\frac12", OK),
]


# Families both Math-Verify alone and earlier versions got wrong (and hedges a policy would find): the
# boxed answer is the second field, the reference answer the third.
BEYOND = [
    # exact numbers are compared exactly: no 6-place rounding makes tiny values equal
    ('tiny factorials', boxed('\\frac{1}{2006!}'), '\\frac{1}{2004!}', WRONG),
    ('tiny powers', boxed('\\frac{1}{2^{98}}'), '\\frac{1}{2^{99}}', WRONG),
    ('negative power', boxed('\\frac{1}{2^{99}}'), '2^{-99}', OK),
    ('factorial value', boxed('\\frac{1}{120}'), '\\frac{1}{5!}', OK),
    ('tiny scientific', boxed('3\\times 10^{-8}'), '4\\times10^{-8}', WRONG),
    ('tiny scientific vs fraction', boxed('\\frac{3}{10^{8}}'), '3\\times 10^{-8}', OK),
    ('tiny decimal vs zero', boxed('0'), '0.0000001', WRONG),
    ('power of ten', boxed('\\frac{1}{1000000000}'), '10^{-9}', OK),
    ('powers of ten apart', boxed('10^{-10}'), '10^{-9}', WRONG),
    # mixed numbers written with a space
    ('mixed with space', boxed('\\frac{3}{2}'), '1 1/2', OK),
    ('mixed with space and frac', boxed('\\frac32'), '1 \\frac{1}{2}', OK),
    ('mixed with latex space', boxed('\\frac{11}{4}'), '2\\ \\frac{3}{4}', OK),
    ('mixed is not a numeral', boxed('\\frac{11}{2}'), '1 1/2', WRONG),
    ('negative mixed', boxed('-\\frac32'), '-1 1/2', OK),
    # complex numbers that need expanding
    ('complex product', boxed('1+2i'), 'i(2-i)', OK),
    ('complex square', boxed('2i'), '(1+i)^2', OK),
    ('complex conjugates', boxed('2'), '(1+i)(1-i)', OK),
    ('complex product wrong', boxed('2+i'), 'i(2-i)', WRONG),
    ('complex quotient', boxed('-i'), '\\frac{1}{i}', OK),
    # units glued or abbreviated
    ('glued unit', boxed('10'), '10weeks', OK),
    ('abbreviated area unit', boxed('10'), '10 cm^2', OK),
    ('text unit squared glued', boxed('10'), '10\\text{cm}^2', OK),
    ('abbreviated unit', boxed('12'), '12 km', OK),
    ('glued unit wrong value', boxed('10'), '11weeks', WRONG),
    ('hours abbreviated', boxed('5'), '5 hrs', OK),
    ('speed unit', boxed('45'), '45 mph', OK),
    ('a variable is no unit', boxed('10'), '10x', WRONG),
    # clock times
    ('clock seconds', boxed('20:34'), '20:34:00', OK),
    ('clock leading zero', boxed('08:30'), '8:30', OK),
    ('clock wrong', boxed('20:34'), '20:35', WRONG),
    # column vectors against bracketed lists
    ('column vector vs tuple', boxed('(1,2,3)'), '\\begin{pmatrix}1\\\\2\\\\3\\end{pmatrix}', OK),
    ('tuple vs column vector', boxed('\\begin{pmatrix}1\\\\2\\\\3\\end{pmatrix}'), '(1,2,3)', OK),
    ('column vector vs square brackets', boxed('[1,-2,3]'), '\\begin{pmatrix}1\\\\-2\\\\3\\end{pmatrix}', OK),
    ('column vector other order', boxed('(1,2,3)'), '\\begin{pmatrix}1\\\\3\\\\2\\end{pmatrix}', WRONG),
    # roots of quotients
    ('root of a quotient', boxed('\\frac{1}{\\sqrt{n}}'), '\\sqrt{\\frac{1}{n}}', OK),
    ('root of a slash quotient', boxed('1/\\sqrt{n}'), '\\sqrt{1/n}', OK),
    ('root of a quotient wrong', boxed('\\frac{1}{n}'), '\\sqrt{\\frac{1}{n}}', WRONG),
    # a function's name against y
    ('f(x) vs y', boxed('y=2x+1'), 'f(x)=2x+1', OK),
    ('y vs f(x)', boxed('f(x) = 2x + 1'), 'y=2x+1', OK),
    ('f(x) vs expression', boxed('x^2-1'), 'f(x)=x^2-1', OK),
    ('f(x) vs y wrong', boxed('y=2x-1'), 'f(x)=2x+1', WRONG),
    # labelled solutions separated by semicolons
    ('semicolon solutions', boxed('-3, 2'), 'x=2; x=-3', OK),
    ('semicolon labels', boxed('a=1, b=2'), 'a=1; b=2', OK),
    ('semicolon solutions wrong', boxed('-3, 2'), 'x=2; x=-4', WRONG),
    # scientific notation against fractions
    ('scientific vs fraction', boxed('\\frac{1}{400}'), '2.5\\times10^{-3}', OK),
    ('fraction vs scientific cdot', boxed('2.5 \\cdot 10^{-3}'), '\\frac{1}{400}', OK),
    ('scientific vs integer', boxed('300000'), '3 \\times 10^{5}', OK),
    ('scientific vs fraction wrong', boxed('\\frac{1}{40}'), '2.5\\times10^{-3}', WRONG),
    ('e notation vs fraction', boxed('\\frac{3}{250000}'), '1.2e-5', OK),
    ('large scientific', boxed('602000000000000000000000'), '6.02 \\times 10^{23}', OK),
    # trigonometric values in degrees
    ('sine of degrees', boxed('\\frac{1}{2}'), '\\sin 30^\\circ', OK),
    ('cosine of degrees as reference', boxed('\\cos 30^{\\circ}'), '\\frac{\\sqrt{3}}{2}', OK),
    ('tangent of degrees', boxed('1'), '\\tan 45^\\circ', OK),
    ('cofunction in degrees', boxed('\\cos 20^\\circ'), '\\sin 70^\\circ', OK),
    ('sine of degrees wrong', boxed('\\frac12'), '\\sin 60^\\circ', WRONG),
    ('cosine of degrees decimal', boxed('0.5'), '\\cos(60^\\circ)', OK),
    # more spellings of the same families
    ('mixed with space, compact frac', boxed('1 \\frac12'), '\\frac{3}{2}', OK),
    ('unit after a thin space', boxed('10\\,\\text{cm}^2'), '10', OK),
    ('clock with pm', boxed('8:34 \\text{ p.m.}'), '20:34', OK),
    ('clock with am is not pm', boxed('8:34 a.m.'), '20:34', WRONG),
    ('column vector vs two-entry list', boxed('[3, -1]'), '\\begin{pmatrix} 3 \\\\ -1 \\end{pmatrix}', OK),
    ('two-entry list other order', boxed('[-1, 3]'), '\\begin{pmatrix} 3 \\\\ -1 \\end{pmatrix}', WRONG),
    ('squared sine of degrees', boxed('\\sin^2 30^\\circ'), '\\frac{1}{4}', OK),
    ('complex quotient of sums', boxed('i'), '\\frac{1+i}{1-i}', OK),
    ('complex power', boxed('32i'), '(1+i)^{10}', OK),
    ('scientific vs decimal', boxed('1.2 \\times 10^{-5}'), '0.000012', OK),
    ('labelled pair vs tuple', boxed('x=1; y=2'), '(1, 2)', OK),
    # hedges: several candidates are never one answer
    ('hedge: text letters', boxed('A'), '\\text{A}\\text{BCDE}', WRONG),
    ('hedge: two text letters', boxed('C'), '\\text{C}\\text{D}', WRONG),
    ('hedge: two choices', boxed('\\text{(A)}'), '\\text{(A)}\\text{(B)}', WRONG),
    ('hedge: letter list', boxed('A'), 'A, B', WRONG),
    ('hedge: or in text', boxed('A'), '\\text{A or B}', WRONG),
    ('hedge: or between letters', boxed('A'), 'A \\text{ or } B', WRONG),
    ('hedge: bold choices', boxed('\\textbf{(C)}'), '\\textbf{(C)}\\textbf{(D)}', WRONG),
    ('hedge: numbers with or', boxed('3'), '3 \\text{ or } 4', WRONG),
    ('hedge: unit then a second value', boxed('3'), '3\\text{ cm}, 4\\text{ cm}', WRONG),
    ('hedge: every letter', boxed('A'), 'ABCDE', WRONG),
]

# The labels of BEYOND where we pay and Math-Verify alone, on the raw pair, does not: each is a family
# that graders accept and Math-Verify misreads. A normalisation that turns "not equal" into "equal"
# anywhere else fails test_every_upgrade_over_math_verify_is_a_labelled_family.
UPGRADES_OVER_MATH_VERIFY = {
    "mixed with space", "negative mixed", "complex product", "complex square", "complex conjugates", "complex quotient",
    "glued unit", "abbreviated area unit", "clock seconds", "column vector vs tuple", "tuple vs column vector",
    "column vector vs square brackets", "root of a quotient", "root of a slash quotient", "f(x) vs y", "y vs f(x)",
    "sine of degrees", "cosine of degrees as reference", "tangent of degrees", "cofunction in degrees",
    "cosine of degrees decimal", "e notation vs fraction", "large scientific", "clock with pm",
    "column vector vs two-entry list", "squared sine of degrees", "complex quotient of sums", "complex power",
}


@pytest.fixture(scope="module", autouse=True)
def pool():
    warm_up()


@pytest.mark.parametrize("label,response,answer,expected", CASES + FAMILIES + BEYOND, ids=[c[0] for c in CASES + FAMILIES + BEYOND])
def test_labelled_cases(label, response, answer, expected):
    assert math_reward(response, answer) == expected


def test_every_upgrade_over_math_verify_is_a_labelled_family():
    """Where we say "equal" and Math-Verify alone (on the raw pair) says "not equal", the pair must belong
    to a family labelled correct above: no normalisation may quietly turn a wrong answer into a paid one."""
    from limr_exp.rewards.equivalence import equal
    from limr_exp.rewards.extract import last_boxed
    from limr_exp.rewards.normalize import light_clean
    from limr_exp.rewards.verifier import verify_pair

    table = CASES + FAMILIES + BEYOND
    expected = {c[0]: c[3] for c in table}
    upgrades = set()
    for label, response, answer, want in table:
        pred = last_boxed(response).answer
        if pred is None or want == FORMAT:
            continue
        if equal(answer, pred) and not verify_pair(light_clean(answer), light_clean(pred)):
            upgrades.add(label)
    assert upgrades & {c[0] for c in BEYOND} == UPGRADES_OVER_MATH_VERIFY
    assert all(expected[label] == OK for label in upgrades)


def hedges(gold: str) -> list[str]:
    """Ways to name several candidates at once, one of them `gold`."""
    other = next(x for x in ("78" if gold.isdigit() else "ABCDE") if x != gold)  # 3 and 7: no product or quotient is 3
    return [
        f"\\text{{{gold}}}\\text{{{other}}}", f"\\text{{{other}}}\\text{{{gold}}}", f"\\text{{{gold}}}\\text{{ABCDE}}",
        f"\\textbf{{({gold})}}\\textbf{{({other})}}", f"\\text{{({gold})}}, \\text{{({other})}}", f"{gold}, {other}",
        f"{gold} \\text{{ or }} {other}", f"\\text{{{gold} or {other}}}", f"{gold} \\text{{ and }} {other}",
        f"({gold})({other})", f"{gold}{other}", f"\\{{{gold}, {other}\\}}", f"{gold}\\text{{ cm}}, {other}\\text{{ cm}}",
        f"{gold} \\text{{ cm or }} {other}", f"\\text{{{gold}}}\\mbox{{{other}}}", f"{gold}\\ \\text{{{other}}}",
        f"{gold}{other}{gold}{other}", f"{gold};{other}", f"{gold}/{other}", f"[{gold}, {other}]",
        f"\\text{{{gold}}} \\text{{ or }} \\text{{{other}}}", f"{gold} \\text{{{other}}}",
    ]


@pytest.mark.parametrize("gold", ["A", "C", "E", "\\text{(B)}", "3", "12"])
def test_hedges_never_pay(gold):
    """Several candidates are never one answer, whatever unit or text stripping would make of them."""
    core = gold.replace("\\text{(", "").replace(")}", "")
    paid = [h for h in hedges(core) if math_reward(boxed(h), gold) == OK]
    assert not paid


def test_math_verify_agrees_with_the_family_labels():
    """The family table is a table of Math-Verify's own verdicts (where it reads the answer as graders
    do), so a fast path that says "wrong" first is caught here, not by our restatement of the rule."""
    from limr_exp.rewards.extract import last_boxed
    from limr_exp.rewards.verifier import verify_pair

    mv_wrong_by_design = {"pct", "chain inequality", "chain inequality, open end"}  # Math-Verify misreads these
    disagree = [label for label, response, answer, expected in FAMILIES
                if label not in mv_wrong_by_design and verify_pair(answer, last_boxed(response).answer) != (expected == OK)]
    assert not disagree


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


@pytest.mark.slow
@pytest.mark.parametrize("label,response,answer", PATHOLOGICAL, ids=[p[0] for p in PATHOLOGICAL])
def test_pathological_inputs_are_bounded_and_safe(label, response, answer, tmp_path):
    import os

    t = time.monotonic()
    reward = math_reward(response, answer)
    assert reward in (1.0, -0.5, -1.0)
    assert time.monotonic() - t < 3.0
    assert not os.path.exists("/tmp/limr_pwned")


def test_overrun_scores_as_timeout_and_is_counted():
    before = timeouts()
    j = judge(boxed("9^{9^{9^{9}}}"), "3", RewardSettings(timeout_s=0.5))
    assert (j.reward, j.reason) == (-1.0, "timeout")
    assert timeouts() == before + 1
    assert math_reward(boxed("2"), "2") == 1.0  # the pool recovered


@pytest.mark.slow
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
    # a call may wait behind every overrun in the queue, never longer than all of them together
    n_overruns = 2 * 3
    assert not wrong and max(durations) < n_overruns * RewardSettings().timeout_s + 5.0


def test_bad_api_input_raises_clear_errors():
    with pytest.raises(TypeError, match="response must be a str"):
        math_reward(None, "1")
    with pytest.raises(TypeError, match="decode bytes"):
        math_reward(b"\\boxed{1}", "1")
    with pytest.raises(TypeError, match="answer must be a str"):
        math_reward(boxed("1"), 1)
    with pytest.raises(ValueError, match="one answer per response"):
        score_batch(["a", "b"], ["1"])
    with pytest.raises(TypeError, match="sequences"):
        score_batch("abc", "1")


LATEX_PIECES = list("0123456789+-*/^_{}()[],.= xyzabc\\\n$") + [
    "\\boxed{", "\\frac{", "\\sqrt{", "\\pi", "}", "\\left(", "\\right)", "\\text{", "^{", "!", "\\infty", "\\cup"]
LATEXISH = st.lists(st.sampled_from(LATEX_PIECES), max_size=40).map("".join)


@hsettings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(response=st.one_of(st.text(max_size=200), LATEXISH), answer=st.one_of(st.text(min_size=1, max_size=20).filter(str.strip), LATEXISH.filter(str.strip)))  # noqa: E501
def test_property_never_raises_and_stays_in_budget(response, answer):
    from limr_exp.rewards import errors, timeouts

    before = (timeouts(), errors())
    assert math_reward(response, answer) in (1.0, -0.5, -1.0)
    assert (timeouts(), errors()) == before  # judged within its budget, no internal error (not a wall-clock bound)


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


# -- no reference, no pay ---------------------------------------------------------------------------

@pytest.mark.parametrize("answer", ["", "   ", None], ids=["empty", "blank", "none"])
def test_no_reference_never_pays(answer):
    for response in (boxed("?"), boxed("None"), boxed(""), boxed("42"), "no box at all"):
        j = judge(response, answer)
        assert (j.reward, j.correct, j.reason) == (-1.0, False, "no_reference")
        assert math_reward(response, answer) == -1.0


def test_no_reference_does_not_sink_the_batch():
    from limr_exp.rewards import judge_batch

    responses = [boxed("1"), boxed("?"), boxed("2"), boxed("None"), boxed("3")]
    answers = ["1", "", "5", None, "3"]
    assert score_batch(responses, answers) == [1.0, -1.0, -0.5, -1.0, 1.0]
    assert [j.reason for j in judge_batch(responses, answers)] == ["correct", "no_reference", "wrong", "no_reference", "correct"]


# -- internal errors are counted, not hidden ----------------------------------------------------------

def test_internal_errors_are_counted_and_marked():
    from limr_exp.rewards import errors, judge_batch

    before = errors()
    broken = RewardSettings(max_boxes=None)  # a bad setting makes the format rule raise inside the worker
    judgements = judge_batch([boxed("1"), boxed("2")], ["1", "2"], broken)
    assert [j.reason for j in judgements] == ["error", "error"]
    assert all(j.reward == broken.format_error and not j.correct for j in judgements)
    assert errors() == before + 2
    assert math_reward(boxed("2"), "2") == 1.0  # the workers are still good


# -- the budget is judging time, not waiting time -------------------------------------------------------

def test_sixteen_threads_of_slow_but_decidable_pairs_never_time_out():
    """Each pair takes ~0.1 s to judge alone; 16 threads x 2 pairs queue for several budgets on 2 workers,
    yet no call is timed out for waiting."""
    budget = RewardSettings(timeout_s=0.5)
    pairs = [(boxed(f"x^{{90}}+{90 * k}x^{{89}}+{k}"), f"(x+{k})^{{90}}") for k in range(1, 33)]
    before = timeouts()
    with ThreadPoolExecutor(16) as ex:
        reasons = list(ex.map(lambda pair: judge(*pair, budget).reason, pairs))
    assert reasons == ["wrong"] * len(pairs)
    assert timeouts() == before
