"""Imported only by the verifier pool's zygote: warms Math-Verify's parser (ANTLR's DFA caches) and
sympy's caches once, on the answer shapes of MATH, so every forked worker starts with them instead of
paying for them again on its first judgements of each shape."""

from limr_exp.rewards.verifier import verify_pair

_SHAPES = [
    ("\\frac{1}{2}", "0.5"), ("(x+1)^2", "x^2+2x+1"), ("\\left(1,\\frac{\\pi}{2}\\right)", "(1, \\pi/2)"),
    ("[2,5)", "[2, 5)"), ("\\sqrt{2}", "2^{1/2}"), ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
    ("x+y=1", "y=1-x"), ("\\{1,2\\}", "\\{2,1\\}"), ("(-\\infty,1)\\cup(2,\\infty)", "(-\\infty,1)\\cup(2,\\infty)"),
    ("(7,6)", "(6, 7)"), ("\\left( -\\frac{3}{7}, \\frac{10}{7} \\right)", "(1,2,3)"), ("[-\\frac13, 1]", "\\left[ 0, \\frac{9}{8} \\right]"),  # noqa: E501
    ("2x^3-10x^2-24x+72", "x^{11}+10x^9+7x^8"), ("(3x+7)(x+1)", "\\frac{3x^2}{2}"), ("\\frac{1}{(a - b)b}", "(a + b)(a + c)"),
    ("\\sin^2 y", "\\cot x"), ("\\cos(6^\\circ)\\sin(12^\\circ)", "\\tan 3x"), ("\\log_2 5", "\\ln 3"),
    ("-8 + 2i", "5 + 45i"), ("2112_6", "1011_2"), ("\\text{(C)}", "\\text{Monday}"), ("30^\\circ", "45\\%"),
    ("\\begin{pmatrix} 1 & -1 \\\\ 1 & 1 \\end{pmatrix}", "\\begin{pmatrix} 2 & 0 \\\\ 0 & 2 \\end{pmatrix}"),
    ("y = -\\frac{5}{2} x - \\frac{29}{4}", "2x+4y-3=0"), ("3, -3", "\\pm 3"), ("x \\le 3", "-2 < x < 7"),
    ("\\frac{\\sqrt{3}}{4\\sqrt{2}-3}", "10\\sqrt{6}"), ("e^{2}", "\\pi - 2"), ("\\dfrac{9}{4}", "2.25"),
    ("\\sin 3x", "\\cos(6)\\sin(12)\\csc(18)"), ("\\sec^2 \\theta", "\\tan\\frac{\\pi}{8}"), ("\\arcsin x", "\\log_{3} 81"),
    ("4+i,4-i", "1,-1,-3i"), ("B,C", "\\text{A, C}"), ("164\\pi \\text{ square feet}", "15.48"), ("x^4-10x^2+1", "q^2-p^2"),
    ("\\frac{8-7x}{6}", "-23x^3(5x^4-2)"), ("\\sqrt{x-3}+3", "42x\\sqrt{5x}"), ("\\{-2, 1\\}", "\\emptyset"),
    ("\\begin{pmatrix} 2 \\\\ -1 \\\\ 3 \\end{pmatrix}", "\\begin{pmatrix} 1 & 2 & 3 \\\\ 4 & 5 & 6 \\\\ 7 & 8 & 10 \\end{pmatrix}"),
    ("\\sum_{k=1}^{n} k", "\\binom{10}{3}"), ("5!", "\\lfloor 3.7 \\rfloor"), ("|x-1|", "\\max(a,b)"),
]

for _gold, _pred in _SHAPES:
    try:
        verify_pair(_gold, _pred)
        verify_pair(_pred, _gold)
    except Exception:  # warming only
        pass
