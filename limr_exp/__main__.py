"""CLI: `python -m limr_exp [overrides]` (Hydra). A thin wrapper around `pipeline.run(cfg)`."""

if __name__ == "__main__":  # first of all, so that its imports overlap Hydra's (see limr_exp.background)
    import sys

    from limr_exp.background import prewarm

    prewarm(sys.argv[1:])

from pathlib import Path  # noqa: E402

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from limr_exp import config  # noqa: E402,F401  (registers the structured-config schema)


CONF_DIR = str(Path(__file__).resolve().parents[1] / "conf")


@hydra.main(config_path=CONF_DIR, config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> None:
    from limr_exp.pipeline import cli_run

    cli_run(cfg)


if __name__ == "__main__":
    main()
