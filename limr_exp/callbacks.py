"""Hydra callback for multiruns: one id and one MLflow parent run per sweep at the start; the
comparison report (report.csv, report.md, plots) at the end, failed jobs marked."""

from __future__ import annotations

import json
import logging
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
        sweep_dir = Path(config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        info = {"id": f"sweep-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}", "started": time.time(),
                "overrides": list(config.hydra.overrides.task)}
        loggers = OmegaConf.to_container(config.logger, resolve=True) or {}
        if "mlflow" in loggers:
            from limr_exp.tracking import default_tracking_uri, ensure_experiment

            import mlflow

            opts = loggers["mlflow"] or {}
            uri = opts.get("tracking_uri") or default_tracking_uri()
            mlflow.set_tracking_uri(uri)
            experiment_id = ensure_experiment(mlflow, opts.get("experiment", "limr-exp"), opts.get("artifact_root"))
            client = mlflow.MlflowClient(uri)
            parent = client.create_run(experiment_id, run_name=info["id"], tags={"limr.sweep_dir": str(sweep_dir)})
            info.update(mlflow_parent_run_id=parent.info.run_id, mlflow_tracking_uri=uri)
        (sweep_dir / "multirun.json").write_text(json.dumps(info, indent=2))

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
