"""CLI: `python -m limr_exp [overrides]` (Hydra). A thin wrapper around `pipeline.run(cfg)`."""

import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig

from limr_exp import config, plugins  # noqa: F401  (register the structured-config schemas)


@hydra.main(config_path=str(Path(__file__).resolve().parents[1] / "conf"), config_name="config", version_base="1.3")
def hydra_main(cfg: DictConfig) -> None:
    from limr_exp.pipeline import cli_run

    cli_run(cfg)


def main() -> None:
    """A misspelt key or a missing launcher plugin is one line with the fix; everything else is Hydra's."""
    hint = config.override_hint(sys.argv[1:])
    if hint:
        print(f"limr-exp: error: {hint}", file=sys.stderr)
        sys.exit(2)
    hydra_main()


if __name__ == "__main__":
    main()
