"""Local PPO for causal LMs (CPU or one GPU), as CleanRL writes it: the math in the variable names.

LIMR trains with PPO (Schulman et al. 2017) in OpenRLHF; hyper-parameters keep OpenRLHF's names so
one `ppo` config drives both trainers. Per rollout step:

  1. sample `n_samples_per_prompt` responses for each of `rollout_batch_size` prompts (temperature, top_p)
  2. reward r = LIMR's rule-based reward of each response (limr_exp.rewards)
  3. per-token KL penalty to the frozen reference: r_t = -beta * (log pi_old - log pi_ref), plus r at the last token
  4. advantages A_t:
       gae                 delta_t = r_t + gamma V_{t+1} - V_t,  A_t = delta_t + gamma lambda A_{t+1}  (GAE, Schulman 2016)
       group_norm          r normalised within its prompt's group (GRPO, Shao et al. 2024), then discounted returns
       reinforce_baseline  r minus its group's mean, then discounted returns
  5. `max_epochs` passes of clipped policy loss  -min(rho A, clip(rho, 1-eps, 1+eps) A),  rho = pi/pi_old,
     and clipped value loss  0.5 max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2)  (gae only)

Every sample's reward is kept as reward history (prompt_id, epoch = episode, step, reward, correct).
Each step logs CleanRL's diagnostics beside the losses: approx_kl ((rho - 1) - log rho), clip_frac, the
policy's entropy on the response tokens and, with a critic, explained_variance of the returns.
"""

from __future__ import annotations

import copy
import json
import logging
import math
import random
import shutil
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from limr_exp.data.problems import require_answers
from limr_exp.errors import ConfigError, DataError, LimrError
from limr_exp.generation import position_ids, sample
from limr_exp.history import History, read_table, write_table
from limr_exp.io import give_files_the_usual_mode, read_jsonl, write_json, write_jsonl
from limr_exp.layout import TrainerFiles
from limr_exp.progress import Progress
from limr_exp.registry import Registry
from limr_exp.rewards import RewardSettings, judge_batch, too_many_errors, warm_up
from limr_exp.training.base import TrainRequest, TrainResult

log = logging.getLogger(__name__)

ESTIMATORS: Registry = Registry("advantage estimator", "ppo.advantage_estimator")  # name -> estimator (verl's register_adv_est)


# ----------------------------------------------------------------------------- the math

def masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return (x * mask).sum() / mask.sum().clamp(min=1)


def token_logprobs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log pi(token_t | prefix) from logits aligned with the tokens."""
    return torch.gather(F.log_softmax(logits.float(), dim=-1), -1, tokens.unsqueeze(-1)).squeeze(-1)


def kl_shaped_rewards(reward: torch.Tensor, logp_old: torch.Tensor, logp_ref: torch.Tensor, action_mask: torch.Tensor,
                      kl_coef: float) -> tuple[torch.Tensor, torch.Tensor]:
    """r_t = -beta (log pi_old - log pi_ref) on every response token, plus the sequence reward on the last one."""
    kl = (logp_old - logp_ref) * action_mask
    r = -kl_coef * kl
    last = (action_mask.cumsum(-1) == action_mask.sum(-1, keepdim=True)) & (action_mask > 0)
    r = r + last.float() * reward.unsqueeze(-1)
    return r, kl


def gae(rewards: torch.Tensor, values: torch.Tensor, action_mask: torch.Tensor, gamma: float,
        lambd: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over response tokens; returns (advantages, returns)."""
    values = values * action_mask
    rewards = rewards * action_mask
    advantages = torch.zeros_like(rewards)
    last = torch.zeros(rewards.shape[0], device=rewards.device)
    width = rewards.shape[1]
    for t in reversed(range(width)):
        next_value = values[:, t + 1] if t + 1 < width else torch.zeros_like(last)
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        last = delta + gamma * lambd * last
        advantages[:, t] = last
    advantages = advantages * action_mask
    return advantages, (advantages + values) * action_mask


def discounted_returns(rewards: torch.Tensor, action_mask: torch.Tensor, gamma: float) -> torch.Tensor:
    returns = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0], device=rewards.device)
    for t in reversed(range(rewards.shape[1])):
        running = rewards[:, t] + gamma * running
        returns[:, t] = running
    return returns * action_mask


