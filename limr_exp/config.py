"""Structured-config schemas (registered in Hydra's ConfigStore) and start-up validation.

The YAML files under `conf/` extend these dataclasses, so a misspelt key or a wrongly typed value
fails at composition; an option with keys of its own extends the schema its plug-in registers
(limr_exp/plugins.py). `validate(cfg)` makes the checks that cross plug-ins (ranges, paths, stage names)
and raises `ConfigError` with one line that names the key to fix. This module imports no engine.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from limr_exp.errors import ConfigError
from limr_exp.rewards.settings import RewardSettings

STAGES = ("select", "train", "eval")
DATASET_FORMATS = ("auto", "json", "jsonl", "parquet", "arrow", "toy_arith")


@dataclass
class ToyArithConfig:
    """Synthetic arithmetic problem families (the toy world); values in conf/dataset/toy_arith.yaml."""

    n_train: int = MISSING
    n_test: int = MISSING
    families: Dict[str, float] = MISSING  # family -> share of the problems (limr_exp/data/toy_arith.py)
    seed: int = MISSING
    glimpsed_train: List[str] = field(default_factory=list)  # families whose train split is their glimpsed problems


@dataclass
class DatasetConfig:
    name: str = MISSING
    path: Optional[str] = None  # json (list) | jsonl | parquet | HF save_to_disk folder
    format: str = "auto"
    split: str = "train"  # split of an HF DatasetDict folder
    id_key: Optional[str] = "id"  # rows without it get a stable id derived from the prompt text
    prompt_key: str = "prompt"
    answer_key: str = "answer"
    drop_unanswered: bool = False  # training needs a reference answer: true drops rows whose answer is null/blank
    toy: Optional[ToyArithConfig] = None


@dataclass
class TrajectoriesConfig:
    """Reward history supplied instead of a probe run (DESIGN.md: trajectories); values in conf/config.yaml."""

    path: Optional[str] = MISSING
    format: str = MISSING  # auto | step_dumps | verl | table
    steps_per_epoch: int = MISSING  # step dumps / verl: consecutive step files forming one epoch
    max_epochs: Optional[int] = MISSING  # only the first max_epochs epochs count; null = all complete ones
    prompt_regex: Optional[str] = MISSING  # verl: regex whose group 1 is the problem inside a templated input
    min_match_share: float = 0.5  # fail when fewer of the dataset's prompts occur in the history


@dataclass
class SelectorConfig:
    """Every selector (lim, linear, full: nothing to set but the name)."""

    name: str = MISSING


@dataclass
class ToyModelConfig:
    """Shape and pretraining of the tiny Qwen2 model built for the toy world; values in conf/model/toy.yaml."""

    vocab_size: int = MISSING
    hidden_size: int = MISSING
    intermediate_size: int = MISSING
    num_hidden_layers: int = MISSING
    num_attention_heads: int = MISSING
    num_key_value_heads: int = MISSING
    max_position_embeddings: int = MISSING
    pretrain_steps: int = MISSING
    pretrain_batch_size: int = MISSING
    pretrain_lr: float = MISSING
    pretrain_families: Dict[str, float] = MISSING  # family -> share of its answers boxed; unlisted families never seen
    pretrain_weights: Dict[str, float] = field(default_factory=dict)  # family -> its weight among the examples (default 1)
    pretrain_glimpses: Dict[str, int] = field(default_factory=dict)  # family -> examples of each of its glimpsed problems
    glimpse_correct: float = 0.5  # share of those examples whose answer is right (the rest: another problem's answer)
    pretrain_examples: int = MISSING
    seed: int = MISSING


@dataclass
class ModelSizeConfig:
    """What the GPU memory check needs of a model that is not on this machine (a hub id): the numbers of
    its config.json. A local model folder's own config.json is read instead."""

    params: float = MISSING  # parameters, e.g. 7.62e9
    num_layers: int = MISSING  # num_hidden_layers
    hidden_size: int = MISSING
    num_kv_heads: int = MISSING  # num_key_value_heads
    head_dim: int = MISSING  # hidden_size / num_attention_heads


