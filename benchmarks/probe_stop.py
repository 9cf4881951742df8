"""Benchmark: where `probe.stop_when_stable` stops on the toy world, and how close it lands to the full probe.

    python benchmarks/probe_stop.py [--theta 0.6] [overrides ...]

Trains (or reuses, from outputs/cache/) the default toy world's full probe and a probe with
stop_when_stable=true, then prints the epoch-to-epoch agreement curve, the epoch the stopping probe ended
after, the share of the probe's rollouts it saved, and the Jaccard of its selection with the full probe's.
The two probes are separate runs (the stopping one is cached under its own key), so this measures what a
user gets, not a replay of one history.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--theta", type=float, default=0.6)
    ap.add_argument("overrides", nargs="*", help="config overrides, e.g. probe.episodes=12")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    import limr_exp.config  # noqa: F401  (registers the schema)
    from limr_exp.data import load_problems
    from limr_exp.selection.stability import jaccard, selection_after, stability_curve
    from limr_exp.training.probe import probe_history, stop_record

    base = [f"cache_dir={ROOT}/outputs/cache", "selector=lim", f"theta={args.theta}", "logger=[]", *args.overrides]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        full_cfg = compose(config_name="config", overrides=base)
        stop_cfg = compose(config_name="config", overrides=[*base, "probe.stop_when_stable=true"])
    problems = load_problems(full_cfg.dataset)
    t0 = time.perf_counter()
    full = probe_history(full_cfg, problems)
    t1 = time.perf_counter()
    stopped = probe_history(stop_cfg, problems)
    t2 = time.perf_counter()
    record = stop_record(stop_cfg, problems) or {}
    full_set, _ = selection_after(full, problems, args.theta, full_cfg.selector, full_cfg.seed)
    stop_set, _ = selection_after(stopped, problems, args.theta, stop_cfg.selector, stop_cfg.seed)
    p = OmegaConf.to_container(stop_cfg.probe)
    print(f"toy world, theta {args.theta}, probe of {p['episodes']} epochs; stop rule: Jaccard >= {p['stable_jaccard']} "
          f"for {p['stable_epochs']} epochs (and a never-solved prompt below theta)")
    print("agreement of consecutive selections, full probe:", " ".join(f"{j:.2f}" for j in stability_curve(
        full, problems, args.theta, full_cfg.selector, full_cfg.seed)))
    print(f"full probe:     {p['episodes']} epochs, LIM keeps {len(full_set)} prompts ({t1 - t0:.0f} s here, 0 if cached)")
    print(f"stopping probe: stopped={record.get('stopped')} after epoch {record.get('epochs')} of {record.get('of')} "
          f"({100 * record.get('saved_share', 0):.0f}% of the rollouts saved), LIM keeps {len(stop_set)} prompts "
          f"({t2 - t1:.0f} s here, 0 if cached)")
    print(f"Jaccard(stopping probe's subset, full probe's subset) = {jaccard(stop_set, full_set):.3f}")


if __name__ == "__main__":
    main()