def group_normalised(reward: torch.Tensor, group_size: int, baseline_only: bool = False) -> torch.Tensor:
    """GRPO's (r - mean_group) / std_group, or only r - mean_group for reinforce_baseline."""
    g = reward.view(-1, group_size)
    centred = g - g.mean(dim=1, keepdim=True)
    if baseline_only:
        return centred.view(-1)
    return (centred / (g.std(dim=1, keepdim=True, unbiased=False) + 1e-9)).view(-1)


# ----------------------------------------------------------------------------- advantage estimators
# Each takes the rollout's sequence rewards, log-probs of the old and reference policies, the response
# mask, the critic's values (zeros without a critic) and the PPO config; returns (advantages, returns, kl).

@ESTIMATORS.register("gae")
def gae_estimator(reward, logp_old, logp_ref, mask, values, p):
    """KL-shaped token rewards, then GAE with the critic's values, whitened as OpenRLHF does."""
    shaped, kl = kl_shaped_rewards(reward, logp_old, logp_ref, mask, p.init_kl_coef)
    advantages, returns = gae(shaped, values, mask, p.gamma, p.lambd)
    mean = masked_mean(advantages, mask)
    std = masked_mean((advantages - mean) ** 2, mask).sqrt()
    return (advantages - mean) / (std + 1e-8) * mask, returns, kl


@ESTIMATORS.register("group_norm")
def group_norm_estimator(reward, logp_old, logp_ref, mask, values, p):
    """GRPO: rewards normalised within each prompt's group of samples, KL-shaped, discounted."""
    shaped, kl = kl_shaped_rewards(group_normalised(reward, p.n_samples_per_prompt), logp_old, logp_ref, mask, p.init_kl_coef)
    returns = discounted_returns(shaped, mask, p.gamma)
    return returns, returns, kl


@ESTIMATORS.register("reinforce_baseline")
def reinforce_baseline_estimator(reward, logp_old, logp_ref, mask, values, p):
    """REINFORCE with the group's mean reward as baseline, KL-shaped, discounted."""
    normed = group_normalised(reward, p.n_samples_per_prompt, baseline_only=True)
    shaped, kl = kl_shaped_rewards(normed, logp_old, logp_ref, mask, p.init_kl_coef)
    returns = discounted_returns(shaped, mask, p.gamma)
    return returns, returns, kl


NEEDS_CRITIC = {"gae"}


def policy_loss(logp: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor, action_mask: torch.Tensor,
                eps_clip: float) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO's clipped surrogate (Schulman et al. 2017, Eq. 7), negated for minimisation; and the clip fraction."""
    ratio = torch.exp(logp - logp_old)
    surr1 = ratio * advantages
    surr2 = ratio.clamp(1 - eps_clip, 1 + eps_clip) * advantages
    loss = masked_mean(-torch.min(surr1, surr2), action_mask)
    clipped = masked_mean(((ratio - 1).abs() > eps_clip).float(), action_mask)
    return loss, clipped


def approx_kl(logp: torch.Tensor, logp_old: torch.Tensor, action_mask: torch.Tensor) -> torch.Tensor:
    """KL(pi_old || pi) estimated per token as (r - 1) - log r, r = pi / pi_old (Schulman's k3, as CleanRL logs it)."""
    log_ratio = logp - logp_old
    return masked_mean(torch.exp(log_ratio) - 1 - log_ratio, action_mask)