@dataclass
class ModelConfig:
    name: str = MISSING
    path: Optional[str] = None  # HF model folder or hub id; null for the toy model (built locally)
    prompt_template: str = "{prompt}"  # used when the tokenizer has no chat template or use_chat_template is false
    use_chat_template: bool = True
    system_prompt: Optional[str] = None
    dtype: str = MISSING  # auto | float32 | bfloat16 | float16
    toy: Optional[ToyModelConfig] = None
    size: Optional[ModelSizeConfig] = None  # for trainer=openrlhf's memory check when model.path is a hub id


@dataclass
class PPOConfig:
    """PPO hyper-parameters, named as OpenRLHF names them so one config drives both trainers. Each option
    (conf/ppo/*.yaml) sets the MISSING ones; the others are OpenRLHF's defaults, which no option changes."""

    name: str = MISSING
    num_episodes: int = MISSING
    max_steps: Optional[int] = None  # local trainer: stop after this many rollout steps (equal-steps comparisons)
    rollout_batch_size: int = MISSING
    n_samples_per_prompt: int = MISSING
    micro_rollout_batch_size: int = MISSING
    train_batch_size: int = MISSING
    micro_train_batch_size: int = MISSING
    max_epochs: int = 1  # optimisation passes over one rollout batch
    prompt_max_len: int = MISSING
    generate_max_len: int = MISSING
    temperature: float = MISSING
    top_p: float = 1.0
    actor_learning_rate: float = MISSING
    critic_learning_rate: float = MISSING
    init_kl_coef: float = MISSING
    eps_clip: float = 0.2
    value_clip: float = 0.2
    gamma: float = 1.0
    lambd: float = 0.95
    advantage_estimator: str = MISSING  # gae | group_norm | reinforce_baseline
    normalize_reward: bool = False
    max_norm: float = 1.0
    lr_warmup_steps: int = 0  # optimiser steps of linear learning-rate warm-up
    lr_scheduler: str = "cosine_with_min_lr"  # OpenRLHF's --actor/--critic.lr_scheduler (a transformers schedule)
    zero_stage: int = MISSING
    bf16: bool = MISSING


@dataclass
class BenchmarkConfig:
    name: str = MISSING
    path: Optional[str] = None  # file under the data root; null for the toy test split
    prompt_key: str = "question"
    answer_key: str = "answer"
    n_samples: int = 1
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    drop_unanswered: bool = False  # true drops rows whose answer is null/blank (else they stop the run)
    group_by: Optional[str] = None  # a problem field (toy: family; MATH: level) to report accuracy per value of
    families: Optional[List[str]] = None  # the toy test split only: keep these families (a benchmark of one skill)


@dataclass
class EvalConfig:
    name: str = MISSING
    backend: str = "hf"  # hf | vllm
    batch_size: int = MISSING
    max_new_tokens: int = MISSING
    benchmarks: List[BenchmarkConfig] = MISSING
    evaluate_base: bool = True  # also evaluate the base model (cached) into eval/base_metrics.json
    tensor_parallel_size: Optional[int] = None  # vllm: null = the most visible GPUs that divide the attention heads
    limit: Optional[int] = None  # at most the first N problems of each benchmark (a quick partial run); null: all
    gpu_memory_utilization: float = 0.8  # vllm: the engine's share of GPU memory


@dataclass
class TrainerConfig:
    """Every trainer (trainer=local has nothing more)."""

    name: str = MISSING
    device: str = "auto"  # auto | cpu | cuda (local training, HF evaluation)
    save_steps: int = 1  # checkpoint every N rollout steps (resume point)
    eval_steps: int = -1  # evaluate on the eval suite every N rollout steps (-1: never), for the learning curve


