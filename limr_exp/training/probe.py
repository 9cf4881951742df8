"""The probe run: RL on the full set whose per-sample rewards LIM reads (LIMR Sec. 3.2).

It is cached under `<cache_dir>/probes/<hash>` by a hash of everything that determines it (model,
PPO settings, reward rule, problem set, episodes, seed), so every job of a theta sweep reuses one
probe; a file lock makes concurrent jobs wait for the one that trains it.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

from limr_exp.hashing import config_hash
from limr_exp.errors import DataError
from limr_exp.trajectories import AccuracyCurves, History, read_table

log = logging.getLogger("limr_exp")


def probe_key(cfg, problems) -> str:
    data = hashlib.sha256("\n".join(f"{r['id']}\t{r['prompt']}\t{r['answer']}" for r in problems.rows).encode()).hexdigest()
    return config_hash(cfg.model, cfg.ppo, cfg.reward, cfg.trainer.name, cfg.probe.episodes, cfg.seed, data)


def curve_summary(history: History) -> dict:
    """Shares of prompts that stay at 0, start >= 0.9, and improve (last epoch >= first + 0.25): Figure 2a's groups."""
    c = AccuracyCurves.from_history(history)
    acc = c.acc[c.scored]
    if len(acc) == 0:
        return {"probe/prompts": 0}
    return {"probe/prompts": int(len(acc)), "probe/share_stay_zero": float((acc.max(axis=1) == 0).mean()),
            "probe/share_start_high": float((acc[:, 0] >= 0.9).mean()),
            "probe/share_improve": float((acc[:, -1] - acc[:, 0] >= 0.25).mean()),
            "probe/mean_accuracy_first": float(acc[:, 0].mean()), "probe/mean_accuracy_last": float(acc[:, -1].mean())}


def probe_history(cfg, problems, tracker=None) -> History:
    from filelock import FileLock

    from limr_exp.training import train

    folder = Path(cfg.cache_dir) / "probes" / probe_key(cfg, problems)
    folder.mkdir(parents=True, exist_ok=True)
    done = folder / "done"
    with FileLock(str(folder) + ".lock"):
        if done.exists():
            log.info("probe: reusing the cached probe run %s", folder)
            try:
                history = read_table(folder / "trajectories.parquet")
            except DataError:
                raise DataError(f"the cached probe run {folder} is corrupt: delete that folder (it is safe: the next run "
                                "trains the probe again)") from None
        else:
            log.info("probe: RL on all %d prompts for %d episodes (cached in %s)", len(problems), cfg.probe.episodes, folder)
            history = train(cfg, problems, folder, tracker, num_episodes=cfg.probe.episodes, namespace="probe").history
            done.write_text("ok\n")
    summary = curve_summary(history)
    if summary.get("probe/prompts"):
        log.info("probe curves: %.0f%% of prompts stay at 0, %.0f%% start >= 0.9, %.0f%% improve by >= 0.25",
                 100 * summary["probe/share_stay_zero"], 100 * summary["probe/share_start_high"], 100 * summary["probe/share_improve"])
    if tracker is not None:
        tracker.log(summary)
    return history
