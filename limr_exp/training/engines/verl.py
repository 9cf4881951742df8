"""`trainer=verl`: PPO or GRPO in verl 0.9 (`python -m verl.trainer.main_ppo`: FSDP actor/critic, vLLM
rollouts, one hybrid engine on every GPU), driven by the same dataset / model / ppo / reward configs.

Writes into `<run>/train/` (for a run over several nodes, into `trainer.shared_dir/<run>/`):
  train.parquet, val.parquet   verl's RL dataset: `prompt` (chat messages), `data_source`, `reward_model`
                               {style: rule, ground_truth}, `extra_info` {index, id, eval}; val: the eval suite
  limr_reward.py               verl's `custom_reward_function`: a fixed file (a copy of ../verl_reward_file.py)
  limr_reward.json             that builds `VerlReward` (LIMR's rule) from the settings in this file
  verl_config.yaml             the run's verl config: `defaults: [ppo_trainer, _self_]` and our values (YAML,
                               so no value is ever parsed as override syntax); `verl_command.json` the argv
  rollouts/{step}.jsonl        `trainer.rollout_data_dir`: verl's own dump of every training sample
  checkpoints/                 `trainer.default_local_dir`; `resume_mode: auto`, so a rerun continues
The dumps become `train/trajectories.parquet` through the verl importer (history/dumps.py), so LIM runs on a
verl run, probe included, exactly as on a local one.

How LIMR's settings map (conf/ppo, OpenRLHF's names) and what verl does differently:
  - rollout_batch_size -> data.train_batch_size (prompts a step); train_batch_size (samples an optimiser
    step) -> actor.ppo_mini_batch_size = train_batch_size / n_samples_per_prompt (verl counts prompts there);
  - the KL penalty goes into the reward (algorithm.use_kl_in_reward, fixed coefficient init_kl_coef), as in
    OpenRLHF; gae -> gae (with a critic), group_norm -> grpo, reinforce_baseline -> reinforce_plus_plus_baseline;
  - verl steps its LR scheduler once a rollout step (OpenRLHF: once an optimiser step), so warm-up steps are
    converted: ppo.lr_warmup_steps optimiser steps are floor(lr_warmup_steps / optimiser steps a rollout step)
    verl steps (LIMR's 10 of 32 a step: none, the first step at the peak LR); constant_with_warmup ->
    constant, cosine_with_min_lr -> cosine with min_lr_ratio 0.1 (OpenRLHF's min_lr = 0.1 x lr);
  - weight decay 0 (OpenRLHF's default; verl's is 0.01); reward normalisation has no verl counterpart (for a
    rule reward it changes nothing in OpenRLHF either);
  - verl's NaiveRewardManager decodes responses with skip_special_tokens=True, so a reward function cannot see
    whether a response ended or was cut at the token limit: reward.require_end_token=true is refused.
"""

from __future__ import annotations

import logging
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from limr_exp.config import TrainerConfig, require
from limr_exp.errors import ConfigError, LimrError
from limr_exp.training.base import (
    TRAINERS,
    TrainRequest,
    TrainResult,
    engine_work_dir,
    require_model_checkpoint,
    require_no_step_cap,
    require_shared_dir_for_nodes,
    run_logged,
)

log = logging.getLogger("limr_exp")
SETTINGS_FILE = "limr_reward.json"  # beside the reward file: {"settings": RewardSettings fields}
REWARD_FILE_SOURCE = Path(__file__).resolve().parents[1] / "verl_reward_file.py"  # copied verbatim; no code is generated
LATEST_CHECKPOINT = "latest_checkpointed_iteration.txt"  # verl's marker of its last complete checkpoint (its step)
ESTIMATORS = {"gae": "gae", "group_norm": "grpo", "reinforce_baseline": "reinforce_plus_plus_baseline"}
SCHEDULERS = {"constant_with_warmup": ("constant", 0.0), "constant": ("constant", 0.0),
              "cosine_with_min_lr": ("cosine", 0.1), "cosine": ("cosine", 0.0)}  # ours -> (verl's type, min_lr_ratio)


