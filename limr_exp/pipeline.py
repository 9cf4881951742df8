"""run(cfg): the LIMR pipeline, stage by stage (DESIGN.md "What the product does").

    dataset -> [probe RL run, recording every sample's reward] -> trajectories
    trajectories -> selector -> subset
    subset -> RL training -> checkpoint (+ its own trajectories)
    checkpoint -> evaluation suite -> metrics

Tests call `run(cfg)` with a composed config; the CLI calls `cli_run`, which turns a user error
into one line on stderr and a non-zero exit.
"""

from __future__ import annotations

import errno
import logging
import sys
import time
from pathlib import Path

import numpy as np
from omegaconf import DictConfig

from limr_exp.config import theta_value
from limr_exp.data import ProblemSet, load_problems, require_answers
from limr_exp.errors import ConfigError, LimrError
from limr_exp.io import write_json, write_jsonl
from limr_exp.layout import RunLayout
from limr_exp.plugins import validate
from limr_exp.run_folder import Interrupted, RunFolder, raise_on_signals
from limr_exp.tracking import RunInfo, Tracker

log = logging.getLogger("limr_exp")


def run_dir_of(cfg: DictConfig) -> Path:
    if cfg.output_dir is None:
        raise ConfigError("output_dir is not set: pass output_dir=<folder> (the CLI sets it to Hydra's run folder)")
    return Path(cfg.output_dir)


def reward_history(cfg: DictConfig, problems: ProblemSet, tracker: Tracker | None = None):
    """The trajectories table LIM reads: an imported history (`trajectories.path`) or a probe run."""
    from limr_exp.history import load_history

    if cfg.trajectories.path is not None:
        return load_history(cfg.trajectories, problems.text_to_first_id())
    from limr_exp.training.probe import probe_history

    return probe_history(cfg, problems, tracker)


def report_curves(curves, theta: float, tracker: Tracker):
    """Log the history's Figure-2a groups and the score of a never-solved prompt; warn when that is >= theta."""
    from limr_exp.history import curve_summary

    summary = curve_summary(curves)
    if summary["curves/prompts"]:
        log.info("reward history: %d prompts x %d epochs; %.0f%% stay at 0, %.0f%% start >= 0.9, %.0f%% improve by >= 0.25; "
                 "mean accuracy %.2f -> %.2f", summary["curves/prompts"], summary["curves/epochs"],
                 100 * summary["curves/share_stay_zero"], 100 * summary["curves/share_start_high"],
                 100 * summary["curves/share_improve"], summary["curves/mean_accuracy_first"], summary["curves/mean_accuracy_last"])
        zero = summary["curves/never_solved_score"]
        log.info("a never-solved prompt scores %.3f (theta %g)", zero, theta)
        if zero >= theta:
            log.warning("a never-solved prompt scores %.3f >= theta=%g: LIM will keep prompts the model never solves, because "
                        "the mean curve stays low; train a longer probe (probe.episodes) or raise theta", zero, theta)
    tracker.log(summary)


