"""The compiled peers of the ``peers`` subcommand: JAX (a jitted step, and a whole epoch
as one jitted ``lax.scan``) and ``torch.compile`` (inductor's default mode on
the CPU, ``mode="reduce-overhead"``, i.e. CUDA graphs, on a GPU).

They train what the NumPy peer trains: the same initial weights, the same
batch order (``batch_orders``), the last partial batch included, plain SGD on
the mean softmax cross-entropy. Each reports ``loss_after_1``, the test-set
loss of its weights after the warm-up epoch, which ``peers`` checks against
the NumPy loop's. JAX is an optional benchmark dependency: without it these
rows say "unavailable" and nothing else changes.
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
    warm_and_time,
)
from benchmarks.peer_torch import time_torch, torch_model, torch_on


# --- JAX -------------------------------------------------------------------
def _jax_on(s: dict) -> tuple[Any, Any, Any]:
    """(jax, jax.numpy, device) for the run's device."""
    try:
        import jax
        import jax.numpy as jnp
    except ImportError as exc:
        raise Unavailable(
            "JAX is not installed (an optional benchmark dependency: "
            "pip install -e '.[bench]')"
        ) from exc
    if s["device"] == "cuda":
        try:
            dev = jax.devices("gpu")[0]
        except RuntimeError as exc:
            raise Unavailable(f"JAX sees no GPU ({exc})") from exc
    else:
        dev = jax.devices("cpu")[0]
    return jax, jnp, dev


def _jax_step(jax: Any, jnp: Any, lr: float, bs: int) -> Any:
    """One SGD step on the batch ``order[i * bs : i * bs + bs]``, gathered
    inside the compiled function, as bpnet gathers on its device."""

    def loss_fn(params, Xb, yb):
        A = Xb
        for k, (W, b) in enumerate(params):
            A = A @ W + b
            if k < len(params) - 1:
                A = jax.nn.relu(A)
        logp = jax.nn.log_softmax(A, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, yb[:, None], axis=1))

    grad_fn = jax.value_and_grad(loss_fn)

    def step(params, X, y, order, i):
        idx = jax.lax.dynamic_slice(order, (i * bs,), (bs,))
        loss, g = grad_fn(params, jnp.take(X, idx, axis=0), jnp.take(y, idx, axis=0))
        params = jax.tree_util.tree_map(lambda p, d: p - lr * d, params, g)
        return params, loss

    return step


def _run_jax(cfg: dict, data: tuple, s: dict, scan: bool) -> dict:
    jax, jnp, dev = _jax_on(s)
    X, y, Xte, yte = data
    t0 = time.perf_counter()
    init = initial_params(cfg, s["seed"])
    params = tuple(
        (
            jax.device_put(W.astype(np.float32), dev),
            jax.device_put(b.astype(np.float32), dev),
        )
        for W, b in zip(init[0::2], init[1::2])
    )
    Xd, yd = jax.device_put(X, dev), jax.device_put(y.astype(np.int32), dev)
    n, bs, lr = X.shape[0], cfg["batch_size"], cfg["lr"]
    full, tail = divmod(n, bs)
    step = _jax_step(jax, jnp, lr, bs)
    # the last partial batch: the same step on its own (static) size, reading
    # the order from offset full * bs
    tail_step = _jax_step(jax, jnp, lr, tail) if tail else None
    jit_step = jax.jit(step, donate_argnums=0)
    jit_tail = (
        jax.jit(
            lambda p, X, y, o: tail_step(p, X, y, o[full * bs :], 0), donate_argnums=0
        )
        if tail
        else None
    )

    def scan_epoch(params, X, y, order):
        def body(p, i):
            return step(p, X, y, order, i)

        params, losses = jax.lax.scan(body, params, jnp.arange(full))
        return params, losses

    jit_scan = jax.jit(scan_epoch, donate_argnums=0)
    orders = batch_orders(cfg, s["seed"], n)
    state = {"params": params}

    def epoch():
        order = jax.device_put(next(orders).astype(np.int32), dev)
        p = state["params"]
        if scan:
            if full:  # scanning no full batch would still trace one, past the end
                p, _ = jit_scan(p, Xd, yd, order)
        else:
            for i in range(full):
                p, _ = jit_step(p, Xd, yd, order, i)
        if tail:
            p, _ = jit_tail(p, Xd, yd, order)
        state["params"] = p

    def sync():
        jax.block_until_ready(state["params"])

    def host_params():
        return [np.asarray(a) for layer in state["params"] for a in layer]

    first, times, loss_after_1 = warm_and_time(
        epoch,
        s,
        time.perf_counter() - t0,
        lambda: check_loss(host_params(), Xte, yte),
        sync,
    )
    final = host_params()
    A = Xte
    for k in range(0, len(final), 2):
        A = A @ final[k] + final[k + 1]
        A = np.maximum(A, 0) if k < len(final) - 2 else A
    return result(
        first,
        times,
        float(np.mean(A.argmax(axis=1) == yte)),
        device="cpu" if dev.platform == "cpu" else f"cuda:{dev.id}",
        loss_after_1=loss_after_1,
        version=jax.__version__,
        compiled="whole epoch as one lax.scan" if scan else "jitted step",
    )


def run_jax_jit(cfg: dict, data: tuple, s: dict) -> dict:
    return _run_jax(cfg, data, s, scan=False)


def run_jax_scan(cfg: dict, data: tuple, s: dict) -> dict:
    return _run_jax(cfg, data, s, scan=True)


# --- torch.compile -------------------------------------------------------------
def compile_mode(s: dict) -> str:
    """inductor's default on the CPU; CUDA graphs on a GPU. ``compile_mode``
    in the settings overrides it (the tests run the GPU path on the CPU)."""
    return s.get("compile_mode") or (
        "reduce-overhead" if s["device"] == "cuda" else "default"
    )


def run_torch_compile(cfg: dict, data: tuple, s: dict) -> dict:
    torch, dev, sync = torch_on(s)
    X, y, Xte, yte = data
    t0 = time.perf_counter()
    mode = compile_mode(s)
    model = torch_model(torch, cfg, s["seed"], dev)
    Xt, yt = torch.from_numpy(X).to(dev), torch.from_numpy(y).to(dev)
    crit = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=cfg["lr"])

    def loss_fn(idx):
        return crit(model(Xt.index_select(0, idx)), yt.index_select(0, idx))

    # one graph per batch size (the full batches and the last partial one)
    compiled = torch.compile(loss_fn, mode=mode, dynamic=False)
    graphs = mode == "reduce-overhead"
    orders = batch_orders(cfg, s["seed"], X.shape[0])
    n, bs = X.shape[0], cfg["batch_size"]

    def epoch():
        order = torch.from_numpy(next(orders)).to(dev)
        for lo in range(0, n, bs):
            if graphs:  # a new step: the graph may reuse its outputs' memory
                torch.compiler.cudagraph_mark_step_begin()
            opt.zero_grad(set_to_none=True)
            loss = compiled(order[lo : lo + bs])
            loss.backward()
            opt.step()

    first, times, accuracy, loss_after_1 = time_torch(
        torch, model, epoch, s, sync, t0, (Xte, yte, dev)
    )
    return result(
        first,
        times,
        accuracy,
        device=str(dev),
        loss_after_1=loss_after_1,
        version=torch.__version__,
        mode=mode,
        num_threads=torch.get_num_threads(),
    )


PEERS = {
    "jax-jit": run_jax_jit,
    "jax-scan": run_jax_scan,
    "torch-compile": run_torch_compile,
}
