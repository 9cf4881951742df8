"""Shared fixtures: the real conf/ composed with hydra's compose API, step-dump builders, data paths."""

from __future__ import annotations

import copy
import functools
import json
import os
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

import limr_exp.config
import limr_exp.plugins  # noqa: F401  (registers the schemas, the plug-ins' included)

ROOT = Path(__file__).resolve().parents[1]
CONF_DIR = ROOT / "conf"
SHARED_DATA = Path(limr_exp.config.default_data_root())  # the CLI's own default: one definition


@pytest.fixture(scope="session", autouse=True)
def private_tracking_stores(tmp_path_factory):
    """Tests (and the CLI runs they start) track into a temporary MLflow store and W&B folders, never the checkout's."""
    root = tmp_path_factory.mktemp("tracking")
    saved = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR")}
    os.environ.update(MLFLOW_TRACKING_URI=f"sqlite:///{root / 'mlflow.db'}", WANDB_CACHE_DIR=str(root / "wandb-cache"),
                      WANDB_DATA_DIR=str(root / "wandb-data"), WANDB_CONFIG_DIR=str(root / "wandb-config"))
    yield root
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v


def compose_cfg(overrides=(), output_dir=None):
    """The real config tree composed with `overrides`, as the CLI would see it (a fresh copy each call:
    a test may change it)."""
    cfg = copy.deepcopy(_composed(tuple(overrides)))
    if output_dir is not None:
        cfg.output_dir = str(output_dir)
    return cfg


def cli_cases(*cases):
    """Parameters of a test that starts the CLI once per case: the first runs in the fast tier, the others
    are marked `slow` (a CLI process is ~0.6 s; CI runs every case)."""
    return [case if i == 0 else pytest.param(*(case if isinstance(case, tuple) else (case,)), marks=pytest.mark.slow)
            for i, case in enumerate(cases)]


@functools.cache
def _composed(overrides: tuple[str, ...]):
    """Hydra's composition (~0.1 s a call), once per distinct override list in a session."""
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


@pytest.fixture
def shared_data() -> Path:
    if not (SHARED_DATA / "math_full_8523.json").exists():
        pytest.skip(f"real LIMR data not found at {SHARED_DATA} (set LIMR_DATA_DIR)")
    return SHARED_DATA


def write_step_dumps(folder: Path, epochs: list[dict[str, list[float]]], steps_per_epoch: int = 2) -> Path:
    """Write LIMR-style step dumps: epochs[k] maps prompt text -> rewards of its samples in epoch k+1.
    Each epoch's samples are spread over `steps_per_epoch` files step_{n}.json (n from 1)."""
    folder.mkdir(parents=True, exist_ok=True)
    step = 0
    for epoch in epochs:
        samples = [{"prompt": p, "response": "r", "reward": r} for p, rs in epoch.items() for r in rs]
        for j in range(steps_per_epoch):
            step += 1
            (folder / f"step_{step}.json").write_text(json.dumps(samples[j::steps_per_epoch]))
    return folder


def write_dataset(path: Path, prompts: list[str], ids: list[str] | None = None) -> Path:
    rows = [{"id": ids[i] if ids else f"q{i}", "prompt": p, "answer": str(i), "extra": i} for i, p in enumerate(prompts)]
    path.write_text(json.dumps(rows))
    return path


def released_wheel(package: str, version: str) -> Path:
    """The released wheel `package==version`, fetched once with `pip download` (cached under
    outputs/cache/wheels) to be read, never installed; the test is skipped where it cannot be fetched."""
    import subprocess
    import sys

    cache = ROOT / "outputs" / "cache" / "wheels"
    cache.mkdir(parents=True, exist_ok=True)
    pattern = f"{package.replace('-', '_')}-{version}-*.whl"
    wheels = list(cache.glob(pattern))
    if not wheels:
        r = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"{package}=={version}", "-d", str(cache)],
                           capture_output=True, text=True, timeout=300)
        wheels = list(cache.glob(pattern))
        if not wheels:
            pytest.skip(f"cannot download {package}=={version}: {r.stderr.strip()[-200:]}")
    return wheels[0]


def released_source(package: str, version: str, member: str) -> str:
    """The text of `member` (a path ending) inside the released wheel `package==version`. Engine contracts
    are tested against this code, not against our restatement of it."""
    import zipfile

    with zipfile.ZipFile(released_wheel(package, version)) as z:
        name = next(n for n in z.namelist() if n.endswith(member))
        return z.read(name).decode()


def released_folder(package: str, version: str, folder: str, dest: Path) -> Path:
    """The files under `folder` (e.g. verl/trainer/config/) of the released wheel, extracted into `dest`."""
    import zipfile

    with zipfile.ZipFile(released_wheel(package, version)) as z:
        for name in z.namelist():
            if name.startswith(folder) and not name.endswith("/"):
                target = dest / name[len(folder):]
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(z.read(name))
    return dest


def to_yaml(cfg) -> str:
    return OmegaConf.to_yaml(cfg)