@dataclass
class ProbeConfig:
    """The probe RL run on the full set that records the reward history LIM reads."""

    episodes: int = MISSING  # values in conf/config.yaml
    seed: int = MISSING
    stop_when_stable: bool = False  # stop once the selection after each epoch has settled (selection/stability.py)
    stable_jaccard: float = 0.85  # ... consecutive selections agree at least this much (Jaccard) ...
    stable_epochs: int = 2  # ... for this many epochs in a row
    sensitivity_seeds: List[int] = field(default_factory=list)  # more probe seeds: how far the selection moves with
    # the probe's seed (Jaccard with this probe's selection, selection/probe_seeds.json; training/probe.py)


@dataclass
class Config:
    dataset: DatasetConfig = MISSING
    selector: SelectorConfig = MISSING
    model: ModelConfig = MISSING
    ppo: PPOConfig = MISSING
    eval: EvalConfig = MISSING
    trainer: TrainerConfig = MISSING
    logger: Dict[str, Any] = field(default_factory=dict)
    reward: RewardSettings = field(default_factory=RewardSettings)
    trajectories: TrajectoriesConfig = field(default_factory=TrajectoriesConfig)
    probe: ProbeConfig = field(default_factory=ProbeConfig)
    # values and their documentation in conf/config.yaml
    theta: Any = MISSING  # typed Any so that a bad value gets one clear line from validate()
    seed: int = MISSING
    threads: Optional[int] = MISSING
    stages: List[str] = MISSING
    data_root: str = MISSING
    cache_dir: str = MISSING
    output_dir: Optional[str] = None  # run folder; the CLI sets it to Hydra's output dir
    run_name: str = MISSING


ROOT = Path(__file__).resolve().parents[1]


def default_data_root() -> str:
    """Where the real data is looked for (the one default, for the CLI and the tests): $LIMR_DATA_DIR, else
    data/limr (from the working directory, then the checkout), else the shared/data/limr folder beside the
    checkout; data/limr when none exists (the checks then name LIMR_DATA_DIR)."""
    if os.environ.get("LIMR_DATA_DIR"):
        return os.environ["LIMR_DATA_DIR"]
    for candidate in (Path("data/limr"), ROOT / "data" / "limr", ROOT.parent / "shared" / "data" / "limr"):
        if candidate.is_dir():
            return str(candidate)
    return "data/limr"


CONF_DIR = ROOT / "conf"


def config_groups() -> str:
    """`group: option, option` for every group of conf/ a user chooses from (for --help)."""
    lines = []
    for group in sorted(p for p in CONF_DIR.iterdir() if p.is_dir()):
        options = sorted(f.stem for f in group.glob("*.yaml"))
        if options:
            lines.append(f"{group.name}: {', '.join(options)}")
    return "\n".join(lines) + "\n"


LAUNCHER_PLUGINS = {"joblib": ("hydra_plugins.hydra_joblib_launcher", "hydra-joblib-launcher"),
                    "submitit_slurm": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher"),
                    "submitit_local": ("hydra_plugins.hydra_submitit_launcher", "hydra-submitit-launcher")}


def _not_a_folder_path(path: str) -> str | None:
    """The first part of `path` that exists and is not a folder (so no folder can be made below it), or None."""
    p = Path(os.path.expanduser(path))
    for part in [p, *p.parents]:
        if part.exists():
            return None if part.is_dir() else str(part)
    return None


