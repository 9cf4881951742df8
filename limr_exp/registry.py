"""One registry per pluggable kind (selectors, trainers, evaluation backends, history formats): names map to
classes or functions, never string class paths from user input. A plug-in registers, with itself, the
config schema of its option (`conf/<group>/<name>.yaml` extends it: `defaults: [schema/<name>@_here_]`)
and the checks of its own settings, which `limr_exp.plugins.validate` runs for the chosen plug-ins only
(DESIGN.md: each plug-in owns its schema and its checks)."""

from __future__ import annotations

from typing import Callable, Generic, TypeVar

from limr_exp.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    def __init__(self, kind: str, config_key: str):
        self.kind = kind
        self.config_key = config_key
        self._entries: dict[str, T] = {}
        self._schemas: dict[str, type] = {}
        self._checks: dict[str, Callable] = {}

    def register(self, name: str, *, schema: type | None = None, check: Callable | None = None) -> Callable[[T], T]:
        """Register under `name`, with the dataclass its option's YAML extends (`schema`) and `check(cfg)`, which
        raises ConfigError with one line on a setting of this plug-in that types cannot rule out."""
        def add(obj: T) -> T:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._entries[name] = obj
            if schema is not None:
                self._schemas[name] = schema
            if check is not None:
                self._checks[name] = check
            return obj

        return add

    def schemas(self) -> dict[str, type]:
        """name -> the config schema that plug-in registered (plug-ins with nothing beyond the base have none)."""
        return dict(self._schemas)

    def check(self, name: str, cfg) -> None:
        """The named plug-in's own checks on `cfg` (after `get(name)` has named it as known)."""
        self.get(name)
        if name in self._checks:
            self._checks[name](cfg)

    def get(self, name: str) -> T:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries))
            raise ConfigError(f"unknown {self.kind} {name!r}: set {self.config_key} to one of {known}") from None

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries
