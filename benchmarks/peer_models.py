"""The peers ``bench.py`` sets beside bpnet, one runner each: a hand-written
NumPy MLP, scikit-learn's MLPClassifier, PyTorch eager, the GEMM bound, and
ex4's NumPy cost function through scipy's CG. Each runs in its own process
(see ``bench.py``), so its library is imported only there.
"""

from __future__ import annotations

import time
import warnings
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


# --- NumPy: the DNNClassifier notebook's method, vectorized ----------------
def numpy_sgd_epoch(params, X, y, order, batch_size, lr):
    """One epoch of minibatch SGD on a ReLU MLP with softmax cross-entropy.

    ``params`` is [W1, b1, W2, b2, ...] (float32), updated in place.
    """
    Ws, bs = params[0::2], params[1::2]
    last = len(Ws) - 1
    for lo in range(0, X.shape[0], batch_size):
        idx = order[lo : lo + batch_size]
        A, labels = X[idx], y[idx]
        m = A.shape[0]
        # forward: keep every layer's input and pre-activation for backward
        inputs, zs = [], []
        for i, (W, b) in enumerate(zip(Ws, bs)):
            inputs.append(A)
            Z = A @ W + b
            zs.append(Z)
            A = np.maximum(Z, 0) if i < last else Z
        # softmax cross-entropy: dL/dZ = (softmax(Z) - onehot(y)) / m
        Z = zs[-1] - zs[-1].max(axis=1, keepdims=True)
        P = np.exp(Z)
        P /= P.sum(axis=1, keepdims=True)
        P[np.arange(m), labels] -= 1
        dZ = P / m
        # backward and update, last layer first
        for i in range(last, -1, -1):
            dW = inputs[i].T @ dZ
            db = dZ.sum(axis=0)
            if i > 0:
                dZ = (dZ @ Ws[i].T) * (zs[i - 1] > 0)
            Ws[i] -= lr * dW
            bs[i] -= lr * db


def numpy_predict(params, X):
    A = X
    Ws, bs = params[0::2], params[1::2]
    for i, (W, b) in enumerate(zip(Ws, bs)):
        A = A @ W + b
        if i < len(Ws) - 1:
            A = np.maximum(A, 0)
    return A.argmax(axis=1)


def run_numpy(cfg, data, s):
    X, y, Xte, yte = data
    t0 = time.perf_counter()
    params = [p.astype(np.float32) for p in initial_params(cfg, s["seed"])]
    orders = batch_orders(cfg, s["seed"], X.shape[0])

    def epoch():
        numpy_sgd_epoch(params, X, y, next(orders), cfg["batch_size"], cfg["lr"])

    first, times, loss_after_1 = warm_and_time(
        epoch,
        s,
        time.perf_counter() - t0,
        lambda: check_loss(params, Xte, yte),
    )
    acc = float(np.mean(numpy_predict(params, Xte) == yte))
    return result(
        first,
        times,
        acc,
        loss_after_1=loss_after_1,
        loss_after_1_float64=float64_loss_after_1(cfg, X, y, Xte, yte, s["seed"]),
        loss_after_1_nudged=nudged_losses_after_1(cfg, X, y, Xte, yte, s["seed"]),
    )


def float64_loss_after_1(cfg, X, y, Xte, yte, seed) -> float:
    """The NumPy loop's first epoch again in float64 (untimed): how far float32
    rounding alone moves the loss after one epoch, the yardstick for how
    closely float32 peers can agree. Each batch is promoted after its gather,
    so X is not copied."""
    params = initial_params(cfg, seed)
    order = next(batch_orders(cfg, seed, X.shape[0]))
    numpy_sgd_epoch(params, X, y, order, cfg["batch_size"], cfg["lr"])
    return check_loss(params, Xte, yte)


#: One-ulp moves of every initial weight (up, down, two up) for the float32
#: runs that measure how far rounding alone spreads the loss after one epoch.
NUDGES = (1, -1, 2)


def nudged_losses_after_1(cfg, X, y, Xte, yte, seed) -> list[float]:
    """The NumPy loop's first epoch in float32 again (untimed) from initial
    weights each moved by a few ulps (``NUDGES``): how far two float32 runs
    that differ only by rounding end up apart. On a chaotic configuration
    (B: lr 0.1, 469 steps) that is percents; on A, 1e-7."""
    out = []
    order = next(batch_orders(cfg, seed, X.shape[0]))
    for k in NUDGES:
        params = []
        for p in initial_params(cfg, seed):
            q = p.astype(np.float32)
            for _ in range(abs(k)):
                q = np.nextafter(q, np.float32(np.inf if k > 0 else -np.inf))
            params.append(q)
        numpy_sgd_epoch(params, X, y, order, cfg["batch_size"], cfg["lr"])
        out.append(check_loss(params, Xte, yte))
    return out


