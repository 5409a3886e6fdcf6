"""AdaGrad (Duchi et al. 2011; Deep Learning from Scratch, ch. 6)."""

from __future__ import annotations

from typing import Any

from bpnet.nn import validation as check
from bpnet.train.optimizers.base import OPTIMIZERS, Optimizer
from bpnet.train.optimizers.schedules import Schedule


@OPTIMIZERS.register("adagrad")
class AdaGrad(Optimizer):
    """AdaGrad: each weight's step shrinks with the squares of all its past
    gradients: h <- h + g * g; p <- p - lr g / (sqrt(h) + eps).

    Parameters
    ----------
    lr, schedule
        As for every ``Optimizer``; ``lr`` defaults to 0.01.
    eps : float, default=1e-7
        Added to sqrt(h), outside the root, as in Deep Learning from Scratch
        and ``torch.optim.Adagrad`` (whose default is 1e-10).
    """

    suggested_lr = 0.1  # best of 0.01, 0.03, 0.1 on the digits

    def __init__(
        self, lr: float = 0.01, eps: float = 1e-7, schedule: Schedule | None = None
    ) -> None:
        super().__init__(lr, schedule)
        self.eps = check.check_positive(eps, "eps")

    def update(self, params: list[Any], grads: list[Any]) -> None:
        w = self._prepare(params)
        xp, lr, eps = self._xp, self._lr, self.eps
        hs = self._zeros("h", params)
        for i, g in enumerate(grads):
            h = hs[i] = w.add(hs[i], g * g)
            params[i] = w.sub(params[i], lr * g / (xp.sqrt(h) + eps))
