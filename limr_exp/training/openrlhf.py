"""`trainer=openrlhf`: PPO in OpenRLHF 0.11 on Ray with vLLM rollouts, driven by the same configs.

Writes into `<run>/train/` (for a cluster job, into `trainer.shared_dir/<run>/`):
  prompts.jsonl          the training subset: `context_messages` (chat) or `prompt`, and a JSON label
                         holding the reference answer and the prompt id
  eval_prompts.jsonl     the in-training evaluation set for `--eval.dataset` (when trainer.eval_steps > 0): the
                         eval suite's benchmarks (or trainer.eval_path), each its own `datasource`
  limr_reward.py         OpenRLHF's `reward_func(queries, prompts, labels)`: a fixed file (a copy of
                         openrlhf_reward_file.py) that builds openrlhf_reward.RewardFunction (LIMR's rule) from
  limr_reward.json       the settings beside it; every training sample's record goes to rewards/*.jsonl
  openrlhf_command.json  the argv list (GPU layout planned and checked by placement.py)
then runs `python -m openrlhf.cli.train_ppo_ray` (its `ray.init()` starts a Ray for the run, or joins a
running one; none is stopped here) or `ray job submit`s it to `trainer.ray_address`, streams its log,
and turns the records into `train/trajectories.parquet` (trajectories.import_reward_records: every
sample's episode and rollout step, across reruns and resumes), so LIM runs on an OpenRLHF run exactly as
on a local one. No fork of OpenRLHF is needed.

A run that spans several nodes (trainer.num_nodes > 1, or a cluster job) keeps every file an engine
reads or writes under `trainer.shared_dir/<run>/`; the reward records are copied back into the run folder
at the end.
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
from pathlib import Path

from limr_exp.errors import ConfigError, LimrError
from limr_exp.history import History, write_table
from limr_exp.io import write_json, write_jsonl, write_text
from limr_exp.layout import TrainerFiles
from limr_exp.models.loading import chat_messages
from limr_exp.training.base import run_logged
from limr_exp.training.openrlhf_reward import ABORT_FILE, SETTINGS_FILE

log = logging.getLogger("limr_exp")
REWARD_FILE_SOURCE = Path(__file__).with_name("openrlhf_reward_file.py")  # copied verbatim; no code is generated


def write_prompts(problems, model_cfg, path: Path, is_eval: bool = False) -> tuple[str, bool]:
    """A problem set in OpenRLHF's prompt-dataset format, the label a JSON object with the reference answer
    (null stays null), the prompt id and, for `--eval.dataset` prompts, `eval: true`; returns (input key,
    apply chat template)."""
    chat = bool(model_cfg.use_chat_template)
    rows = []
    for r in problems.rows:
        label = json.dumps({"answer": r["answer"], "id": r["id"], **({"eval": True} if is_eval else {})}, ensure_ascii=False)
        row = {"context_messages": chat_messages(model_cfg, r["prompt"])} if chat else {"prompt": r["prompt"]}
        rows.append({**row, "label": label, **({"datasource": r["datasource"]} if "datasource" in r else {})})
    write_jsonl(path, rows)
    return ("context_messages" if chat else "prompt"), chat


def write_eval_prompts(cfg, path: Path) -> Path | None:
    """The in-training evaluation set as one `--eval.dataset` file (labels marked eval, each benchmark its
    own `datasource`, so OpenRLHF reports eval_<benchmark>_pass1 per benchmark): the eval suite's files, at
    most trainer.eval_problems of each (a subset seeded by `seed`), or trainer.eval_path; None if empty."""
    import random

    from limr_exp.config import resolve_path
    from limr_exp.data import ProblemSet, load_problem_file, require_answers

    t = cfg.trainer
    if t.eval_path is not None:  # e.g. LIMR's data/evaluation/test.json: id, prompt, answer, source
        problems = load_problem_file(str(resolve_path(t.eval_path)), prompt_key="prompt", answer_key="answer", id_key="id",
                                     name="eval", key_prefix="trainer.eval_path")
        sets = [(None, require_answers(problems, "trainer.eval_path", True).rows)]
    else:
        from limr_exp.evaluation.run import benchmark_file

        sets = [(bench.name, benchmark_file(bench).rows) for bench in cfg.eval.benchmarks if bench.path is not None]
    rows = []
    for name, bench_rows in sets:
        if t.eval_problems is not None and len(bench_rows) > t.eval_problems:
            keep = set(random.Random(f"{cfg.seed}/{name}").sample(range(len(bench_rows)), t.eval_problems))
            bench_rows = [r for i, r in enumerate(bench_rows) if i in keep]
        for r in bench_rows:
            source = name or str(r.get("source") or "eval")
            rows.append({**r, "id": f"{source}/{r['id']}", "datasource": source})
    if not rows:
        return None
    write_prompts(ProblemSet("eval", rows), cfg.model, path, is_eval=True)
    return path


def write_reward_file(reward_cfg, path: Path, records_dir: Path, launch: int = 1) -> None:
    """The fixed reward file (openrlhf_reward_file.py, copied) and its settings in `limr_reward.json` beside
    it. Paths travel as JSON data, never as code. OpenRLHF splits --reward.remote_url at commas, so a path
    with one is refused."""
    from limr_exp.rewards import RewardSettings

    if "," in str(path):
        raise ConfigError(f"the reward file's path {path} holds a comma, at which OpenRLHF splits --reward.remote_url: "
                          "pick a run folder (hydra.run.dir=...) and trainer.shared_dir without commas")
    settings = dict(RewardSettings.from_cfg(reward_cfg).__dict__)
    write_json(path.with_name(SETTINGS_FILE), {"settings": settings, "records": str(records_dir), "launch": launch})
    write_text(path, REWARD_FILE_SOURCE.read_text(encoding="utf-8"))


def build_command(cfg, prompts_path: Path, input_key: str, chat: bool, reward_path: Path, out: Path, n_prompts: int,
                  eval_path: Path | None = None, python: str | None = None) -> list[str]:
    """OpenRLHF 0.11's dotted flags from the model / ppo / trainer configs (checked against its parser and
    its placement code in the tests); the GPU layout is planned and checked against the cluster first."""
    from limr_exp.training import memory, placement

    p, t, m = cfg.ppo, cfg.trainer, cfg.model
    model = str(m.path)  # checked at start (engines/openrlhf.py)
    layout, estimate = placement.checked_layout(cfg)
    log.info("openrlhf: %s", memory.summary(estimate))
    argv = [
        python or sys.executable, "-m", "openrlhf.cli.train_ppo_ray",
        "--actor.model_name_or_path", model,
        "--reward.remote_url", str(reward_path),
        "--data.prompt_dataset", str(prompts_path),
        "--data.input_key", input_key,
        "--data.label_key", "label",
        "--data.max_len", str(p.prompt_max_len + p.generate_max_len),
        "--rollout.max_new_tokens", str(p.generate_max_len),
        "--rollout.batch_size", str(p.rollout_batch_size),
        "--rollout.micro_batch_size", str(p.micro_rollout_batch_size),
        "--rollout.n_samples_per_prompt", str(p.n_samples_per_prompt),
        "--rollout.temperature", str(p.temperature),
        "--rollout.top_p", str(p.top_p),
        "--train.batch_size", str(p.train_batch_size),
        "--train.micro_batch_size", str(p.micro_train_batch_size),
        "--train.max_epochs", str(p.max_epochs),
        "--train.num_episodes", str(p.num_episodes),
        "--train.seed", str(cfg.seed),
        "--actor.adam.lr", str(p.actor_learning_rate),
        "--critic.adam.lr", str(p.critic_learning_rate),
        "--actor.lr_scheduler", str(p.lr_scheduler),
        "--critic.lr_scheduler", str(p.lr_scheduler),
        "--actor.max_norm", str(p.max_norm),
        "--critic.max_norm", str(p.max_norm),
        "--algo.kl.init_coef", str(p.init_kl_coef),
        "--actor.eps_clip", str(p.eps_clip),
        "--critic.value_clip", str(p.value_clip),
        "--algo.advantage.gamma", str(p.gamma),
        "--algo.advantage.lambd", str(p.lambd),
        "--algo.advantage.estimator", str(p.advantage_estimator),
        "--ds.zero_stage", str(p.zero_stage),
        "--ds.param_dtype", "bf16" if p.bf16 else "fp16",
        *layout.flags(),
        "--ckpt.save_steps", str(t.save_steps),
        "--ckpt.output_dir", str(out / "checkpoint"),
        "--ckpt.path", str(out / "ds_checkpoints"),
        "--ckpt.save_hf",
        "--ckpt.load_enable",  # a rerun resumes from the last checkpoint under --ckpt.path
        "--actor.gradient_checkpointing_enable",
    ]
    if p.lr_warmup_steps > 0:  # OpenRLHF 0.11 warms up for ceil(ratio x its scheduler's steps) optimiser steps
        max_steps = max(1, n_prompts * p.n_samples_per_prompt // p.train_batch_size * p.num_episodes * p.max_epochs)
        ratio = f"{min(1.0, (p.lr_warmup_steps - 0.5) / max_steps):.6g}"  # ceil gives exactly lr_warmup_steps
        argv += ["--actor.lr_warmup_ratio", ratio, "--critic.lr_warmup_ratio", ratio]
    if p.normalize_reward:
        argv.append("--reward.normalize_enable")
    if t.packing_samples:
        argv += ["--ds.packing_samples", "--ds.attn_implementation", "flash_attention_2"]
    if t.adam_offload:
        argv.append("--ds.adam_offload")
    argv += ["--vllm.gpu_memory_utilization", f"{memory.vllm_share(t, layout.colocate_all):g}"]
    if eval_path is not None and t.eval_steps > 0:  # as LIMR evaluated during training: T 0.7, one sample
        argv += ["--eval.dataset", str(eval_path), "--eval.steps", str(t.eval_steps),
                 "--eval.temperature", f"{t.eval_temperature:g}", "--eval.n_samples_per_prompt", str(t.eval_n_samples)]
    if chat:
        argv.append("--data.apply_chat_template")
    else:
        argv += ["--data.input_template", str(m.prompt_template).replace("{prompt}", "{}")]
    for key, value in (t.extra or {}).items():
        flag = f"--{key}"
        if value is True:
            argv.append(flag)
        elif value not in (False, None):
            argv += [flag, str(value)]
    return argv


def effective_flag(argv: list[str], flag: str, default: str) -> str:
    """The value the last occurrence of `flag` gives in `argv` (argparse keeps the last), else `default`."""
    value = default
    for i, arg in enumerate(argv[:-1]):
        if arg == flag:
            value = argv[i + 1]
    return value


def openrlhf_checkpoint_step(ckpt_path: Path) -> int | None:
    """The global step OpenRLHF resumes from with `--ckpt.load_enable` (the actor's DeepSpeed tag
    `global_step<N>`, named by its `latest` file), or None when there is no checkpoint."""
    actor = Path(ckpt_path) / "_actor"
    latest = actor / "latest"
    tags = [latest.read_text().strip()] if latest.exists() else [p.name for p in actor.glob("global_step*")]
    steps = [int(t[len("global_step"):]) for t in tags if t.startswith("global_step") and t[len("global_step"):].isdigit()]
    return max(steps) if steps else None


def start_launch(records: Path, resume_step: int | None) -> int:
    """Number this launch of the run and mark where it resumes; a fresh start (no checkpoint) clears
    the records of any earlier run in the folder, which would otherwise shift every epoch."""
    if resume_step is None:
        shutil.rmtree(records, ignore_errors=True)
    records.mkdir(parents=True, exist_ok=True)
    launch = 1 + len(list(records.glob("launch-*.json")))
    write_json(records / f"launch-{launch}.json", {"resume_step": resume_step or 0})
    return launch


def _require_openrlhf() -> None:
    import importlib.util

    if importlib.util.find_spec("openrlhf") is None:
        raise ConfigError("trainer=openrlhf needs OpenRLHF, which is not installed: on a CUDA machine run "
                          "FLASH_ATTENTION_SKIP_CUDA_BUILD=TRUE pip install --no-build-isolation 'limr-exp[openrlhf]' "
                          "(or use trainer=local / trainer.dry_run=true)")


def train_openrlhf(cfg, problems, out: Path, tracker=None, *, num_episodes=None, namespace="train"):
    """Write the prompt, eval and reward files, launch OpenRLHF (locally, or `ray job submit` to
    `trainer.ray_address` with everything under `trainer.shared_dir`), and read back the history."""
    from limr_exp.history import import_reward_records
    from limr_exp.training.base import TrainResult, engine_work_dir

    out = Path(out)
    t = cfg.trainer
    if num_episodes is not None and num_episodes != cfg.ppo.num_episodes:
        from omegaconf import OmegaConf

        cfg = OmegaConf.merge(cfg, {"ppo": {"num_episodes": num_episodes}})
    if not t.dry_run:
        _require_openrlhf()
    work = engine_work_dir(cfg, out)
    prompts = work / "prompts.jsonl"
    input_key, chat = write_prompts(problems, cfg.model, prompts)
    eval_path = write_eval_prompts(cfg, work / "eval_prompts.jsonl") if t.eval_steps > 0 else None
    reward_path, records = work / "limr_reward.py", work / "rewards"
    resume_step = openrlhf_checkpoint_step(work / "ds_checkpoints")
    python = "python" if t.ray_address else None  # a submitted job runs the cluster's python
    argv = build_command(cfg, prompts, input_key, chat, reward_path, work, len(problems), eval_path, python)
    write_json(out / "openrlhf_command.json", argv)
    if t.dry_run:
        write_reward_file(cfg.reward, reward_path, records)
        print(f"openrlhf dry run: command in {out / 'openrlhf_command.json'}, reward file {reward_path}", flush=True)
        return TrainResult(History.build([], [], [], [], []), work / "checkpoint", {})
    write_reward_file(cfg.reward, reward_path, records, start_launch(records, resume_step))
    if resume_step is not None:
        print(f"openrlhf: resuming from the checkpoint at step {resume_step} in {work / 'ds_checkpoints'}", flush=True)
    log_path = out / "openrlhf.log"
    if t.ray_address:
        if shutil.which("ray") is None:
            raise ConfigError("trainer.ray_address is set but the `ray` command is not on PATH: pip install ray")
        import limr_exp

        runtime_env = {"py_modules": [str(Path(limr_exp.__file__).parent)]}  # the reward file imports limr_exp
        submit = ["ray", "job", "submit", "--address", str(t.ray_address), "--runtime-env-json", json.dumps(runtime_env), "--"]
        run_logged(submit + argv, log_path, f"ray job submit to {t.ray_address}", records / ABORT_FILE)
    else:  # OpenRLHF's ray.init() starts a Ray for this run alone (and it ends with it), or joins a running one
        run_logged(argv, log_path, "OpenRLHF training", records / ABORT_FILE)
    n = int(effective_flag(argv, "--rollout.n_samples_per_prompt", "1"))
    episodes = int(effective_flag(argv, "--train.num_episodes", "1"))
    if work != out:  # the records, gathered into the run folder
        shutil.copytree(records, out / "rewards", dirs_exist_ok=True)
    history = import_reward_records(records, n, int(effective_flag(argv, "--rollout.batch_size", "1")), len(problems))
    expected = len(problems) * n * episodes
    if history.num_rows < expected:
        raise LimrError(f"OpenRLHF finished but the reward records in {records} hold {history.num_rows} of its {expected} "
                        "samples: on a cluster, trainer.shared_dir must be storage every node writes to")
    write_table(history, TrainerFiles(out).trajectories)
    return TrainResult(history, work / "checkpoint", {})
