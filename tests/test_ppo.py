"""PPO math against hand-computed values, and the trainer's learning, resume and probe cache."""

from __future__ import annotations

import json

import pytest
import torch

from limr_exp.training.ppo import discounted_returns, gae, group_normalised, kl_shaped_rewards, masked_mean, policy_loss, value_loss


def t(*rows):
    return torch.tensor(rows, dtype=torch.float32)


def test_gae_and_returns_by_hand():
    rewards, values, mask = t([0.0, 0.0, 1.0]), t([0.5, 0.6, 0.7]), t([1.0, 1.0, 1.0])
    adv, ret = gae(rewards, values, mask, gamma=1.0, lambd=0.5)
    # delta = (0.1, 0.1, 0.3); A2 = 0.3, A1 = 0.1 + 0.5*0.3, A0 = 0.1 + 0.5*0.25
    assert adv.tolist()[0] == pytest.approx([0.225, 0.25, 0.3])
    assert ret.tolist()[0] == pytest.approx([0.725, 0.85, 1.0])
    adv, ret = gae(rewards, values, mask, gamma=0.9, lambd=1.0)
    assert adv.tolist()[0] == pytest.approx([0.31, 0.3, 0.3])
    assert ret.tolist()[0] == pytest.approx([0.81, 0.9, 1.0])  # lambda = 1: the discounted return


def test_gae_ignores_padding_after_the_response():
    adv, ret = gae(t([0.0, 2.0, 5.0]), t([1.0, 1.0, 9.0]), t([1.0, 1.0, 0.0]), gamma=1.0, lambd=1.0)
    assert adv.tolist()[0] == pytest.approx([1.0, 1.0, 0.0]) and ret.tolist()[0] == pytest.approx([2.0, 2.0, 0.0])


def test_discounted_returns():
    assert discounted_returns(t([1.0, 0.0, 2.0]), t([1.0, 1.0, 1.0]), 0.5).tolist()[0] == pytest.approx([1.5, 1.0, 2.0])


def test_kl_penalty_per_token_and_reward_on_the_last_token():
    r, kl = kl_shaped_rewards(torch.tensor([1.0]), t([-1.0, -2.0, 0.0]), t([-1.5, -1.0, 0.0]), t([1.0, 1.0, 0.0]), 0.1)
    assert kl.tolist()[0] == pytest.approx([0.5, -1.0, 0.0])
    assert r.tolist()[0] == pytest.approx([-0.05, 0.1 + 1.0, 0.0])


def test_clipped_policy_loss():
    logp_old = torch.log(t([0.2, 0.2]))
    logp = torch.log(t([0.3, 0.3]))  # ratio 1.5 on both tokens
    mask = t([1.0, 1.0])
    loss, frac = policy_loss(logp, logp_old, t([1.0, 1.0]), mask, eps_clip=0.2)
    assert loss.item() == pytest.approx(-1.2) and frac.item() == 1.0  # positive advantage: the clip caps the gain
    loss, _ = policy_loss(logp, logp_old, t([-1.0, -1.0]), mask, eps_clip=0.2)
    assert loss.item() == pytest.approx(1.5)  # negative advantage: the pessimistic (unclipped) term
    loss, frac = policy_loss(logp_old, logp_old, t([2.0, -1.0]), mask, 0.2)
    assert loss.item() == pytest.approx(-0.5) and frac.item() == 0.0


def test_clipped_value_loss():
    assert value_loss(t([1.0]), t([0.5]), t([0.8]), t([1.0]), 0.2).item() == pytest.approx(0.02)
    assert value_loss(t([0.6]), t([0.5]), t([0.8]), t([1.0]), 0.2).item() == pytest.approx(0.5 * 0.04)
    assert value_loss(t([1.0]), t([0.5]), t([1.5]), t([1.0]), 0.2).item() == pytest.approx(0.5 * 0.64)  # clipped is worse