def token_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(pi(. | prefix)) of every position, from its logits."""
    logp = F.log_softmax(logits.float(), dim=-1)
    return -(logp.exp() * logp).sum(-1)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, action_mask: torch.Tensor) -> float:
    """1 - Var[returns - values] / Var[returns] over response tokens: how much of the return the critic
    predicts (1 perfect, 0 no better than the mean, negative worse); NaN when the returns do not vary."""
    keep = action_mask > 0
    y, v = returns[keep], values[keep]
    var_y = torch.var(y) if y.numel() > 1 else torch.tensor(0.0)
    return float("nan") if var_y == 0 else float(1 - torch.var(y - v) / var_y)


def value_loss(values: torch.Tensor, values_old: torch.Tensor, returns: torch.Tensor, action_mask: torch.Tensor,
               value_clip: float) -> torch.Tensor:
    """0.5 * max((V - R)^2, (V_old + clip(V - V_old, -c, c) - R)^2), averaged over response tokens."""
    clipped = values_old + (values - values_old).clamp(-value_clip, value_clip)
    return 0.5 * masked_mean(torch.max((values - returns) ** 2, (clipped - returns) ** 2), action_mask)


# ----------------------------------------------------------------------------- models

class Critic(torch.nn.Module):
    """V(s_t): the policy's transformer body with a scalar head (initialised from the base model)."""

    def __init__(self, causal_lm):
        super().__init__()
        self.body = copy.deepcopy(causal_lm.model)
        self.head = torch.nn.Linear(causal_lm.config.hidden_size, 1)
        torch.nn.init.zeros_(self.head.weight)
        torch.nn.init.zeros_(self.head.bias)

    def forward(self, input_ids, attention_mask):
        hidden = self.body(input_ids=input_ids, attention_mask=attention_mask, position_ids=position_ids(attention_mask)).last_hidden_state
        return self.head(hidden).squeeze(-1).float()


def response_logprobs(model, sequences, attention_mask, response_width: int, with_entropy: bool = False):
    """log pi of every response token (and, with `with_entropy`, the policy's entropy there, without gradient)."""
    logits = model(input_ids=sequences, attention_mask=attention_mask, position_ids=position_ids(attention_mask)).logits
    logits = logits[:, -response_width - 1:-1]
    logp = token_logprobs(logits, sequences[:, -response_width:])
    if not with_entropy:
        return logp
    with torch.no_grad():
        return logp, token_entropy(logits.detach())


def response_values(critic, sequences, attention_mask, response_width: int) -> torch.Tensor:
    return critic(sequences, attention_mask)[:, -response_width - 1:-1]


# ----------------------------------------------------------------------------- the trainer

