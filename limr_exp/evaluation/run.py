"""Evaluate a policy on the configured suite: per-sample jsonl and metrics.json.

Accuracy is the mean correctness over all samples of a benchmark (n greedy or sampled responses per
problem); `avg` is the mean over benchmarks. The base model is evaluated the same way, cached by a
hash of model, suite and reward settings.
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from pathlib import Path

import numpy as np

from limr_exp.config import require
from limr_exp.data import ProblemSet, load_problem_file, load_problems, require_answers
from limr_exp.errors import ConfigError, LimrError
from limr_exp.hashing import config_hash
from limr_exp.io import write_json, write_jsonl
from limr_exp.layout import BASE_METRICS_FILE, METRICS_FILE
from limr_exp.registry import Registry
from limr_exp.rewards import RewardSettings, judge_batch, too_many_errors

log = logging.getLogger("limr_exp")


def benchmark_file(bench) -> ProblemSet:
    """The problems of a benchmark's file (`bench.path`), each with its reference answer (rows without one are
    dropped with `drop_unanswered`, else one line naming them)."""
    key = f"eval.benchmarks[{bench.name}]"
    problems = load_problem_file(bench.path, prompt_key=bench.prompt_key, answer_key=bench.answer_key, id_key="id",
                                 name=bench.name, key_prefix=key)
    return require_answers(problems, key, bench.drop_unanswered)


def benchmark_problems(cfg, bench) -> ProblemSet:
    """A benchmark's problems; with `eval.limit=N` only its first N (a quick partial run; metrics.json
    records n_problems, so a partial figure is never mistaken for the benchmark's)."""
    if bench.path is None:
        if cfg.dataset.format != "toy_arith":
            raise ConfigError(f"eval benchmark {bench.name} has no path and the dataset is not the toy world: set its path")
        problems = load_problems(cfg.dataset, "test")
        if bench.families is not None:
            keep = set(bench.families)
            problems = problems.subset(r["id"] for r in problems.rows if r["family"] in keep)
    else:
        problems = benchmark_file(bench)
    limit = cfg.eval.get("limit")
    if limit is not None and len(problems) > limit:
        log.info("eval %s: the first %d of its %d problems (eval.limit)", bench.name, limit, len(problems))
        problems = problems.subset([r["id"] for r in problems.rows[:limit]])
    return problems


BACKENDS: Registry = Registry("evaluation backend", "eval.backend")  # name -> generate(cfg, bundle, prompts, bench)


@BACKENDS.register("hf")
def generate_hf(cfg, bundle, prompts: list[str], bench) -> list[str]:
    """HF `generate` on the loaded policy, in batches of eval.batch_size."""
    from limr_exp.generation import sample

    return sample(bundle.model, bundle.tokenizer, prompts, bench.n_samples, temperature=bench.temperature, top_p=bench.top_p,
                  max_new_tokens=cfg.eval.max_new_tokens, batch_size=cfg.eval.batch_size, progress=f"eval {bench.name}").texts


generate_hf.uses_loaded_model = True  # generates with the policy loaded in this process (the others load the folder)


def uses_loaded_model(cfg) -> bool:
    """Whether the evaluation backend generates with the model loaded in this process (HF generate), so that
    the policy must be loaded with its weights and can be evaluated while it trains."""
    return bool(getattr(BACKENDS.get(cfg.eval.backend), "uses_loaded_model", False))


def check_vllm(cfg) -> None:
    """vLLM must be installed when it evaluates, and a fixed tensor-parallel size must divide the heads."""
    import importlib.util

    e = cfg.eval
    if e.tensor_parallel_size is not None and cfg.model.path:
        from limr_exp.evaluation.vllm_backend import model_shape, tensor_parallel_size

        tensor_parallel_size(model_shape(str(cfg.model.path)), e.tensor_parallel_size, 0)  # one line if it can't divide the heads
    if "eval" in cfg.stages:
        require(importlib.util.find_spec("vllm") is not None,
                "eval.backend=vllm needs vLLM, which is not installed: pip install 'limr-exp[vllm]' on a CUDA machine, "
                "or use eval.backend=hf")


@BACKENDS.register("vllm", check=check_vllm)
def generate_vllm(cfg, bundle, prompts: list[str], bench) -> list[str]:
    """One vLLM engine on the checkpoint folder (limr_exp/evaluation/vllm_backend.py)."""
    import limr_exp.evaluation.vllm_backend as vllm_backend

    per_prompt = vllm_backend.generate(bundle.path, prompts, n=bench.n_samples, temperature=bench.temperature, top_p=bench.top_p,
                                       max_tokens=cfg.eval.max_new_tokens, tensor_parallel_size=cfg.eval.tensor_parallel_size,
                                       seed=cfg.seed, gpu_memory_utilization=cfg.eval.gpu_memory_utilization)
    return [text for texts in per_prompt for text in texts]


def generate_responses(cfg, bundle, problems: ProblemSet, bench) -> list[list[str]]:
    """bench.n_samples responses per problem, from the configured backend."""
    prompts = [bundle.render(r["prompt"]) for r in problems.rows]
    flat = BACKENDS.get(cfg.eval.backend)(cfg, bundle, prompts, bench)
    n = bench.n_samples
    return [flat[i * n:(i + 1) * n] for i in range(len(problems))]