def select_stage(cfg: DictConfig, problems: ProblemSet, out: Path, tracker: Tracker, timings: dict) -> ProblemSet:
    """Score every prompt, keep those the selector picks; write selection/ and plots/.
    `selected.jsonl` is written last, once the scores table and the figures exist."""
    from limr_exp import plots
    from limr_exp.arrow import write_scores_table
    from limr_exp.selection import SELECTORS, SelectionContext

    theta = theta_value(cfg)
    size = cfg.selector.get("size")
    if size is not None and size > len(problems):
        raise ConfigError(f"selector.size={size} is more than the dataset's {len(problems)} prompts: "
                          f"pick at most {len(problems)} (or selector=full)")
    selector = SELECTORS.get(cfg.selector.name)(cfg.selector)
    run = RunLayout(out)
    run.selected.unlink(missing_ok=True)  # never leave a stale subset next to new scores
    history = None
    if selector.needs_history():
        t = time.perf_counter()
        history = reward_history(cfg, problems, tracker)
        timings["probe" if cfg.trajectories.path is None else "history"] = time.perf_counter() - t
    t = time.perf_counter()
    ctx = SelectionContext(problems, theta, cfg.seed, cfg.selector, history)
    if history is not None:
        report_curves(ctx.curves, theta, tracker)
    result = selector.select(ctx)
    write_scores_table(run.scores, result.ids, result.scores, result.selected)
    if history is not None and result.curve_scores is not None:
        c = ctx.curves
        plots.lim_trajectories(c.acc, c.scored, c.mean, result.curve_scores, theta, run.plot("lim_trajectories"),
                               seed=cfg.seed)
    if history is not None and ctx.curves.scored.any():
        plots.curve_groups(ctx.curves.acc[ctx.curves.scored], run.plot("curve_groups"))
    if result.n_scored:
        plots.score_histogram(result.scores, theta, cfg.selector.name, run.plot("score_histogram"))
    del history, ctx
    if result.curve_scores is not None and cfg.trajectories.path is None and cfg.probe.sensitivity_seeds:
        from limr_exp.training.probe import seed_sensitivity

        chosen = set(np.asarray(result.ids)[result.selected].tolist())
        write_json(run.probe_seeds, seed_sensitivity(cfg, problems, chosen, tracker))
    write_jsonl(run.selected, (row for row, keep in zip(problems.rows, result.selected) if keep))
    tracker.log_artifact(run.selected, "dataset")
    tracker.log_table("selection/scores", [{"prompt_id": i, "score": None if np.isnan(sc) else float(sc), "selected": bool(k)}
                                           for i, sc, k in zip(result.ids, result.scores, result.selected)],
                      full=run.scores)
    for png in sorted(run.plots.glob("*.png")):
        tracker.log_artifact(png, "plots")
    n, n_sel = len(problems), result.n_selected
    log.info("selection: %s theta=%g: scored %d of %d prompts, selected %d (%.1f%%)",
             cfg.selector.name, theta, result.n_scored, n, n_sel, 100.0 * n_sel / max(n, 1))
    tracker.log({"selection/n_prompts": n, "selection/n_scored": result.n_scored, "selection/n_selected": n_sel,
                 "selection/share": n_sel / max(n, 1)})
    timings["select"] = time.perf_counter() - t
    return problems.subset(np.asarray(result.ids)[result.selected].tolist())


def previous_selection(out: Path, problems: ProblemSet) -> ProblemSet:
    """Without the select stage, train on this run folder's earlier selection, else on the full set."""
    from limr_exp.io import read_jsonl

    path = RunLayout(out).selected
    if not path.exists():
        log.info("train: no selection/selected.jsonl in the run folder: training on all %d prompts", len(problems))
        return problems
    ids = [row["id"] for row in read_jsonl(path)]
    return problems.subset(ids)


def train_stage(cfg: DictConfig, subset: ProblemSet, out: Path, tracker: Tracker, n_dataset: int | None = None):
    from limr_exp.evaluation.run import uses_loaded_model
    from limr_exp.training import TrainRequest, run_trainer
    from limr_exp.training.base import trains_in_process

    if len(subset) == 0:
        raise ConfigError("the selection is empty: nothing to train on (lower theta, or pick another selector)")
    subset = require_answers(subset, "dataset", False)  # every problem trained on needs a reference answer
    p = cfg.ppo
    in_process = trains_in_process(cfg)
    budget = f"{p.max_steps} rollout steps" if p.max_steps is not None and in_process else f"{p.num_episodes} episodes"
    log.info("train: %s on %d prompts for %s", cfg.trainer.name, len(subset), budget)
    on_step = None
    if in_process and cfg.trainer.eval_steps > 0 and "eval" in cfg.stages and uses_loaded_model(cfg):
        from limr_exp.evaluation import evaluation_during_training

        on_step = evaluation_during_training(cfg, RunLayout(out).eval)
    request = TrainRequest.for_training(cfg, subset, RunLayout(out).train.root, on_step=on_step, subset_of=n_dataset)
    return run_trainer(cfg, request, tracker)


def trained_steps(out: Path) -> int | None:
    """The rollout step of the run folder's trained model: the last step of train/steps.jsonl (local), or
    of train/trajectories.parquet (OpenRLHF); None when nothing was trained here."""
    from limr_exp.io import read_jsonl

    path = RunLayout(out).train.steps
    if path.exists():
        steps = [r["step"] for r in read_jsonl(path) if isinstance(r.get("step"), int)]
        return max(steps) if steps else None
    table = RunLayout(out).train.trajectories
    if table.exists():
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        steps = pq.read_table(table, columns=["step"]).column("step")
        return int(pc.max(steps).as_py()) if len(steps) else None
    return None


