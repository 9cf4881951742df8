"""Evaluation suites (benchmarks from the `eval` config) on the HF-generate backend."""

from limr_exp.evaluation.run import evaluate, evaluate_base, evaluation_during_training, flat_metrics

__all__ = ["evaluate", "evaluate_base", "evaluation_during_training", "flat_metrics"]
