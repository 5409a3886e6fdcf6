"""Scenarios run on every rank of ``mpiexec -n P python tests/mpi_worker.py``.

Each scenario trains with ``comm`` (or without, in the test process, for the
one-process reference) and returns a dict of NumPy arrays. Under MPI every
rank saves its results to ``OUT/rank{r}.npz`` as ``scenario/key``.
"""

from __future__ import annotations

import os
import signal
import sys

import numpy as np

import bpnet

N, D, K = 203, 12, 4  # 203 rows: the last batch of each epoch is uneven


def _data(seed: int = 1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(N, D)), rng.integers(0, K, N)


def _net(dropout: float = 0.0, device: str = "cpu"):
    layers = [bpnet.Dense(D, 16), bpnet.ReLU()]
    if dropout:
        layers.append(bpnet.Dropout(dropout))
    layers += [bpnet.Dense(16, 16), bpnet.Tanh(), bpnet.Dense(16, K)]
    return bpnet.Sequential(layers, device=device, dtype="float64", seed=3)


def _weights(net, history=None) -> dict:
    out = {f"p{i}": net.backend.to_numpy(p) for i, p in enumerate(net.parameters())}
    if history is not None:
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            if history[key] and history[key][0] is not None:
                out[key] = np.asarray(history[key], dtype=np.float64)
    return out


def _fit(opt, dropout, comm, device="cpu", **kwargs):
    X, y = _data()
    net = _net(dropout, device)
    kwargs = {"epochs": 4, "batch_size": 20, "lr": 0.05, "l2": 0.01, **kwargs}
    h = bpnet.fit(net, X, y, optimizer=opt, comm=comm, **kwargs)
    return _weights(net, h)


def _minimize(method, comm, convex=False, rows=None, **kwargs):
    """30 iterations on the MLP, or softmax regression (convex, with L2: one
    minimum) to convergence; on the first ``rows`` rows only, if given."""
    X, y = _data()
    X, y = X[:rows], y[:rows]
    net = bpnet.Sequential([bpnet.Dense(D, K)], dtype="float64") if convex else _net()
    maxiter = 500 if convex else 30
    result = bpnet.minimize(
        net, X, y, l2=0.5, method=method, maxiter=maxiter, comm=comm, **kwargs
    )
    return {**_weights(net), "curve": np.asarray(result.loss_curve)}


def _sample_weight() -> np.ndarray:
    """Weights in [0, 3), a fifth of them 0 (those rows drop out)."""
    rng = np.random.default_rng(7)
    w = rng.uniform(0.0, 3.0, N)
    w[rng.random(N) < 0.2] = 0.0
    return w


def _resume(comm, tmp):
    """Two epochs with a checkpoint, then a fresh network resumed to four."""
    X, y = _data()
    path = os.path.join(tmp, "run.npz")
    kw = {"batch_size": 20, "optimizer": "momentum", "lr": 0.05, "comm": comm}
    bpnet.fit(_net(0.3), X, y, epochs=2, checkpoint=path, **kw)
    if comm is not None:
        comm.barrier()  # rank 0's file is complete before anyone reads it
    net = _net(0.3)
    bpnet.fit(net, X, y, epochs=4, checkpoint=path + ".b", **kw)  # reference
    reference = _weights(net)
    net = _net(0.3)
    bpnet.fit(net, X, y, epochs=4, checkpoint=path, resume=True, **kw)
    resumed = _weights(net)
    return {**resumed, **{"ref_" + k: v for k, v in reference.items()}}


def _mmap(comm, tmp, **kwargs):
    """X read from a memory-mapped .npy, each rank only its rows of each batch
    (one process trains on the array in memory)."""
    X, y = _data()
    path = os.path.join(tmp, "X.npy")
    if comm is None or comm.is_root:
        np.save(path, X)
    if comm is not None:
        comm.barrier()
        X = np.load(path, mmap_mode="r")
    net = _net(0.3)
    Xv, yv = _data(seed=2)
    h = bpnet.fit(
        net,
        X,
        y,
        epochs=3,
        batch_size=20,
        optimizer="adam",
        lr=0.01,
        comm=comm,
        validation_data=(Xv[:50], yv[:50]),
        **kwargs,
    )
    return _weights(net, h)