def eval_stage(cfg: DictConfig, checkpoint: Path | None, out: Path, tracker: Tracker) -> tuple[dict, dict | None]:
    from limr_exp.evaluation import evaluate, evaluate_base
    from limr_exp.evaluation.run import uses_loaded_model
    from limr_exp.models import load_policy, resolve_device

    run = RunLayout(out)
    run.eval.mkdir(parents=True, exist_ok=True)
    base = evaluate_base(cfg, run.eval, tracker) if cfg.eval.evaluate_base else None
    if checkpoint is None:
        checkpoint = run.train.checkpoint
        if not (checkpoint / "config.json").exists():
            log.info("eval: no trained checkpoint in this run folder: evaluating the base model")
            checkpoint = None
    bundle = load_policy(cfg.model, cfg.cache_dir, resolve_device(cfg.trainer.device), path=str(checkpoint) if checkpoint else None,
                         with_model=uses_loaded_model(cfg))
    return evaluate(cfg, bundle, run.eval, tracker, step=trained_steps(out) if checkpoint else None), base


def summary_table(summary: dict) -> str:
    lines = ["", "limr-exp summary", "-" * 44]
    if summary.get("run_folder"):
        lines.append(f"{'run folder':<28}{summary['run_folder']}")
    if "n_selected" in summary:
        lines.append(f"{'subset size':<28}{summary['n_selected']:>8} of {summary['n_prompts']}")
    stop = summary.get("probe_stop")
    if stop:
        how = f"stopped when stable, {100 * stop['saved_share']:.0f}% of its rollouts saved" if stop["stopped"] else "never settled"
        lines.append(f"{'probe epochs':<28}{stop['epochs']:>8} of {stop['of']} ({how})")
    base, trained = summary.get("base_metrics"), summary.get("metrics")
    if trained:
        for name, r in trained["benchmarks"].items():
            b = base["benchmarks"].get(name, {}).get("acc") if base else None
            btxt = f"{100 * b:6.1f}%" if b is not None else "     -"
            lines.append(f"{'accuracy ' + name:<28}base {btxt}  trained {100 * r['acc']:6.1f}%")
    for stage, seconds in summary["timings"].items():
        lines.append(f"{'time ' + stage:<28}{seconds:8.1f} s")
    return "\n".join(lines)


# keys that never change what a run computes: who logs it, how fast, where its files go, which stages run now
UNFINGERPRINTED = ("logger", "threads", "output_dir", "stages", "cache_dir", "data_root", "run_name", "reward.workers",
                   "reward.memory_limit_mb", "trainer.dry_run", "trainer.device", "eval.batch_size", "eval.evaluate_base")


def resolved_config(cfg: DictConfig) -> dict | None:
    """The config with every ${...} resolved, or None when one does not resolve (validate then says why)."""
    from omegaconf import OmegaConf

    try:
        return OmegaConf.to_container(cfg, resolve=True)
    except Exception:
        return None


def fingerprint(config: dict | None) -> dict | None:
    """What of the resolved config determines a run's results (flattened); None without a config."""
    from limr_exp.tracking import flatten

    if config is None:
        return None
    return {k: v for k, v in flatten(config).items()
            if not any(k == x or k.startswith(x + ".") for x in UNFINGERPRINTED)}


def run_tags(cfg: DictConfig) -> list[str]:
    """Tags every tracker gets: selector, theta or size, seed, dataset, trainer."""
    size = cfg.selector.get("size")
    return [f"selector={cfg.selector.name}", f"size={size}" if size is not None else f"theta={cfg.theta}", f"seed={cfg.seed}",
            f"dataset={cfg.dataset.name}", f"trainer={cfg.trainer.name}"]


def run_info(cfg: DictConfig, out: Path, sweep_dir: Path | None = None, job_num: int | None = None,
             resolved: dict | None = None) -> RunInfo:
    """What the trackers record: the resolved config (no ${...} left), the run name, its tags."""
    from omegaconf import OmegaConf

    # validate() has passed, so only an exotic interpolation can leave it unresolved: then keep it as written
    config = resolved if resolved is not None else OmegaConf.to_container(cfg, resolve=False)
    try:
        name = str(cfg.run_name)
    except Exception:  # an unresolvable name must not hide the real error
        name = out.name
    return RunInfo(out, name, str(cfg.selector.name), config, sweep_dir, job_num, tags=run_tags(cfg))


def runs_probe(cfg: DictConfig) -> bool:
    """Whether selection trains a probe run on the whole dataset (no history given, a history-based selector)."""
    if "select" not in cfg.stages or cfg.trajectories.path is not None:
        return False
    from limr_exp.selection import SELECTORS

    return SELECTORS.get(cfg.selector.name)(cfg.selector).needs_history()


