"""Plain minibatch gradient descent."""

from __future__ import annotations

from typing import Any

from bpnet.train.optimizers.base import OPTIMIZERS, Optimizer
from bpnet.train.optimizers.schedules import Schedule


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    """Plain minibatch gradient descent: p <- p - lr * g."""

    suggested_lr = 0.1

    def __init__(self, lr: float = 0.1, schedule: Schedule | None = None) -> None:
        super().__init__(lr, schedule)

    def update(self, params: list[Any], grads: list[Any]) -> None:
        w = self._prepare(params)
        lr = self._lr
        for i, g in enumerate(grads):
            params[i] = w.sub(params[i], lr * g)

    def _update_owned(self, params: list[Any], grads: list[Any]) -> None:
        if type(self).update is not SGD.update:  # a subclass's own rule wins
            self.update(params, grads)
            return
        # scale the gradient in place: no temporary the size of each weight
        w = self._prepare(params)
        lr = self._lr
        for i, g in enumerate(grads):
            params[i] = w.sub(params[i], w.mul(g, lr))
