"""Gradient checking: central differences against backprop.

Perturbs one parameter at a time through the flat float64 parameter vector,
so it works on every backend. A float32 network is checked through a float64
copy of itself (same layers, same weights) wherever the device has float64:
central differences in float32 cannot resolve the differences that matter.
"""

from __future__ import annotations

import warnings
from typing import Any

from array_api_compat import array_namespace

from bpnet.nn import validation as check
from bpnet.nn.layers import Dropout
from bpnet.nn.losses import Loss, get_loss


def numerical_gradient(
    net: Any,
    X: Any,
    Y: Any,
    loss: str | Loss | None = None,
    l2: float = 0.0,
    eps: float = 1e-4,
) -> tuple[Any, Any]:
    """(numeric, backprop) gradients as flat float64 host vectors.

    Dropout masks are drawn once and held fixed, so the loss being
    differentiated is the same function at every perturbation.
    """
    loss = net.loss if loss is None else get_loss(loss)
    l2 = check.check_nonnegative(l2, "l2")
    eps = check.check_positive(eps, "eps")
    dropouts = [layer for layer in net.layers if isinstance(layer, Dropout)]
    if net.n_inputs is None:
        net.forward(X)  # builds the network for X's width
    theta = net.get_flat_parameters()
    # training-mode passes move running statistics: put them back after
    buffers = net._owned(net.buffers())
    with net.backend.context():
        Xd, T = net._prepare(X, Y, loss)
        try:
            _, grads = net._loss_and_grad(Xd, T, loss, l2, training=True)
            analytic = net.backend.pack(grads)
            for layer in dropouts:
                layer.freeze_mask = True
            numeric = theta * 0.0
            work = theta.copy()
            for i in range(theta.shape[0]):
                work[i] = theta[i] + eps
                net.set_flat_parameters(work)
                plus = float(net._loss(Xd, T, loss, l2, training=True))
                work[i] = theta[i] - eps
                net.set_flat_parameters(work)
                minus = float(net._loss(Xd, T, loss, l2, training=True))
                work[i] = theta[i]
                numeric[i] = (plus - minus) / (2.0 * eps)
        finally:
            for layer in dropouts:
                layer.freeze_mask = False
            net.set_flat_parameters(theta)
            net.set_buffers(buffers)
    return numeric, analytic


def check_gradients(
    net: Any,
    X: Any,
    Y: Any,
    loss: str | Loss | None = None,
    l2: float = 0.0,
    eps: float = 1e-4,
) -> float:
    """Relative difference ``||num - ana|| / ||num + ana||`` between central
    differences and backprop, over every parameter.

    Below about 1e-7 in float64 means backprop is right (ex4 reports ~1e-11).
    """
    if net.n_inputs is None:
        net.forward(X)  # builds the network for X's width
    if net.dtype_name != "float64" and net.backend.supports("float64"):
        try:
            net = net.to(net.backend, dtype="float64")
        except (ValueError, TypeError, KeyError) as exc:  # a layer it cannot rebuild
            warnings.warn(
                f"check_gradients: checked in {net.dtype_name}, where differences "
                f"of about 1e-2 are rounding, not wrong gradients: a float64 copy "
                f"could not be made ({exc}). Build the network with "
                "dtype='float64' to check it exactly",
                UserWarning,
                stacklevel=2,
            )
    numeric, analytic = numerical_gradient(net, X, Y, loss=loss, l2=l2, eps=eps)
    xp = array_namespace(numeric)
    denom = float(xp.linalg.vector_norm(numeric + analytic))
    num = float(xp.linalg.vector_norm(numeric - analytic))
    return 0.0 if denom == 0.0 else num / denom