def override_hint(argv: list[str]) -> str | None:
    """One line for a command-line override that Hydra would answer unhelpfully, else None: a misspelt
    group or key (Hydra suggests `+key`, which a typed config refuses anyway), or a launcher whose plugin
    is not installed (Hydra only says it cannot find it)."""
    import difflib
    import importlib.util

    known = {p.name for p in CONF_DIR.iterdir() if p.is_dir()} | set(Config.__dataclass_fields__) | {"hydra"}
    for arg in argv:
        if arg.startswith("-") or "=" not in arg or arg.startswith(("+", "~")):
            continue
        key, value = arg.split("=", 1)
        if key in ("hydra.run.dir", "hydra.sweep.dir"):
            blocker = _not_a_folder_path(value)
            if blocker:
                return f"{key}={value}: {blocker} is a file, not a folder: choose a folder for the run's files"
            continue
        if key == "hydra/launcher" and value in LAUNCHER_PLUGINS:
            module, package = LAUNCHER_PLUGINS[value]
            if importlib.util.find_spec("hydra_plugins") is None or importlib.util.find_spec(module) is None:
                return (f"hydra/launcher={value} needs Hydra's {package} plugin, which is not installed: "
                        "pip install -e '.[sweeps]' (or pip install " + package + ")")
            continue
        top = key.split("/")[0].split(".")[0]
        if top in known:
            continue
        close = difflib.get_close_matches(top, sorted(known - {"hydra"}), n=1, cutoff=0.6)
        hint = f": did you mean {close[0]!r}?" if close else ""
        return (f"{arg}: {top!r} is no config group or key{hint} (python -m limr_exp --help lists the groups; "
                "--cfg job every key)")
    return None


MAX_FOLDER_NAME = 120  # bytes of a run folder's own name (file systems allow 255; Hydra adds its time prefix)


def folder_name(name) -> str:
    """`name` as a run folder's name: path separators replaced, and a name too long for the file system
    shortened, keeping its start and a hash of the whole, so two long names stay apart."""
    import hashlib

    text = str(name).replace("/", "_").replace("\0", "")
    if len(text.encode()) <= MAX_FOLDER_NAME:
        return text
    digest = hashlib.sha1(text.encode()).hexdigest()[:8]
    head = text.encode()[:MAX_FOLDER_NAME - 9].decode(errors="ignore")
    return f"{head}-{digest}"


def run_name(selector: str, theta, size, seed) -> str:  # size: null for selectors without one
    """A name that tells runs apart: lim-theta0.6-seed42, random-n1389-seed42, full-seed42."""
    if selector == "full":
        base = "full"
    elif size not in (None, "None", "null"):
        base = f"{selector}-n{size}"
    else:
        base = f"{selector}-theta{theta}"
    return f"{base}-seed{seed}"


def register_configs() -> None:
    cs = ConfigStore.instance()
    cs.store(name="limr_schema", node=Config)  # the plug-ins' option schemas: limr_exp/plugins.py
    if not OmegaConf.has_resolver("limr_run_name"):
        OmegaConf.register_new_resolver("limr_run_name", run_name)
    if not OmegaConf.has_resolver("limr_data_root"):
        OmegaConf.register_new_resolver("limr_data_root", default_data_root)
    if not OmegaConf.has_resolver("limr_config_groups"):
        OmegaConf.register_new_resolver("limr_config_groups", config_groups)
    if not OmegaConf.has_resolver("limr_dirname"):
        OmegaConf.register_new_resolver("limr_dirname", folder_name)


register_configs()


def require(condition: bool, message: str) -> None:
    """A ConfigError with `message` (one line naming the key and the fix) unless `condition` holds."""
    if not condition:
        raise ConfigError(message)


def require_existing(cfg: DictConfig, path, key: str, fix: str = "") -> None:
    """`key`=`path` must exist and be a regular file or a folder (one line otherwise, with the data_root hint
    when it lies under data_root, else `fix`)."""
    _not_special(path, key)
    require(resolve_path(path).exists(), f"{key}={path} does not exist" + (data_root_hint(cfg, path) or fix))


def data_root_hint(cfg: DictConfig, path) -> str:
    """For a missing file under data_root: how to point data_root at the data."""
    root = str(cfg.data_root)
    if path is None or not str(path).startswith(root):
        return ""
    return (f": it lies under data_root={root}; set LIMR_DATA_DIR (or data_root=...) to the folder that holds "
            "math_full_8523.json, lim_scores.json, limr_subset_hf/ and eval/")


