"""Trainer plug-ins. Every module in this folder is one engine: it registers itself in `TRAINERS` with its
config schema (what `conf/trainer/<name>.yaml` extends) and its start-up checks, so a new engine is one
module here and one YAML. Engine modules import their heavy dependencies (torch, the engine itself) inside
functions: importing this package must stay cheap, since the CLI does it before composing the config."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
