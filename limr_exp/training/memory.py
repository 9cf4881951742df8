"""Will an OpenRLHF layout fit the GPUs' memory? An estimate made before anything launches.

Per GPU, in GB (1e9 bytes), for a model of P parameters (its config.json, or `model.size` for a hub id):
  DeepSpeed (actor, reference, critic; ZeRO shards over the g GPUs of a model's group)
    weights      2 B x P per model in bf16                                           / g
    gradients    2 B x P for the actor and the critic                                / g
    Adam states  12 B x P for the actor and the critic (fp32 master, m, v)           / g; 0 with adam_offload
    activations  micro_train_batch x (prompt + response tokens) x hidden x layers x 2 B (checkpointed)
  vLLM engine    its share of the GPU, `gpu_memory_utilization` x GPU memory, holding
                 weights 2 B x P / tensor_parallel and the KV cache
                 (2 x layers x kv_heads x head_dim x 2 B per token)
  CUDA context   1 GB for each process on the GPU

Separate layout: each model group must hold its own training state, each vLLM engine its weights and at
least one full sequence of KV cache. Colocated (`--train.colocate_all`, vLLM and DeepSpeed sleeping in
turn): while vLLM generates, its share sits beside what DeepSpeed keeps resident (the bf16 weights of
the three models and the contexts of four processes), so share x memory + that must fit; while DeepSpeed
trains, its whole training state must fit. vLLM's default share, 0.95, is for a GPU of its own.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

from limr_exp.errors import ConfigError

GB = 1e9
CONTEXT_GB = 1.0  # one CUDA context (and NCCL buffers) per process on a GPU
SHARE_SEPARATE, SHARE_COLOCATED = 0.95, 0.5  # OpenRLHF's default; its colocated recipes


@dataclass(frozen=True)
class ModelSize:
    params: float
    num_layers: int
    hidden_size: int
    num_kv_heads: int
    head_dim: int

    @property
    def kv_bytes_per_token(self) -> int:
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim * 2  # K and V, bf16


def model_size(model_cfg) -> ModelSize | None:
    """The model's size from a local folder's config.json, else from `model.size`; None if neither."""
    path = os.path.expanduser(str(model_cfg.path)) if model_cfg.path else None
    if path and os.path.isfile(os.path.join(path, "config.json")):
        with open(os.path.join(path, "config.json"), encoding="utf-8") as f:
            c = json.load(f)
        h, layers, inter = c["hidden_size"], c["num_hidden_layers"], c.get("intermediate_size", 4 * c["hidden_size"])
        heads = c["num_attention_heads"]
        kv, hd = c.get("num_key_value_heads", heads), c.get("head_dim", h // heads)
        attention = h * heads * hd * 2 + h * kv * hd * 2  # q, o; k, v
        embeddings = c["vocab_size"] * h * (1 if c.get("tie_word_embeddings", False) else 2)
        return ModelSize(float(layers * (attention + 3 * h * inter) + embeddings), layers, h, kv, hd)
    size = model_cfg.get("size")
    if size is None:
        return None
    return ModelSize(float(size.params), int(size.num_layers), int(size.hidden_size), int(size.num_kv_heads), int(size.head_dim))


def vllm_share(trainer, colocated: bool) -> float:
    """vLLM's share of each GPU: the configured one, else OpenRLHF's default or its colocated recipes'."""
    share = trainer.vllm_gpu_memory_utilization
    return float(share) if share is not None else SHARE_COLOCATED if colocated else SHARE_SEPARATE


@dataclass(frozen=True)
class Estimate:
    gpu_gb: float
    colocated: bool
    share: float
    training_gb: float  # the largest training state of one GPU (of one group when separate)
    resident_gb: float  # colocated: what DeepSpeed keeps while vLLM is awake
    vllm_weights_gb: float
    kv_gb: float  # KV cache left to one engine
    sequence_kv_gb: float  # KV cache of one sequence of the full length
    note: str  # how the training state is made up


