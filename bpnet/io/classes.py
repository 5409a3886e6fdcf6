"""The class labels a model file records: one per output of the model (two
for a single sigmoid output), str or numbers, none twice."""

from __future__ import annotations

from typing import Any

import numpy as np


def _n_outputs(model: Any) -> int | None:
    n = getattr(model, "n_outputs", None)
    n = getattr(model, "n_outputs_", None) if n is None else n
    return n if type(n) is int else None


def _classes_problem(classes: Any, n_outputs: int | None) -> str | None:
    """What is wrong with ``classes`` as the names of a model's outputs (one
    label per output, or two for a single sigmoid output), or None."""
    ok = isinstance(classes, list) and all(
        isinstance(c, (str, int, float, bool)) for c in classes
    )
    if not ok:
        return f"expected a list of class labels (str or numbers), got {classes!r:.80}"
    if n_outputs is not None and len(classes) not in (
        n_outputs,
        2 if n_outputs == 1 else n_outputs,
    ):
        return (
            f"expected one label per output of the model ({n_outputs}), got "
            f"{len(classes)}"
        )
    seen: set = set()
    for c in classes:
        if (type(c), c) in seen:
            return f"the label {c!r:.40} appears more than once"
        seen.add((type(c), c))
    return None


def _check_classes(classes: Any, model: Any) -> list:
    if isinstance(classes, (np.ndarray, tuple)):
        classes = list(np.asarray(classes).tolist())
    problem = _classes_problem(classes, _n_outputs(model))
    if problem is not None:
        error = TypeError if problem.startswith("expected a list") else ValueError
        raise error(f"classes: {problem}")
    return classes