def _not_special(path, key: str) -> None:
    p = resolve_path(path)
    if p.exists() and not (p.is_file() or p.is_dir()):
        raise ConfigError(f"{key}={path} is neither a folder nor a regular file (reading a FIFO, socket or device would "
                          "hang the run): point it at a file")


def resolve_path(path: str | os.PathLike, base: str | os.PathLike | None = None) -> Path:
    """A user path: `~` expanded, relative paths taken from `base` (default: the working directory)."""
    p = Path(os.path.expanduser(str(path)))
    if not p.is_absolute() and base is not None:
        p = Path(base) / p
    return p


def theta_value(cfg: DictConfig) -> float:
    """θ as a float in [0, 1], or a ConfigError naming `theta`."""
    raw = cfg.theta
    try:
        if isinstance(raw, bool):
            raise TypeError
        theta = float(raw)
    except (TypeError, ValueError):
        raise ConfigError(f"theta={raw!r} is not a number: set theta to a value in [0, 1], e.g. theta=0.6") from None
    require(math.isfinite(theta) and 0.0 <= theta <= 1.0, f"theta={raw} is outside [0, 1]: set theta to a value in [0, 1], e.g. theta=0.6")
    return theta


def unknown_keys(node, schema: type = None, prefix: str = "") -> list[str]:
    """Keys of the composed config that its dataclass schema does not define (a typo, or a `+key=...`
    the schema does not know); free-form mappings (`logger`, `trainer.extra`) are not looked into."""
    import dataclasses
    import types
    import typing

    schema = schema or Config
    fields = {f.name: f.type for f in dataclasses.fields(schema)}
    hints = typing.get_type_hints(schema)
    found = []
    for key in node.keys() if isinstance(node, DictConfig) else ():
        path = f"{prefix}{key}"
        if key not in fields:
            found.append(path)
            continue
        kind = hints[key]
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        inner = args[0] if typing.get_origin(kind) in (typing.Union, types.UnionType) and args else kind  # Optional[X] -> X
        value = node._get_node(key)
        actual = OmegaConf.get_type(value) if isinstance(value, DictConfig) else None
        if dataclasses.is_dataclass(inner) and actual is not None and dataclasses.is_dataclass(actual) and issubclass(actual, inner):
            inner = actual  # the option's own schema (e.g. selector=random: SizedSelectorConfig)
        if dataclasses.is_dataclass(inner) and isinstance(value, DictConfig):
            found += unknown_keys(value, inner, path + ".")
        elif typing.get_origin(inner) in (list, List) and typing.get_args(inner) and dataclasses.is_dataclass(typing.get_args(inner)[0]):
            for i, item in enumerate(value if value is not None else []):
                found += unknown_keys(item, typing.get_args(inner)[0], f"{path}[{i}].")
    return found


