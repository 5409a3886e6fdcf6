"""Batch normalisation ("Deep Learning from Scratch", ch. 6; Ioffe & Szegedy
2015): its forward beside its backward, and the running statistics it keeps.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

from bpnet.nn import validation as check
from bpnet.nn.layers import LAYERS, Layer
from bpnet.nn.mutation import writer


@LAYERS.register()
class BatchNorm(Layer):
    """Normalise each feature over the batch, then scale and shift it.

    In training, with the batch's mean and (biased) variance per feature::

        xn = (x - mean) / sqrt(var + eps);  y = gamma * xn + beta
        running_mean <- momentum * running_mean + (1 - momentum) * mean
        running_var  <- momentum * running_var  + (1 - momentum) * var

    In inference (``training=False``: ``predict``, ``evaluate``, and the
    full-batch ``minimize``, which trains the inference-mode function) the
    running statistics take the batch's place and are left unchanged.

    Parameters
    ----------
    momentum : float in [0, 1), default 0.9
        The weight of the old running statistics (Deep Learning from Scratch's
        convention). PyTorch's ``BatchNorm1d(momentum=m)`` weighs the new
        batch by ``m``: bpnet's ``momentum`` is ``1 - m`` (0.9 for torch's
        default 0.1). PyTorch also updates ``running_var`` with the unbiased
        batch variance (times n / (n - 1)); bpnet uses the biased one, the
        one it normalises with.
    eps : float > 0, default 1e-5
        Added to the variance before the square root.

    Learns ``gamma`` (ones at the start) and ``beta`` (zeros), of shape
    (n_features,), neither of which takes the l2 penalty; keeps the buffers
    ``running_mean`` (zeros) and ``running_var`` (ones), updated in place
    where the array library allows it.
    """

    param_names = ("gamma", "beta")
    buffer_names = ("running_mean", "running_var")
    fresh_grads = True
    init_transparent = True
    flat_only = True

    def __init__(self, momentum: float = 0.9, eps: float = 1e-5) -> None:
        super().__init__()
        if (
            isinstance(momentum, bool)
            or not isinstance(momentum, numbers.Real)
            or not 0 <= momentum < 1
            or math.isnan(momentum)
        ):
            raise ValueError(
                f"BatchNorm momentum: expected a number in [0, 1), got {momentum!r}"
            )
        self.momentum = float(momentum)
        self.eps = check.check_positive(eps, "BatchNorm eps")

    def parameter_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        return {"gamma": (n_in,), "beta": (n_in,)}

    def buffer_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        return {"running_mean": (n_in,), "running_var": (n_in,)}

    def build(self, n_in: int, model: Any) -> int:
        super().build(n_in, model)
        xp, dt, dev = self.xp, model.dtype, model.backend.device
        with model.backend.context():
            self.gamma = xp.ones((n_in,), dtype=dt, device=dev)
            self.beta = xp.zeros((n_in,), dtype=dt, device=dev)
            self.running_mean = xp.zeros((n_in,), dtype=dt, device=dev)
            self.running_var = xp.ones((n_in,), dtype=dt, device=dev)
        self.grads = {}
        return n_in

    def forward(self, x: Any, training: bool = False) -> Any:
        if self.xp is None:  # used on its own
            self.build_alone(x)
        xp = self.xp
        if training:
            mean = xp.mean(x, axis=0)
            xc = x - mean
            var = xp.mean(xc * xc, axis=0)
            m, w = self.momentum, writer(self.running_mean)
            # in place where the library allows it: a captured CUDA graph goes
            # on updating these arrays
            self.running_mean = w.add(w.mul(self.running_mean, m), (1.0 - m) * mean)
            self.running_var = w.add(w.mul(self.running_var, m), (1.0 - m) * var)
        else:
            xc = x - self.running_mean
            var = self.running_var
        self.std = xp.sqrt(var + self.eps)
        self.xn = xc / self.std
        self.batch_statistics = training
        return self.gamma * self.xn + self.beta

    def backward(self, dy: Any, need_dx: bool = True) -> Any:
        xp, xn = self.xp, self.xn
        self.grads = {
            "gamma": xp.sum(dy * xn, axis=0),
            "beta": xp.sum(dy, axis=0),
        }
        if not need_dx:
            return None
        dxn = dy * self.gamma
        if not self.batch_statistics:  # fixed statistics: an affine map
            return dxn / self.std
        # the mean and variance depend on every row of the batch
        return (dxn - xp.mean(dxn, axis=0) - xn * xp.mean(dxn * xn, axis=0)) / self.std

    def get_config(self) -> dict:
        return {"type": "BatchNorm", "momentum": self.momentum, "eps": self.eps}

    def __repr__(self) -> str:
        return f"BatchNorm(momentum={self.momentum}, eps={self.eps})"