def _batchnorm(comm):
    """BatchNorm normalises with each rank's rows (not one process's numbers);
    its running statistics are averaged across ranks every epoch."""
    X, y = _data()
    net = bpnet.Sequential(
        [bpnet.Dense(D, 16), bpnet.BatchNorm(), bpnet.ReLU(), bpnet.Dense(16, K)],
        dtype="float64",
        seed=3,
    )
    bpnet.fit(net, X, y, epochs=3, batch_size=20, optimizer="adam", lr=0.01, comm=comm)
    buffers = {
        f"{i}-{name}": net.backend.to_numpy(value)
        for i, layer in enumerate(net.layers)
        for name, value in layer.named_buffers().items()
    }
    return {**_weights(net), **buffers}


def _interrupt(comm):
    """Rank 1 (or the only rank) gets Ctrl-C at the end of epoch 1: every
    rank stops at the same step instead of waiting alone in a reduction."""
    X, y = _data()
    net = _net()
    victim = 0 if comm is None else 1

    def ctrl_c(epoch, logs, net):
        me = 0 if comm is None else comm.rank
        if epoch == 1 and me == victim:
            os.kill(os.getpid(), signal.SIGINT)

    opt = bpnet.SGD(lr=0.05)
    try:
        bpnet.fit(
            net,
            X,
            y,
            epochs=5,
            batch_size=20,
            optimizer=opt,
            comm=comm,
            callbacks=[ctrl_c],
        )
        stopped = 0
    except KeyboardInterrupt:
        stopped = 1
    return {**_weights(net), "stopped": np.array(stopped), "t": np.array(opt.t)}


SCENARIOS = {
    **{
        f"{opt}-dropout{d}": (lambda c, t, o=opt, d=d: _fit(o, d, c))
        for opt in ("sgd", "momentum", "adam")
        for d in (0.0, 0.3)
    },
    # early stopping on a held-out split, checked every epoch
    "adam-early": lambda c, t: _fit(
        "adam",
        0.0,
        c,
        epochs=6,
        lr=0.05,
        validation_fraction=0.25,
        early_stopping=True,
        patience=1,
    ),
    "no-shuffle": lambda c, t: _fit("sgd", 0.3, c, shuffle=False),
    # the same path, iteration by iteration
    "minimize-CG": lambda c, t: _minimize("CG", c),
    "minimize-L-BFGS-B": lambda c, t: _minimize("L-BFGS-B", c),
    "minimize-weighted-L-BFGS-B": lambda c, t: _minimize(
        "L-BFGS-B", c, sample_weight=_sample_weight()
    ),
    # fewer rows than ranks: the last rank's shard is empty
    "minimize-two-rows-L-BFGS-B": lambda c, t: _minimize("L-BFGS-B", c, rows=2),
    # TNC's finite-difference Hessian products amplify rounding, so its path
    # drifts; on a convex problem it reaches the same minimum
    **{
        f"convex-{m}": (lambda c, t, m=m: _minimize(m, c, convex=True))
        for m in ("TNC", "CG", "L-BFGS-B")
    },
    # weighted mean over the global batch; rows of weight 0 drop out
    **{
        f"weighted-{opt}-dropout{d}": (
            lambda c, t, o=opt, d=d: _fit(o, d, c, sample_weight=_sample_weight())
        )
        for opt, d in (("sgd", 0.0), ("adam", 0.3))
    },
    "resume": _resume,
    "mmap": _mmap,
    "weighted-mmap": lambda c, t: _mmap(c, t, sample_weight=_sample_weight()),
    "batchnorm": lambda c, t: _batchnorm(c),
    "interrupt": lambda c, t: _interrupt(c),
}
OVERLAP_SCENARIOS = ("adam-dropout0.3", "momentum-dropout0.0")


def main(out: str, mode: str, names: list[str]) -> None:
    """Run ``names`` on this rank; mode "single" is one process without MPI
    (the reference, launched like the ranks so it sums in their order)."""
    comm = None
    if mode != "single":
        from bpnet import distributed

        # Tiny buckets: one per layer, so the overlapped path has several.
        overlap = mode == "overlap"
        comm = distributed.init("cpu", overlap=overlap, bucket_mb=1e-6, timeout=60)
    results = {}
    for name in names:
        for key, value in SCENARIOS[name](comm, out).items():
            results[f"{name}/{key}"] = value
    rank = 0 if comm is None else comm.rank
    np.savez(os.path.join(out, f"rank{rank}.npz"), **results)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3:] or list(SCENARIOS))
