"""Where OpenRLHF 0.11 puts its models on GPUs, and whether that fits the cluster, before anything launches.

The rules are those of `openrlhf/cli/train_ppo_ray.py` (`train()` and the checks after `parse_args`):
  - vLLM engines take num_engines x tensor_parallel_size GPUs, unless `--train.colocate_all` puts them in
    the actor's placement group, which then needs num_engines x tensor_parallel_size == actor GPUs;
  - the actor takes actor.num_nodes x actor.num_gpus_per_node GPUs;
  - the reference model (only when the KL coefficient is > 0) takes its own, or the actor's under
    `--train.colocate_actor_ref` / `--train.colocate_all`;
  - the critic (only for the `gae` estimator) takes its own, or the actor's under `--train.colocate_all`;
  - a reward model only when no `--reward.remote_url` is given (limr-exp always gives one);
  - rollout.n_samples_per_prompt x rollout.batch_size // rollout.micro_batch_size >= actor GPUs.
A group of g GPUs asks for g bundles of one GPU packed onto nodes, so it also needs g_per_node <= the
GPUs of a node. Tests run OpenRLHF's own `train()` (Ray faked) on our argv and compare.
"""

from __future__ import annotations

from dataclasses import dataclass

from limr_exp.errors import ConfigError

LAYOUTS = ("auto", "separate", "colocate_all")


@dataclass(frozen=True)
class Group:
    """One model's GPUs: `nodes` x `per_node`."""

    name: str
    nodes: int
    per_node: int

    @property
    def gpus(self) -> int:
        return self.nodes * self.per_node


@dataclass(frozen=True)
class Placement:
    """A layout of actor, reference, critic and vLLM engines: its OpenRLHF flags and the GPUs it takes."""

    actor: Group
    ref: Group
    critic: Group
    vllm_engines: int
    vllm_tp: int
    colocate_all: bool

    def gpus_needed(self, with_ref: bool = True, with_critic: bool = True) -> int:
        if self.colocate_all:
            return self.actor.gpus
        return (self.actor.gpus + (self.ref.gpus if with_ref else 0) + (self.critic.gpus if with_critic else 0)
                + self.vllm_engines * self.vllm_tp)

    def groups(self, with_ref: bool = True, with_critic: bool = True) -> list[Group]:
        return [self.actor] + ([self.ref] if with_ref else []) + ([self.critic] if with_critic else [])

    def flags(self) -> list[str]:
        argv = []
        for g in (self.actor, self.ref, self.critic):
            argv += [f"--{g.name}.num_nodes", str(g.nodes), f"--{g.name}.num_gpus_per_node", str(g.per_node)]
        argv += ["--vllm.num_engines", str(self.vllm_engines), "--vllm.tensor_parallel_size", str(self.vllm_tp)]
        if self.colocate_all:
            argv += ["--train.colocate_all", "--vllm.enable_sleep", "--ds.enable_sleep"]
        return argv