def run(cfg: DictConfig, sweep_dir: Path | None = None, job_num: int | None = None) -> dict:
    """Run the configured stages; returns a summary (subset size, metrics, time per stage)."""
    out = run_dir_of(cfg)
    summary: dict = {"timings": {}, "run_folder": str(out)}
    resolved = resolved_config(cfg)
    with RunFolder(out, fingerprint(resolved)) as folder:  # the lock, the config it holds, a truthful status.json
        log.info("run folder: %s", out)
        validate(cfg)  # every check before any tracker starts or any work is done
        folder.keep_fingerprint()
        probe = runs_probe(cfg)
        if {"train", "eval"} & set(cfg.stages) or probe:
            import torch

            from limr_exp.cpus import busy_hint, torch_threads

            torch.set_num_threads(cfg.threads or torch_threads())
            log.info("torch: %d thread(s) (threads=%s)", torch.get_num_threads(), cfg.threads)
            hint = busy_hint(torch.get_num_threads()) if cfg.threads is None else None
            if hint:
                log.warning(hint)
        t = time.perf_counter()
        problems = load_problems(cfg.dataset)
        if cfg.dataset.drop_unanswered or probe:  # a probe trains on every problem: check them all now
            problems = require_answers(problems, "dataset", cfg.dataset.drop_unanswered)
        summary["n_prompts"] = len(problems)
        with Tracker(cfg.logger, run_info(cfg, out, sweep_dir, job_num, resolved)) as tracker:
            run_stages(cfg, problems, out, tracker, summary, t)
    if "metrics" in summary or "train" in cfg.stages:
        print(summary_table(summary), flush=True)
    return summary


def run_stages(cfg: DictConfig, problems: ProblemSet, out: Path, tracker: Tracker, summary: dict, t: float) -> None:
    """select -> train -> eval, as configured; fills `summary`."""
    summary["timings"]["start"] = time.perf_counter() - t  # data and trackers
    started = time.time()
    if "select" in cfg.stages:
        subset = select_stage(cfg, problems, out, tracker, summary["timings"])
        summary["n_selected"] = len(subset)
        if cfg.probe.stop_when_stable and runs_probe(cfg):
            from limr_exp.training.probe import stop_record

            summary["probe_stop"] = stop_record(cfg, problems)
    else:
        subset = previous_selection(out, problems) if "train" in cfg.stages else problems
    checkpoint = None
    if "train" in cfg.stages:
        t = time.perf_counter()
        checkpoint = train_stage(cfg, subset, out, tracker, n_dataset=len(problems)).checkpoint
        summary["timings"]["train"] = time.perf_counter() - t
    if "eval" in cfg.stages:
        t = time.perf_counter()
        summary["metrics"], summary["base_metrics"] = eval_stage(cfg, checkpoint, out, tracker)
        summary["timings"]["eval"] = time.perf_counter() - t
        tracker.log_artifact(RunLayout(out).metrics, "eval")
    if {"train", "eval"} & set(cfg.stages) and plot_run_curves(out, str(cfg.run_name)):
        tracker.log_artifact(RunLayout(out).plot("training_curves"), "plots")
    summary["timings"] = with_model_build(cfg, summary["timings"], started)
    tracker.log({f"time/{k}": v for k, v in summary["timings"].items()})


def with_model_build(cfg: DictConfig, timings: dict, started: float) -> dict:
    """The toy model is built by the first stage that loads it (probe, train or eval), after that stage's
    checks; its build time (from the build record) is told apart from that stage's own."""
    from limr_exp.models.toy import build_seconds

    seconds = build_seconds(cfg.model, cfg.cache_dir, since=started) if cfg.model.path is None and cfg.model.toy else None
    first = next((stage for stage in ("probe", "train", "eval") if stage in timings), None)
    if seconds is None or first is None:
        return timings
    merged = {**timings, first: max(0.0, timings[first] - seconds), "model build": seconds}
    order = ["start", "model build", "probe", "history", "select", "train", "eval"]
    return {k: merged[k] for k in order if k in merged}


def plot_run_curves(out: Path, name: str) -> bool:
    """plots/training_curves.png: the run's training reward and its held-out accuracy over the steps."""
    from limr_exp import plots
    from limr_exp.report import evaluation_curve, training_steps

    steps = training_steps(out)
    return plots.run_curves(steps, evaluation_curve(out, steps), RunLayout(out).plot("training_curves"), name)


