"""RMSprop (Tieleman & Hinton 2012; Deep Learning from Scratch, ch. 6)."""

from __future__ import annotations

from typing import Any

from bpnet.nn import validation as check
from bpnet.train.optimizers.base import OPTIMIZERS, Optimizer
from bpnet.train.optimizers.schedules import Schedule


@OPTIMIZERS.register("rmsprop")
class RMSprop(Optimizer):
    """RMSprop: AdaGrad with a decaying average of squared gradients, so old
    gradients are forgotten: h <- rho h + (1 - rho) g * g;
    p <- p - lr g / (sqrt(h) + eps).

    Parameters
    ----------
    lr, schedule
        As for every ``Optimizer``; ``lr`` defaults to 0.01.
    decay_rate : float, default=0.99
        rho, the book's ``decay_rate`` (``alpha`` in torch, ``rho`` in Keras).
    eps : float, default=1e-7
        Added to sqrt(h), outside the root, as in Deep Learning from Scratch
        and ``torch.optim.RMSprop`` (whose default is 1e-8); Keras adds it
        inside the root.
    """

    suggested_lr = 0.003  # as for Adam; 0.01 can be noisy on larger data

    def __init__(
        self,
        lr: float = 0.01,
        decay_rate: float = 0.99,
        eps: float = 1e-7,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(lr, schedule)
        self.decay_rate = check.check_fraction(decay_rate, "decay_rate")
        self.eps = check.check_positive(eps, "eps")

    def update(self, params: list[Any], grads: list[Any]) -> None:
        w = self._prepare(params)
        xp, lr, rho, eps = self._xp, self._lr, self.decay_rate, self.eps
        hs = self._zeros("h", params)
        for i, g in enumerate(grads):
            h = hs[i] = w.add(w.mul(hs[i], rho), (1.0 - rho) * (g * g))
            params[i] = w.sub(params[i], lr * g / (xp.sqrt(h) + eps))