def _group(name: str, gpus: int, per_node: int) -> Group:
    """`gpus` GPUs packed onto nodes of `per_node` GPUs each."""
    if gpus <= per_node:
        return Group(name, 1, gpus)
    if gpus % per_node:
        raise ConfigError(f"trainer.{name}_gpus={gpus} does not fill whole nodes of trainer.gpus_per_node={per_node}: "
                          f"use at most {per_node} or a multiple of it")
    return Group(name, gpus // per_node, per_node)


def plan(t, kl: bool, critic: bool) -> Placement:
    """The layout `trainer` asks for. `auto` takes LIMR's separate layout (actor, reference, critic and
    vLLM engines on GPUs of their own) when it fits `trainer.num_nodes x trainer.gpus_per_node`, and
    otherwise colocates everything on all the GPUs (vLLM and DeepSpeed sleep between phases)."""
    if t.layout not in LAYOUTS:
        raise ConfigError(f"trainer.layout={t.layout!r} is unknown: use {', '.join(LAYOUTS)}")
    per_node, capacity = t.gpus_per_node, t.num_nodes * t.gpus_per_node
    separate = Placement(_group("actor", t.actor_gpus, per_node), _group("ref", t.ref_gpus, per_node),
                         _group("critic", t.critic_gpus, per_node), t.vllm_num_engines, t.vllm_tensor_parallel_size, False)
    if t.layout == "separate" or (t.layout == "auto" and fits(separate, capacity, per_node, kl, critic)):
        return separate
    if capacity % t.vllm_tensor_parallel_size:
        raise ConfigError(f"trainer.layout=colocate_all puts vLLM on all {capacity} GPUs, which "
                          f"trainer.vllm_tensor_parallel_size={t.vllm_tensor_parallel_size} does not divide")
    everything = lambda name: _group(name, capacity, per_node)  # noqa: E731
    return Placement(everything("actor"), everything("ref"), everything("critic"),
                     capacity // t.vllm_tensor_parallel_size, t.vllm_tensor_parallel_size, True)


def fits(p: Placement, capacity: int, per_node: int, kl: bool, critic: bool) -> bool:
    return p.gpus_needed(kl, critic) <= capacity and all(g.per_node <= per_node for g in p.groups(kl, critic))


def check(p: Placement, t, kl: bool, critic: bool, n_samples: int, rollout_batch: int, micro_rollout_batch: int) -> None:
    """One line naming the keys when the layout cannot be placed on the cluster or OpenRLHF would refuse it."""
    capacity = t.num_nodes * t.gpus_per_node
    if not fits(p, capacity, t.gpus_per_node, kl, critic):
        parts = " + ".join(f"{g.name} {g.gpus}" for g in p.groups(kl, critic))
        vllm = "" if p.colocate_all else f" + vLLM {p.vllm_engines}x{p.vllm_tp}"
        raise ConfigError(f"OpenRLHF would ask Ray for {p.gpus_needed(kl, critic)} GPUs ({parts}{vllm}) but the cluster has "
                          f"trainer.num_nodes x trainer.gpus_per_node = {t.num_nodes} x {t.gpus_per_node} = {capacity}: "
                          "lower trainer.actor_gpus/ref_gpus/critic_gpus/vllm_num_engines, add nodes, "
                          "or set trainer.layout=colocate_all")
    if p.colocate_all and p.vllm_engines * p.vllm_tp != p.actor.gpus:
        raise ConfigError(f"trainer.layout=colocate_all needs vllm_num_engines x vllm_tensor_parallel_size "
                          f"({p.vllm_engines} x {p.vllm_tp}) == the actor's {p.actor.gpus} GPUs")
    if n_samples * rollout_batch // micro_rollout_batch < p.actor.gpus:
        raise ConfigError(f"ppo.n_samples_per_prompt x ppo.rollout_batch_size // ppo.micro_rollout_batch_size = "
                          f"{n_samples * rollout_batch // micro_rollout_batch} is below the actor's {p.actor.gpus} GPUs "
                          "(OpenRLHF refuses that): raise ppo.rollout_batch_size")


def checked_layout(cfg):
    """The layout the run asks for (`trainer`, and `ppo`'s KL and estimator: whether a reference and a critic
    are placed), checked against the cluster's GPUs and against their memory (memory.py), each a one-line
    error naming the keys; returns (Placement, memory.Estimate or None when the model's size is unknown)."""
    from limr_exp.training import memory

    p, t = cfg.ppo, cfg.trainer
    kl, critic = p.init_kl_coef > 0, p.advantage_estimator == "gae"
    layout = plan(t, kl, critic)
    check(layout, t, kl, critic, p.n_samples_per_prompt, p.rollout_batch_size, p.micro_rollout_batch_size)
    estimate = memory.estimate(cfg, layout, kl, critic)
    memory.check(estimate, t)
    return layout, estimate
