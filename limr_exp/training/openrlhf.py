"""`trainer=openrlhf`: PPO in OpenRLHF 0.11 on Ray with vLLM rollouts, driven by the same configs.

Writes into `<run>/train/`:
  prompts.jsonl          the training subset: `context_messages` (chat) or `prompt`, and a JSON label
                         holding the reference answer and the prompt id
  limr_reward.py         OpenRLHF's `reward_func(queries, prompts, labels)`: builds openrlhf_reward.RewardFunction
                         (LIMR's rule); every sample's (prompt id, reward, correct, reason, time) goes to rewards/*.jsonl
  openrlhf_command.json  the argv list
then launches `python -m openrlhf.cli.train_ppo_ray` on a local Ray head (started and stopped here) or
with `ray job submit` to `trainer.ray_address`, streams its log, and turns rewards/*.jsonl into
`train/trajectories.parquet` (a prompt's k-th group of n_samples_per_prompt samples is epoch k), so
LIM runs on an OpenRLHF run exactly as on a local one. No fork of OpenRLHF is needed.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from limr_exp.errors import ConfigError, LimrError
from limr_exp.io import write_json, write_jsonl, write_text
from limr_exp.training.openrlhf_reward import ABORT_FILE
from limr_exp.trajectories import History, write_table

REWARD_FILE_TEMPLATE = '''"""LIMR's rule-based reward for OpenRLHF (`--reward.remote_url {path}`), written by limr-exp.
The function is limr_exp.training.openrlhf_reward.RewardFunction; this file only holds its settings."""

from limr_exp.training.openrlhf_reward import RewardFunction

reward_func = RewardFunction(settings={settings!r}, records={records!r})
'''


def write_prompts(problems, model_cfg, path: Path) -> tuple[str, bool]:
    """The training subset in OpenRLHF's prompt-dataset format; returns (input key, apply chat template)."""
    chat = bool(model_cfg.use_chat_template)
    rows = []
    for r in problems.rows:
        label = json.dumps({"answer": r["answer"], "id": r["id"]}, ensure_ascii=False)  # a null answer stays null
        if chat:
            messages = ([{"role": "system", "content": model_cfg.system_prompt}] if model_cfg.system_prompt else []) + [
                {"role": "user", "content": r["prompt"]}]
            rows.append({"context_messages": messages, "label": label})
        else:
            rows.append({"prompt": r["prompt"], "label": label})
    write_jsonl(path, rows)
    return ("context_messages" if chat else "prompt"), chat


def write_reward_file(reward_cfg, path: Path, records_dir: Path) -> None:
    from limr_exp.rewards import RewardSettings

    settings = RewardSettings.from_cfg(reward_cfg).__dict__
    write_text(path, REWARD_FILE_TEMPLATE.format(path=path, settings=dict(settings), records=str(records_dir)))


def build_command(cfg, prompts_path: Path, input_key: str, chat: bool, reward_path: Path, out: Path) -> list[str]:
    """OpenRLHF 0.11's dotted flags from the model / ppo / trainer configs (checked against its parser in the tests)."""
    p, t, m = cfg.ppo, cfg.trainer, cfg.model
    model = str(m.path) if m.path is not None else None
    if model is None:
        raise ConfigError("trainer=openrlhf needs a model checkpoint: set model.path (a folder or hub id) or model=qwen2.5_math_7b")
    if model.startswith(("/", ".", "~")) and not os.path.isdir(os.path.expanduser(model)):
        raise ConfigError(f"model.path={model} does not exist: point it at a Hugging Face model folder (or a hub id)")
    argv = [
        sys.executable, "-m", "openrlhf.cli.train_ppo_ray",
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
        "--algo.kl.init_coef", str(p.init_kl_coef),
        "--actor.eps_clip", str(p.eps_clip),
        "--critic.value_clip", str(p.value_clip),
        "--algo.advantage.gamma", str(p.gamma),
        "--algo.advantage.lambd", str(p.lambd),
        "--algo.advantage.estimator", str(p.advantage_estimator),
        "--ds.zero_stage", str(p.zero_stage),
        "--ds.param_dtype", "bf16" if p.bf16 else "fp16",
        "--actor.num_nodes", str(t.num_nodes), "--actor.num_gpus_per_node", str(t.gpus_per_node),
        "--ref.num_nodes", str(t.num_nodes), "--ref.num_gpus_per_node", str(t.gpus_per_node),
        "--critic.num_nodes", str(t.num_nodes), "--critic.num_gpus_per_node", str(t.gpus_per_node),
        "--vllm.num_engines", str(t.vllm_num_engines),
        "--vllm.tensor_parallel_size", str(t.vllm_tensor_parallel_size),
        "--ckpt.save_steps", str(t.save_steps),
        "--ckpt.output_dir", str(out / "checkpoint"),
        "--ckpt.path", str(out / "ds_checkpoints"),
        "--ckpt.save_hf",
        "--actor.gradient_checkpointing_enable",
    ]
    if p.normalize_reward:
        argv.append("--reward.normalize_enable")
    if chat:
        argv.append("--data.apply_chat_template")
    else:
        argv += ["--data.input_template", str(m.prompt_template).replace("{prompt}", "{}")]
    if t.colocate_all:
        argv.append("--train.colocate_all")
    for key, value in (t.extra or {}).items():
        flag = f"--{key}"
        if value is True:
            argv.append(flag)
        elif value not in (False, None):
            argv += [flag, str(value)]
    return argv