def evaluate(cfg, bundle, out: Path, tracker=None, prefix: str = "eval", step: int | None = None) -> dict:
    """Run every benchmark; write `<out>/<name>.jsonl` and `<out>/metrics.json`; return the metrics. The
    trackers get them at `step` (the trained model's rollout step), so a tracker's latest value of each
    metric is this evaluation's, after the evaluations made during training."""
    import torch

    out = Path(out)
    # accuracy is about the answer: a response cut at the token limit is judged on its text (the backends
    # return decoded text without end tokens), whatever reward.require_end_token says for training
    settings = dataclasses.replace(RewardSettings.from_cfg(cfg.reward), require_end_token=False)
    torch.manual_seed(cfg.seed)
    results = {}
    for bench in cfg.eval.benchmarks:
        problems = benchmark_problems(cfg, bench)
        if bench.group_by is not None and not any(bench.group_by in r for r in problems.rows):
            raise ConfigError(f"eval.benchmarks[{bench.name}].group_by={bench.group_by}: no problem of {bench.name} has that "
                              f"field (they have {', '.join(sorted(problems.rows[0])) if len(problems) else 'no rows'})")
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
        results[bench.name] = {"acc": acc, "n_problems": len(problems), "n_samples": len(judgements), "reward_errors": n_errors}
        if bench.group_by is not None:
            results[bench.name]["group_by"] = bench.group_by
            results[bench.name]["groups"] = group_accuracy(problems.rows, rows, bench.group_by)
        groups = "".join(f", {g} {100 * r['acc']:.1f}%" for g, r in results[bench.name].get("groups", {}).items())
        log.info("%s/%s: accuracy %.1f%% over %d samples%s", prefix, bench.name, 100 * acc, len(judgements), groups)
    metrics = {"benchmarks": results, "avg": float(np.mean([r["acc"] for r in results.values()])) if results else 0.0}
    write_json(Path(out) / METRICS_FILE, metrics)
    if tracker is not None:
        tracker.log(flat_metrics(metrics, prefix), step)
    return metrics


def group_accuracy(problems: list[dict], rows: list[dict], field: str) -> dict[str, dict]:
    """Accuracy over the samples of the problems sharing each value of `field` (toy: family; MATH500: level)."""
    groups: dict[str, list[bool]] = {}
    for problem, row in zip(problems, rows):
        groups.setdefault(str(problem.get(field)), []).extend(row["correct"])
    return {g: {"acc": float(np.mean(c)) if c else 0.0, "n_samples": len(c)} for g, c in sorted(groups.items())}


def flat_metrics(metrics: dict, prefix: str = "eval") -> dict[str, float]:
    """metrics.json as tracker keys: eval/<bench>/acc, eval/<bench>/<group>/acc, eval/<bench>/reward/errors, eval/avg."""
    flat = {f"{prefix}/avg": metrics["avg"]}
    for name, r in metrics["benchmarks"].items():
        flat[f"{prefix}/{name}/acc"] = r["acc"]
        flat[f"{prefix}/{name}/reward/errors"] = r["reward_errors"]
        flat |= {f"{prefix}/{name}/{g}/acc": gr["acc"] for g, gr in r.get("groups", {}).items()}
    return flat


def evaluate_base(cfg, out: Path, tracker=None) -> dict:
    """The base model's metrics (cached), copied to `<out>/base_metrics.json`."""
    import json

    from limr_exp.models import load_policy, resolve_device
    from limr_exp.models.loading import model_identity

    key = config_hash(*model_identity(cfg.model), cfg.eval, cfg.reward, cfg.dataset, cfg.seed)
    folder = Path(cfg.cache_dir) / "base_eval" / key
    if not (folder / METRICS_FILE).exists():
        device = resolve_device(cfg.trainer.device)
        bundle = load_policy(cfg.model, cfg.cache_dir, device, with_model=uses_loaded_model(cfg))
        evaluate(cfg, bundle, folder, None, prefix="eval_base")
    metrics = json.loads((folder / METRICS_FILE).read_text())
    shutil.copyfile(folder / METRICS_FILE, Path(out) / BASE_METRICS_FILE)
    if tracker is not None:
        tracker.log(flat_metrics(metrics, "eval_base"))
    return metrics


def evaluation_during_training(cfg, out: Path):
    """The trainer's `on_step`: every `trainer.eval_steps` rollout steps (not the last, which the eval stage
    scores), the suite on the current policy into `<out>/step_<n>/`; returns its metrics for that step.
    The global RNG is left as it was, so training samples the same with or without these evaluations."""
    import torch

    from limr_exp.models import PolicyBundle, load_policy, resolve_device

    every = cfg.trainer.eval_steps
    tokenizer_bundle = load_policy(cfg.model, cfg.cache_dir, resolve_device(cfg.trainer.device), with_model=False)

    def on_step(step: int, model, last: bool) -> dict:
        if last or step % every:
            return {}
        bundle = PolicyBundle(model, tokenizer_bundle.tokenizer, tokenizer_bundle.path, cfg.model)
        devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
        with torch.random.fork_rng(devices=devices):
            metrics = evaluate(cfg, bundle, Path(out) / f"step_{step}", None, prefix="eval")
        return flat_metrics(metrics, "eval")

    return on_step
