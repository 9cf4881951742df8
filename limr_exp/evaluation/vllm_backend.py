"""`eval.backend=vllm`: `vllm.LLM` + `SamplingParams(n, temperature, top_p, max_tokens)` from the suite;
the same outputs as the HF backend (a list of n response texts per prompt).

What a real engine needs, settled before it starts:
  - dtype: the checkpoint's own (`torch_dtype` in config.json), so a float32 model is not silently
    run in bf16 as vLLM's "auto" would;
  - memory: `eval.gpu_memory_utilization` (vLLM's 0.92 default fails on a shared GPU);
  - tensor parallelism: `eval.tensor_parallel_size`, or the largest count of visible GPUs that divides the
    model's attention heads (and KV heads); an explicit one that does not divide them is one line;
  - greedy decoding with n > 1 samples: vLLM refuses it, and greedy is deterministic, so one greedy
    sample is drawn and repeated n times;
  - one engine alive at a time: the base model's engine is shut down before the trained model's starts.
"""

from __future__ import annotations

import gc
import json
from pathlib import Path

from limr_exp.errors import ConfigError

_ENGINE: dict = {}  # at most one: {model path: vllm.LLM}


def model_shape(model_path: str) -> dict:
    """A checkpoint's config (config.json of a folder, or of a hub id in the local HF cache); {} if unknown."""
    path = Path(model_path).expanduser() / "config.json"
    if path.exists():
        return json.loads(path.read_text())
    try:
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(model_path, local_files_only=True).to_dict()
    except Exception:  # not cached here: vLLM will read it on the GPU machine
        return {}


def tensor_parallel_size(shape: dict, requested: int | None, visible_gpus: int) -> int:
    """`requested`, checked against the attention heads, or the largest divisor of them within the visible GPUs."""
    heads, kv_heads = shape.get("num_attention_heads"), shape.get("num_key_value_heads") or shape.get("num_attention_heads")

    def divides(tp: int) -> bool:
        return heads is None or (heads % tp == 0 and (kv_heads % tp == 0 or tp % kv_heads == 0))

    if requested is not None:
        if requested < 1 or not divides(requested):
            raise ConfigError(f"eval.tensor_parallel_size={requested} must divide the model's {heads} attention heads "
                              f"({kv_heads} KV heads): use one of {[k for k in range(1, heads + 1) if divides(k)]}")
        return requested
    return max(k for k in range(1, max(1, visible_gpus) + 1) if divides(k))


def dtype_of(shape: dict) -> str:
    """The checkpoint's dtype for vLLM ("auto" when the config does not say)."""
    dtype = shape.get("torch_dtype") or shape.get("dtype")
    return str(dtype).replace("torch.", "") if dtype else "auto"


def shutdown() -> None:
    """Stop the engine in hand and give its GPU memory back."""
    for llm in _ENGINE.values():
        try:
            llm.llm_engine.engine_core.shutdown()
        except Exception:  # older or newer engines: dropping the object is enough
            pass
    _ENGINE.clear()
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


def engine(model_path: str, tp: int | None, seed: int, gpu_memory_utilization: float):
    """The vLLM engine for `model_path`; any engine for another model is shut down first."""
    import vllm

    if model_path not in _ENGINE:
        shutdown()
        shape = model_shape(model_path)
        visible = 0
        try:
            import torch

            visible = torch.cuda.device_count()
        except ImportError:
            pass
        _ENGINE[model_path] = vllm.LLM(model=model_path, tensor_parallel_size=tensor_parallel_size(shape, tp, visible),
                                       dtype=dtype_of(shape), gpu_memory_utilization=gpu_memory_utilization, seed=seed)
    return _ENGINE[model_path]


def generate(model_path: str, prompts: list[str], *, n: int, temperature: float, top_p: float, max_tokens: int,
             tensor_parallel_size: int | None = None, seed: int = 0, gpu_memory_utilization: float = 0.8) -> list[list[str]]:
    import vllm

    greedy = temperature <= 0
    params = vllm.SamplingParams(n=1 if greedy else n, temperature=max(temperature, 0.0), top_p=1.0 if greedy else top_p,
                                 max_tokens=max_tokens, seed=seed)
    outputs = engine(model_path, tensor_parallel_size, seed, gpu_memory_utilization).generate(prompts, params)
    texts = [[completion.text for completion in out.outputs] for out in outputs]
    return [t * n for t in texts] if greedy else texts
