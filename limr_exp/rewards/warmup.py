"""Imported only by the verifier pool's fork server: warms Math-Verify's parser (ANTLR's DFA caches,
sympy's caches) once, so every forked worker starts with them instead of paying ~0.7 s on its first
symbolic judgement."""

from limr_exp.rewards.verifier import verify_pair

for _gold, _pred in (("\\frac{1}{2}", "0.5"), ("(x+1)^2", "x^2+2x+1"), ("\\left(1,\\frac{\\pi}{2}\\right)", "(1, \\pi/2)"),
                     ("[2,5)", "[2, 5)"), ("\\sqrt{2}", "2^{1/2}"), ("\\begin{pmatrix}1\\\\2\\end{pmatrix}", "\\begin{pmatrix}1\\\\2\\end{pmatrix}"),
                     ("x+y=1", "y=1-x"), ("\\{1,2\\}", "\\{2,1\\}"), ("(-\\infty,1)\\cup(2,\\infty)", "(-\\infty,1)\\cup(2,\\infty)")):
    try:
        verify_pair(_gold, _pred)
    except Exception:  # warming only
        pass
