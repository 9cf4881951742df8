"""Hydra callback for multiruns: one id and one MLflow parent run per sweep at the start; the
comparison report (report.csv, report.md, plots) at the end, failed jobs marked."""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

log = logging.getLogger("limr_exp")


class SweepCallback(Callback):
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        """The sweep's id and MLflow parent run (with the sweep's parameters as its params). A rerun of a
        sweep in the same folder (after a kill) continues both, instead of leaving the old parent RUNNING
        beside a new one."""
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        info_path = sweep_dir / "multirun.json"
        try:
            earlier = json.loads(info_path.read_text())
        except (OSError, ValueError):
            earlier = {}
        info = {"id": earlier.get("id") or f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}",
                "started": earlier.get("started") or time.time(), "overrides": list(config.hydra.overrides.task)}
        loggers = OmegaConf.to_container(config.logger, resolve=True) or {}
        if "mlflow" in loggers:
            import mlflow

            from limr_exp.tracking import MlflowLogger, default_tracking_uri, ensure_experiment

            opts = loggers["mlflow"] or {}
            uri = opts.get("tracking_uri") or default_tracking_uri()
            MlflowLogger.check_store(uri)
            mlflow.set_tracking_uri(uri)
            experiment_id = ensure_experiment(mlflow, opts.get("experiment", "limr-exp"), opts.get("artifact_root"))
            client = mlflow.MlflowClient(uri)
            self._close_orphans(client, experiment_id)
            parent = self._earlier_parent(client, earlier, uri)
            if parent is None:
                tags = {"limr.sweep_dir": str(sweep_dir), "limr.host": socket.gethostname(), "limr.pid": str(os.getpid())}
                parent = client.create_run(experiment_id, run_name=info["id"], tags=tags).info.run_id
                params = {"sweep.overrides": " ".join(info["overrides"])[:6000]}
                sweeper = OmegaConf.select(config, "hydra.sweeper.params", default=None)
                if sweeper:
                    params |= {f"sweep.{k}": str(v)[:6000] for k, v in OmegaConf.to_container(sweeper, resolve=True).items()}
                client.log_batch(parent, params=[mlflow.entities.Param(k, v) for k, v in params.items()])
            else:
                client.update_run(parent, status="RUNNING")
                client.set_tag(parent, "limr.pid", str(os.getpid()))
            info.update(mlflow_parent_run_id=parent, mlflow_tracking_uri=uri)
        info_path.write_text(json.dumps(info, indent=2))

    @staticmethod
    def _close_orphans(client, experiment_id: str) -> None:
        """Sweep parents still RUNNING whose sweep process (on this host) is gone were killed: say so."""
        from limr_exp.run_folder import pid_alive

        host = socket.gethostname()
        try:
            running = client.search_runs([experiment_id], filter_string=f"attributes.status = 'RUNNING' and tags.`limr.host` = '{host}'")
        except Exception:
            return
        for r in running:
            pid = r.data.tags.get("limr.pid", "")
            if pid.isdigit() and int(pid) != os.getpid() and not pid_alive(int(pid)):
                client.set_terminated(r.info.run_id, status="KILLED")

    @staticmethod
    def _earlier_parent(client, earlier: dict, uri: str) -> str | None:
        """The parent run of an earlier launch of this sweep folder, if it lives in this store."""
        run_id = earlier.get("mlflow_parent_run_id")
        if not run_id or earlier.get("mlflow_tracking_uri") != uri:
            return None
        try:
            return run_id if client.get_run(run_id).info.lifecycle_stage == "active" else None
        except Exception:
            return None

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        from limr_exp.report import build_report, write_report

        sweep_dir = Path(config.hydra.sweep.dir)
        frame = build_report(sweep_dir)
        write_report(frame, sweep_dir)
        failed = frame[frame["status"] != "finished"] if len(frame) else frame
        info_path = sweep_dir / "multirun.json"
        info = json.loads(info_path.read_text()) if info_path.exists() else {}
        if info.get("mlflow_parent_run_id"):
            import mlflow

            client = mlflow.MlflowClient(info["mlflow_tracking_uri"])
            client.log_artifact(info["mlflow_parent_run_id"], str(sweep_dir / "report.csv"))
            client.set_terminated(info["mlflow_parent_run_id"], status="FAILED" if len(failed) else "FINISHED")
        print(f"limr-exp: sweep report: {sweep_dir / 'report.md'} ({len(frame)} jobs)", flush=True)
        if len(failed):
            print(f"limr-exp: error: {len(failed)} of {len(frame)} jobs failed: {', '.join(failed['job'])}; "
                  f"see {sweep_dir / 'report.md'}", file=sys.stderr, flush=True)
            sys.exit(1)