def validate(cfg: DictConfig) -> None:
    """The checks that cross plug-ins (keys, seed, theta, stages, paths, PPO sizes, probe, reward, evaluation
    limits): values the schema's types cannot rule out. `limr_exp.plugins.validate` runs these and then the
    chosen plug-ins' own checks; call that one before any work."""
    unknown = unknown_keys(cfg)
    require(not unknown, f"unknown config key{'s' if len(unknown) > 1 else ''} {', '.join(unknown)}: check the spelling "
                          "(python -m limr_exp --cfg job lists every key)")
    require(0 <= cfg.seed < 2**32, f"seed={cfg.seed} must be an integer in [0, 2**32 - 1]")
    require(cfg.threads is None or cfg.threads >= 1, f"threads={cfg.threads} must be at least 1 (or null: the usable CPUs)")
    theta_value(cfg)
    for stage in cfg.stages:
        require(stage in STAGES, f"unknown stage {stage!r} in stages: use a list drawn from {list(STAGES)}, e.g. 'stages=[select]'")
    require(len(cfg.stages) > 0, "stages is empty: name at least one of select, train, eval")

    t = cfg.trajectories
    require(t.steps_per_epoch >= 1, f"trajectories.steps_per_epoch={t.steps_per_epoch} must be at least 1")
    require(t.max_epochs is None or t.max_epochs >= 1,
             f"trajectories.max_epochs={t.max_epochs} must be at least 1 (or null for all epochs)")
    if t.path is not None:
        require_existing(cfg, t.path, "trajectories.path", ": point it at a step-dump folder, a verl rollout folder or a "
                         "trajectories .parquet file")

    d = cfg.dataset
    if d.path is not None and d.format != "toy_arith":
        require_existing(cfg, d.path, "dataset.path", ": check the path (relative paths start from the working directory)")
    for b in cfg.eval.benchmarks if "eval" in cfg.stages else ():
        if b.path is not None:
            require_existing(cfg, b.path, f"eval.benchmarks[{b.name}].path")
        if b.families is not None:
            key = f"eval.benchmarks[{b.name}].families"
            require(b.path is None and d.format == "toy_arith", f"{key} keeps families of the toy test split: a benchmark "
                    "with a path, or another dataset, has no families (drop families)")
            shares = {str(k): v for k, v in dict(d.toy.families).items() if v > 0}
            unknown = [str(f) for f in b.families if str(f) not in shares]
            require(len(b.families) and not unknown, f"{key}={list(b.families)}: the toy test split's families are "
                    f"{', '.join(shares)} (dataset.toy.families with a share above 0)")
    require(d.format in DATASET_FORMATS, f"dataset.format={d.format!r} is unknown: use one of {', '.join(DATASET_FORMATS)}")
    if d.format != "toy_arith":
        require(d.path is not None, f"dataset.path is not set for dataset={d.name}: set dataset.path=<json|jsonl|parquet|arrow folder>")

    p = cfg.ppo
    require(p.n_samples_per_prompt >= 1, f"ppo.n_samples_per_prompt={p.n_samples_per_prompt} must be at least 1")
    require(p.rollout_batch_size >= 1, f"ppo.rollout_batch_size={p.rollout_batch_size} must be at least 1")
    require(p.num_episodes >= 1, f"ppo.num_episodes={p.num_episodes} must be at least 1")
    require(p.max_steps is None or p.max_steps >= 1, f"ppo.max_steps={p.max_steps} must be at least 1 (or null: num_episodes passes)")
    require(cfg.probe.episodes >= 1, f"probe.episodes={cfg.probe.episodes} must be at least 1")
    require(0 < cfg.probe.stable_jaccard <= 1, f"probe.stable_jaccard={cfg.probe.stable_jaccard} must be a share in (0, 1]")
    require(cfg.probe.seed not in cfg.probe.sensitivity_seeds, f"probe.sensitivity_seeds={list(cfg.probe.sensitivity_seeds)} "
             f"holds the probe's own seed {cfg.probe.seed}: list only other seeds")
    require(cfg.probe.stable_epochs >= 1, f"probe.stable_epochs={cfg.probe.stable_epochs} must be at least 1")
    require(0 <= cfg.trajectories.min_match_share <= 1,
             f"trajectories.min_match_share={cfg.trajectories.min_match_share} must be a share between 0 and 1")
    require(cfg.reward.timeout_s > 0, f"reward.timeout_s={cfg.reward.timeout_s} must be positive")
    require(0 <= cfg.reward.max_error_share <= 1,
             f"reward.max_error_share={cfg.reward.max_error_share} must be a share between 0 and 1 (e.g. 0.01)")
    require(cfg.eval.limit is None or cfg.eval.limit >= 1, f"eval.limit={cfg.eval.limit} must be at least 1 (or null: every problem)")
    require(0 < cfg.eval.gpu_memory_utilization <= 1,
             f"eval.gpu_memory_utilization={cfg.eval.gpu_memory_utilization} must be a share in (0, 1]")
    require(cfg.trainer.device in ("auto", "cpu", "cuda"), f"trainer.device={cfg.trainer.device!r} is unknown: use auto, cpu or cuda")
