"""The probe run: RL on the full set whose per-sample rewards LIM reads (LIMR Sec. 2.2).

It is cached under `<cache_dir>/probes/<hash>` by a hash of what determines it (model, the PPO
settings that shape a rollout step, reward rule, problem set, probe epochs and probe seed), so every
job of a sweep, whatever its own seed, reuses one probe; a file lock makes concurrent jobs wait for
the one that trains it.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from limr_exp.errors import DataError
from limr_exp.hashing import config_hash
from limr_exp.history import History, read_table
from limr_exp.layout import TrainerFiles

log = logging.getLogger("limr_exp")

# settings that do not change what the probe learns or records
NOT_IN_PROBE_KEY = {"ppo": ("num_episodes", "max_steps"), "reward": ("workers", "memory_limit_mb", "max_error_share")}


def probe_key(cfg, problems) -> str:
    from omegaconf import OmegaConf

    from limr_exp.models.loading import model_identity

    data = hashlib.sha256("\n".join(f"{r['id']}\t{r['prompt']}\t{r['answer']}" for r in problems.rows).encode()).hexdigest()
    parts = {}
    for group, dropped in NOT_IN_PROBE_KEY.items():
        node = OmegaConf.to_container(cfg[group], resolve=True)
        parts[group] = {k: v for k, v in node.items() if k not in dropped}
    stop = []
    if cfg.probe.stop_when_stable:  # where it stops depends on the selector and theta it watches
        stop = [(cfg.probe.stable_jaccard, cfg.probe.stable_epochs, cfg.selector.name, float(cfg.theta))]
    return config_hash(*model_identity(cfg.model), parts["ppo"], parts["reward"], cfg.trainer.name, cfg.probe.episodes,
                       cfg.probe.seed, data, *stop)


def probe_folder(cfg, problems) -> Path:
    """Where the probe run for this config and problem set is cached."""
    return Path(cfg.cache_dir) / "probes" / probe_key(cfg, problems)


def stop_record(cfg, problems) -> dict | None:
    """The probe's stop_when_stable record (epochs run of all, agreements, share saved), if it has one."""
    import json

    try:
        return json.loads((probe_folder(cfg, problems) / "stability.json").read_text())
    except (OSError, ValueError):
        return None


def probe_history(cfg, problems, tracker=None) -> History:
    from filelock import FileLock

    from limr_exp.training import TrainRequest, run_trainer

    folder = probe_folder(cfg, problems)
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "done"
    with FileLock(str(folder) + ".lock"):
        if done.exists():
            log.info("probe: reusing the cached probe run %s", folder)
            try:
                return read_table(TrainerFiles(folder).trajectories)
            except DataError:
                raise DataError(f"the cached probe run {folder} is corrupt: delete that folder (it is safe: the next run "
                                "trains the probe again)") from None
        log.info("probe: RL on all %d prompts for %d epochs, probe seed %d (cached in %s)", len(problems), cfg.probe.episodes,
                 cfg.probe.seed, folder)
        watcher = StabilityWatcher(cfg, problems, folder, tracker) if cfg.probe.stop_when_stable else None
        history = run_trainer(cfg, TrainRequest.for_probe(cfg, problems, folder, after_epoch=watcher), tracker).history
        if watcher is not None:
            watcher.report(history)
        done.write_text("ok\n")
        return history