def test_group_norm_and_reinforce_baseline():
    r = torch.tensor([1.0, -0.5, 1.0, -1.0])
    assert group_normalised(r, 2).tolist() == pytest.approx([1.0, -1.0, 1.0, -1.0])
    assert group_normalised(r, 2, baseline_only=True).tolist() == pytest.approx([0.75, -0.75, 1.0, -1.0])
    assert group_normalised(torch.tensor([1.0, 1.0]), 2).tolist() == [0.0, 0.0]  # no signal in a solved group
    assert masked_mean(t([1.0, 3.0]), t([1.0, 0.0])).item() == 1.0


# ----------------------------------------------------------------------------- the trainer end to end

from conftest import compose_cfg  # noqa: E402

from limr_exp.data import load_problems  # noqa: E402
from limr_exp.pipeline import run  # noqa: E402
from limr_exp.training import train  # noqa: E402


@pytest.fixture(scope="module")
def learnable_cache(tmp_path_factory):
    """One cache for the tests on the learnable set: its toy model is built once."""
    return tmp_path_factory.mktemp("learnable-cache")


LEARNABLE = [  # one-digit sums; a base model that boxes 30% of its answers; RL must learn the format
    "~dataset.toy.families.add", "~dataset.toy.families.sub", "~dataset.toy.families.mul", "+dataset.toy.families.add1=1.0",
    "dataset.toy.n_train=24", "dataset.toy.n_test=8",
    "model.toy.hidden_size=64", "model.toy.intermediate_size=192", "model.toy.pretrain_steps=150", "model.toy.pretrain_batch_size=32",
    "model.toy.pretrain_examples=1500", "~model.toy.pretrain_families.add", "~model.toy.pretrain_families.sub",
    "model.toy.pretrain_families.add1=0.3", "model.toy.pretrain_lr=3e-3",
    "ppo.rollout_batch_size=12", "ppo.n_samples_per_prompt=8", "ppo.micro_rollout_batch_size=96", "ppo.train_batch_size=96",
    "ppo.micro_train_batch_size=48", "ppo.generate_max_len=8", "ppo.actor_learning_rate=1e-3", "ppo.init_kl_coef=0.0",
]


@pytest.mark.slow
def test_mean_reward_rises_on_a_learnable_set(tmp_path, learnable_cache):
    cfg = compose_cfg(LEARNABLE + ["ppo.num_episodes=5", f"cache_dir={learnable_cache}"])
    result = train(cfg, load_problems(cfg.dataset), tmp_path / "train")
    h = result.history
    first, last = h.reward[h.epoch == 1].mean(), h.reward[h.epoch == h.epoch.max()].mean()
    assert last > first + 0.3, (first, last)
    assert set(h.prompt_ids) == set(load_problems(cfg.dataset).ids)
    assert (tmp_path / "train" / "checkpoint" / "config.json").exists()


@pytest.mark.parametrize("estimator", ["gae", "reinforce_baseline"])
def test_other_estimators_run(tmp_path, learnable_cache, estimator):
    cfg = compose_cfg(LEARNABLE + ["ppo.num_episodes=1", f"ppo.advantage_estimator={estimator}", f"cache_dir={learnable_cache}"])
    result = train(cfg, load_problems(cfg.dataset), tmp_path / "train")
    assert result.history.num_rows == 24 * 8 and "train/reward_mean" in result.metrics
    step = json.loads((tmp_path / "train" / "steps.jsonl").read_text().splitlines()[-1])
    assert {"train/approx_kl", "train/clip_frac", "train/entropy"} <= set(step) and step["train/entropy"] > 0
    assert ("train/explained_variance" in step) == (estimator == "gae")


def test_ppo_diagnostics_are_the_textbook_quantities():
    import math as _math

    from limr_exp.training.ppo import approx_kl, explained_variance, token_entropy

    mask = torch.ones(1, 3)
    logp = torch.log(torch.tensor([[0.5, 0.25, 0.1]]))
    assert approx_kl(logp, logp, mask).item() == 0.0 and approx_kl(logp, logp + 0.3, mask).item() > 0
    assert token_entropy(torch.zeros(1, 1, 8)).item() == pytest.approx(_math.log(8))
    returns = torch.tensor([[1.0, 2.0, 3.0]])
    assert explained_variance(returns, returns, mask) == pytest.approx(1.0)
    assert explained_variance(torch.full_like(returns, 2.0), returns, mask) == pytest.approx(0.0)