def estimate(cfg, layout, kl: bool, critic: bool) -> Estimate | None:
    """The estimate for `layout` (placement.Placement), or None when the model's size is unknown."""
    size = model_size(cfg.model)
    if size is None:
        return None
    p, t = cfg.ppo, cfg.trainer
    P = size.params
    seq = p.prompt_max_len + p.generate_max_len
    activations = p.micro_train_batch_size * seq * size.hidden_size * size.num_layers * 2 / GB
    adam = 0.0 if t.adam_offload else 12 * P / GB

    def training_state(models: int, trained: int, gpus: int, processes: int) -> float:
        return (2 * P * models + 2 * P * trained) / GB / gpus + adam * trained / gpus + activations + CONTEXT_GB * processes

    n_models = 1 + kl + critic
    n_trained = 1 + critic
    weights = 2 * P / GB / layout.vllm_tp
    share = vllm_share(t, layout.colocate_all)
    if layout.colocate_all:
        gpus = layout.actor.gpus
        train = training_state(n_models, n_trained, gpus, n_models + 1)
        resident = 2 * P * n_models / GB / gpus + CONTEXT_GB * (n_models + 1)
        note = f"{n_models} models sharded over {gpus} GPUs"
    else:
        groups = [(layout.actor.gpus, 1, 1)] + ([(layout.ref.gpus, 1, 0)] if kl else []) + ([(layout.critic.gpus, 1, 1)] if critic else [])
        train = max(training_state(models, trained, gpus, 1) for gpus, models, trained in groups)
        resident = 0.0
        note = f"the actor sharded over {layout.actor.gpus} GPUs"
    kv = share * t.gpu_memory_gb - weights - (0 if layout.colocate_all else CONTEXT_GB)
    return Estimate(t.gpu_memory_gb, layout.colocate_all, share, train, resident, weights, kv,
                    seq * size.kv_bytes_per_token / GB, note)


def check(e: Estimate | None, trainer) -> None:
    """One line naming the keys when the estimate does not fit `trainer.gpu_memory_gb`."""
    if e is None:
        return
    key = "trainer.vllm_gpu_memory_utilization"
    if not 0 < e.share <= 1:
        raise ConfigError(f"{key}={e.share} must be a share of GPU memory in (0, 1]")
    if e.training_gb > e.gpu_gb:
        raise ConfigError(f"GPU memory: training needs about {e.training_gb:.1f} GB per GPU ({e.note}) but "
                          f"trainer.gpu_memory_gb={e.gpu_gb:g}: set trainer.adam_offload=true, use more GPUs, or a smaller "
                          "ppo.micro_train_batch_size")
    if e.colocated and e.share * e.gpu_gb + e.resident_gb > e.gpu_gb:
        most = (e.gpu_gb - e.resident_gb) / e.gpu_gb
        raise ConfigError(f"GPU memory: colocated, vLLM's share {key}={e.share:g} of trainer.gpu_memory_gb={e.gpu_gb:g} "
                          f"({e.share * e.gpu_gb:.1f} GB) beside the {e.resident_gb:.1f} GB DeepSpeed keeps on each GPU "
                          f"(bf16 weights, {e.note}, and the processes' CUDA contexts) needs "
                          f"{e.share * e.gpu_gb + e.resident_gb:.1f} GB: set {key} to at most {most:.2f} "
                          f"(OpenRLHF's colocated recipes use {SHARE_COLOCATED})")
    if e.kv_gb < e.sequence_kv_gb:
        raise ConfigError(f"GPU memory: vLLM's share {key}={e.share:g} of {e.gpu_gb:g} GB leaves {max(e.kv_gb, 0):.1f} GB "
                          f"of KV cache after the {e.vllm_weights_gb:.1f} GB of weights, less than one full sequence needs "
                          f"({e.sequence_kv_gb:.2f} GB): raise {key} or trainer.vllm_tensor_parallel_size")


def summary(e: Estimate | None) -> str:
    """One line for the log: the estimate against the GPU."""
    if e is None:
        return "GPU memory: not estimated (model size unknown: set model.size or use a local model folder)"
    vllm = f"vLLM {e.share:g} x {e.gpu_gb:g} GB ({e.vllm_weights_gb:.1f} GB weights, {e.kv_gb:.1f} GB KV cache = " \
           f"{e.kv_gb / e.sequence_kv_gb:.0f} full sequences)"
    beside = f" beside {e.resident_gb:.1f} GB of DeepSpeed" if e.colocated else ""
    return f"GPU memory per GPU (estimate): training {e.training_gb:.1f} GB ({e.note}); {vllm}{beside}; of {e.gpu_gb:g} GB"