class StabilityWatcher:
    """`after_epoch` of a probe with `probe.stop_when_stable`: the selection after every epoch, its agreement
    with the one before (logged, and kept in `<probe>/stability.json`), and True once it has settled."""

    def __init__(self, cfg, problems, folder: Path, tracker=None):
        from limr_exp.config import theta_value

        self.cfg, self.problems, self.folder, self.tracker = cfg, problems, folder, tracker
        self.theta = theta_value(cfg)
        self.selections: list[set] = []
        self.agreements: list[float] = []

    def __call__(self, epoch: int, history: History) -> bool:
        from limr_exp.selection.stability import agreement, is_stable, selection_after

        p = self.cfg.probe
        self.selections.append(selection_after(history, self.problems, self.theta, self.cfg.selector, self.cfg.seed))
        if len(self.selections) > 1:
            self.agreements.append(agreement(self.selections[-2], self.selections[-1]))
            chosen, settled = self.selections[-1]
            log.info("probe: after epoch %d %s keeps %d prompts; agreement with epoch %d: %.3f%s", epoch, self.cfg.selector.name,
                     len(chosen), epoch - 1, self.agreements[-1],
                     "" if settled else " (not settled: a never-solved prompt still scores >= theta)")
            if self.tracker is not None:
                self.tracker.log({"probe/selection_jaccard": self.agreements[-1], "probe/selection_size": len(chosen)}, step=epoch)
        return is_stable(self.agreements, p.stable_jaccard, p.stable_epochs)

    def report(self, history: History) -> None:
        from limr_exp.io import write_json
        from limr_exp.selection.stability import is_stable

        p = self.cfg.probe
        stopped = is_stable(self.agreements, p.stable_jaccard, p.stable_epochs)
        epochs = len(self.selections) + (0 if stopped else 1)  # the last epoch of a full probe has no check
        saved = 1 - epochs / p.episodes
        if stopped:
            log.info("probe: the selection settled after epoch %d of %d (Jaccard >= %g for %d epochs): %.0f%% of the probe's "
                     "rollouts saved", epochs, p.episodes, p.stable_jaccard, p.stable_epochs, 100 * saved)
        else:
            log.warning("probe: the selection at theta=%g never settled (last Jaccard %s, threshold %g): scores sit near "
                        "theta, or the probe is short; it ran all %d epochs", self.theta,
                        f"{self.agreements[-1]:.3f}" if self.agreements else "-", p.stable_jaccard, p.episodes)
        write_json(self.folder / "stability.json", {"jaccard": self.agreements, "epochs": epochs, "of": p.episodes,
                                                    "stopped": stopped, "saved_share": saved})
        if self.tracker is not None:
            self.tracker.log({"probe/epochs_run": epochs, "probe/saved_share": saved})


def seed_sensitivity(cfg, problems, chosen: set[str], tracker=None) -> dict:
    """How far the selection moves with the probe's seed: a probe per `probe.sensitivity_seeds` (each cached
    like the main one), the configured selector at theta on each history, and the Jaccard of each subset with
    this probe's (`chosen`) and between every pair. Measured before (#21): the probe's seed moved LIMR's
    subset more than truncating the history did. Written to the caller's selection folder by the caller, which
    calls it only when probe.sensitivity_seeds lists seeds."""
    import itertools

    import numpy as np
    from omegaconf import OmegaConf

    from limr_exp.config import theta_value
    from limr_exp.selection.stability import jaccard, selection_after

    seeds = [int(s) for s in cfg.probe.sensitivity_seeds]
    theta = theta_value(cfg)
    subsets = {int(cfg.probe.seed): chosen}
    for seed in seeds:
        other = OmegaConf.merge(cfg, {"probe": {"seed": seed}})
        subsets[seed], _ = selection_after(probe_history(other, problems), problems, theta, cfg.selector, cfg.seed)
    with_main = {seed: jaccard(chosen, subsets[seed]) for seed in seeds}
    pairs = [jaccard(subsets[a], subsets[b]) for a, b in itertools.combinations(subsets, 2)]
    record = {"theta": theta, "selector": cfg.selector.name, "seeds": list(subsets), "sizes": [len(s) for s in subsets.values()],
              "jaccard_with_this_probe": [round(j, 4) for j in with_main.values()],
              "pairwise_mean": round(float(np.mean(pairs)), 4), "pairwise_min": round(float(np.min(pairs)), 4),
              "in_every_subset": len(set.intersection(*subsets.values())), "in_any_subset": len(set.union(*subsets.values()))}
    log.info("probe seeds %s: %s keeps %s prompts; Jaccard with this probe's subset %s (pairwise mean %.3f); %d prompts in "
             "every subset, %d in any", ", ".join(map(str, subsets)), cfg.selector.name, "/".join(map(str, record["sizes"])),
             " / ".join(f"{j:.3f}" for j in with_main.values()), record["pairwise_mean"], record["in_every_subset"],
             record["in_any_subset"])
    if record["pairwise_min"] < 0.8:
        log.warning("the selection at theta=%g moves with the probe's seed (Jaccard down to %.2f): the subset is partly "
                    "chance; a longer probe (probe.episodes) or another theta gives a steadier one", theta, record["pairwise_min"])
    if tracker is not None:
        tracker.log({"selection/probe_seed_jaccard_mean": record["pairwise_mean"],
                     "selection/probe_seed_jaccard_min": record["pairwise_min"]})
    return record
