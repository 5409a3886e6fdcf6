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
it, through the class's own ``from_config`` when it has one. A class's own
name is always understood too, so files that recorded class names still load.

A *variant* is a name for a registered class with preset keyword arguments
(``nesterov`` is ``momentum`` with ``nesterov=True``): a choice of its own on
the command line, and the name ``name_for`` gives back for a matching config.
"""

from __future__ import annotations

import inspect
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
        self._variants: dict[str, tuple[str, dict[str, Any]]] = {}
        self._class_names: dict[str, str] = {}

    def register(
        self,
        name: str | None = None,
        *,
        aliases: tuple[str, ...] = (),
        variants: dict[str, dict[str, Any]] | None = None,
        help: str | None = None,
    ) -> Callable[[T], T]:
        """Class decorator: list the class under ``name`` (default: its
        class name), ``aliases`` (other spellings) and ``variants`` (names
        with preset keyword arguments); ``help`` is one line for the CLI
        (default: the first line of its docstring)."""
        variants = variants or {}

        def add(cls: T) -> T:
            key = name or cls.__name__
            for k in (key, *aliases, *variants):
                if k in self:
                    raise ValueError(f"{self.kind} {k!r} is registered twice")
            self._classes[key] = cls
            for a in aliases:
                self._aliases[a] = key
            for v, preset in variants.items():
                self._variants[v] = (key, dict(preset))
            self._class_names.setdefault(cls.__name__, key)
            doc = (cls.__doc__ or "").strip().splitlines()
            self._help[key] = help or (doc[0].rstrip(".") if doc else key)
            if "registry_name" not in cls.__dict__:
                cls.registry_name = key
            return cls

        return add

    def names(self, aliases: bool = False) -> list[str]:
        """The choices, in registration order, each variant after its class
        (and the other spellings at the end, if asked)."""
        out = []
        for key in self._classes:
            out += [key, *(v for v, (k, _) in self._variants.items() if k == key)]
        return out + list(self._aliases) if aliases else out

    def help(self, name: str) -> str:
        if name in self._variants:
            key, preset = self._variants[name]
            shown = ", ".join(f"{k}={v!r}" for k, v in preset.items())
            return f"{self._help[key]} ({shown})"
        return self._help[self.canonical(name)]

    def canonical(self, name: Any) -> str:
        """The registered name for ``name``, an alias, a variant or a class
        name; a clear ValueError naming the kind and every choice otherwise."""
        if isinstance(name, str):
            if name in self._classes:
                return name
            if name in self._aliases:
                return self._aliases[name]
            if name in self._variants:
                return self._variants[name][0]
            if name in self._class_names:
                return self._class_names[name]
        raise ValueError(
            f"{self.kind}: expected one of {self.names(aliases=True)}, got {name!r}"
        )

    def get(self, name: Any) -> type:
        return self._classes[self.canonical(name)]

    def create(self, name: Any, **kwargs: Any) -> Any:
        """An instance of ``name``'s class; a variant's presets come first,
        ``kwargs`` override them."""
        return self.get(name)(**{**self.preset(name), **kwargs})

    def preset(self, name: Any) -> dict[str, Any]:
        """The keyword arguments ``name`` fixes: a variant's, else none."""
        known = isinstance(name, str) and name in self._variants
        return dict(self._variants[name][1]) if known else {}

    def name_of(self, obj: Any) -> str | None:
        """The registered name of a class or instance, or None."""
        cls = obj if isinstance(obj, type) else type(obj)
        for key, c in self._classes.items():
            if c is cls:
                return key
        return None

    def name_for(self, config: dict) -> str:
        """The choice a ``get_config()`` dict stands for: the variant whose
        presets it matches, else its class's registered name."""
        key = self.canonical(config.get("type"))
        for v, (k, preset) in self._variants.items():
            if k == key and all(config.get(p) == x for p, x in preset.items()):
                return v
        return key

    def from_config(self, config: Any) -> Any:
        """Rebuild an object from its ``get_config()`` dict."""
        if not isinstance(config, dict) or "type" not in config:
            raise ValueError(
                f"{self.kind} config: expected a dict with a 'type' key, got {config!r}"
            )
        cls = self.get(config["type"])
        kwargs = {k: v for k, v in config.items() if k != "type"}
        try:
            if "from_config" in _own_attrs(cls):
                return cls.from_config(config)
            return cls(**kwargs)
        except TypeError as exc:
            raise ValueError(
                f"{self.kind} config {config!r}: does not fit {cls.__name__} ({exc})"
            ) from exc

    def __contains__(self, name: object) -> bool:
        return name in self._classes or name in self._aliases or name in self._variants

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


def init_config(obj: Any, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The arguments of ``type(obj).__init__`` read back from the attributes
    of the same names: a ``get_config()`` for classes that keep them so."""
    params = inspect.signature(type(obj).__init__).parameters
    return {
        name: getattr(obj, name)
        for name, p in params.items()
        if name != "self" and name not in skip and p.kind is p.POSITIONAL_OR_KEYWORD
    }
