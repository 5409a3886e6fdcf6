"""The PyTorch peers: eager PyTorch with autograd and ``torch.optim.SGD``
(``torch``), and bpnet's own minibatch step written directly in PyTorch, no
autograd (``torch-step``, the reference for bpnet on its torch backend). Also
what the other PyTorch runners share: the device, the model from the shared
initial weights and the timing of an epoch.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from benchmarks.harness import (
    Unavailable,
    batch_orders,
    check_loss,
    initial_params,
    result,
    timed_epochs,
    warm_and_time,
)


def torch_on(s):
    """(torch, device, synchronize) for the run's device and thread count."""
    try:
        import torch
    except ImportError as exc:
        raise Unavailable("PyTorch is not installed") from exc
    cuda = s["device"] == "cuda"
    if cuda and not torch.cuda.is_available():
        raise Unavailable("PyTorch sees no CUDA device")
    torch.set_num_threads(s["threads"])
    dev = torch.device("cuda" if cuda else "cpu")
    return torch, dev, (torch.cuda.synchronize if cuda else (lambda: None))


def run_torch(cfg, data, s):
    torch, dev, sync = torch_on(s)
    cuda = dev.type == "cuda"
    X, y, Xte, yte = data
    t0 = time.perf_counter()
    model = torch_model(torch, cfg, s["seed"], dev)
    epoch = torch_sgd_epoch(
        torch, model, X, y, batch_orders(cfg, s["seed"], X.shape[0]), cfg, dev
    )
    first, times, accuracy, loss_after_1 = time_torch(
        torch, model, epoch, s, sync, t0, (Xte, yte, dev)
    )
    extra = {"version": torch.__version__, "num_threads": torch.get_num_threads()}
    if cuda:
        extra["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        # what its caching allocator held at most: CuPy's pool total compares
        extra["gpu_reserved_mb"] = torch.cuda.max_memory_reserved() / 2**20
        extra["gpu"] = torch.cuda.get_device_name()
    return result(
        first, times, accuracy, device=str(dev), loss_after_1=loss_after_1, **extra
    )


def torch_sgd_epoch(torch, model, X, y, orders, cfg, dev):
    """PyTorch eager's epoch, as its users write it: ``torch.optim.SGD`` on
    the cross-entropy, autograd, the batches of ``next(orders)`` gathered
    from the data copied to ``dev`` once. The MLP's and the conv net's."""
    Xt, yt = torch.from_numpy(X).to(dev), torch.from_numpy(y).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"])
    crit = torch.nn.CrossEntropyLoss()
    n, bs = X.shape[0], cfg["batch_size"]

    def epoch():
        order = torch.from_numpy(next(orders)).to(dev)
        for lo in range(0, n, bs):
            idx = order[lo : lo + bs]
            opt.zero_grad(set_to_none=True)
            loss = crit(model(Xt.index_select(0, idx)), yt.index_select(0, idx))
            loss.backward()
            opt.step()

    return epoch


def time_torch(torch, model, epoch, s, sync, t0, test) -> tuple:
    """Time a PyTorch peer's ``epoch``: (the first epoch with the setup since
    ``t0``, the later epochs, test accuracy, test loss after the first epoch).
    ``test`` is (X_test, y_test, device)."""
    Xte, yte, dev = test
    sync()
    first, times, loss_after_1 = warm_and_time(
        epoch,
        s,
        time.perf_counter() - t0,
        lambda: check_loss(torch_params(model), Xte, yte),
        sync,
    )
    with torch.no_grad():
        pred = model(torch.from_numpy(Xte).to(dev)).argmax(dim=1).cpu().numpy()
    return first, times, float(np.mean(pred == yte)), loss_after_1


def torch_model(torch, cfg, seed, dev):
    """The ReLU MLP as a ``torch.nn.Sequential`` from the shared initial weights."""
    init = initial_params(cfg, seed)
    layers: list[Any] = []
    for i, (W, b) in enumerate(zip(init[0::2], init[1::2])):
        lin = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.astype(np.float32)))
            lin.bias.copy_(torch.from_numpy(b.astype(np.float32)))
        layers += [lin, torch.nn.ReLU()] if i < len(init) // 2 - 1 else [lin]
    return torch.nn.Sequential(*layers).to(dev)


