"""Evaluate a policy on the configured suite: per-sample jsonl and metrics.json.

Accuracy is the mean correctness over all samples of a benchmark (n greedy or sampled responses per
problem); `avg` is the mean over benchmarks. The base model is evaluated the same way, cached by a
hash of model, suite and reward settings.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import numpy as np

from limr_exp.data import ProblemSet, load_problem_file, load_problems, require_answers
from limr_exp.errors import ConfigError, LimrError
from limr_exp.hashing import config_hash
from limr_exp.io import write_json, write_jsonl
from limr_exp.rewards import RewardSettings, judge_batch, too_many_errors

log = logging.getLogger("limr_exp")


def benchmark_problems(cfg, bench) -> ProblemSet:
    if bench.path is None:
        if cfg.dataset.format != "toy_arith":
            raise ConfigError(f"eval benchmark {bench.name} has no path and the dataset is not the toy world: set its path")
        return load_problems(cfg.dataset, "test")
    key = f"eval.benchmarks[{bench.name}]"
    problems = load_problem_file(bench.path, prompt_key=bench.prompt_key, answer_key=bench.answer_key, id_key="id",
                                 name=bench.name, key_prefix=key)
    return require_answers(problems, key, bench.drop_unanswered)


def generate_responses(cfg, bundle, problems: ProblemSet, bench) -> list[list[str]]:
    prompts = [bundle.render(r["prompt"]) for r in problems.rows]
    if cfg.eval.backend == "vllm":
        from limr_exp.evaluation import vllm_backend

        return vllm_backend.generate(bundle.path, prompts, n=bench.n_samples, temperature=bench.temperature, top_p=bench.top_p,
                                     max_tokens=cfg.eval.max_new_tokens, tensor_parallel_size=cfg.eval.tensor_parallel_size,
                                     seed=cfg.seed, gpu_memory_utilization=cfg.eval.gpu_memory_utilization)
    from limr_exp.generation import sample

    s = sample(bundle.model, bundle.tokenizer, prompts, bench.n_samples, temperature=bench.temperature, top_p=bench.top_p,
               max_new_tokens=cfg.eval.max_new_tokens, batch_size=cfg.eval.batch_size, progress=f"eval {bench.name}")
    n = bench.n_samples
    return [s.texts[i * n:(i + 1) * n] for i in range(len(problems))]


def evaluate(cfg, bundle, out: Path, tracker=None, prefix: str = "eval") -> dict:
    """Run every benchmark; write `<out>/<name>.jsonl` and `<out>/metrics.json`; return the metrics."""
    import torch

    out = Path(out)
    settings = RewardSettings.from_cfg(cfg.reward)
    torch.manual_seed(cfg.seed)
    results = {}
    for bench in cfg.eval.benchmarks:
        problems = benchmark_problems(cfg, bench)
        responses = generate_responses(cfg, bundle, problems, bench)
        flat = [r for rs in responses for r in rs]
        answers = [p["answer"] for p, rs in zip(problems.rows, responses) for _ in rs]
        judgements = judge_batch(flat, answers, settings)
        rows, k = [], 0
        for p, rs in zip(problems.rows, responses):
            js = judgements[k:k + len(rs)]
            k += len(rs)
            rows.append({"id": p["id"], "prompt": p["prompt"], "answer": p["answer"], "responses": rs,
                         "extracted": [j.extracted for j in js], "rewards": [j.reward for j in js],
                         "correct": [j.correct for j in js], "reasons": [j.reason for j in js]})
        write_jsonl(out / f"{bench.name}.jsonl", rows)
        if tracker is not None:
            tracker.log_table(f"{prefix}/{bench.name}/samples", [
                {"id": r["id"], "prompt": r["prompt"], "answer": r["answer"], "response": r["responses"][0],
                 "extracted": r["extracted"][0], "reward": r["rewards"][0]} for r in rows[:200]])
        acc = float(np.mean([j.correct for j in judgements])) if judgements else 0.0
        n_errors = sum(j.reason == "error" for j in judgements)
        reason = too_many_errors(n_errors, len(judgements), settings)
        if reason is not None:  # an accuracy from a broken judge would be a false figure
            raise LimrError(f"eval {bench.name}: {reason}")
        results[bench.name] = {"acc": acc, "n_samples": len(judgements), "reward_errors": n_errors}
        log.info("%s/%s: accuracy %.1f%% over %d samples", prefix, bench.name, 100 * acc, len(judgements))
    metrics = {"benchmarks": results, "avg": float(np.mean([r["acc"] for r in results.values()])) if results else 0.0}
    write_json(out / "metrics.json", metrics)
    if tracker is not None:
        tracker.log({f"{prefix}/{name}/acc": r["acc"] for name, r in results.items()} | {f"{prefix}/avg": metrics["avg"]}
                    | {f"{prefix}/{name}/reward/errors": r["reward_errors"] for name, r in results.items()})
    return metrics


def evaluate_base(cfg, out: Path, tracker=None) -> dict:
    """The base model's metrics (cached), copied to `<out>/base_metrics.json`."""
    import json

    from limr_exp.models import load_policy, resolve_device

    key = config_hash(cfg.model, cfg.eval, cfg.reward, cfg.dataset, cfg.seed)
    folder = Path(cfg.cache_dir) / "base_eval" / key
    if not (folder / "metrics.json").exists():
        device = resolve_device(cfg.trainer.device)
        bundle = load_policy(cfg.model, cfg.cache_dir, device, with_model=cfg.eval.backend == "hf")
        evaluate(cfg, bundle, folder, None, prefix="eval_base")
    metrics = json.loads((folder / "metrics.json").read_text())
    shutil.copyfile(folder / "metrics.json", Path(out) / "base_metrics.json")
    if tracker is not None:
        tracker.log({f"eval_base/{n}/acc": r["acc"] for n, r in metrics["benchmarks"].items()} | {"eval_base/avg": metrics["avg"]})
    return metrics