def trajectories_from_records(records_dir: Path, n_samples_per_prompt: int) -> History:
    """Per-process reward records -> the trajectories table. Records are ordered by time across
    processes; a prompt's k-th group of n_samples_per_prompt samples is epoch k."""
    records = []
    for path in sorted(Path(records_dir).glob("rewards-*.jsonl")):
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    try:
                        records.append(json.loads(line))
                    except ValueError:
                        continue  # a line cut short by a killed process
    records.sort(key=lambda r: r["time"])
    seen: dict[str, int] = {}
    ids, codes, epochs, rewards, correct = [], [], [], [], []
    index: dict[str, int] = {}
    for r in records:
        pid = r["prompt_id"]
        k = seen.get(pid, 0)
        seen[pid] = k + 1
        if pid not in index:
            index[pid] = len(ids)
            ids.append(pid)
        codes.append(index[pid])
        epochs.append(k // n_samples_per_prompt + 1)
        rewards.append(r["reward"])
        correct.append(bool(r["correct"]))
    steps = np.zeros(len(codes), dtype=np.int32)
    return History.build(ids, codes, epochs, steps, rewards, correct)


def _require_openrlhf() -> None:
    import importlib.util

    if importlib.util.find_spec("openrlhf") is None:
        raise ConfigError("trainer=openrlhf needs OpenRLHF, which is not installed: on a CUDA machine run "
                          "FLASH_ATTENTION_SKIP_CUDA_BUILD=TRUE pip install --no-build-isolation 'limr-exp[openrlhf]' "
                          "(or use trainer=local / trainer.dry_run=true)")


def _run_logged(argv: list[str], log_path: Path, what: str, abort_file: Path | None = None) -> None:
    """Run `argv`, streaming its output to the terminal and `log_path`; stop it when the reward function
    writes `abort_file` (its judge is broken), and raise its one-line reason."""
    with open(log_path, "a", encoding="utf-8") as log_file:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for line in proc.stdout:
            sys.stdout.write(line)
            log_file.write(line)
            if abort_file is not None and abort_file.exists():
                proc.terminate()
                break
        code = proc.wait()
    if abort_file is not None and abort_file.exists():
        raise LimrError(abort_file.read_text(encoding="utf-8").strip())
    if code != 0:
        raise LimrError(f"{what} failed with exit code {code}: see {log_path}")


def train_openrlhf(cfg, problems, out: Path, tracker=None, *, num_episodes=None, namespace="train"):
    from limr_exp.training.ppo import TrainResult

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if num_episodes is not None and num_episodes != cfg.ppo.num_episodes:
        from omegaconf import OmegaConf

        cfg = OmegaConf.merge(cfg, {"ppo": {"num_episodes": num_episodes}})
    prompts = out / "prompts.jsonl"
    input_key, chat = write_prompts(problems, cfg.model, prompts)
    reward_path, records = out / "limr_reward.py", out / "rewards"
    write_reward_file(cfg.reward, reward_path, records)
    argv = build_command(cfg, prompts, input_key, chat, reward_path, out)
    write_json(out / "openrlhf_command.json", argv)
    if cfg.trainer.dry_run:
        print(f"openrlhf dry run: command in {out / 'openrlhf_command.json'}, reward file {reward_path}", flush=True)
        return TrainResult(History.build([], [], [], [], []), out / "checkpoint", {})
    _require_openrlhf()
    log_path = out / "openrlhf.log"
    env_records = {"LIMR_REWARD_RECORDS": str(records)}
    os.environ.update(env_records)
    if cfg.trainer.ray_address:
        if shutil.which("ray") is None:
            raise ConfigError("trainer.ray_address is set but the `ray` command is not on PATH: pip install ray")
        submit = ["ray", "job", "submit", "--address", str(cfg.trainer.ray_address),
                  "--runtime-env-json", json.dumps({"env_vars": env_records}), "--"] + argv
        _run_logged(submit, log_path, f"ray job submit to {cfg.trainer.ray_address}", records / ABORT_FILE)
    else:
        _run_logged(["ray", "start", "--head", "--disable-usage-stats"], log_path, "starting a local Ray head")
        try:
            _run_logged(argv, log_path, "OpenRLHF training", records / ABORT_FILE)
        finally:
            subprocess.run(["ray", "stop"], capture_output=True)
    history = trajectories_from_records(records, cfg.ppo.n_samples_per_prompt)
    write_table(history, out / "trajectories.parquet")
    return TrainResult(history, out / "checkpoint", {})
