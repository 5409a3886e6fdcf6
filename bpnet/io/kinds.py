"""The kinds of objects a model file may hold: ``register_kind`` teaches
``save`` and ``load`` a model type, and the file's ``"kind"`` names the
loader, never a module to import."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bpnet.io.model_format import ModelFileError

Saver = Callable[[Any], tuple[dict[str, np.ndarray], dict[str, Any]]]
Loader = Callable[[dict[str, np.ndarray], dict[str, Any], Any, Any], Any]
Shapes = dict[str, tuple[int, ...]]
ArraysOf = Callable[[dict[str, Any]], tuple[Shapes, Shapes]]


@dataclass(frozen=True)
class _Kind:
    name: str
    types: tuple[type, ...]
    saver: Saver
    loader: Loader
    arrays: ArraysOf | None = None


_KINDS: dict[str, _Kind] = {}

# bpnet's own kinds that live in modules with heavier dependencies, imported
# on first use. The module names are fixed here, never read from a file.
_LAZY_KINDS = {
    "MLPClassifier": "bpnet.sklearn.classifier",
    "MLPRegressor": "bpnet.sklearn.regressor",
}


def _ensure_kind(name: Any) -> None:
    if isinstance(name, str) and name not in _KINDS and name in _LAZY_KINDS:
        import importlib

        importlib.import_module(_LAZY_KINDS[name])


def register_kind(
    name: str,
    saver: Saver,
    loader: Loader,
    *,
    types: type | tuple[type, ...],
    arrays: ArraysOf | None = None,
) -> None:
    """Teach ``save`` and ``load`` a model type.

    Parameters
    ----------
    name : str
        Stored as the file's ``"kind"``; ``load`` picks the loader by it (and
        by nothing else in the file: no module is imported from a file).
    saver : callable
        ``saver(obj) -> (arrays, metadata)``: host NumPy arrays (names without
        the ``"state/"`` prefix) and a JSON-ready dict describing ``obj``.
    loader : callable
        ``loader(arrays, metadata, backend, dtype) -> obj``: rebuilds the
        object on ``backend`` (a ``backends.Backend``); ``dtype`` is None
        (keep the saved one) or what the caller asked for. It raises
        ``ModelFileError`` (or ``ValueError``/``TypeError``/``KeyError``,
        which ``load`` turns into one) when the contents do not fit.
    types : type or tuple of types
        ``save`` uses this kind for instances of these types and their
        subclasses (the most specific registered type wins).
    arrays : callable, optional
        ``arrays(metadata) -> (parameters, others)``: the arrays a file of
        this kind holds, each a dict {name: shape}, computed from the
        metadata alone (raising ``ModelFileError`` when it describes nothing
        valid): those of the model's parameters, in their order, and any
        other arrays it keeps (running statistics, say). With it, a file
        whose arrays differ in name or shape is refused before any of them
        is unpacked; without it, only the size limits bound what is read.

    Registering a name again replaces the earlier entry.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"name: expected a non-empty str, got {name!r}")
    for what, fn in (("saver", saver), ("loader", loader)):
        if not callable(fn):
            raise TypeError(f"{what}: expected a callable, got {fn!r}")
    types = types if isinstance(types, tuple) else (types,)
    if not types or not all(isinstance(t, type) for t in types):
        raise TypeError(f"types: expected a class or a tuple of classes, got {types}")
    if arrays is not None and not callable(arrays):
        raise TypeError(f"arrays: expected a callable, got {arrays!r}")
    _KINDS[name] = _Kind(name, types, saver, loader, arrays)


def _kind_of(model: Any) -> _Kind:
    for cls in type(model).__mro__:
        for kind in reversed(_KINDS.values()):
            if cls in kind.types:
                return kind
    raise TypeError(
        f"model: expected one of the savable types "
        f"({', '.join(sorted(set(_KINDS) | set(_LAZY_KINDS)))}), "
        f"got {type(model).__name__}"
    )


def _kind_named(name: Any) -> _Kind:
    _ensure_kind(name)
    if not isinstance(name, str) or name not in _KINDS:
        raise ModelFileError(
            f"holds a model of kind {name!r:.60}, which this bpnet cannot rebuild "
            f"(known: {', '.join(sorted(_KINDS))}; is the module that registers "
            "it imported?)"
        )
    return _KINDS[name]