def test_resume_after_interruption_has_no_duplicate_rows(tmp_path, learnable_cache):
    cfg = compose_cfg(LEARNABLE + ["ppo.num_episodes=2", f"cache_dir={learnable_cache}"])
    problems = load_problems(cfg.dataset)
    def killed_at_step_3(step, model, last):  # the request's per-step hook, called before the step is saved
        if step == 3:
            raise KeyboardInterrupt  # the run is killed mid-way
        return {}

    with pytest.raises(KeyboardInterrupt):
        train(cfg, problems, tmp_path / "train", on_step=killed_at_step_3)
    state = json.loads((tmp_path / "train" / "checkpoint" / "state.json").read_text())
    assert state["global_step"] == 2 and not state["done"]
    h = train(cfg, problems, tmp_path / "train").history
    assert h.num_rows == 2 * 24 * 8  # 2 episodes x 24 prompts x 8 samples, none twice
    keys = list(zip(h.codes.tolist(), h.step.tolist()))
    assert len(set(h.step.tolist())) == 4 and sorted(set(h.epoch.tolist())) == [1, 2]
    assert len(keys) == len(h.codes)
    again = train(cfg, problems, tmp_path / "train").history  # a finished run is not trained again
    assert again.num_rows == h.num_rows


@pytest.mark.slow
def test_a_subset_smaller_than_a_rollout_batch_trains_on_all_of_it(tmp_path, learnable_cache, caplog):
    """A high theta can keep fewer prompts than ppo.rollout_batch_size (the theta sweep's 0.8 kept 19 of 256 for a
    batch of 32): every step then takes the whole subset, with one warning, instead of failing the job. A batch
    larger than the whole set stays an error (test_bad_training_input)."""
    cfg = compose_cfg(LEARNABLE + ["ppo.num_episodes=2", f"cache_dir={learnable_cache}"])
    problems = load_problems(cfg.dataset)
    few = problems.subset([r["id"] for r in problems.rows[:5]])
    with caplog.at_level("WARNING"):
        h = train(cfg, few, tmp_path / "train", subset_of=len(problems)).history
    assert h.num_rows == 2 * 5 * 8 and sorted(set(h.step.tolist())) == [1, 2]  # one step per pass, all 5 prompts
    assert any("5 prompts, fewer than ppo.rollout_batch_size=12" in r.getMessage() for r in caplog.records)


def test_corrupt_checkpoint_is_one_clear_error(tmp_path, learnable_cache):
    from limr_exp.errors import DataError

    cfg = compose_cfg(LEARNABLE + ["ppo.num_episodes=1", f"cache_dir={learnable_cache}"])
    ckpt = tmp_path / "train" / "checkpoint"
    ckpt.mkdir(parents=True)
    (ckpt / "state.json").write_text("{not json")
    with pytest.raises(DataError, match="corrupt.*delete that folder"):
        train(cfg, load_problems(cfg.dataset), tmp_path / "train")


def test_probe_is_cached_across_runs(tmp_path, caplog):
    import logging

    overrides = ["experiment=smoke", "stages=[select]", "logger=[]", f"cache_dir={tmp_path}/cache"]
    caplog.set_level(logging.INFO, logger="limr_exp")
    run(compose_cfg(overrides, output_dir=tmp_path / "a"))
    assert any("probe: RL on all" in r.message for r in caplog.records)
    caplog.clear()
    run(compose_cfg(overrides + ["theta=0.3"], output_dir=tmp_path / "b"))  # a theta sweep reuses the probe
    assert any("reusing the cached probe" in r.message for r in caplog.records)
    assert not any("probe: RL on all" in r.message for r in caplog.records)