def cli_run(cfg: DictConfig) -> None:
    """Entry point for `python -m limr_exp`: the run folder from Hydra, user errors as one line, SIGINT and
    SIGTERM as one line and exit 130/143. In a multirun a failed job is recorded (status.json, W&B, MLflow
    FAILED) and the others go on."""
    from hydra.core.hydra_config import HydraConfig
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    raise_on_signals()
    try:
        if cfg.output_dir is None:
            cfg.output_dir = hc.runtime.output_dir
        if cfg.threads is None and multirun:  # a parallel launcher's jobs share the CPUs
            from limr_exp.cpus import torch_threads, usable_cpus

            n_jobs = OmegaConf.select(hc, "launcher.n_jobs", default=1) or 1  # joblib's n_jobs; -1: one per CPU
            cfg.threads = torch_threads(n_jobs if n_jobs > 0 else usable_cpus())
        run(cfg, Path(hc.sweep.dir) if multirun else None, hc.job.num if multirun else None)
    except Interrupted as e:
        print(f"limr-exp: interrupted ({e}): resume with: {resume_command(hc, cfg, multirun)}", file=sys.stderr, flush=True)
        sys.exit(e.exit_code)
    except Exception as e:
        message = user_message(e, cfg)
        if message is None and not multirun:
            raise  # a bug: the traceback is for the maintainers
        # in a sweep, even a bug in one job is recorded (status.json, trackers) and the other jobs go on;
        # its traceback goes to the job's log file for the maintainers
        if message is None:
            log.error("job %s failed with an unexpected error", hc.job.num, exc_info=e)
            message = f"job {hc.job.num} failed: {type(e).__name__}: {e} (traceback in {cfg.output_dir}/__main__.log)"
        print(f"limr-exp: error: {message}", file=sys.stderr, flush=True)
        if not multirun:
            sys.exit(2)


def resume_command(hc, cfg: DictConfig, multirun: bool) -> str:
    """The command that continues this run in its own folder (a sweep's job: the sweep, in its folder)."""
    import json
    import shlex

    def without_dirs(overrides) -> list[str]:
        return [o for o in overrides if not o.startswith(("hydra.run.dir=", "hydra.sweep.dir="))]

    if multirun:
        sweep_dir = Path(hc.sweep.dir)
        try:
            overrides = json.loads((sweep_dir / "multirun.json").read_text())["overrides"]
        except (OSError, ValueError, KeyError):
            overrides = list(hc.overrides.task)
        return shlex.join(["python", "-m", "limr_exp", "-m", *without_dirs(overrides), f"hydra.sweep.dir={sweep_dir.resolve()}"])
    return shlex.join(["python", "-m", "limr_exp", *without_dirs(hc.overrides.task), f"hydra.run.dir={Path(cfg.output_dir).resolve()}"])


def user_message(e: Exception, cfg: DictConfig) -> str | None:
    """The one line a user reads for an error that is theirs to fix (bad input, a full disk), else None."""
    if isinstance(e, LimrError):
        return str(e)
    if _disk_full(e, [f for f in (cfg.output_dir, cfg.cache_dir) if f]):
        where = getattr(e, "filename", None) or cfg.output_dir
        return (f"no space left on the device writing {where}: free some space, or point "
                "hydra.run.dir (and cache_dir) at another disk; rerun the same command to resume")
    if isinstance(e, OSError) and e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (f"cannot write {e.filename or 'a file'}: {e.strerror}: point cache_dir (and hydra.run.dir) at a folder "
                "you can write")
    return None


def _disk_full(e: BaseException, folders=()) -> bool:
    """A full disk, however the library that hit it says so: OSError ENOSPC/EDQUOT, "No space left on
    device" (safetensors), or torch.save's RuntimeError ("unexpected pos", "file write failed"), which names
    no cause: that one counts when one of `folders` has (almost) no space left."""
    import shutil

    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        text = str(e)
        if "No space left on device" in text:
            return True
        if isinstance(e, RuntimeError) and any(m in text for m in ("unexpected pos", "file write failed", "PytorchStreamWriter failed")):
            for folder in folders:
                existing = next((p for p in [Path(folder), *Path(folder).resolve().parents] if p.exists()), None)
                try:
                    if existing is not None and shutil.disk_usage(existing).free < 64 * 2**20:
                        return True
                except OSError:
                    continue
        e = e.__cause__ or e.__context__
    return False
