"""A tiny name -> factory registry shared by models, losses, samplers, transforms and methods.

Configs name components (``loss: {name: ldam, scale: 30}``); :meth:`Registry.build` looks the
name up and checks the remaining keys against the factory's signature, so a typo in a config
fails with a message that lists the valid keys instead of a ``TypeError`` deep in a constructor.

Where things are registered: each registry lives in its own module (``models/registry.py``) or
beside the base class of what it holds (``METHODS`` with ``Method``), and a component registers
with a decorator on its definition: ``@LOSSES.register("focal")``. A whole family of names
registers once with :meth:`Registry.register_family`: ``@MODELS.register_family("bbn_", BACKBONES)``
makes ``bbn_resnet32`` mean ``factory("resnet32", ...)`` for every backbone, resolved when the
name is looked up, so a backbone registered later has its ``bbn_`` model too. A package's
``__init__`` imports every module that defines components, so a registry is complete as soon as
anything from its package is imported, whichever module that is.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Collection, Mapping
from typing import Any

from .errors import ConfigError

__all__ = ["ConfigError", "Registry"]

Factory = Callable[..., Any]


class Registry:
    """Maps names to factories (classes or functions)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._factories: dict[str, Factory] = {}
        # prefix -> (the members: a registry, or fixed names; factory(member, **options))
        self._families: dict[str, tuple[Registry | Collection[str], Factory]] = {}

    def register(self, name: str) -> Callable[[Factory], Factory]:
        """Decorator registering a factory under ``name``."""

        def add(factory: Factory) -> Factory:
            if name in self._factories:
                raise KeyError(f"{self.kind} {name!r} is registered twice")
            self._factories[name] = factory
            return factory

        return add

    def register_family(self, prefix: str, members: Registry | Collection[str]) -> Callable[[Factory], Factory]:
        """Decorator registering ``factory(member, **options)`` as ``prefix + member`` for every
        member: each name of the registry ``members`` at lookup time, or each of fixed names."""

        def add(factory: Factory) -> Factory:
            if prefix in self._families:
                raise KeyError(f"{self.kind} family {prefix!r} is registered twice")
            self._families[prefix] = (members, factory)
            return factory

        return add

    def _family_members(self) -> list[tuple[str, Registry | Collection[str], list[str], Factory]]:
        return [(prefix, members, members.names() if isinstance(members, Registry) else sorted(members), factory)
                for prefix, (members, factory) in self._families.items()]

    def names(self) -> list[str]:
        """Every name this registry resolves, families spelt out."""
        spelt = [prefix + member for prefix, _, names, _ in self._family_members() for member in names]
        return sorted([*self._factories, *spelt])

    def choices(self) -> str:
        """The valid names for a message: a family over a registry as ``bbn_<backbone>``."""
        names, registries = list(self._factories), {}
        for prefix, members, member_names, _ in self._family_members():
            if isinstance(members, Registry):
                names.append(f"{prefix}<{members.kind}>")
                registries[members.kind] = member_names
            else:
                names += [prefix + member for member in member_names]
        where = "".join(f"; <{kind}> is one of: {', '.join(members)}" for kind, members in registries.items())
        return ", ".join(sorted(names)) + where

    def get(self, name: str) -> Factory:
        found = [self._factories[name]] if name in self._factories else []
        found += [functools.partial(factory, name[len(prefix):])
                  for prefix, _, members, factory in self._family_members()
                  if name.startswith(prefix) and name[len(prefix):] in members]
        if len(found) > 1:
            raise KeyError(f"{self.kind} {name!r} is registered twice (by name and by a family)")
        if not found:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of: {self.choices()}")
        return found[0]

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
                                  f"{self.choices()}), got {dict(spec)}")
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
