"""`trainer=openrlhf`: PPO in OpenRLHF 0.11 on Ray with vLLM rollouts (limr_exp/training/openrlhf.py): its
config schema, its start-up checks (the GPU layout must fit the cluster before anything runs) and its entry."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Optional

from limr_exp.config import TrainerConfig, require, require_existing
from limr_exp.training.base import (
    TRAINERS,
    TrainRequest,
    TrainResult,
    require_model_checkpoint,
    require_no_step_cap,
    require_shared_dir_for_nodes,
)


@dataclass
class OpenRLHFTrainerConfig(TrainerConfig):
    """trainer=openrlhf: the cluster, the GPU layout and OpenRLHF's own flags."""

    dry_run: bool = False  # write the command and reward file, launch nothing
    ray_address: Optional[str] = None  # `ray job submit` to this cluster (null: a Ray of the run's own)
    shared_dir: Optional[str] = None  # storage every node and this machine see: needed with ray_address or num_nodes > 1
    num_nodes: int = 1  # the cluster's nodes ...
    gpus_per_node: int = 8  # ... and GPUs per node
    layout: str = "auto"  # auto | separate | colocate_all (limr_exp/training/placement.py)
    actor_gpus: int = 4  # separate layout: GPUs of the actor, reference and critic models
    ref_gpus: int = 4
    critic_gpus: int = 4
    vllm_num_engines: int = 4
    vllm_tensor_parallel_size: int = 1
    vllm_gpu_memory_utilization: Optional[float] = None  # vLLM's share of GPU memory; null: 0.95 (OpenRLHF's default)
    # when vLLM has GPUs of its own, 0.5 (OpenRLHF's colocated recipes) when it shares them with DeepSpeed
    gpu_memory_gb: float = 80.0  # memory of one GPU: the layout's estimate must fit it (limr_exp/training/memory.py)
    eval_temperature: float = 0.7  # in-training evaluation as LIMR ran it: T 0.7, one sample per problem
    eval_n_samples: int = 1
    eval_path: Optional[str] = None  # an evaluation file instead of the eval suite (LIMR's data/evaluation/test.json)
    eval_problems: Optional[int] = None  # at most this many problems of each benchmark (a seeded subset); null: all
    packing_samples: bool = False  # pack samples (flash-attention)
    adam_offload: bool = False  # Adam states in CPU memory
    extra: Dict[str, Any] = field(default_factory=dict)  # more flags, e.g. {"vllm.enforce_eager": true}


def check(cfg) -> None:
    """A checkpoint to train, storage for a cluster, sane in-training evaluation, and a GPU layout that fits."""
    from limr_exp.training import placement

    t = cfg.trainer
    require_model_checkpoint(cfg)
    require_no_step_cap(cfg)
    require(not t.ray_address or t.shared_dir,
            "trainer.ray_address needs trainer.shared_dir: a folder on storage that every node of the cluster and "
            "this machine see (NFS, Lustre), for the prompts, reward records and checkpoints")
    require_shared_dir_for_nodes(cfg)
    require(t.eval_n_samples >= 1, f"trainer.eval_n_samples={t.eval_n_samples} must be at least 1")
    require(t.eval_problems is None or t.eval_problems >= 1,
            f"trainer.eval_problems={t.eval_problems} must be at least 1 (or null: every problem)")
    if t.eval_path is not None:
        require_existing(cfg, t.eval_path, "trainer.eval_path")
    placement.checked_layout(cfg)  # the cluster's GPUs and their memory


@TRAINERS.register("openrlhf", schema=OpenRLHFTrainerConfig, check=check)
def train_openrlhf(cfg, request: TrainRequest, tracker=None) -> TrainResult:
    """OpenRLHF on Ray with vLLM rollouts (or, with trainer.dry_run=true, only the command and files). It
    trains the request's passes (a rollout-step cap is refused at start) and evaluates with `--eval.steps`
    itself; it cannot stop between epochs (after_epoch is not called)."""
    from limr_exp.training.openrlhf import train_openrlhf as run_openrlhf

    if request.seed != cfg.seed:
        from omegaconf import OmegaConf

        cfg = OmegaConf.merge(cfg, {"seed": request.seed})
    return run_openrlhf(cfg, request.problems, request.out, tracker, num_episodes=request.num_episodes,
                        namespace=request.namespace)