@pytest.mark.parametrize("overrides,message", [
    (["ppo.n_samples_per_prompt=0"], "ppo.n_samples_per_prompt"),
    (["ppo.rollout_batch_size=1000"], "ppo.rollout_batch_size"),
    (["model.path=/no/such/model"], "model.path"),
])
def test_bad_training_input(tmp_path, learnable_cache, overrides, message):
    from limr_exp.errors import LimrError

    cfg = compose_cfg(LEARNABLE + ["ppo.num_episodes=1", f"cache_dir={learnable_cache}"] + overrides)
    with pytest.raises(LimrError, match=message):
        train(cfg, load_problems(cfg.dataset), tmp_path / "train")


def test_estimator_registry_names_each_estimator_once_and_rejects_duplicates():
    from limr_exp.errors import ConfigError
    from limr_exp.training.ppo import ESTIMATORS

    assert ESTIMATORS.names() == ["gae", "group_norm", "reinforce_baseline"]
    with pytest.raises(ValueError, match="registered twice"):
        ESTIMATORS.register("gae")(lambda *a: None)
    with pytest.raises(ConfigError, match="set ppo.advantage_estimator to one of gae, group_norm, reinforce_baseline"):
        ESTIMATORS.get("ppo2")


def test_group_estimators_centre_each_prompts_rewards():
    import torch

    from limr_exp.training.ppo import ESTIMATORS

    cfg = compose_cfg(["ppo.n_samples_per_prompt=2", "ppo.init_kl_coef=0"]).ppo
    reward = torch.tensor([1.0, -1.0, 0.5, 0.5])  # two prompts, two samples each
    mask = torch.ones(4, 3)
    zeros = torch.zeros(4, 3)
    adv, returns, kl = ESTIMATORS.get("reinforce_baseline")(reward, zeros, zeros, mask, zeros, cfg)
    assert adv[:, -1].tolist() == [1.0, -1.0, 0.0, 0.0] and kl.abs().sum() == 0
    adv, _, _ = ESTIMATORS.get("group_norm")(reward, zeros, zeros, mask, zeros, cfg)
    assert torch.allclose(adv[:2, -1], torch.tensor([1.0, -1.0]), atol=1e-6) and adv[2:].abs().sum() == 0


def test_every_trainer_gets_one_typed_request(tmp_path):
    """training/base.py: the RL run and the probe are two TrainRequests; a trainer registered under a name is
    called with (cfg, request, tracker) and returns a TrainResult (no string sentinels for 'the config's')."""
    from limr_exp.history import History
    from limr_exp.training import TRAINERS, TrainRequest, TrainResult, run_trainer

    cfg = compose_cfg(["ppo.max_steps=7", "probe.episodes=3", "probe.seed=5", "seed=11"])
    problems = load_problems(cfg.dataset)
    run = TrainRequest.for_training(cfg, problems, tmp_path / "train")
    probe = TrainRequest.for_probe(cfg, problems, tmp_path / "probe")
    assert (run.num_episodes, run.max_steps, run.seed, run.namespace) == (cfg.ppo.num_episodes, 7, 11, "train")
    assert (probe.num_episodes, probe.max_steps, probe.seed, probe.namespace) == (3, None, 5, "probe")
    seen = []

    def fake(cfg, request, tracker=None):
        seen.append(request)
        return TrainResult(History.build([], [], [], [], []), request.out / "checkpoint")

    TRAINERS.register("fake_for_test")(fake)
    try:
        from omegaconf import OmegaConf

        OmegaConf.set_struct(cfg, False)
        cfg.trainer.name = "fake_for_test"
        result = train(cfg, problems, tmp_path / "train", num_episodes=2)
        assert seen[-1] == run.replace(num_episodes=2) and result.checkpoint == tmp_path / "train" / "checkpoint"
        run_trainer(cfg, probe)
        assert seen[-1] is probe
    finally:
        TRAINERS._entries.pop("fake_for_test", None)
