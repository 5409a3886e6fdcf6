"""bpnet's own runners for the ``peers`` subcommand: ``bpnet.fit`` for the minibatch
configurations and ``bpnet.minimize`` (scipy CG) for the full-batch one.

Each is written against the public API only, and says "unavailable" when
that API is missing from the bpnet it imports.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from benchmarks.harness import (
    CPU_TIMES,
    Unavailable,
    check_loss,
    initial_params,
    result,
)


def _import_bpnet(*names: str) -> Any:
    try:
        import bpnet
    except ImportError as exc:
        raise Unavailable(f"bpnet cannot be imported ({exc})") from exc
    missing = [n for n in names if not hasattr(bpnet, n)]
    if missing:
        raise Unavailable(
            f"this bpnet ({bpnet.__file__}) has no "
            + ", ".join("bpnet." + n for n in missing)
        )
    return bpnet


def _network(bpnet: Any, cfg: dict, device: str, dtype: str, seed: int) -> Any:
    sizes = cfg["sizes"]
    sigmoid = cfg["activation"] == "sigmoid"
    layers: list[Any] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(bpnet.Sigmoid() if sigmoid else bpnet.ReLU())
        layers.append(bpnet.Dense(n_in, n_out, init="uniform" if sigmoid else None))
    from backends import BackendUnavailableError

    try:
        net = bpnet.Sequential(
            layers,
            device=device,
            dtype=dtype,
            seed=seed,
            loss="sigmoid" if sigmoid else None,
        )
    except BackendUnavailableError as exc:
        raise Unavailable(str(exc)) from exc
    # the same numbers every peer starts from (bpnet's own draw, made explicit)
    net.set_parameters(initial_params(cfg, seed))
    return net


class FitMarks:
    """``bpnet.fit``'s callback in the runners: ``check`` of the host weights
    after the warm-up epoch (``loss_after_1``) and the CPU clock at each
    epoch's end, both taken after fit has read its clock for the epoch, so
    neither is timed."""

    def __init__(self, check: Callable[[list], float]) -> None:
        self.check = check
        self.loss_after_1: float | None = None
        self.cpu_marks: list[float] = []

    def __call__(self, epoch: int, logs: dict, net: Any) -> None:
        if epoch == 0:
            be = net.backend
            self.loss_after_1 = self.check([be.to_numpy(p) for p in net.parameters()])
        self.cpu_marks.append(time.process_time())  # after the check: not counted

    def cpu_times(self) -> list[float]:
        """CPU seconds from one epoch's end to the next's."""
        return [b - a for a, b in zip(self.cpu_marks, self.cpu_marks[1:])]


def fit_timed(
    bpnet: Any, net: Any, X: Any, y: Any, cfg: dict, s: dict, t0: float, check, **kw
) -> tuple[float, list, float | None, Any]:
    """One ``bpnet.fit`` of 1 + ``s["epochs"]`` epochs of SGD on the device
    arrays ``X``, ``y``, begun at ``t0``: (first call, the timed epochs from
    fit's History, ``check`` of the weights after the warm-up epoch, the
    History). ``kw`` goes to ``fit``; the epochs' CPU seconds to
    ``CPU_TIMES``."""
    marks = FitMarks(check)
    hist = bpnet.fit(
        net,
        X,
        y,
        epochs=1 + s["epochs"],
        batch_size=cfg["batch_size"],
        optimizer=bpnet.SGD(lr=cfg["lr"]),
        verbose=0,
        callbacks=[marks],
        **kw,
    )
    net.backend.synchronize()
    total = time.perf_counter() - t0
    seconds = list(hist["seconds"])
    if len(seconds) != 1 + s["epochs"]:
        raise RuntimeError(
            f"bpnet.fit ran {len(seconds)} epochs, expected {1 + s['epochs']}"
        )
    times = seconds[1:]
    CPU_TIMES[:] = marks.cpu_times()
    return total - sum(times), times, marks.loss_after_1, hist


def _gpu_extra(net: Any) -> dict:
    extra = {"backend": net.backend.describe()}
    if net.backend.is_gpu and net.backend.library == "cupy":
        import cupy

        pool = cupy.get_default_memory_pool()
        extra["gpu_pool_mb"] = pool.total_bytes() / 2**20
        extra["gpu_used_mb"] = pool.used_bytes() / 2**20
    return extra


def run_bpnet(cfg: dict, data: tuple, s: dict, evaluate: bool = False) -> dict:
    """One ``bpnet.fit`` call of 1 + epochs epochs; per-epoch times from its
    History (``seconds``, measured after a device synchronize). With
    ``evaluate`` the test set is scored after every epoch, inside the timed
    epoch, as ``bpnet-train`` does; without it the epoch is training alone,
    as every peer's is."""
    if cfg["method"] == "cg":
        return run_bpnet_cg(cfg, data, s)
    bpnet = _import_bpnet("fit", "SGD")
    X, y, Xte, yte = data
    t0 = time.perf_counter()
    net = _network(bpnet, cfg, s["device"], "float32", s["seed"])
    be = net.backend
    # data on the device once, as for the PyTorch peer
    Xd, yd = be.asarray(X, dtype="float32"), be.asarray(y)
    Xted = be.asarray(Xte, dtype="float32")
    first, times, loss_after_1, hist = fit_timed(
        bpnet,
        net,
        Xd,
        yd,
        cfg,
        s,
        t0,
        lambda params: check_loss(params, Xte, yte),
        shuffle=True,
        validation_data=(Xted, be.asarray(yte)) if evaluate else None,
    )
    pred = be.to_numpy(net.predict(Xted))
    return result(
        first,
        times,
        float(np.mean(pred == yte)),
        device=be.name,
        loss_after_1=loss_after_1,
        train_loss=float(hist["loss"][-1]),
        bpnet=bpnet.__file__,
        **_gpu_extra(net),
    )


