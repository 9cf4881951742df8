"""`eval.backend=vllm`: vllm.LLM with tensor parallelism over the visible GPUs and
SamplingParams(n, temperature, top_p, max_tokens) from the suite; the same outputs as the HF backend
(a list of n response texts per prompt). The engine is built once per model path."""

from __future__ import annotations

_ENGINES: dict = {}


def engine(model_path: str, tensor_parallel_size: int | None, seed: int):
    import vllm

    if model_path not in _ENGINES:
        if tensor_parallel_size is None:
            import torch

            tensor_parallel_size = max(1, torch.cuda.device_count())
        _ENGINES[model_path] = vllm.LLM(model=model_path, tensor_parallel_size=tensor_parallel_size, seed=seed)
    return _ENGINES[model_path]


def generate(model_path: str, prompts: list[str], *, n: int, temperature: float, top_p: float, max_tokens: int,
             tensor_parallel_size: int | None = None, seed: int = 0) -> list[list[str]]:
    import vllm

    params = vllm.SamplingParams(n=n, temperature=temperature, top_p=top_p if temperature > 0 else 1.0, max_tokens=max_tokens)
    outputs = engine(model_path, tensor_parallel_size, seed).generate(prompts, params)
    return [[completion.text for completion in out.outputs] for out in outputs]
