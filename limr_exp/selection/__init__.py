"""Selectors behind one registry: lim, linear, random, full, precomputed, variance, learnability.

Every module of this package is imported here, so a selector module registers itself (`@register`, with
its config schema and checks) by being in the folder: a new selector is one module here plus its
`conf/selector/<name>.yaml`. Selector modules import numpy and our leaves only (never torch)."""

import importlib
import pkgutil

from limr_exp.selection.base import SELECTORS, SelectionContext, SelectionResult, Selector

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["SELECTORS", "SelectionContext", "SelectionResult", "Selector"]