# --- scikit-learn ----------------------------------------------------------
def run_sklearn(cfg, data, s):
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
    except ImportError as exc:
        raise Unavailable("scikit-learn is not installed") from exc
    X, y, Xte, yte = data
    t0 = time.perf_counter()
    clf = MLPClassifier(
        hidden_layer_sizes=tuple(cfg["sizes"][1:-1]),
        activation="relu",
        solver="sgd",
        learning_rate="constant",
        learning_rate_init=cfg["lr"],
        momentum=0.0,
        nesterovs_momentum=False,
        batch_size=cfg["batch_size"],
        alpha=0.0,
        max_iter=1,
        shuffle=True,
        random_state=s["seed"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # One step on a single batch builds the arrays; then the shared
        # initial weights are copied in place (the optimizer holds these
        # very arrays, so rebinding them would detach it).
        first_batch = slice(0, cfg["batch_size"])
        clf.partial_fit(X[first_batch], y[first_batch], classes=np.arange(10))
        init = initial_params(cfg, s["seed"])
        for W, b, W0, b0 in zip(clf.coefs_, clf.intercepts_, init[0::2], init[1::2]):
            W[...] = W0
            b[...] = b0
        setup = time.perf_counter() - t0
        first, times = timed_epochs(lambda: clf.partial_fit(X, y), s["epochs"])
    acc = float(clf.score(Xte, yte))
    return result(setup + first, times, acc, dtype=str(clf.coefs_[0].dtype))


# --- PyTorch eager --------------------------------------------------------
def _torch_on(s):
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
    torch, dev, sync = _torch_on(s)
    cuda = dev.type == "cuda"
    X, y, Xte, yte = data
    t0 = time.perf_counter()
    model = torch_model(torch, cfg, s["seed"], dev)
    Xt, yt = torch.from_numpy(X).to(dev), torch.from_numpy(y).to(dev)
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"])
    crit = torch.nn.CrossEntropyLoss()
    orders = batch_orders(cfg, s["seed"], X.shape[0])
    n, bs = X.shape[0], cfg["batch_size"]

    def epoch():
        order = torch.from_numpy(next(orders)).to(dev)
        for lo in range(0, n, bs):
            idx = order[lo : lo + bs]
            opt.zero_grad(set_to_none=True)
            loss = crit(model(Xt.index_select(0, idx)), yt.index_select(0, idx))
            loss.backward()
            opt.step()

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


# --- the GEMM bound ----------------------------------------------------------
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
    torch, dev, sync = _torch_on(s)
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


def gemm_products(sizes, batch: int) -> list[tuple[tuple, bool, tuple, bool]]:
    """The matrix products one training step of ``batch`` rows needs, as
    (left shape, left transposed, right shape, right transposed) with the
    shapes as stored: X @ W for each layer, A.T @ dZ for each layer, and
    dZ @ W.T for all but the first layer."""
    products = []
    for layer, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        products.append(((batch, n_in), False, (n_in, n_out), False))
        products.append(((batch, n_in), True, (batch, n_out), False))
        if layer > 0:
            products.append(((batch, n_out), False, (n_in, n_out), True))
    return products


def _gemm_library(device: str) -> tuple[Any, Any, str, Any]:
    """(make array from host, synchronize, name, matmul) for ``device``."""
    if device == "cpu":
        return np.ascontiguousarray, lambda: None, "numpy", np.matmul
    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            sync = cupy.cuda.Device(0).synchronize
            return cupy.asarray, sync, "cupy", cupy.matmul
    except Exception:  # CuPy missing, or no driver: try PyTorch
        pass
    try:
        import torch

        if torch.cuda.is_available():
            return (
                lambda a: torch.from_numpy(a).to("cuda"),
                torch.cuda.synchronize,
                "torch",
                torch.matmul,
            )
    except ImportError:
        pass
    raise Unavailable("neither CuPy nor PyTorch sees a CUDA device")


def run_gemm(cfg, data, s):
    return _time_products(cfg, data, s, *_gemm_library(s["device"]))


def run_gemm_torch(cfg, data, s):
    """The same products through PyTorch's own matmul (its BLAS, or cuBLAS)
    on the same device: the floor under PyTorch's training loop."""
    torch, dev, sync = _torch_on(s)
    return _time_products(
        cfg,
        data,
        s,
        lambda a: torch.from_numpy(a).to(dev),
        sync,
        "torch",
        torch.matmul,
    )


def _time_products(cfg, data, s, make, sync, lib, matmul):
    n = data[0].shape[0]
    full_batch = cfg["method"] == "cg"
    dtype = np.float64 if full_batch else np.float32
    if full_batch:  # one evaluation; bench.py multiplies by each row's nfev
        batches = [n]
    else:
        bs = cfg["batch_size"]
        batches = [bs] * (n // bs) + ([n % bs] if n % bs else [])
    rng = np.random.default_rng(0)
    t0 = time.perf_counter()
    ops: dict[int, list] = {}
    flops = 0
    for b in batches:
        if b not in ops:
            ops[b] = []
            for a_shape, a_t, b_shape, b_t in gemm_products(cfg["sizes"], b):
                L = make(rng.standard_normal(a_shape).astype(dtype))
                R = make(rng.standard_normal(b_shape).astype(dtype))
                L, R = (L.T if a_t else L), (R.T if b_t else R)
                out = make(np.zeros((L.shape[0], R.shape[1]), dtype=dtype))
                ops[b].append((L, R, out))
        flops += sum(2 * L.shape[0] * L.shape[1] * R.shape[1] for L, R, _ in ops[b])

    def epoch():
        for b in batches:
            for L, R, out in ops[b]:
                matmul(L, R, out=out)

    sync()
    setup = time.perf_counter() - t0
    # full-batch products are short: time more repetitions of them
    first, times = timed_epochs(epoch, s["epochs"] * (20 if full_batch else 1), sync)
    extra = {"library": lib, "gflop_per_epoch": flops / 1e9}
    if full_batch:  # one "epoch" per 20 evaluations: their median
        times = [float(np.median(times[i : i + 20])) for i in range(0, len(times), 20)]
        extra["seconds_per_eval"] = float(np.median(times))
    return result(setup + first, times, None, device=s["device"], **extra)


# --- ex4: NumPy cost and gradient through scipy's CG ------------------------
def _softplus(z):
    return np.logaddexp(0.0, z)


def _sigmoid(z):
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _thetas(theta, sizes):
    (n0, n1, n2), k = sizes, sizes[1] * (sizes[0] + 1)
    return theta[:k].reshape(n1, n0 + 1), theta[k:].reshape(n2, n1 + 1)


def ex4_cost_grad(theta, sizes, X, Y, lam):
    """ex4's nnCostFunction, vectorized: J and the unrolled gradient."""
    T1, T2 = _thetas(theta, sizes)
    m = X.shape[0]
    A1 = np.hstack([np.ones((m, 1)), X])
    Z2 = A1 @ T1.T
    A2 = np.hstack([np.ones((m, 1)), _sigmoid(Z2)])
    Z3 = A2 @ T2.T
    # -[y log h + (1 - y) log(1 - h)], written stably on the logits
    J = np.sum(Y * _softplus(-Z3) + (1 - Y) * _softplus(Z3)) / m
    J += lam / (2 * m) * (np.sum(T1[:, 1:] ** 2) + np.sum(T2[:, 1:] ** 2))
    d3 = _sigmoid(Z3) - Y
    g2 = A2[:, 1:]
    d2 = (d3 @ T2[:, 1:]) * g2 * (1 - g2)
    G1, G2 = d2.T @ A1 / m, d3.T @ A2 / m
    G1[:, 1:] += lam / m * T1[:, 1:]
    G2[:, 1:] += lam / m * T2[:, 1:]
    return J, np.concatenate([G1.ravel(), G2.ravel()])


def ex4_predict(theta, sizes, X):
    T1, T2 = _thetas(theta, sizes)
    ones = np.ones((X.shape[0], 1))
    A2 = _sigmoid(np.hstack([ones, X]) @ T1.T)
    return (np.hstack([ones, A2]) @ T2.T).argmax(axis=1)


def run_scipy_cg(cfg, data, s):
    try:
        from scipy import optimize
    except ImportError as exc:
        raise Unavailable("SciPy is not installed") from exc
    X, y, Xte, yte = data
    t0 = time.perf_counter()
    init = initial_params(cfg, s["seed"])
    # ex4's unrolled Theta1, Theta2 (bias column first): the same numbers
    theta0 = np.concatenate(
        [np.column_stack([b, W.T]).ravel() for W, b in zip(init[0::2], init[1::2])]
    )
    args = (cfg["sizes"], X, np.eye(cfg["sizes"][-1])[y], cfg["l2"])
    setup = time.perf_counter() - t0
    runs = []
    for _ in range(1 + s["epochs"]):
        t = time.perf_counter()
        res = optimize.minimize(
            ex4_cost_grad,
            theta0,
            args=args,
            jac=True,
            method="CG",
            options={"maxiter": s["maxiter"]},
        )
        runs.append(time.perf_counter() - t)
    acc = float(np.mean(ex4_predict(res.x, cfg["sizes"], Xte) == yte))
    return result(
        setup + runs[0],
        runs[1:],
        acc,
        nfev=int(res.nfev),
        nit=int(res.nit),
        loss=float(res.fun),
    )


PEERS = {
    "numpy": run_numpy,
    "sklearn": run_sklearn,
    "torch": run_torch,
    "gemm": run_gemm,
    "gemm-torch": run_gemm_torch,
    "torch-step": run_torch_step,
    "scipy-cg": run_scipy_cg,
}
