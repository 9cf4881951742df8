"""Every config option composes from the real conf/, and invalid values fail with one clear line."""

from __future__ import annotations

import pytest
from conftest import CONF_DIR, compose_cfg
from omegaconf import OmegaConf

from limr_exp.config import theta_value
from limr_exp.errors import ConfigError
from limr_exp.plugins import validate

GROUPS = ["dataset", "selector", "model", "ppo", "eval", "trainer", "logger", "reward", "experiment"]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.mark.parametrize("group", GROUPS)
def test_every_group_has_options(group):
    assert options(group), f"conf/{group}/ is empty"


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in options(g)])
def test_every_option_composes(group, option, tmp_path):
    overrides = [f"{group}={option}", f"output_dir={tmp_path}"]
    if group == "dataset" and option == "file":
        overrides.append(f"dataset.path={tmp_path}/d.json")
    cfg = compose_cfg(overrides)
    OmegaConf.to_container(cfg, resolve=True)  # every interpolation resolves
    assert OmegaConf.missing_keys(cfg) == set()  # every MISSING schema field is given by the option or config.yaml
    if group in ("dataset", "selector", "model", "ppo", "eval", "trainer"):
        assert cfg[group].name == option


def test_defaults_are_the_toy_world():
    cfg = compose_cfg()
    assert (cfg.dataset.name, cfg.selector.name, cfg.model.name, cfg.trainer.name) == ("toy_arith", "lim", "toy", "local")
    assert cfg.theta == 0.6 and list(cfg.stages) == ["select", "train", "eval"]
    validate(cfg)


def test_logger_empty_list_means_no_tracking():
    assert OmegaConf.to_container(compose_cfg(["logger=[]"]).logger) == {}
    assert "jsonl" in compose_cfg().logger


def test_top_level_keys_override():
    cfg = compose_cfg(["theta=0.35", "seed=7", "stages=[select]", "trajectories.path=/x", "trajectories.steps_per_epoch=4",
                       "trajectories.max_epochs=3", "trajectories.format=step_dumps"])
    assert (cfg.theta, cfg.seed, list(cfg.stages)) == (0.35, 7, ["select"])
    assert (cfg.trajectories.path, cfg.trajectories.steps_per_epoch, cfg.trajectories.max_epochs) == ("/x", 4, 3)


def test_schema_rejects_unknown_keys_and_types():
    from hydra.errors import ConfigCompositionException

    with pytest.raises(ConfigCompositionException, match="nonexistent"):
        compose_cfg(["selector.nonexistent=1"])
    with pytest.raises(ConfigCompositionException, match="seed=abc"):
        compose_cfg(["seed=abc"])


def test_experiment_overlay_limr_published(shared_data):
    cfg = compose_cfg(["experiment=limr_published", f"data_root={shared_data}"])
    assert cfg.dataset.name == "math_full" and cfg.selector.name == "precomputed"
    assert cfg.selector.scores_path == f"{shared_data}/lim_scores.json" and list(cfg.stages) == ["select"]
    validate(cfg)


@pytest.mark.parametrize("value,message", [
    (1.5, r"outside \[0, 1\]"), (-0.1, r"outside \[0, 1\]"), ("abc", "is not a number"), (True, "is not a number"),
    ("nan", r"outside \[0, 1\]"),
])
def test_theta_must_be_a_number_in_unit_interval(value, message):
    cfg = compose_cfg()
    cfg.theta = value
    with pytest.raises(ConfigError, match=message) as e:
        theta_value(cfg)
    assert "theta" in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("overrides,key", [
    (["stages=[selekt]"], "stage"),
    (["trajectories.steps_per_epoch=0"], "trajectories.steps_per_epoch"),
    (["trajectories.max_epochs=0"], "trajectories.max_epochs"),
    (["trajectories.path=/does/not/exist"], "trajectories.path"),
    (["dataset=file"], "dataset.path"),
    (["selector=precomputed"], "selector.scores_path"),
    (["selector=precomputed", "selector.scores_path=/nope.json"], "selector.scores_path"),
    (["ppo.n_samples_per_prompt=0"], "ppo.n_samples_per_prompt"),
    (["ppo.advantage_estimator=ppo2"], "ppo.advantage_estimator"),
    (["selector=random", "selector.size=0"], "selector.size"),
    (["trajectories.format=csv"], "trajectories.format"),
    (["eval.backend=sglang"], "eval.backend"),
    (["ppo.max_steps=0"], "ppo.max_steps"),
    (["threads=0"], "threads"),
    (["eval.benchmarks.0.families=[add2]"], "eval.benchmarks[toy_test].families"),
    (["eval.benchmarks.0.families=[]"], "eval.benchmarks[toy_test].families"),
])
def test_validate_names_the_key(overrides, key):
    with pytest.raises(ConfigError) as e:
        validate(compose_cfg(overrides))
    assert key in str(e.value) and "\n" not in str(e.value)


