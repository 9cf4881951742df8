"""Selectors behind one registry: lim, linear, random, full, precomputed, variance, learnability."""

from limr_exp.selection import baselines, history, lim  # noqa: F401  (registers the selectors)
from limr_exp.selection.base import SELECTORS, SelectionContext, SelectionResult, Selector

__all__ = ["SELECTORS", "SelectionContext", "SelectionResult", "Selector"]
