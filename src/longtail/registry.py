"""A tiny name -> factory registry shared by models, losses, samplers, transforms and methods.

Configs name components (``loss: {name: ldam, scale: 30}``); :meth:`Registry.build` looks the
name up and checks the remaining keys against the factory's signature, so a typo in a config
fails with a message that lists the valid keys instead of a ``TypeError`` deep in a constructor.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from .errors import ConfigError

__all__ = ["ConfigError", "Registry"]


class Registry:
    """Maps names to factories (classes or functions)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Callable[..., Any]] = {}

    def register(self, name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Decorator registering a factory under ``name``."""

        def add(factory: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._factories:
                raise KeyError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return add

    def names(self) -> list[str]:
        return sorted(self._factories)

    def get(self, name: str) -> Callable[..., Any]:
        if name not in self._factories:
            raise ConfigError(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self.names())}"
            )
        return self._factories[name]

    def build(self, spec: str | Mapping[str, Any], **context: Any) -> Any:
        """Build from ``"name"`` or ``{"name": ..., **options}``.

        ``context`` holds arguments the caller supplies (class counts, number of classes, ...);
        they are passed only to factories that name them, and a config may not set them.
        """
        if isinstance(spec, str):
            name, options = spec, {}
        elif isinstance(spec, Mapping):
            options = dict(spec)
            if "name" not in options:
                raise ConfigError(f"a {self.kind} spec needs a 'name' key (one of: "
                                  f"{', '.join(self.names())}), got {dict(spec)}")
            name = options.pop("name")
        else:
            raise ConfigError(f"a {self.kind} is given by its name or a mapping with a 'name' key, "
                              f"got {spec!r}")
        factory = self.get(name)
        params = inspect.signature(factory).parameters
        accepts_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
        valid = [p for p in params if p not in context and p != "self"]
        unknown = [key for key in options if key not in valid and not accepts_any]
        if unknown:
            raise ConfigError(
                f"{self.kind} {name!r} has no option {', '.join(map(repr, unknown))}; "
                f"valid options: {', '.join(valid) or '(none)'}"
            )
        clashes = [key for key in options if key in context]
        if clashes:
            raise ConfigError(
                f"{self.kind} {name!r}: {', '.join(clashes)} is set by longtail, not the config"
            )
        required = [key for key, p in params.items() if p.default is p.empty and key in valid
                    and key not in options and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if required:
            raise ConfigError(
                f"{self.kind} {name!r} needs {', '.join(map(repr, required))}: give it as "
                f"{{name: {name}, {', '.join(f'{key}: ...' for key in required)}}}"
            )
        given = {k: v for k, v in context.items() if k in params}
        return factory(**options, **given)