@pytest.mark.parametrize("name,param", [("theta", "theta"), ("baselines", "selector")])
def test_sweep_configs_compose_as_multiruns(name, param):
    from hydra import compose, initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="config", overrides=[f"+sweep={name}"], return_hydra_config=True)
    assert str(cfg.hydra.mode) == "RunMode.MULTIRUN" and param in cfg.hydra.sweeper.params
    assert "seed" in cfg.hydra.sweeper.params


def test_the_baselines_sweep_runs_in_the_world_built_for_it_unless_an_experiment_is_named():
    """`+sweep=baselines` alone is the paper's comparison in miniature (experiment=toy_glimpsed, its θ); an
    experiment on the command line replaces that world, with its own θ; `~experiment` is the default toy world."""
    swept = compose_cfg(["+sweep=baselines"])
    assert list(swept.dataset.toy.glimpsed_train) == ["add2"] and swept.theta == compose_cfg(["experiment=toy_glimpsed"]).theta
    assert [b.name for b in swept.eval.benchmarks] == ["toy_add2"]
    paper = compose_cfg(["+sweep=baselines", "experiment=limr_paper"])
    assert paper.dataset.name == "math_full" and paper.theta == 0.6 and paper.probe.episodes == 21
    default = compose_cfg(["+sweep=baselines", "~experiment"])
    plain = compose_cfg([])
    assert default.dataset == plain.dataset and default.theta == plain.theta and default.probe.episodes == plain.probe.episodes
    assert list(default.probe.sensitivity_seeds) == [1, 2]


def test_every_pluggable_kind_has_one_registry_that_names_its_choices(tmp_path):
    from limr_exp.evaluation.run import BACKENDS
    from limr_exp.history import IMPORTERS
    from limr_exp.selection import SELECTORS
    from limr_exp.tracking import LOGGERS, Tracker
    from limr_exp.training import TRAINERS
    from limr_exp.training.ppo import ESTIMATORS

    shipped = {BACKENDS: ["hf", "vllm"], LOGGERS: ["jsonl", "mlflow", "wandb"], TRAINERS: ["local", "openrlhf", "verl"],
               ESTIMATORS: ["gae", "group_norm", "reinforce_baseline"], IMPORTERS: ["step_dumps", "table", "verl"]}
    for registry, names in shipped.items():
        assert set(names) <= set(registry.names())
        with pytest.raises(ValueError, match="registered twice"):
            registry.register(names[0])(object())
    assert {"lim", "linear", "random", "full", "precomputed", "variance", "learnability"} <= set(SELECTORS.names())
    with pytest.raises(ConfigError, match="unknown logger 'bogus'"):
        Tracker({"bogus": {}}, tmp_path)


@pytest.mark.parametrize("group", ["selector", "trainer"])
def test_every_plugin_is_one_module_and_one_yaml(group):
    """A plug-in is its module (registered, with its schema and checks) plus conf/<group>/<name>.yaml: every
    registered name has its YAML, every YAML a registered plug-in, and a YAML that extends a schema extends
    the one its plug-in registered."""
    from limr_exp.plugins import SCHEMA_GROUPS

    registry = SCHEMA_GROUPS[group]
    files = {p.stem: OmegaConf.to_container(OmegaConf.load(p)) for p in (CONF_DIR / group).glob("*.yaml")}
    assert set(files) == set(registry.names())
    for name, node in files.items():
        extends = [d for d in node.get("defaults", []) if d != "_self_"]
        assert extends == ([f"schema/{name}@_here_"] if name in registry.schemas() else []), name