@dataclass
class VerlTrainerConfig(TrainerConfig):
    """trainer=verl: the cluster, the rollout engine and verl's own keys."""

    dry_run: bool = False  # write the config, data and reward files, launch nothing
    num_nodes: int = 1  # trainer.nnodes ...
    gpus_per_node: int = 8  # ... trainer.n_gpus_per_node: verl colocates actor, critic, reference and vLLM on all
    shared_dir: Optional[str] = None  # storage every node and this machine see: needed with num_nodes > 1
    tensor_parallel_size: int = 1  # the vLLM rollout's tensor parallelism
    gpu_memory_utilization: float = 0.5  # vLLM's share of GPU memory (verl's default)
    offload: bool = False  # FSDP parameter and optimiser offload to CPU memory (actor, reference and critic)
    eval_temperature: float = 0.7  # in-training evaluation as LIMR ran it: T 0.7, one sample per problem
    eval_n_samples: int = 1
    logger: List[str] = field(default_factory=lambda: ["console"])  # verl's own trainer.logger (e.g. [console, wandb])
    extra: Dict[str, Any] = field(default_factory=dict)  # more of verl's keys, dotted: {"actor_rollout_ref.actor.use_torch_compile": false}


def check(cfg) -> None:
    """A checkpoint with a chat template, LIMR's settings expressible in verl, and storage for several nodes."""
    p, t = cfg.ppo, cfg.trainer
    require_model_checkpoint(cfg)
    require_no_step_cap(cfg)
    require_shared_dir_for_nodes(cfg)
    require(bool(cfg.model.use_chat_template), "trainer=verl applies the tokenizer's chat template to every prompt: set "
            "model.use_chat_template=true (verl has no plain-text prompt template)")
    require(not cfg.reward.require_end_token, "trainer=verl cannot apply reward.require_end_token: verl's reward manager "
            "decodes responses without their end tokens, so a response cut at the token limit looks finished; set "
            "reward.require_end_token=false")
    require(p.advantage_estimator in ESTIMATORS, f"ppo.advantage_estimator={p.advantage_estimator} has no verl counterpart: "
            f"use one of {', '.join(ESTIMATORS)}")
    require(p.lr_scheduler in SCHEDULERS, f"ppo.lr_scheduler={p.lr_scheduler} has no verl counterpart: use one of "
            f"{', '.join(SCHEDULERS)}")
    require(p.train_batch_size % p.n_samples_per_prompt == 0, f"ppo.train_batch_size={p.train_batch_size} must be a multiple "
            f"of ppo.n_samples_per_prompt={p.n_samples_per_prompt}: verl's mini-batch counts prompts")
    require(p.train_batch_size <= p.rollout_batch_size * p.n_samples_per_prompt,
            f"ppo.train_batch_size={p.train_batch_size} is more samples than a rollout step makes "
            f"({p.rollout_batch_size} x {p.n_samples_per_prompt})")
    require(t.eval_n_samples >= 1, f"trainer.eval_n_samples={t.eval_n_samples} must be at least 1")
    require(0 < t.gpu_memory_utilization <= 1, f"trainer.gpu_memory_utilization={t.gpu_memory_utilization} must be a share in (0, 1]")
    require(t.num_nodes >= 1 and t.gpus_per_node >= 1, "trainer.num_nodes and trainer.gpus_per_node must be at least 1")
    trains = "train" in cfg.stages or "select" in cfg.stages and cfg.trajectories.path is None  # the run, or the probe
    if trains and not t.dry_run:
        _require_verl()  # before any work: not after a probe of hours


# -- the reward verl calls -------------------------------------------------------------------------------------


