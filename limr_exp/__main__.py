"""CLI: `python -m limr_exp [overrides]` (Hydra). A thin wrapper around `pipeline.run(cfg)`."""

from pathlib import Path

import hydra
from omegaconf import DictConfig

from limr_exp import config  # noqa: F401  (registers the structured-config schema)


@hydra.main(config_path=str(Path(__file__).resolve().parents[1] / "conf"), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from limr_exp.pipeline import cli_run

    cli_run(cfg)


if __name__ == "__main__":
    main()
