"""Heavy-ball and Nesterov momentum (``nesterov`` is a variant of ``momentum``)."""

from __future__ import annotations

from typing import Any

from bpnet.nn import validation as check
from bpnet.train.optimizers.base import OPTIMIZERS, Optimizer
from bpnet.train.optimizers.schedules import Schedule


@OPTIMIZERS.register("momentum", variants={"nesterov": {"nesterov": True}})
class Momentum(Optimizer):
    """Heavy-ball momentum, optionally Nesterov (scikit-learn's formulation):
    v <- mu v - lr g; p <- p + v  (Nesterov: p <- p + mu v - lr g).
    """

    suggested_lr = 0.1

    def __init__(
        self,
        lr: float = 0.01,
        momentum: float = 0.9,
        nesterov: bool = False,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(lr, schedule)
        self.momentum = check.check_fraction(momentum, "momentum")
        self.nesterov = bool(nesterov)

    def update(self, params: list[Any], grads: list[Any]) -> None:
        w = self._prepare(params)
        lr, mu = self._lr, self.momentum
        vs = self._zeros("velocity", params)
        for i, g in enumerate(grads):
            step = lr * g
            v = vs[i] = w.sub(w.mul(vs[i], mu), step)
            if self.nesterov:
                params[i] = w.sub(w.add(params[i], mu * v), step)
            else:
                params[i] = w.add(params[i], v)
