"""The convolutional configuration of ``peers`` (Deep Learning from Scratch
ch. 7's SimpleConvNet: conv 30 filters 5x5, ReLU, 2x2 max-pool, Dense 100,
ReLU, Dense 10) and its three peers: bpnet, PyTorch eager (``Conv2d``,
oneDNN on the CPU) and the book's NumPy im2col implementation, transcribed
here (``BookConvNet``).

Every peer starts from the same weights (``conv_params``, drawn as bpnet draws
them) and takes the batches in bpnet's order; ``loss_after_1`` is the test
loss after the warm-up epoch by the book's forward pass in float64.
"""

from __future__ import annotations

import math
import time
from typing import Any

import numpy as np

from benchmarks.bpnet_runs import fit_timed
from benchmarks.harness import Unavailable, result, warm_and_time
from benchmarks.peer_torch import torch_sgd_epoch

CONV_PEERS = ("bpnet", "torch", "numpy")


def conv_params(seed: int = 0, rng: Any = None) -> list[np.ndarray]:
    """[W1 (30, 1, 5, 5), b1, W2 (4320, 100), b2, W3 (100, 10), b3] as
    ``bpnet.Sequential(..., seed=seed)`` draws them: He normal for the
    convolution (fan-in 1 * 5 * 5, drawn as a (25, 30) matrix) and the hidden
    Dense, Glorot uniform for the output layer, zero biases."""
    rng = np.random.default_rng(seed) if rng is None else rng
    W1 = rng.normal(0.0, math.sqrt(2.0 / 25), size=(25, 30)).T.reshape(30, 1, 5, 5)
    W2 = rng.normal(0.0, math.sqrt(2.0 / 4320), size=(4320, 100))
    a = math.sqrt(6.0 / 110)
    W3 = rng.uniform(-a, a, size=(100, 10))
    return [W1, np.zeros(30), W2, np.zeros(100), W3, np.zeros(10)]


def conv_orders(seed: int, n: int):
    """Each epoch's permutation, as bpnet's ``fit`` draws it (after the
    weights, from the same generator)."""
    rng = np.random.default_rng(seed)
    conv_params(seed, rng)
    while True:
        yield rng.permutation(n).astype(np.int64)


# --- the book's NumPy implementation (common/util.py, common/layers.py) -----
def im2col(x, fh, fw, stride=1, pad=0):
    N, C, H, W = x.shape
    oh, ow = (H + 2 * pad - fh) // stride + 1, (W + 2 * pad - fw) // stride + 1
    img = np.pad(x, [(0, 0), (0, 0), (pad, pad), (pad, pad)], "constant")
    col = np.zeros((N, C, fh, fw, oh, ow), dtype=x.dtype)
    for y in range(fh):
        for x_ in range(fw):
            col[:, :, y, x_] = img[
                :, :, y : y + stride * oh : stride, x_ : x_ + stride * ow : stride
            ]
    return col.transpose(0, 4, 5, 1, 2, 3).reshape(N * oh * ow, -1)


def col2im(col, shape, fh, fw, stride=1, pad=0):
    N, C, H, W = shape
    oh, ow = (H + 2 * pad - fh) // stride + 1, (W + 2 * pad - fw) // stride + 1
    col = col.reshape(N, oh, ow, C, fh, fw).transpose(0, 3, 4, 5, 1, 2)
    img = np.zeros(
        (N, C, H + 2 * pad + stride - 1, W + 2 * pad + stride - 1), col.dtype
    )
    for y in range(fh):
        for x_ in range(fw):
            img[:, :, y : y + stride * oh : stride, x_ : x_ + stride * ow : stride] += (
                col[:, :, y, x_]
            )
    return img[:, :, pad : H + pad, pad : W + pad]