class VerlReward:
    """verl's `compute_score(data_source, solution_str, ground_truth, extra_info)`: LIMR's rule (1 / -0.5 / -1).

    verl 0.9's NaiveRewardManager calls it once per sample from a thread pool (`run_in_executor`) in each
    reward worker, with the response decoded without special tokens and the row's `reward_model.ground_truth`
    and `extra_info`. It returns a dict: `score` is the reward (training samples) or 1 / 0 (eval samples, so
    verl's validation reward is the benchmark's accuracy); `acc` and `reward_error` are logged by verl and
    land in its rollout dumps. A missing reference stays None: it never pays. When the judge's internal errors
    pass `reward.max_error_share`, it raises: verl stops the run with that line, instead of training on the
    -1 rewards of a broken judge."""

    def __init__(self, settings: dict):
        from limr_exp.rewards import RewardSettings, warm_up

        self.settings = RewardSettings(**settings)
        warm_up(self.settings, wait=False)  # loaded when the reward worker starts: ready before the first rollout
        self._lock = threading.Lock()
        self.n_judged = 0
        self.n_errors = 0

    def __call__(self, data_source=None, solution_str="", ground_truth=None, extra_info=None, **_) -> dict:
        from limr_exp.rewards import Judgement, judge_batch, too_many_errors

        answer = None if ground_truth is None else str(ground_truth)
        try:
            judgement = judge_batch([solution_str], [answer], self.settings)[0]
        except Exception as e:  # a failed judge: an internal error, counted
            print(f"[limr_reward] judge failed: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            judgement = Judgement(self.settings.format_error, False, "error", None)
        with self._lock:
            self.n_judged += 1
            self.n_errors += judgement.reason == "error"
            reason = too_many_errors(self.n_errors, self.n_judged, self.settings)
        if reason is not None:
            raise RuntimeError(f"limr-exp reward: {reason}")
        is_eval = bool((extra_info or {}).get("eval"))
        return {"score": float(judgement.correct) if is_eval else float(judgement.reward), "acc": float(judgement.correct),
                "reward_error": float(judgement.reason == "error")}


# -- the files verl reads ---------------------------------------------------------------------------------------


def write_dataset(problems, model_cfg, path: Path, source: str | None = None, is_eval: bool = False) -> Path:
    """A problem set as verl's RL dataset (parquet; RLHFDataset reads `prompt` as chat messages and hands
    `reward_model.ground_truth` and `extra_info` to the reward function), written atomically."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from limr_exp.io import atomic_path
    from limr_exp.models.loading import chat_messages

    rows = [{"data_source": source or r.get("datasource") or "limr",
             "prompt": chat_messages(model_cfg, r["prompt"]),
             "ability": "math",
             "reward_model": {"style": "rule", "ground_truth": r["answer"]},
             "extra_info": {"index": i, "id": str(r["id"]), "eval": is_eval}} for i, r in enumerate(problems.rows)]
    with atomic_path(path) as tmp:
        pq.write_table(pa.Table.from_pylist(rows), tmp)
    return path


def write_eval_dataset(cfg, path: Path) -> Path | None:
    """The eval suite's benchmarks (each its own data_source, so verl reports each) as verl's val file; None
    when no benchmark has a file (the toy world's test split is not a file)."""
    from limr_exp.data import ProblemSet
    from limr_exp.evaluation.run import benchmark_file

    rows = [{**r, "id": f"{bench.name}/{r['id']}", "datasource": bench.name}
            for bench in cfg.eval.benchmarks if bench.path is not None for r in benchmark_file(bench).rows]
    return write_dataset(ProblemSet("eval", rows), cfg.model, path, is_eval=True) if rows else None


def write_reward_file(reward_cfg, path: Path) -> None:
    """The fixed reward file (verl_reward_file.py, copied) and its settings in `limr_reward.json` beside it."""
    from limr_exp.io import write_json, write_text
    from limr_exp.rewards import RewardSettings

    write_json(path.with_name(SETTINGS_FILE), {"settings": dict(RewardSettings.from_cfg(reward_cfg).__dict__)})
    write_text(path, REWARD_FILE_SOURCE.read_text(encoding="utf-8"))


def optimiser_steps_per_rollout_step(ppo) -> int:
    """Optimiser steps in one rollout step: samples / train batch, times the passes over them."""
    return max(1, ppo.rollout_batch_size * ppo.n_samples_per_prompt // ppo.train_batch_size) * ppo.max_epochs


def verl_settings(cfg, work: Path, train_file: Path, val_file: Path | None, reward_file: Path, seed: int,
                  num_episodes: int, name: str) -> dict:
    """The values limr-exp sets on verl 0.9's ppo_trainer config (nested; every key is one of verl's, checked
    in the tests by composing them onto the wheel's own ppo_trainer.yaml)."""
    from omegaconf import OmegaConf

    p, t, m = cfg.ppo, cfg.trainer, cfg.model
    scheduler, min_lr_ratio = SCHEDULERS[p.lr_scheduler]
    warmup = p.lr_warmup_steps // optimiser_steps_per_rollout_step(p)  # verl steps its scheduler once a rollout step

    def optim(lr: float) -> dict:
        return {"lr": lr, "lr_warmup_steps": warmup, "lr_scheduler_type": scheduler, "min_lr_ratio": min_lr_ratio,
                "weight_decay": 0.0}

    offload = {"param_offload": t.offload, "optimizer_offload": t.offload}
    evaluate = val_file is not None and t.eval_steps > 0
    settings = {
        "data": {"train_files": str(train_file), "val_files": str(val_file or train_file), "prompt_key": "prompt",
                 "max_prompt_length": p.prompt_max_len, "max_response_length": p.generate_max_len,
                 "train_batch_size": p.rollout_batch_size, "seed": seed, "shuffle": True},
        "actor_rollout_ref": {
            "model": {"path": str(m.path), "enable_gradient_checkpointing": True},
            "actor": {"optim": optim(p.actor_learning_rate), "ppo_mini_batch_size": p.train_batch_size // p.n_samples_per_prompt,
                      "ppo_micro_batch_size_per_gpu": p.micro_train_batch_size, "ppo_epochs": p.max_epochs,
                      "clip_ratio": p.eps_clip, "grad_clip": p.max_norm, "use_kl_loss": False, "fsdp_config": offload,
                      "checkpoint": {"save_contents": ["model", "optimizer", "extra", "hf_model"]}},  # HF weights: evaluation
            "ref": {"log_prob_micro_batch_size_per_gpu": p.micro_rollout_batch_size, "fsdp_config": {"param_offload": t.offload}},
            "rollout": {"name": "vllm", "n": p.n_samples_per_prompt, "temperature": p.temperature, "top_p": p.top_p,
                        "seed": seed, "tensor_model_parallel_size": t.tensor_parallel_size,
                        "gpu_memory_utilization": t.gpu_memory_utilization,
                        "log_prob_micro_batch_size_per_gpu": p.micro_rollout_batch_size,
                        "val_kwargs": {"temperature": t.eval_temperature, "n": t.eval_n_samples,
                                       "do_sample": t.eval_temperature > 0, "top_p": p.top_p}},
        },
        "algorithm": {"adv_estimator": ESTIMATORS[p.advantage_estimator], "gamma": p.gamma, "lam": p.lambd,
                      "use_kl_in_reward": True, "kl_penalty": "kl", "kl_ctrl": {"type": "fixed", "kl_coef": p.init_kl_coef}},
        "reward": {"custom_reward_function": {"path": str(reward_file), "name": "compute_score"},
                   "reward_manager": {"name": "naive"}},
        "trainer": {"total_epochs": num_episodes, "nnodes": t.num_nodes, "n_gpus_per_node": t.gpus_per_node,
                    "save_freq": t.save_steps, "test_freq": t.eval_steps if evaluate else -1, "val_before_train": False,
                    "rollout_data_dir": str(work / "rollouts"), "default_local_dir": str(work / "checkpoints"),
                    "resume_mode": "auto", "project_name": "limr-exp", "experiment_name": name,
                    "logger": list(t.logger), "critic_warmup": 0},
    }
    if p.advantage_estimator == "gae":  # the critic: the same model, OpenRLHF's critic settings
        settings["critic"] = {"optim": optim(p.critic_learning_rate), "model": {"path": str(m.path)}, "fsdp": offload,
                              "ppo_micro_batch_size_per_gpu": p.micro_train_batch_size, "cliprange_value": p.value_clip,
                              "grad_clip": p.max_norm}
    merged = OmegaConf.create(settings)
    for key, value in (t.extra or {}).items():
        OmegaConf.update(merged, str(key), value, force_add=True)
    return OmegaConf.to_container(merged)


def write_verl_config(settings: dict, path: Path) -> Path:
    """`verl_config.yaml`: verl's own ppo_trainer config, then ours (`defaults: [ppo_trainer, _self_]`), and
    verl's Hydra output folder beside it. Text values are escaped so that none is read as an interpolation."""
    from omegaconf import OmegaConf

    from limr_exp.io import write_text

    def escaped(node):
        if isinstance(node, dict):
            return {k: escaped(v) for k, v in node.items()}
        if isinstance(node, list):
            return [escaped(v) for v in node]
        return node.replace("${", "\\${") if isinstance(node, str) else node

    body = {"defaults": ["ppo_trainer", "_self_"], **escaped(settings),
            "hydra": {"run": {"dir": escaped(str(path.parent / "verl_hydra"))}}}
    write_text(path, "# verl 0.9 config of this run, written by limr-exp (limr_exp/training/engines/verl.py)\n"
                     + OmegaConf.to_yaml(OmegaConf.create(body)))
    return path


def build_command(config_path: Path, python: str | None = None) -> list[str]:
    return [python or sys.executable, "-m", "verl.trainer.main_ppo", "--config-dir", str(config_path.parent),
            "--config-name", config_path.stem]


# -- the run -------------------------------------------------------------------------------------------------


def _require_verl() -> None:
    import importlib.util

    if importlib.util.find_spec("verl") is None:
        raise ConfigError("trainer=verl needs verl, which is not installed: on a CUDA machine run pip install "
                          "'limr-exp[verl]' (or use trainer=local / trainer.dry_run=true)")


def read_rollouts(rollouts: Path, problems, steps_per_epoch: int):
    """verl's rollout dumps -> the reward history (epoch k: the k-th group of steps_per_epoch steps)."""
    from limr_exp.history import import_numbered_dumps

    return import_numbered_dumps(rollouts, "verl", steps_per_epoch, None, problems.text_to_first_id())


@TRAINERS.register("verl", schema=VerlTrainerConfig, check=check)
def train_verl(cfg, request: TrainRequest, tracker=None) -> TrainResult:
    """Write the dataset, reward and config files, run `verl.trainer.main_ppo` on them (or, with
    trainer.dry_run=true, only write them), and read the history back from verl's rollout dumps. It trains the
    request's passes and evaluates with `trainer.test_freq` itself; it cannot stop between epochs."""
    from limr_exp.history import History, write_table
    from limr_exp.io import write_json
    from limr_exp.layout import TrainerFiles

    out, t, p = Path(request.out), cfg.trainer, cfg.ppo
    n_prompts = len(request.problems)
    steps_per_epoch = n_prompts // p.rollout_batch_size  # verl's train dataloader drops the last partial batch
    if steps_per_epoch < 1:
        raise ConfigError(f"ppo.rollout_batch_size={p.rollout_batch_size} is more prompts than the {n_prompts} to train on, "
                          "and verl drops a partial batch: lower ppo.rollout_batch_size")
    work = engine_work_dir(cfg, out)
    train_file = write_dataset(request.problems, cfg.model, work / "train.parquet")
    val_file = write_eval_dataset(cfg, work / "val.parquet") if t.eval_steps > 0 else None
    reward_file = work / "limr_reward.py"
    write_reward_file(cfg.reward, reward_file)
    settings = verl_settings(cfg, work, train_file, val_file, reward_file, request.seed, request.num_episodes,
                             f"{cfg.run_name}-{request.namespace}")
    config_path = write_verl_config(settings, work / "verl_config.yaml")
    argv = build_command(config_path)
    write_json(out / "verl_command.json", argv)
    if t.dry_run:
        print(f"verl dry run: config {config_path}, command in {out / 'verl_command.json'}, reward file {reward_file}", flush=True)
        return TrainResult(History.build([], [], [], [], []), work / "checkpoints", {})
    if (work / "checkpoints" / LATEST_CHECKPOINT).exists():
        print(f"verl: resuming from its checkpoint in {work / 'checkpoints'}", flush=True)
    run_logged(argv, out / "verl.log", "verl training")
    history = read_rollouts(work / "rollouts", request.problems, steps_per_epoch)
    expected = steps_per_epoch * p.rollout_batch_size * p.n_samples_per_prompt * request.num_episodes
    if history.num_rows < expected:
        raise LimrError(f"verl finished but its rollout dumps in {work / 'rollouts'} hold {history.num_rows} of its {expected} "
                        "samples: on several nodes, trainer.shared_dir must be storage every node writes to")
    if work != out:
        shutil.copytree(work / "rollouts", out / "rollouts", dirs_exist_ok=True)
    write_table(history, TrainerFiles(out).trajectories)
    return TrainResult(history, hf_checkpoint(work / "checkpoints"), {})


def hf_checkpoint(checkpoints: Path) -> Path:
    """The trained policy as a Hugging Face folder: `global_step_<N>/actor/huggingface` of the step verl's
    `latest_checkpointed_iteration.txt` names (written with hf_model in the actor's save_contents)."""
    latest = checkpoints / LATEST_CHECKPOINT
    if not latest.exists():
        raise LimrError(f"verl finished without a checkpoint in {checkpoints}: set trainer.save_steps to a positive number")
    return checkpoints / f"global_step_{latest.read_text().strip()}" / "actor" / "huggingface"

