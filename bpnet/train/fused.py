"""Plain SGD folded into the backward pass.

``W <- W - lr * x.T @ dy`` is one matrix product with ``beta = 1`` where the
backend writes products straight into their output (BLAS ``gemm`` on NumPy,
``Backend.folds_matmul_update``): no gradient array is made and no separate
pass over the weights updates them, which is most of a small step's fixed
cost. ``fit`` takes this path only where it is the plain step exactly, up to
rounding; everything else keeps ``Optimizer.update``.
"""

from __future__ import annotations

from typing import Any

from bpnet.nn.layers import folds_sgd
from bpnet.nn.losses import Loss
from bpnet.train.optimizers import Optimizer
from bpnet.train.optimizers.sgd import SGD


def fused_sgd_applies(
    net: Any,
    opt: Optimizer,
    l2: float,
    weights: Any,
    strategy: Any,
    capture: bool,
) -> bool:
    """Whether a fit's steps may fold the SGD update into the backward pass:
    plain SGD (no subclass rule), one process (or a data-parallel job of one
    rank, which has nothing to reduce), no recorded graph (it would
    keep the learning rate of the epoch it recorded), every layer that learns
    defining ``backward_sgd`` (Dense), no L2 term divided by a sum of sample
    weights (a device number), and a backend where folding saves a pass."""
    plain = (
        isinstance(opt, SGD)
        and type(opt).update is SGD.update
        and type(opt)._update_owned is SGD._update_owned
    )
    return (
        plain
        and (strategy is None or strategy.size == 1)
        and not capture
        and (weights is None or not l2)
        and net.backend.folds_matmul_update
        and all(folds_sgd(layer) for layer in net._learning)
    )


class SGDStep:
    """One training step with the update folded in: forward, loss, then the
    backward pass, each learning layer stepping its own parameters
    (``backward_sgd``) as soon as its input's gradient is taken."""

    def __init__(self, net: Any, loss: Loss, l2: float) -> None:
        self.net, self.loss, self.l2 = net, loss, l2
        learning = set(map(id, net._learning))
        # (backward or backward_sgd, learns, need_dx), last layer first
        self.backward = []
        for i in range(len(net.layers) - 1, -1, -1):
            layer = net.layers[i]
            learns = id(layer) in learning
            method = layer.backward_sgd if learns else layer.backward
            self.backward.append((method, learns, net._need_dx[i]))

    def __call__(self, X: Any, T: Any, lr: float, weights: Any = None) -> tuple:
        """(0-D loss, logits); the parameters are stepped in place."""
        net = self.net
        Z, L, dZ, n = net._loss_head(X, T, self.loss, True, weights)
        decay = 1.0
        if self.l2:  # fused_sgd_applies: n is a Python int here
            L = L + net._l2_penalty(self.l2, n)  # the weights before the step
            decay = 1.0 - lr * self.l2 / n
        for backward, learns, need_dx in self.backward:
            if learns:
                dZ = backward(dZ, need_dx, lr, decay)
            else:
                dZ = backward(dZ, need_dx)
        return L, Z