class LocalPPOTrainer:
    """PPO on a problem set; writes `<out>/checkpoint` (HF format, resumable) and `<out>/trajectories.parquet`."""

    def __init__(self, cfg, request: TrainRequest, tracker=None, device: str = "cpu"):
        """What to train, for how long and with which hooks is the request (limr_exp.training.base)."""
        problems = request.problems
        self.cfg, self.ppo, self.problems, self.out = cfg, cfg.ppo, problems, Path(request.out)
        self.tracker, self.namespace, self.device, self.on_step = tracker, request.namespace, device, request.on_step
        self.after_epoch = request.after_epoch
        self.num_episodes, self.max_steps, self.seed = request.num_episodes, request.max_steps, request.seed
        self.reward_settings = RewardSettings.from_cfg(cfg.reward)
        p = self.ppo
        self.estimate = ESTIMATORS.get(p.advantage_estimator)  # one line naming the choices if unknown
        if p.n_samples_per_prompt < 1:
            raise ConfigError(f"ppo.n_samples_per_prompt={p.n_samples_per_prompt} must be at least 1")
        if len(problems) == 0:
            raise ConfigError("the training set is empty: nothing to train on (lower theta, or pick another selector)")
        whole = request.subset_of or len(problems)
        if p.rollout_batch_size > whole:  # larger than the whole problem set: a setting to fix
            raise ConfigError(f"ppo.rollout_batch_size={p.rollout_batch_size} is larger than the training set "
                              f"({whole} prompts): lower ppo.rollout_batch_size")
        # a selected subset smaller than a rollout batch (a high theta) trains on all of it every step, as a sweep expects
        self.rollout_batch_size = min(p.rollout_batch_size, len(problems))
        if self.rollout_batch_size < p.rollout_batch_size:
            log.warning("%s: %d prompts, fewer than ppo.rollout_batch_size=%d: every rollout step takes all %d (%d samples "
                        "a step instead of %d)", request.namespace, len(problems), p.rollout_batch_size, len(problems),
                        len(problems) * p.n_samples_per_prompt, p.rollout_batch_size * p.n_samples_per_prompt)
        if p.advantage_estimator not in NEEDS_CRITIC and p.n_samples_per_prompt < 2:
            raise ConfigError(f"ppo.advantage_estimator={p.advantage_estimator} compares samples of a prompt: "
                              "set ppo.n_samples_per_prompt to 2 or more")
        require_answers(problems, "dataset", drop=False)  # no reference, no pay: one line naming the rows

    # -- checkpoints
    @property
    def checkpoint_dir(self) -> Path:
        return TrainerFiles(self.out).checkpoint

    def _save(self, bundle, critic, opt_actor, opt_critic, history: History, steps: list[dict], state: dict) -> None:
        """Write the whole resume point into a temp folder, then swap it in (never half a checkpoint)."""
        tmp = self.out / "checkpoint.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        bundle.model.save_pretrained(tmp)
        bundle.tokenizer.save_pretrained(tmp)
        give_files_the_usual_mode(tmp)
        torch.save({"critic": critic.state_dict() if critic is not None else None,
                    "opt_actor": opt_actor.state_dict(),
                    "opt_critic": opt_critic.state_dict() if opt_critic is not None else None,
                    "rng": {"torch": torch.get_rng_state()}},  # tensors and numbers only: loaded with weights_only=True
                   tmp / "trainer_state.pt")
        write_table(history, TrainerFiles(tmp).trajectories)  # the checkpoint holds the history it was trained with
        write_jsonl(TrainerFiles(tmp).steps, steps)
        write_json(tmp / "state.json", state)
        old = self.out / "checkpoint.old"
        shutil.rmtree(old, ignore_errors=True)
        if self.checkpoint_dir.exists():
            self.checkpoint_dir.rename(old)
        tmp.rename(self.checkpoint_dir)
        shutil.rmtree(old, ignore_errors=True)
        write_table(history, TrainerFiles(self.out).trajectories)
        write_jsonl(TrainerFiles(self.out).steps, steps)

    def _load_state(self) -> dict | None:
        state_file = self.checkpoint_dir / "state.json"
        old = self.out / "checkpoint.old"
        if not self.checkpoint_dir.exists() and old.exists():  # killed between the two renames of _save
            old.rename(self.checkpoint_dir)
        if not self.checkpoint_dir.exists():
            return None
        try:
            state = json.loads(state_file.read_text())
            if not (self.checkpoint_dir / "trainer_state.pt").exists():
                raise ValueError("trainer_state.pt is missing")
            return state
        except (OSError, ValueError) as e:
            raise DataError(f"the checkpoint {self.checkpoint_dir} is corrupt ({e}): delete that folder to start the run over") from None

    # -- one rollout step
    @torch.no_grad()
    def _rollout(self, bundle, reference, critic, batch_rows: list[dict]) -> tuple[dict, dict, list]:
        p = self.ppo
        prompts = [bundle.render(r["prompt"]) for r in batch_rows]
        bundle.model.eval()
        s = sample(bundle.model, bundle.tokenizer, prompts, p.n_samples_per_prompt, temperature=p.temperature, top_p=p.top_p,
                   max_new_tokens=p.generate_max_len, batch_size=p.micro_rollout_batch_size)
        answers = [r["answer"] for r in batch_rows for _ in range(p.n_samples_per_prompt)]
        judgements = judge_batch(s.texts, answers, self.reward_settings, ended=s.ended)  # LIMR's rule on truncations too
        n_errors = sum(j.reason == "error" for j in judgements)
        reason = too_many_errors(n_errors, len(judgements), self.reward_settings)
        if reason is not None:  # never train on format-error rewards from a broken judge
            raise LimrError(f"{self.namespace}: {reason}")
        reward = torch.tensor([j.reward for j in judgements], dtype=torch.float32, device=self.device)
        R = s.response_width
        mask = s.action_mask.float()
        def in_micro_batches(fn, model):
            m = p.micro_train_batch_size
            return torch.cat([fn(model, s.sequences[i:i + m], s.attention_mask[i:i + m], R) for i in range(0, len(s.texts), m)])

        logp_old = in_micro_batches(response_logprobs, bundle.model)
        logp_ref = in_micro_batches(response_logprobs, reference)
        values = in_micro_batches(response_values, critic) if critic is not None else torch.zeros_like(mask)
        advantages, returns, kl = self.estimate(reward, logp_old, logp_ref, mask, values, p)
        batch = dict(sequences=s.sequences, attention_mask=s.attention_mask, mask=mask, logp_old=logp_old,
                     values_old=values, advantages=advantages, returns=returns)
        stats = {"reward_mean": reward.mean().item(), "accuracy": float(np.mean([j.correct for j in judgements])),
                 "kl": masked_mean(kl, mask).item(), "response_length": mask.sum(-1).mean().item(),
                 "format_error_rate": float(np.mean([j.reason not in ("correct", "wrong") for j in judgements])),
                 "reward/errors": n_errors}
        return batch, stats, judgements

    def _update(self, bundle, critic, opt_actor, opt_critic, batch: dict, state: dict) -> dict:
        p = self.ppo
        n = batch["sequences"].shape[0]
        R = batch["mask"].shape[1]
        losses = {"policy_loss": [], "value_loss": [], "clip_frac": [], "approx_kl": [], "entropy": []}
        bundle.model.train()
        gen = torch.Generator().manual_seed(self.seed * 100003 + state["global_step"])  # a new minibatch order every step
        for _ in range(p.max_epochs):
            order = torch.randperm(n, generator=gen)
            for start in range(0, n, p.train_batch_size):
                idx_step = order[start:start + p.train_batch_size]
                n_micro = math.ceil(len(idx_step) / p.micro_train_batch_size)
                opt_actor.zero_grad()
                if opt_critic is not None:
                    opt_critic.zero_grad()
                for m in range(n_micro):
                    idx = idx_step[m * p.micro_train_batch_size:(m + 1) * p.micro_train_batch_size]
                    seq, attn, mask = batch["sequences"][idx], batch["attention_mask"][idx], batch["mask"][idx]
                    logp, entropy = response_logprobs(bundle.model, seq, attn, R, with_entropy=True)
                    pl, clip_frac = policy_loss(logp, batch["logp_old"][idx], batch["advantages"][idx], mask, p.eps_clip)
                    (pl / n_micro).backward()
                    losses["policy_loss"].append(pl.item())
                    losses["clip_frac"].append(clip_frac.item())
                    losses["approx_kl"].append(approx_kl(logp.detach(), batch["logp_old"][idx], mask).item())
                    losses["entropy"].append(masked_mean(entropy, mask).item())
                    if opt_critic is not None:
                        v = response_values(critic, seq, attn, R)
                        vl = value_loss(v, batch["values_old"][idx], batch["returns"][idx], mask, p.value_clip)
                        (vl / n_micro).backward()
                        losses["value_loss"].append(vl.item())
                warm = min(1.0, (state.get("opt_steps", 0) + 1) / p.lr_warmup_steps) if p.lr_warmup_steps > 0 else 1.0
                state["opt_steps"] = state.get("opt_steps", 0) + 1
                for opt, lr in ((opt_actor, p.actor_learning_rate), (opt_critic, p.critic_learning_rate)):
                    for group in (opt.param_groups if opt is not None else ()):
                        group["lr"] = lr * warm  # linear warm-up over ppo.lr_warmup_steps optimiser steps
                torch.nn.utils.clip_grad_norm_(bundle.model.parameters(), p.max_norm)
                opt_actor.step()
                if opt_critic is not None:
                    torch.nn.utils.clip_grad_norm_(critic.parameters(), p.max_norm)
                    opt_critic.step()
        bundle.model.eval()
        out = {k: float(np.mean(v)) for k, v in losses.items() if v}
        if opt_critic is not None:  # the critic's values at rollout time against the returns they were trained on
            out["explained_variance"] = explained_variance(batch["values_old"], batch["returns"], batch["mask"])
        return out

    # -- the loop
    def fit(self, bundle) -> TrainResult:
        """Train `bundle.model` in place; resumes from `<out>/checkpoint` when one is there. Every step's metrics
        are kept in `<out>/steps.jsonl` (and logged to the trackers) with the checkpoint they belong to."""
        p = self.ppo
        self.out.mkdir(parents=True, exist_ok=True)
        warm_up(self.reward_settings, wait=False)  # the judge's processes start while the first rollout generates
        torch.manual_seed(self.seed)
        reference = copy.deepcopy(bundle.model).eval()
        for param in reference.parameters():
            param.requires_grad_(False)
        critic = Critic(bundle.model).to(self.device) if p.advantage_estimator in NEEDS_CRITIC else None
        opt_actor = torch.optim.Adam(bundle.model.parameters(), lr=p.actor_learning_rate)
        opt_critic = torch.optim.Adam(critic.parameters(), lr=p.critic_learning_rate) if critic is not None else None
        history, steps = History.build([], [], [], [], []), []
        state = self._load_state()
        if state is not None:
            history, steps = self._resume(bundle, critic, opt_actor, opt_critic)
            log.info("%s: resuming from %s (step %d)", self.namespace, self.checkpoint_dir, state["global_step"])
        else:
            state = {"episode": 1, "batch": 0, "global_step": 0, "done": False}
        rows = self.problems.rows
        n_batches = math.ceil(len(rows) / self.rollout_batch_size)
        total = self.num_episodes * n_batches
        if self.max_steps is not None:
            total = min(total, self.max_steps)
        metrics: dict = {}
        t0 = time.perf_counter()
        unsaved: list[dict] = []  # metrics of the steps trained since the last checkpoint
        with Progress(self.namespace, total, "step", initial=state["global_step"]) as progress:
            while not state["done"]:
                episode, b = state["episode"], state["batch"]
                order = list(range(len(rows)))
                random.Random(self.seed * 1000 + episode).shuffle(order)
                batch_rows = [rows[i] for i in order[b * self.rollout_batch_size:(b + 1) * self.rollout_batch_size]]
                batch, stats, judgements = self._rollout(bundle, reference, critic, batch_rows)
                stats.update(self._update(bundle, critic, opt_actor, opt_critic, batch, state))
                state["global_step"] += 1
                step = state["global_step"]
                batch_ids = [r["id"] for r in batch_rows]
                codes = [c for c in range(len(batch_ids)) for _ in range(p.n_samples_per_prompt)]
                history = history.concat(History.build(batch_ids, codes, [episode] * len(codes), [step] * len(codes),
                                                       [j.reward for j in judgements], [j.correct for j in judgements]))
                metrics = {f"{self.namespace}/{k}": v for k, v in stats.items()} | {f"{self.namespace}/episode": episode}
                state["batch"] = b + 1
                epoch_done = state["batch"] >= n_batches
                if epoch_done:
                    state["episode"], state["batch"] = episode + 1, 0
                state["done"] = step >= total
                if epoch_done and not state["done"] and self.after_epoch is not None and self.after_epoch(episode, history):
                    state["done"] = True  # the caller has what it needs (stop_when_stable)
                if self.on_step is not None:
                    metrics |= self.on_step(step, bundle.model, state["done"])
                unsaved.append({"step": step} | metrics)
                progress.update(1, reward=stats["reward_mean"], acc=stats["accuracy"])
                if state["done"] or step % max(1, self.cfg.trainer.save_steps) == 0:
                    steps += unsaved
                    self._save(bundle, critic, opt_actor, opt_critic, history, steps, state)
                    # metrics are logged with the checkpoint they belong to: a resumed run never logs a step twice
                    for row in unsaved if self.tracker is not None else ():
                        self.tracker.log({k: v for k, v in row.items() if k != "step"}, step=row["step"])
                    unsaved = []
        metrics[f"{self.namespace}/seconds"] = time.perf_counter() - t0
        return TrainResult(history, self.checkpoint_dir, metrics)

    def _resume(self, bundle, critic, opt_actor, opt_critic) -> tuple[History, list[dict]]:
        """Model, critic, optimisers, RNG, history and step metrics from the last checkpoint."""
        from transformers import AutoModelForCausalLM

        try:
            loaded = AutoModelForCausalLM.from_pretrained(self.checkpoint_dir, dtype=next(bundle.model.parameters()).dtype)
            saved = torch.load(self.checkpoint_dir / "trainer_state.pt", weights_only=True)
            bundle.model.load_state_dict(loaded.state_dict())
            opt_actor.load_state_dict(saved["opt_actor"])
            if critic is not None and saved["critic"] is not None:
                critic.load_state_dict(saved["critic"])
                opt_critic.load_state_dict(saved["opt_critic"])
            history = read_table(TrainerFiles(self.checkpoint_dir).trajectories)
            steps_file = TrainerFiles(self.checkpoint_dir).steps
            steps = list(read_jsonl(steps_file)) if steps_file.exists() else []
        except (OSError, RuntimeError, ValueError, KeyError) as e:
            raise DataError(f"the checkpoint {self.checkpoint_dir} is corrupt ({type(e).__name__}): delete that folder to start "
                            "the run over") from None
        torch.set_rng_state(saved["rng"]["torch"])
        return history, steps
