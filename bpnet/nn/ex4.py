"""ex4-style Theta matrices <-> ``Sequential``.

ex4 stores each layer as Theta of shape (out, in + 1), bias column first, and
computes ``a = sigmoid([1, x] @ Theta.T)``. bpnet's Dense keeps W (in, out)
and b (out,): ``W = Theta[:, 1:].T``, ``b = Theta[:, 0]``. Lossless both ways.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bpnet.nn.activations import Sigmoid
from bpnet.nn.layers import Dense
from bpnet.nn.losses import SigmoidCrossEntropy
from bpnet.nn.model import Sequential


def from_thetas(
    thetas: list[Any],
    device: Any = "cpu",
    dtype: Any = "float64",
    seed: int = 0,
    ex4_labels: bool = False,
) -> Sequential:
    """Build ex4's sigmoid network from Theta1, Theta2, ... (host arrays).

    Returns ``Sequential([Dense, Sigmoid, ..., Dense])`` with
    ``SigmoidCrossEntropy`` as its loss: ``predict_proba`` gives ex4's h.

    ``ex4_labels=True``: the last Theta's rows are ex4's labels 1..10 (10 for
    digit 0); reorder them so output j is digit j, matching ``bpnet.data``'s
    labels 0..9 (``load_mat`` maps 10 to 0).
    """
    if not isinstance(thetas, (list, tuple)) or not thetas:
        raise ValueError(
            f"thetas: expected a non-empty list of Theta matrices, got {thetas!r}"
        )
    mats = []
    for i, t in enumerate(thetas):
        a = np.asarray(t)
        if a.ndim != 2 or a.shape[1] < 2 or a.dtype.kind not in "iuf":
            raise ValueError(
                f"thetas[{i}]: expected a 2-D numeric matrix of shape (out, in + 1), "
                f"got {a.dtype} array of shape {a.shape}"
            )
        if i and a.shape[1] != mats[-1].shape[0] + 1:
            raise ValueError(
                f"thetas[{i}]: expected {mats[-1].shape[0] + 1} columns (Theta{i} has "
                f"{mats[-1].shape[0]} rows, plus the bias), got shape {a.shape}"
            )
        mats.append(a.astype(np.float64))
    if ex4_labels:
        mats[-1] = np.roll(mats[-1], 1, axis=0)  # label 10 (digit 0) first
    layers: list[Any] = []
    for i, a in enumerate(mats):
        if i:
            layers.append(Sigmoid())
        layers.append(Dense(a.shape[1] - 1, a.shape[0]))
    net = Sequential(
        layers, device=device, dtype=dtype, seed=seed, loss=SigmoidCrossEntropy()
    )
    params: list[Any] = []
    for a in mats:
        params += [a[:, 1:].T, a[:, 0]]
    net.set_parameters(params)
    return net


def to_thetas(net: Sequential, ex4_labels: bool = False) -> list[np.ndarray]:
    """The network's affine layers (parameters W, b) as ex4 Theta matrices
    (out, in + 1), float64; a layer with other parameters has no Theta form.

    ``ex4_labels=True`` undoes ``from_thetas(..., ex4_labels=True)``.
    """
    thetas = []
    for i, layer in enumerate(net.layers):
        named = layer.named_parameters()
        if not named:
            continue
        if list(named) != ["W", "b"]:
            raise ValueError(
                f"net: ex4 Theta matrices hold affine layers (W, b) only; "
                f"layers[{i}] {layer!r} has the parameters {list(named)}"
            )
        W, b = (net.backend.to_numpy(named[k]).astype(np.float64) for k in "Wb")
        thetas.append(np.concatenate([b.reshape(-1, 1), W.T], axis=1))
    if ex4_labels:
        thetas[-1] = np.roll(thetas[-1], -1, axis=0)
    return thetas