def torch_params(model) -> list[np.ndarray]:
    """[W1, b1, ...] as host arrays in bpnet's layout (W of shape (in, out))."""
    out = []
    for lin in (m for m in model.modules() if hasattr(m, "weight")):
        out += [lin.weight.detach().cpu().numpy().T, lin.bias.detach().cpu().numpy()]
    return out


def run_torch_step(cfg, data, s):
    """bpnet's minibatch step written directly in PyTorch eager: the same
    products, masks, stable softmax cross-entropy, in-place SGD update and
    per-epoch loss and correct sums, with no autograd and no wrappers. The
    reference for bpnet on its torch backend (peer ``bpnet-torch``)."""
    X, y, Xte, yte = data
    t0 = time.perf_counter()
    epoch, predict, torch, dev, sync = torch_step_trainer(cfg, X, y, s)
    sync()
    setup = time.perf_counter() - t0
    first, times = timed_epochs(epoch, s["epochs"], sync)
    pred = predict(Xte)
    return result(
        setup + first,
        times,
        float(np.mean(pred == yte)),
        device=str(dev) if dev.type == "cpu" else "cuda:0",
        version=torch.__version__,
        num_threads=torch.get_num_threads(),
    )


def torch_step_trainer(cfg, X, y, s):
    """(epoch, predict, torch, device, synchronize) of ``run_torch_step``:
    ``epoch()`` trains one epoch in place, ``predict(X)`` gives host labels."""
    torch, dev, sync = torch_on(s)
    params = [
        torch.from_numpy(p.astype(np.float32)).to(dev)
        for p in initial_params(cfg, s["seed"])
    ]
    Xt, yt = torch.from_numpy(X).to(dev), torch.from_numpy(y).to(dev)
    k = params[-1].shape[0]
    T = (yt[:, None] == torch.arange(k, device=dev)).to(torch.float32)
    loss_sum = torch.zeros((), device=dev)
    correct = torch.zeros((), device=dev)
    rng = np.random.default_rng(s["seed"])
    n, bs, lr = X.shape[0], cfg["batch_size"], cfg["lr"]
    Ws, Bs = params[0::2], params[1::2]

    def step(xb, tb, lb):
        m = xb.shape[0]
        acts, masks = [xb], []
        for i, (W, b) in enumerate(zip(Ws, Bs)):
            z = acts[-1] @ W
            z += b
            if i < len(Ws) - 1:
                masks.append((z > 0).to(z.dtype))
                z = z * masks[-1]
            acts.append(z)
        Z = acts[-1]
        S = Z - torch.amax(Z, dim=1, keepdim=True)
        E = torch.exp(S)
        ssum = torch.sum(E, dim=1, keepdim=True)
        L = (torch.sum(torch.log(ssum)) - torch.sum(tb * S)) * (1.0 / m)
        E /= ssum
        E -= tb
        E *= 1.0 / m
        dy, grads = E, []
        for i in range(len(Ws) - 1, -1, -1):
            ones = torch.ones((1, m), dtype=dy.dtype, device=dev)
            grads.append((acts[i].T @ dy, torch.reshape(ones @ dy, (-1,))))
            if i:
                dy = (dy @ Ws[i].T) * masks[i - 1]
        for (W, b), (gW, gb) in zip(zip(Ws, Bs), reversed(grads)):
            gW *= lr
            W -= gW
            gb *= lr
            b -= gb
        loss_sum.add_(L * float(m))
        correct.add_(torch.sum((torch.argmax(Z, dim=1) == lb).to(Z.dtype)))

    def epoch():
        order = torch.from_numpy(rng.permutation(n)).to(dev)
        loss_sum.zero_()
        correct.zero_()
        for lo in range(0, n, bs):
            idx = order[lo : lo + bs]
            step(
                Xt.index_select(0, idx), T.index_select(0, idx), yt.index_select(0, idx)
            )
        float(loss_sum), float(correct)  # once per epoch, as bpnet.fit does

    def predict(Xte):
        Z = torch.from_numpy(Xte).to(dev)
        for i, (W, b) in enumerate(zip(Ws, Bs)):
            Z = Z @ W + b
            Z = torch.relu(Z) if i < len(Ws) - 1 else Z
        return Z.argmax(dim=1).cpu().numpy()

    return epoch, predict, torch, dev, sync
