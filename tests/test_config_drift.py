"""One definition per default, and no silent drift (DESIGN.md, "Style to follow").

The dataclass schemas (limr_exp/config.py) and the YAML files under conf/ never both hold a value:
conf/config.yaml's values have no second default in the schema, and no option file repeats a default
of its schema (tests/test_config.py checks that every option composes with nothing left MISSING). The composed defaults (the default
run and every experiment overlay) are compared with reviewed snapshots, as verl keeps its generated
trainer config; after a deliberate change, `python tests/test_config_drift.py` rewrites them.
"""

from __future__ import annotations

import dataclasses
import sys
import typing
from pathlib import Path

import pytest
from omegaconf import OmegaConf

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from conftest import CONF_DIR, compose_cfg  # noqa: E402

import limr_exp.config as schema  # noqa: E402
from limr_exp import plugins  # noqa: E402
from limr_exp.rewards.settings import RewardSettings  # noqa: E402

GROUP_SCHEMAS = {"dataset": schema.DatasetConfig, "selector": schema.SelectorConfig, "model": schema.ModelConfig,
                 "ppo": schema.PPOConfig, "eval": schema.EvalConfig, "trainer": schema.TrainerConfig, "reward": RewardSettings}
SNAPSHOTS = ROOT / "tests" / "snapshots"


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


def _inner(kind):
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    return args[0] if args and typing.get_origin(kind) is typing.Union else kind


def _written_twice(cls, node: dict, prefix: str, strict: bool) -> list[str]:
    """Keys of `node` whose schema field also has a default: equal to the YAML's (any option), or any at all
    (`strict`, for conf/config.yaml, which is the one place its values live)."""
    fields, hints = {f.name: f for f in dataclasses.fields(cls)}, typing.get_type_hints(cls)
    found = []
    for key, value in node.items():
        if key not in fields:
            continue
        inner = _inner(hints[key])
        if dataclasses.is_dataclass(inner) and isinstance(value, dict):
            found += _written_twice(inner, value, f"{prefix}{key}.", strict)
            continue
        default = _default(fields[key])
        if default is not dataclasses.MISSING and default != "???" and (strict or default == value):
            found.append(f"{prefix}{key}")
    return found


def _option_files():
    for group in GROUP_SCHEMAS:
        for path in sorted((CONF_DIR / group).glob("*.yaml")):
            yield group, path


def test_no_option_file_repeats_a_schema_default():
    twice = []
    for group, path in _option_files():
        node = OmegaConf.to_container(OmegaConf.load(path), resolve=False)
        extends = [d for d in node.pop("defaults", []) if d != "_self_"]  # e.g. selector=random: [schema/random@_here_]
        name = extends[0].removeprefix("schema/").split("@")[0] if extends else None
        option_schema = plugins.SCHEMA_GROUPS[group].schemas()[name] if extends else GROUP_SCHEMAS[group]
        assert issubclass(option_schema, GROUP_SCHEMAS[group])
        twice += [f"{path.relative_to(ROOT)}: {k}" for k in _written_twice(option_schema, node, "", strict=False)]
    assert twice == [], "these values are also the dataclass default: keep one definition"


def test_no_schema_default_is_overridden_by_every_option_of_its_group():
    """A default that every option replaces is dead: the value belongs in the options (the field MISSING)."""
    dead = []
    for group, cls in GROUP_SCHEMAS.items():
        files = [OmegaConf.to_container(OmegaConf.load(p), resolve=False) for p in sorted((CONF_DIR / group).glob("*.yaml"))]
        for f in dataclasses.fields(cls):
            default = _default(f)
            if default is not dataclasses.MISSING and default != "???" and len(files) > 1 and all(f.name in d for d in files):
                dead.append(f"{group}.{f.name}")
    assert dead == []


def test_config_yaml_values_have_no_second_default_in_the_schema():
    node = OmegaConf.to_container(OmegaConf.load(CONF_DIR / "config.yaml"), resolve=False)
    for key in ("defaults", "hydra"):
        node.pop(key)
    assert _written_twice(schema.Config, node, "", strict=True) == []


def _snapshots() -> dict[str, str]:
    out = {"default": OmegaConf.to_yaml(compose_cfg())}
    for path in sorted((CONF_DIR / "experiment").glob("*.yaml")):
        out[f"experiment-{path.stem}"] = OmegaConf.to_yaml(compose_cfg([f"experiment={path.stem}"]))
    return out


def test_composed_defaults_match_the_reviewed_snapshots():
    for name, text in _snapshots().items():
        path = SNAPSHOTS / f"{name}.yaml"
        assert path.exists() and path.read_text() == text, (
            f"the composed config {name} changed: review the change, then run `python tests/test_config_drift.py`")


if __name__ == "__main__":
    SNAPSHOTS.mkdir(exist_ok=True)
    for name, text in _snapshots().items():
        (SNAPSHOTS / f"{name}.yaml").write_text(text)
        print(f"wrote {SNAPSHOTS / name}.yaml")


@pytest.mark.parametrize("overrides", [
    ["trainer=local", "trainer.vllm_num_engines=4"],       # an OpenRLHF key on the local trainer
    ["selector=lim", "selector.size=100"],                 # LIM keeps every prompt >= theta: it has no size
    ["selector=full", "selector.scores_path=x.json"],
    ["selector=random", "+selector.scores_path=x.json"],
    ["trainer=local", "+trainer.dry_run=true"],
])
def test_keys_that_do_not_apply_to_an_option_are_rejected(overrides):
    from hydra.errors import ConfigCompositionException

    from limr_exp.errors import ConfigError
    from limr_exp.plugins import validate

    key = overrides[1].lstrip("+").split("=")[0]
    try:
        cfg = compose_cfg(overrides)
    except ConfigCompositionException as e:  # Hydra refuses it while composing ...
        assert key in str(e) or key.split(".")[1] in str(e.__cause__)
        return
    with pytest.raises(ConfigError, match=f"unknown config key {key}"):  # ... or validate() does, before any work
        validate(cfg)


def test_keys_of_an_option_are_accepted():
    assert compose_cfg(["selector=random", "selector.size=100"]).run_name == "random-n100-seed42"
    assert compose_cfg(["selector=lim"]).run_name == "lim-theta0.6-seed42"
    assert compose_cfg(["trainer=openrlhf", "trainer.vllm_num_engines=2"]).trainer.vllm_num_engines == 2
