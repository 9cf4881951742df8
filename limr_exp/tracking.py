"""One Tracker that fans metrics out to the configured loggers and is always closed in `finally`.

Loggers (`logger=[...]`): `jsonl` (metrics.jsonl in the run folder), `wandb` (offline by default,
files inside the run folder, grouped by multirun), `mlflow` (a SQLite store under outputs/ by
default; a parent run per multirun with a nested run per job). `logger=[]` tracks nothing.
A job that fails is recorded as failed (W&B exit code 1, MLflow FAILED), one that is interrupted as killed
(exit code 143, MLflow KILLED); `status.json` is the run folder's (run_folder.py).
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Mapping

from limr_exp.errors import ConfigError
from limr_exp.io import write_json
from limr_exp.registry import Registry
from limr_exp.run_folder import outcome, signals_deferred

log = logging.getLogger("limr_exp")
STORE_BUSY_TIMEOUT_S = 5.0  # how long a locked SQLite tracking store is waited for before the one-line error


class RunInfo:
    """What loggers need to know about the job: names, grouping, its config."""

    def __init__(self, run_dir: Path, name: str, job_type: str, config: dict, sweep_dir: Path | None = None,
                 job_num: int | None = None, tags: list[str] | None = None):
        self.run_dir, self.name, self.job_type, self.config = Path(run_dir), name, job_type, config
        self.sweep_dir, self.job_num, self.labels = sweep_dir, job_num, tags or []

    def identity(self) -> dict:
        """The tracked runs of this folder: a unique, readable name (the run name and the time the folder was
        first run) and the W&B / MLflow run ids, kept in `<run>/.tracking.json` so a rerun of the same command
        continues the same tracked runs instead of starting look-alike ones."""
        path = self.run_dir / ".tracking.json"
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError):
            import uuid

            ident = {"name": f"{self.name}-{time.strftime('%Y%m%d-%H%M%S')}", "wandb_id": uuid.uuid4().hex[:12]}
            write_json(path, ident)
            return ident

    def remember(self, **ids) -> None:
        write_json(self.run_dir / ".tracking.json", {**self.identity(), **ids})

    @property
    def tags(self) -> dict[str, str]:
        return {"limr.run_dir": str(self.run_dir.resolve())}

    @property
    def group(self) -> str | None:
        """The multirun id shared by every job of a sweep (written by the sweep callback)."""
        if self.sweep_dir is None:
            return None
        info = self.sweep_dir / "multirun.json"
        if info.exists():
            return json.loads(info.read_text())["id"]
        return self.sweep_dir.name


def flatten(d: Mapping, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, Mapping):
            out.update(flatten(v, key + "."))
        elif isinstance(v, (list, tuple)):
            out[key] = json.dumps(v, default=str)[:500]
        else:
            out[key] = v
    return out


class JsonlLogger:
    def __init__(self, info: RunInfo, filename: str = "metrics.jsonl"):
        info.run_dir.mkdir(parents=True, exist_ok=True)
        self._f = open(info.run_dir / filename, "a", encoding="utf-8")

    def log(self, metrics: Mapping[str, Any], step: int | None) -> None:
        self._f.write(json.dumps({"time": time.time(), "step": step, **metrics}, default=float) + "\n")
        self._f.flush()

    def log_artifact(self, path: Path, kind: str) -> None:
        pass

    def log_table(self, name: str, rows: list[dict], full: Path | None = None) -> None:
        pass

    def finish(self, status: str) -> None:
        self._f.write(json.dumps({"time": time.time(), "status": status}) + "\n")
        self._f.close()


class WandbLogger:
    """Weights & Biases; offline unless `mode=online`, run files under `<run folder>/wandb/`."""

    def __init__(self, info: RunInfo, project: str = "limr-exp", entity: str | None = None, mode: str = "offline",
                 tags: list | None = None):
        try:
            import wandb
        except ImportError:
            raise ConfigError("logger=wandb needs the wandb package: pip install wandb (or drop it: 'logger=[jsonl]')") from None
        os.environ.setdefault("WANDB_SILENT", "true")
        cache = Path("outputs").resolve() / "cache" / "wandb"  # wandb's staging and cache stay under outputs/
        os.environ.setdefault("WANDB_CACHE_DIR", str(cache))
        os.environ.setdefault("WANDB_DATA_DIR", str(cache / "data"))
        os.environ.setdefault("WANDB_CONFIG_DIR", str(cache / "config"))
        self.wandb = wandb
        ident = info.identity()
        settings = dict(project=project, entity=entity, mode=mode, dir=str(info.run_dir), name=ident["name"], resume="allow",
                        group=info.group, job_type=info.job_type, tags=list(tags or []) + info.labels,
                        config={**info.config, **info.tags}, reinit="finish_previous")
        try:
            self.run = wandb.init(id=ident["wandb_id"], **settings)
        except Exception as e:  # a killed run's W&B service can hold its id a while: continue under a new one
            if "in use" not in str(e):
                raise
            resumed = f"{ident['wandb_id']}-{int(time.time())}"
            self.run = wandb.init(id=resumed, **settings)
            info.remember(wandb_id=resumed)
        self._namespaces: set[str] = set()

    def log(self, metrics: Mapping[str, Any], step: int | None) -> None:
        row = dict(metrics)
        if step is not None and row:  # each stage counts its own steps: probe/step, train/step (and eval/step in training)
            for namespace in {key.split("/")[0] for key in metrics}:
                if namespace not in self._namespaces:
                    self._namespaces.add(namespace)
                    self.run.define_metric(f"{namespace}/step")
                    self.run.define_metric(f"{namespace}/*", step_metric=f"{namespace}/step")
                row[f"{namespace}/step"] = step
        self.run.log(row)

    def log_artifact(self, path: Path, kind: str) -> None:
        art = self.wandb.Artifact(f"{self.run.name or 'run'}-{path.stem}".replace("/", "-"), type=kind)
        art.add_file(str(path))
        self.run.log_artifact(art)

    def log_table(self, name: str, rows: list[dict], full: Path | None = None) -> None:
        if not rows:
            return
        limit = self.wandb.Table.MAX_ARTIFACT_ROWS
        if len(rows) > limit:  # W&B would cut it with a warning of its own; say what is where instead
            log.info("W&B: table %s holds the first %d of its %d rows (W&B's limit); the whole table is %s", name, limit,
                     len(rows), full or "in the run folder")
            rows = rows[:limit]
        columns = list(rows[0])
        self.run.log({name: self.wandb.Table(columns=columns, data=[[r.get(c) for c in columns] for r in rows])})

    def finish(self, status: str) -> None:
        self.run.finish(exit_code={"finished": 0, "interrupted": 143}.get(status, 1))


class MlflowLogger:
    """MLflow with a real tracking store (SQLite by default); nested under the sweep's parent run."""

    def __init__(self, info: RunInfo, tracking_uri: str | None = None, experiment: str = "limr-exp",
                 artifact_root: str | None = None):
        try:
            import mlflow
        except ImportError:
            raise ConfigError("logger=mlflow needs the mlflow package: pip install mlflow (or drop it: 'logger=[jsonl]')") from None
        logging.getLogger("mlflow").setLevel(logging.WARNING)
        logging.getLogger("alembic").setLevel(logging.WARNING)
        self.mlflow = mlflow
        uri = tracking_uri or default_tracking_uri()
        self.check_store(uri)
        try:
            self._start(info, uri, experiment, artifact_root)
        except ConfigError:
            raise
        except Exception as e:  # the store is unreachable or broken: one line, not MLflow's traceback
            first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
            raise ConfigError(f"logger=mlflow: the tracking store {uri} cannot be used ({first}): fix or move it, point "
                              "MLFLOW_TRACKING_URI (or logger.mlflow.tracking_uri) at another store, or drop mlflow: "
                              "'logger=[jsonl, wandb]'") from None

    @staticmethod
    def check_store(uri: str) -> None:
        """A SQLite store that another process holds locked, or that is not a database, is one line at
        once (MLflow itself retries for about 20 s and then prints a long traceback)."""
        import sqlite3

        if not uri.startswith("sqlite:///"):
            return
        path = Path(uri[len("sqlite:///"):])
        if not path.exists():
            return
        try:
            con = sqlite3.connect(str(path), timeout=STORE_BUSY_TIMEOUT_S)
            try:
                con.execute("PRAGMA schema_version").fetchone()
                con.execute("BEGIN IMMEDIATE")
                con.rollback()
            finally:
                con.close()
        except sqlite3.OperationalError as e:
            raise ConfigError(f"logger=mlflow: the tracking store {path} cannot be written ({e}): another process holds it "
                              "(wait for it to end), or point MLFLOW_TRACKING_URI (or logger.mlflow.tracking_uri) at another "
                              "store, or drop mlflow: 'logger=[jsonl, wandb]'") from None
        except sqlite3.DatabaseError as e:
            raise ConfigError(f"logger=mlflow: the tracking store {path} is not a usable SQLite database ({e}): move it "
                              "aside and rerun (a new store is created), or point MLFLOW_TRACKING_URI elsewhere") from None

    def _start(self, info: RunInfo, uri: str, experiment: str, artifact_root: str | None) -> None:
        mlflow = self.mlflow
        mlflow.set_tracking_uri(uri)
        experiment_id = ensure_experiment(mlflow, experiment, artifact_root)
        parent = parent_run_id(info.sweep_dir)
        self.client = mlflow.MlflowClient(uri)
        ident = info.identity()
        self.run_id = self._resumable(ident.get("mlflow_run_id"), experiment_id)
        if self.run_id is not None:  # a rerun of the same command continues its run
            self.client.update_run(self.run_id, status="RUNNING")
            return
        tags = {"selector": info.job_type, **info.tags, **dict(label.split("=", 1) for label in info.labels if "=" in label)}
        if parent:
            tags["mlflow.parentRunId"] = parent
        self.run_id = self.client.create_run(experiment_id, run_name=ident["name"], tags=tags).info.run_id
        info.remember(mlflow_run_id=self.run_id)
        params = flatten(info.config)
        items = list(params.items())
        for i in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=[mlflow.entities.Param(k, str(v)[:6000]) for k, v in items[i:i + 100]])

    def _resumable(self, run_id: str | None, experiment_id: str) -> str | None:
        if not run_id:
            return None
        try:
            run = self.client.get_run(run_id)
        except Exception:  # another tracking store, or the run was deleted
            return None
        return run_id if run.info.experiment_id == experiment_id and run.info.lifecycle_stage == "active" else None

    def log(self, metrics: Mapping[str, Any], step: int | None) -> None:
        now = int(time.time() * 1000)
        ms = [self.mlflow.entities.Metric(k.replace("@", "_"), float(v), now, step or 0)
              for k, v in metrics.items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if ms:
            self.client.log_batch(self.run_id, metrics=ms)

    def log_artifact(self, path: Path, kind: str) -> None:
        self.client.log_artifact(self.run_id, str(path), artifact_path=kind)

    def log_table(self, name: str, rows: list[dict], full: Path | None = None) -> None:
        pass

    def finish(self, status: str) -> None:
        self.client.set_terminated(self.run_id, status={"finished": "FINISHED", "interrupted": "KILLED"}.get(status, "FAILED"))


LOGGERS: Registry = Registry("logger", "logger (a list, e.g. 'logger=[jsonl, mlflow]', or 'logger=[]')")
for _name, _cls in (("jsonl", JsonlLogger), ("wandb", WandbLogger), ("mlflow", MlflowLogger)):
    LOGGERS.register(_name)(_cls)


def default_tracking_uri() -> str:
    """MLFLOW_TRACKING_URI when set (as MLflow itself does), else a SQLite store at outputs/mlflow.db."""
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return os.environ["MLFLOW_TRACKING_URI"]
    path = Path("outputs").resolve() / "mlflow.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def ensure_experiment(mlflow, name: str, artifact_root: str | None = None) -> str:
    exp = mlflow.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    uri = mlflow.get_tracking_uri()
    if artifact_root is None and uri.startswith("sqlite:///"):
        artifact_root = (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").resolve().as_uri()
    try:
        return mlflow.create_experiment(name, artifact_location=artifact_root)
    except Exception:  # created meanwhile by a parallel job
        return mlflow.get_experiment_by_name(name).experiment_id


def parent_run_id(sweep_dir: Path | None) -> str | None:
    if sweep_dir is None or not (sweep_dir / "multirun.json").exists():
        return None
    return json.loads((sweep_dir / "multirun.json").read_text()).get("mlflow_parent_run_id")


class Tracker:
    """Fans metrics out to every configured logger. Use as a context manager; the status of the
    job (finished or failed) goes to every logger and to `<run folder>/status.json`."""

    def __init__(self, logger_cfg: Mapping[str, Any] | None, info: RunInfo | Path):
        if not isinstance(info, RunInfo):
            info = RunInfo(Path(info), Path(info).name, "run", {})
        self.info = info
        self.backends = []
        self.status = "finished"
        self.error: str | None = None
        try:
            with signals_deferred():
                for name, opts in (logger_cfg or {}).items():
                    self.backends.append(LOGGERS.get(name)(info, **dict(opts or {})))
        except BaseException as e:
            self.status, self.error = outcome(e)
            self.close()
            raise

    # Every call to the loggers finishes before a SIGINT/SIGTERM is raised (run_folder.signals_deferred).

    def log(self, metrics: Mapping[str, Any], step: int | None = None) -> None:
        with signals_deferred():
            for b in self.backends:
                b.log(metrics, step)

    def log_artifact(self, path: Path, kind: str) -> None:
        with signals_deferred():
            for b in self.backends:
                b.log_artifact(Path(path), kind)

    def log_table(self, name: str, rows: list[dict], full: Path | None = None) -> None:
        """A table of rows; `full` is where the whole table lives, for trackers that keep only part of it."""
        with signals_deferred():
            for b in self.backends:
                b.log_table(name, rows, full)

    def close(self) -> None:
        """Close every logger with the run's status (finished, failed or interrupted)."""
        with signals_deferred():
            for b in self.backends:
                try:
                    b.finish(self.status)
                except Exception as e:  # a logger failing to close must not hide the run's own outcome
                    log.warning("closing a logger failed: %s", e)
            self.backends = []

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.status, self.error = outcome(exc)
        self.close()
