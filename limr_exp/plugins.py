"""Every plug-in, gathered: their config schemas into Hydra's ConfigStore and their checks into `validate`.

Importing this module registers the selectors, trainers (limr_exp/training/engines/), evaluation backends
and history formats, and stores each plug-in's option schema as `<group>/schema/<name>`, which its YAML
extends (`defaults: [schema/<name>@_here_, _self_]`). It sits above the engines and below the pipeline;
config.py, at the floor, imports none of them.
"""

from __future__ import annotations

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from limr_exp import config
from limr_exp.evaluation.run import BACKENDS
from limr_exp.history import IMPORTERS
from limr_exp.selection import SELECTORS
from limr_exp.training import TRAINERS

SCHEMA_GROUPS = {"selector": SELECTORS, "trainer": TRAINERS}  # config groups whose options are plug-ins with keys of their own


def register_schemas() -> None:
    cs = ConfigStore.instance()
    for group, registry in SCHEMA_GROUPS.items():
        for name, schema in registry.schemas().items():
            cs.store(group=f"{group}/schema", name=name, node=schema)


register_schemas()


def validate(cfg: DictConfig) -> None:
    """Fail fast, before any tracker starts and any work is done: the checks that cross plug-ins
    (config.validate), then those of the chosen selector, trainer, evaluation backend and history format."""
    config.validate(cfg)
    SELECTORS.check(cfg.selector.name, cfg)
    TRAINERS.check(cfg.trainer.name, cfg)
    BACKENDS.check(cfg.eval.backend, cfg)
    if cfg.trajectories.format != "auto":
        IMPORTERS.check(cfg.trajectories.format, cfg)
