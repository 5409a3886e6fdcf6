"""Adam, with optional decoupled weight decay (AdamW)."""

from __future__ import annotations

from typing import Any

from bpnet.nn import validation as check
from bpnet.train.optimizers.base import OPTIMIZERS, Optimizer
from bpnet.train.optimizers.schedules import Schedule


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    """Adam (Kingma & Ba) with optional decoupled weight decay (AdamW).

    ``weight_decay`` shrinks only the parameters in ``decay_mask`` (in ``fit``:
    the layers' weights, never biases or normalisation scales and shifts).
    """

    suggested_lr = 0.003

    def __init__(
        self,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(lr, schedule)
        self.beta1 = check.check_fraction(beta1, "beta1")
        self.beta2 = check.check_fraction(beta2, "beta2")
        self.eps = check.check_positive(eps, "eps")
        self.weight_decay = check.check_nonnegative(weight_decay, "weight_decay")

    def update(self, params: list[Any], grads: list[Any]) -> None:
        w = self._prepare(params)
        xp, b1, b2 = self._xp, self.beta1, self.beta2
        m, v = self._zeros("m", params), self._zeros("v", params)
        self._t = w.add(self._t, 1.0)
        # Bias corrections folded into the step size and epsilon (the paper's
        # Algorithm 1 note), computed on the device from the device step count.
        root = xp.sqrt(1.0 - b2**self._t)
        step = self._lr * root / (1.0 - b1**self._t)
        eps = self.eps * root
        decays = self.decay_mask or [True] * len(params)
        for i, (g, decays_p) in enumerate(zip(grads, decays)):
            m_i = m[i] = w.add(w.mul(m[i], b1), (1.0 - b1) * g)
            v_i = v[i] = w.add(w.mul(v[i], b2), (1.0 - b2) * (g * g))
            p = params[i]
            if self.weight_decay and decays_p:
                p = w.sub(p, (self.weight_decay * self._lr) * p)
            params[i] = w.sub(p, step * m_i / (xp.sqrt(v_i) + eps))
