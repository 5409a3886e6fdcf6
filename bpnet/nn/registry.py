"""One registry per kind of building block: layers, activations, losses,
initializers, optimizers, schedules, full-batch solvers.

A class joins its kind's registry where it is defined, with a decorator::

    @LAYERS.register("Dense")
    class Dense(Layer): ...

Everything that lists names (the CLI's choices and help, the estimator's
parameter checks, model files, checkpoints, resume) asks the registry, so
adding a class is one file plus its tests (docs/architecture.md).

A registered class describes itself with ``get_config()``, a JSON-ready dict
with its registered name under ``"type"``; ``Registry.from_config`` rebuilds
it, through the class's own ``from_config`` when it has one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, TypeVar

T = TypeVar("T", bound=type)


class Registry:
    """Names -> classes for one kind of building block.

    Parameters
    ----------
    kind : str
        What the entries are, for messages ("layer", "optimizer", ...).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type] = {}
        self._aliases: dict[str, str] = {}
        self._help: dict[str, str] = {}

    def register(
        self,
        name: str | None = None,
        *,
        aliases: tuple[str, ...] = (),
        help: str | None = None,
    ) -> Callable[[T], T]:
        """Class decorator: list the class under ``name`` (default: its
        class name) and ``aliases``; ``help`` is one line for the CLI (default:
        the first line of its docstring)."""

        def add(cls: T) -> T:
            key = name or cls.__name__
            for k in (key, *aliases):
                if k in self._classes or k in self._aliases:
                    raise ValueError(f"{self.kind} {k!r} is registered twice")
            self._classes[key] = cls
            for a in aliases:
                self._aliases[a] = key
            doc = (cls.__doc__ or "").strip().splitlines()
            self._help[key] = help or (doc[0].rstrip(".") if doc else key)
            if "registry_name" not in cls.__dict__:
                cls.registry_name = key
            return cls

        return add

    def names(self, aliases: bool = False) -> list[str]:
        """Registered names in registration order (and aliases, if asked)."""
        out = list(self._classes)
        return out + list(self._aliases) if aliases else out

    def help(self, name: str) -> str:
        return self._help[self.canonical(name)]

    def canonical(self, name: Any) -> str:
        """The registered name for ``name`` or an alias of it; a clear
        ValueError naming the kind and every choice otherwise."""
        if isinstance(name, str):
            if name in self._classes:
                return name
            if name in self._aliases:
                return self._aliases[name]
        raise ValueError(
            f"{self.kind}: expected one of {self.names(aliases=True)}, got {name!r}"
        )

    def get(self, name: Any) -> type:
        return self._classes[self.canonical(name)]

    def create(self, name: Any, **kwargs: Any) -> Any:
        return self.get(name)(**kwargs)

    def from_config(self, config: Any) -> Any:
        """Rebuild an object from its ``get_config()`` dict."""
        if not isinstance(config, dict) or "type" not in config:
            raise ValueError(
                f"{self.kind} config: expected a dict with a 'type' key, got {config!r}"
            )
        cls = self.get(config["type"])
        kwargs = {k: v for k, v in config.items() if k != "type"}
        if "from_config" in _own_attrs(cls):
            return cls.from_config(config)
        try:
            return cls(**kwargs)
        except TypeError as exc:
            raise ValueError(
                f"{self.kind} config {config!r}: does not fit {cls.__name__} ({exc})"
            ) from exc

    def __contains__(self, name: object) -> bool:
        return name in self._classes or name in self._aliases

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self._classes)})"


def _own_attrs(cls: type) -> set[str]:
    """Attributes defined by ``cls`` or a base below ``object``."""
    names: set[str] = set()
    for base in cls.__mro__[:-1]:
        names |= set(base.__dict__)
    return names