class BookConvNet:
    """SimpleConvNet's forward and backward as the book writes them
    (Convolution, Relu, Pooling, Affine, SoftmaxWithLoss), plain SGD."""

    def __init__(self, params):
        self.p = params

    def loss_grads(self, x, t):
        W1, b1, W2, b2, W3, b3 = self.p
        N = x.shape[0]
        x = x.reshape(N, 1, 28, 28)
        col = im2col(x, 5, 5)  # Convolution.forward
        out = (
            (col @ W1.reshape(30, -1).T + b1)
            .reshape(N, 24, 24, -1)
            .transpose(0, 3, 1, 2)
        )
        mask1 = out <= 0  # Relu
        out[mask1] = 0
        pcol = im2col(out, 2, 2, 2).reshape(-1, 4)  # Pooling.forward
        arg = np.argmax(pcol, axis=1)
        pooled = np.max(pcol, axis=1).reshape(N, 12, 12, 30).transpose(0, 3, 1, 2)
        a1 = pooled.reshape(N, -1)  # Affine.forward
        z2 = a1 @ W2 + b2
        mask2 = z2 <= 0
        z2[mask2] = 0
        z3 = z2 @ W3 + b3
        z3 = z3 - z3.max(axis=1, keepdims=True)  # SoftmaxWithLoss
        y = np.exp(z3)
        y /= y.sum(axis=1, keepdims=True)
        loss = -np.mean(np.log(y[np.arange(N), t] + 1e-7))
        dz = y.copy()
        dz[np.arange(N), t] -= 1
        dz /= N
        g3, gb3 = z2.T @ dz, dz.sum(axis=0)  # Affine.backward
        dz = dz @ W3.T
        dz[mask2] = 0
        g2, gb2 = a1.T @ dz, dz.sum(axis=0)
        dz = (
            (dz @ W2.T).reshape(N, 30, 12, 12).transpose(0, 2, 3, 1)
        )  # Pooling.backward
        dmax = np.zeros((dz.size, 4), dtype=dz.dtype)
        dmax[np.arange(arg.size), arg] = dz.ravel()
        dcol = dmax.reshape(N * 12 * 12, -1)
        dz = col2im(dcol, out.shape, 2, 2, 2)
        dz[mask1] = 0  # Relu.backward
        dz = dz.transpose(0, 2, 3, 1).reshape(-1, 30)  # Convolution.backward
        g1, gb1 = (col.T @ dz).T.reshape(W1.shape), dz.sum(axis=0)
        return loss, [g1, gb1, g2, gb2, g3, gb3]

    def predict(self, x):
        W1, b1, W2, b2, W3, b3 = self.p
        N = x.shape[0]
        col = im2col(x.reshape(N, 1, 28, 28), 5, 5)
        out = np.maximum(col @ W1.reshape(30, -1).T + b1, 0).reshape(N, 24, 24, 30)
        pooled = out.reshape(N, 12, 2, 12, 2, 30).max(axis=(2, 4)).transpose(0, 3, 1, 2)
        z2 = np.maximum(pooled.reshape(N, -1) @ W2 + b2, 0)
        return z2 @ W3 + b3


def conv_check_loss(params, X, y) -> float:
    """The mean test loss of the weights, by the book's forward in float64."""
    p = [np.asarray(a, dtype=np.float64) for a in params]
    losses = []
    for lo in range(0, X.shape[0], 1000):
        Z = BookConvNet(p).predict(np.asarray(X[lo : lo + 1000], dtype=np.float64))
        Z = Z - Z.max(axis=1, keepdims=True)
        lse = np.log(np.exp(Z).sum(axis=1))
        losses.append(lse - Z[np.arange(Z.shape[0]), y[lo : lo + 1000]])
    return float(np.mean(np.concatenate(losses)))


def _accuracy(predict, X, y) -> float:
    hits = [
        np.argmax(predict(X[lo : lo + 1000]), axis=1) == y[lo : lo + 1000]
        for lo in range(0, X.shape[0], 1000)
    ]
    return float(np.mean(np.concatenate(hits)))


# --- the runners ----------------------------------------------------------------
def run_book(cfg: dict, data: tuple, s: dict) -> dict:
    X, y, Xte, yte = data
    t0 = time.perf_counter()
    net = BookConvNet([p.astype(np.float32) for p in conv_params(s["seed"])])
    orders, bs, lr = conv_orders(s["seed"], X.shape[0]), cfg["batch_size"], cfg["lr"]

    def epoch():
        order = next(orders)
        for lo in range(0, X.shape[0], bs):
            idx = order[lo : lo + bs]
            _, grads = net.loss_grads(X[idx], y[idx])
            for p, g in zip(net.p, grads):
                p -= lr * g

    first, times, loss_after_1 = warm_and_time(
        epoch, s, time.perf_counter() - t0, lambda: conv_check_loss(net.p, Xte, yte)
    )
    acc = _accuracy(net.predict, Xte, yte)
    return result(first, times, acc, loss_after_1=loss_after_1)


def bpnet_convnet(bpnet: Any, **kwargs: Any) -> Any:
    """SimpleConvNet as a ``bpnet.Sequential``; ``kwargs`` (device, dtype,
    seed) go to it."""
    return bpnet.Sequential(
        [
            bpnet.Reshape((1, 28, 28)),
            bpnet.Conv2D(30, 5),
            bpnet.ReLU(),
            bpnet.MaxPool2D(2),
            bpnet.Flatten(),
            bpnet.Dense(4320, 100),
            bpnet.ReLU(),
            bpnet.Dense(100, 10),
        ],
        **kwargs,
    )


