"""JAX (CPU or GPU, the same code) with ``jax.numpy`` as the namespace.

JAX's arrays cannot be written in place: every update that lasts goes
through ``bpnet.nn.mutation`` and comes back as a new array. ``fit``'s steps
are compiled with ``jax.jit`` behind ``epoch_runner``: the step is bpnet's
own (``_Epoch.stateless_step``: layers, loss and optimizer traced as they
run, every array they change passed in and returned), compiled once per
batch shape, its state donated. float64 follows ``jax_enable_x64``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from backends._base import Backend, BackendUnavailableError, DeviceRandom, EpochRunner

INSTALL_HINT = "install it with: pip install 'bpnet-arrayapi[jax]'"

X64_HINT = (
    "dtype: float64 on JAX needs its 64-bit mode, which is off; turn it on "
    "before making any array, with jax.config.update('jax_enable_x64', True) "
    "or the environment variable JAX_ENABLE_X64=1 (or use dtype='float32')"
)


class _JaxRandom(DeviceRandom):
    """Dropout's numbers from JAX's own counter-based key, split per draw:
    the same masks for a seed, eager or compiled."""

    def __init__(self, backend: JaxBackend, seed: int | None) -> None:
        import jax

        self.backend = backend
        self._jax = jax
        with jax.default_device(backend.device):
            self.key = jax.random.PRNGKey(0 if seed is None else int(seed))

    def uniform(self, shape: tuple[int, ...], dtype: Any) -> Any:
        random = self._jax.random
        self.key, sub = random.split(self.key)
        return random.uniform(sub, shape, dtype=dtype)

    def get_state(self) -> Any:
        return {"jax_key": [int(v) for v in np.asarray(self.key)]}

    def takes_state(self, state: Any) -> bool:
        return (
            isinstance(state, dict)
            and isinstance(state.get("jax_key"), list)
            and len(state["jax_key"]) == int(np.asarray(self.key).size)
        )

    def set_state(self, state: Any) -> None:
        if state is not None:
            self.key = self.backend.asarray(
                np.asarray(state["jax_key"], dtype=np.uint32)
            )

    def get_arrays(self) -> list[Any]:
        return [self.key]

    def set_arrays(self, arrays: list[Any]) -> None:
        (self.key,) = arrays


def _devices(jax: Any, kind: str | None) -> list[Any]:
    try:
        return list(jax.devices(kind) if kind else jax.devices())
    except RuntimeError:  # no such platform here
        return []


class JaxBackend(Backend):
    library = "jax"

    def __init__(self, device: str = "") -> None:
        try:
            import jax
            import jax.numpy as jnp
        except ImportError as exc:
            raise BackendUnavailableError(
                f"device: 'jax' needs JAX, which is not installed; {INSTALL_HINT}"
            ) from exc
        spec = "jax" + (f":{device}" if device else "")
        head, _, index = device.partition(":")
        if head.isdigit() and not index:
            head, index = "", head
        if head not in ("", "cpu", "gpu", "cuda") or (index and not index.isdigit()):
            raise ValueError(
                "device: expected 'jax', 'jax:cpu', 'jax:gpu', 'jax:gpu:N' or "
                f"'jax:N', got {spec!r}"
            )
        kind = {"": None, "cpu": "cpu", "gpu": "gpu", "cuda": "gpu"}[head]
        devices = _devices(jax, kind)
        if not devices:
            raise BackendUnavailableError(
                f"device: {spec!r} asked for a JAX {kind.upper()} device, but JAX "
                f"found none (it sees: {', '.join(map(str, _devices(jax, None)))}); "
                "for GPUs install jax[cuda12]"
            )
        i = int(index) if index else 0
        if i >= len(devices):
            raise BackendUnavailableError(
                f"device: {spec!r} does not exist; JAX sees {len(devices)} "
                f"{kind or 'default'} device(s): {', '.join(map(str, devices))}"
            )
        self._jax = jax
        self.xp = jnp
        self.device = devices[i]
        self.name = spec

    def _same_library(self, xp: Any) -> bool:
        import array_api_compat

        return array_api_compat.is_jax_namespace(xp)

    def dtype(self, dtype: Any) -> Any:
        name = dtype if isinstance(dtype, str) else None
        if name is None and dtype is not None:
            try:
                name = np.dtype(dtype).name
            except TypeError:
                name = None
        if name == "float64" and not self._jax.config.jax_enable_x64:
            raise BackendUnavailableError(X64_HINT)
        return super().dtype(dtype)

    def supports(self, dtype: Any) -> bool:
        if isinstance(dtype, str):
            dtype = getattr(self.xp, dtype)
        if dtype == self.xp.float64 and not self._jax.config.jax_enable_x64:
            return False
        return True

    def asarray(self, host: Any, dtype: Any = None) -> Any:
        dt = None if dtype is None else self.dtype(dtype)
        if dt is None and not self._jax.config.jax_enable_x64:
            kind = getattr(np.asarray(host), "dtype", None)
            if kind is not None and kind == np.float64:
                dt = self.xp.float32  # what JAX makes of it, said so
        return self._jax.device_put(self.xp.asarray(host, dtype=dt), self.device)

    def to_numpy(self, array: Any) -> np.ndarray:
        return np.asarray(self._jax.device_get(array))

    def owns(self, array: Any) -> bool:
        if not isinstance(array, self._jax.Array):
            return False
        return array.devices() == {self.device}

    def random(self, seed: int | None = 0) -> DeviceRandom:
        return _JaxRandom(self, seed)

    def synchronize(self) -> None:
        self._jax.effects_barrier()

    def is_out_of_memory(self, exc: BaseException) -> bool:
        return isinstance(exc, MemoryError) or "RESOURCE_EXHAUSTED" in str(exc)

    def epoch_runner(self, run_epoch: Any, capture: bool = False) -> EpochRunner:
        """``fit``'s epochs with each step compiled by ``jax.jit``
        (``JitRunner``) where the epoch offers a stateless step; eagerly
        otherwise (data-parallel training)."""
        if getattr(run_epoch, "stateless", False):
            return JitRunner(self, run_epoch)
        return EpochRunner(run_epoch)

    @property
    def is_gpu(self) -> bool:
        return self.device.platform == "gpu"

    def describe(self) -> str:
        jax = self._jax
        kind = getattr(self.device, "device_kind", self.device.platform)
        return f"JAX {jax.__version__} on {self.device} ({kind})"


class JitRunner(EpochRunner):
    """An epoch's steps, each one call of ``jax.jit(stateless_step)``.

    The step is compiled once per batch shape (a full batch, the shorter
    last one), its state donated (updated where it lies). Before the first
    call an abstract trace (``jax.eval_shape``: nothing computed, nothing
    compiled) finds the moments the optimizer makes at its first update;
    they are made then as that update makes them (``Optimizer._zeros``,
    ``_prepare``), so every compiled call takes and returns the same arrays.
    """

    def __init__(self, backend: JaxBackend, run_epoch: Any) -> None:
        super().__init__(run_epoch)
        jax = backend._jax
        cut = jax.lax.dynamic_slice_in_dim
        ep = run_epoch

        def step(state, X, T, labels, W, order, start, size):  # noqa: ANN001
            # the batch's rows cut on the device, inside the compiled step:
            # no slicing call per step (the start is a traced number)
            if order is not None:
                idx = cut(order, start, size)
                return ep.stateless_step(state, X, T, labels, W, idx)
            X, T, labels = (
                cut(X, start, size),
                cut(T, start, size),
                cut(labels, start, size),
            )
            W = None if W is None else cut(W, start, size)
            return ep.stateless_step(state, X, T, labels, W, None)

        self._fn = step
        self.step = jax.jit(step, donate_argnums=(0,), static_argnums=(7,))
        self._np = np
        self._jax = jax
        self.primed = False

    def _prime(self, *args: Any) -> None:
        ep = self.run_epoch
        opt = ep.opt
        state = ep.state()
        self._jax.eval_shape(lambda st: self._fn(st, *args), state)
        made = list(opt.state)
        ep.set_state(state)  # the trace left its tracers where arrays were made
        params = ep.net.parameters()
        for name in made:
            opt._zeros(name, params)
        opt._prepare(params)
        self.primed = True

    def __call__(self, after_step: Any) -> bool:
        ep = self.run_epoch
        ep.zero_sums()
        X, T, labels, W = ep.X, ep.T, ep.labels, ep.weights
        n, bs = T.shape[0], ep.batch_size
        order = ep.order if ep.shuffle else None
        for s in range(math.ceil(n / bs)):
            lo, hi = s * bs, min((s + 1) * bs, n)
            start = self._np.int32(lo)
            if not self.primed:
                self._prime(X, T, labels, W, order, start, hi - lo)
            state, L = self.step(ep.state(), X, T, labels, W, order, start, hi - lo)
            ep.set_state(state)
            if after_step is not None:
                ep.opt.t += 1
                after_step(s, L)
        return False
