"""Optimizers written once on the Array API, and learning-rate schedules.

``base`` holds the ``Optimizer`` class and the ``OPTIMIZERS`` registry,
``schedules`` the learning-rate schedules; every other module here is one
optimizer that registers itself. The package imports them all, so adding an
optimizer is one new file (docs/architecture.md); its class is then
importable from here and from ``bpnet``.
"""

import importlib
import pkgutil

from bpnet.train.optimizers.base import OPTIMIZERS, Optimizer, get_optimizer
from bpnet.train.optimizers.schedules import (
    SCHEDULES,
    CosineDecay,
    Schedule,
    StepDecay,
)

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

#: every registered optimizer class, by class name (SGD, Momentum, Adam, ...)
CLASSES = {OPTIMIZERS.get(name).__name__: OPTIMIZERS.get(name) for name in OPTIMIZERS}
globals().update(CLASSES)

__all__ = [
    "OPTIMIZERS",
    "SCHEDULES",
    "CosineDecay",
    "Optimizer",
    "Schedule",
    "StepDecay",
    "get_optimizer",
    *CLASSES,
]