def run_bpnet(cfg: dict, data: tuple, s: dict) -> dict:
    import bpnet

    X, y, Xte, yte = data
    t0 = time.perf_counter()
    net = bpnet_convnet(bpnet, device=s["device"], seed=s["seed"])
    net.set_parameters(conv_params(s["seed"]))
    be = net.backend
    Xd, yd = be.asarray(X, dtype="float32"), be.asarray(y)
    first, times, loss_after_1, hist = fit_timed(
        bpnet, net, Xd, yd, cfg, s, t0, lambda p: conv_check_loss(p, Xte, yte)
    )
    pred = be.to_numpy(net.predict(be.asarray(Xte, dtype="float32")))
    return result(
        first,
        times,
        float(np.mean(pred == yte)),
        device=be.name,
        loss_after_1=loss_after_1,
        train_loss=float(hist["loss"][-1]),
        profile=profile_bpnet(net, Xd[: cfg["batch_size"]], yd[: cfg["batch_size"]]),
    )


def profile_bpnet(net: Any, X: Any, y: Any, steps: int = 5) -> dict:
    """Seconds per step in each layer's forward and backward (where the time
    goes: the gather and products of the convolution, the pooling, Dense)."""
    spent: dict[str, float] = {}
    be = net.backend
    originals = []
    for i, layer in enumerate(net.layers):
        for name in ("forward", "backward"):
            fn = getattr(layer, name)
            key = f"{i}.{type(layer).__name__}.{name}"

            def timed(*a, fn=fn, key=key, **k):
                t = time.perf_counter()
                out = fn(*a, **k)
                be.synchronize()
                spent[key] = spent.get(key, 0.0) + time.perf_counter() - t
                return out

            originals.append((layer, name))
            setattr(layer, name, timed)
    net.loss_and_grad(X, y)
    spent.clear()
    for _ in range(steps):
        net.loss_and_grad(X, y)
    for layer, name in originals:
        delattr(layer, name)
    return {k: v / steps for k, v in sorted(spent.items(), key=lambda kv: -kv[1])}


def run_torch(cfg: dict, data: tuple, s: dict) -> dict:
    try:
        import torch
    except ImportError as exc:
        raise Unavailable(f"PyTorch is not installed ({exc})") from exc
    dev = torch.device("cuda" if s["device"].startswith("cuda") else "cpu")
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    X, y, Xte, yte = data
    t0 = time.perf_counter()
    nn = torch.nn
    model = nn.Sequential(
        nn.Unflatten(1, (1, 28, 28)),
        nn.Conv2d(1, 30, 5),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(4320, 100),
        nn.ReLU(),
        nn.Linear(100, 10),
    ).to(dev)
    W1, b1, W2, b2, W3, b3 = conv_params(s["seed"])
    with torch.no_grad():
        for mod, W, b in (
            (model[1], W1, b1),
            (model[5], W2.T, b2),
            (model[7], W3.T, b3),
        ):
            mod.weight.copy_(torch.from_numpy(np.ascontiguousarray(W)))
            mod.bias.copy_(torch.from_numpy(b))
    epoch = torch_sgd_epoch(
        torch, model, X, y, conv_orders(s["seed"], X.shape[0]), cfg, dev
    )

    def params():
        m = model
        return [
            m[1].weight.detach().cpu().numpy(),
            m[1].bias.detach().cpu().numpy(),
            m[5].weight.detach().cpu().numpy().T,
            m[5].bias.detach().cpu().numpy(),
            m[7].weight.detach().cpu().numpy().T,
            m[7].bias.detach().cpu().numpy(),
        ]

    sync()
    first, times, loss_after_1 = warm_and_time(
        epoch,
        s,
        time.perf_counter() - t0,
        lambda: conv_check_loss(params(), Xte, yte),
        sync,
    )
    with torch.no_grad():
        acc = _accuracy(
            lambda a: model(torch.from_numpy(a).to(dev)).cpu().numpy(), Xte, yte
        )
    return result(
        first,
        times,
        acc,
        device=str(dev),
        loss_after_1=loss_after_1,
        version=torch.__version__,
        num_threads=torch.get_num_threads(),
    )


PEERS = {"bpnet": run_bpnet, "torch": run_torch, "numpy": run_book}