def run_bpnet_eval(cfg: dict, data: tuple, s: dict) -> dict:
    """``run_bpnet`` scoring the test set after every epoch (``bpnet-train``)."""
    if cfg["method"] == "cg":
        raise Unavailable("full-batch: no per-epoch evaluation")
    return run_bpnet(cfg, data, s, evaluate=True)


def run_bpnet_torch(cfg: dict, data: tuple, s: dict) -> dict:
    """``run_bpnet`` on bpnet's torch backend (CPU, or CUDA with
    ``--device cuda``), with PyTorch's threads set as for the PyTorch peers."""
    try:
        import torch
    except ImportError as exc:
        raise Unavailable("PyTorch is not installed") from exc
    torch.set_num_threads(s["threads"])
    out = run_bpnet(cfg, data, {**s, "device": "torch:" + s["device"]})
    out["extra"]["num_threads"] = torch.get_num_threads()
    # the device it ran on, so that its ratios are taken against the others
    out["device"] = "cpu" if s["device"] == "cpu" else "cuda:0"
    return out


def run_bpnet_jax(cfg: dict, data: tuple, s: dict) -> dict:
    """``run_bpnet`` on bpnet's JAX backend (``jax`` on the CPU, ``jax:gpu``
    with ``--device cuda``): each step one ``jax.jit`` call, against the
    hand-written ``jax-jit`` peer."""
    try:
        import jax  # noqa: F401
    except ImportError as exc:
        raise Unavailable("JAX is not installed") from exc
    out = run_bpnet(
        cfg, data, {**s, "device": "jax" if s["device"] == "cpu" else "jax:gpu"}
    )
    out["device"] = "cpu" if s["device"] == "cpu" else "cuda:0"
    return out


def run_bpnet_cg(cfg: dict, data: tuple, s: dict) -> dict:
    """``bpnet.minimize`` with scipy's CG, restarted from the same weights
    1 + epochs times; float64 like the NumPy ex4 peer."""
    bpnet = _import_bpnet("minimize")
    X, y, Xte, yte = data
    t0 = time.perf_counter()
    net = _network(bpnet, cfg, s["device"], "float64", s["seed"])
    be = net.backend
    init = initial_params(cfg, s["seed"])
    Xd, yd = be.asarray(X, dtype="float64"), be.asarray(y)
    setup = time.perf_counter() - t0
    runs = []
    for _ in range(1 + s["epochs"]):
        net.set_parameters(init)
        be.synchronize()
        t = time.perf_counter()
        res = bpnet.minimize(
            net, Xd, yd, loss="sigmoid", method="CG", maxiter=s["maxiter"], l2=cfg["l2"]
        )
        be.synchronize()
        runs.append(time.perf_counter() - t)
    pred = be.to_numpy(net.predict(be.asarray(Xte, dtype="float64")))
    return result(
        setup + runs[0],
        runs[1:],
        float(np.mean(pred == yte)),
        device=be.name,
        nfev=int(getattr(res, "nfev", 0)) or None,
        nit=int(getattr(res, "nit", 0)) or None,
        loss=float(res.fun),
        bpnet=bpnet.__file__,
        **_gpu_extra(net),
    )
