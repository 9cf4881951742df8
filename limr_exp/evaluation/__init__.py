"""Evaluation suites (benchmarks from the `eval` config) on the HF-generate backend."""

from limr_exp.evaluation.run import evaluate, evaluate_base

__all__ = ["evaluate", "evaluate_base"]
