"""The interface every backend implements, and the host random generator."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

_DTYPE_NAMES = ("float32", "float64")


class BackendUnavailableError(RuntimeError):
    """The requested array library or device is not usable on this machine."""


class HostRandom:
    """Seeded host generator: initial weights and batch orders come from here.

    One ``numpy.random.Generator`` per model, so that every backend starts from
    the same numbers (docs/architecture.md, "same seed, same run"). Returns
    NumPy arrays on the host.
    """

    def __init__(self, seed: int | None = 0) -> None:
        self.seed = seed
        self.generator = np.random.default_rng(seed)

    def uniform(self, low: float, high: float, shape: tuple[int, ...]) -> np.ndarray:
        return self.generator.uniform(low, high, size=shape)

    def normal(self, scale: float, shape: tuple[int, ...]) -> np.ndarray:
        return self.generator.normal(0.0, scale, size=shape)

    def permutation(self, n: int) -> np.ndarray:
        return self.generator.permutation(n).astype(np.int64)

    def integers(self, high: int) -> int:
        return int(self.generator.integers(high))

    def get_state(self) -> dict:
        return self.generator.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.generator.bit_generator.state = state


class DeviceRandom:
    """Uniform numbers made where the arrays live (used for dropout masks)."""

    def __init__(self, backend: Backend, seed: int | None) -> None:
        self.backend = backend
        self._host = np.random.default_rng(seed)

    def uniform(self, shape: tuple[int, ...], dtype: Any) -> Any:
        """Uniform [0, 1) numbers of ``shape`` on the backend's device."""
        return self.backend.asarray(self._host.random(shape), dtype=dtype)

    def get_state(self) -> Any:
        """JSON-ready state (for exact resumes), or None where not available."""
        return self._host.bit_generator.state

    def takes_state(self, state: Any) -> bool:
        """Whether ``state`` is one this kind of generator wrote (a run resumed
        on another array library carries another library's)."""
        return isinstance(state, dict) and "bit_generator" in state

    def set_state(self, state: Any) -> None:
        if state is not None:
            self._host.bit_generator.state = state

    def get_arrays(self) -> list[Any]:
        """The generator's state as device arrays, for a step compiled as a
        function of its state (``jax.jit``); [] for a host generator, whose
        numbers a compiled step cannot draw."""
        return []

    def set_arrays(self, arrays: list[Any]) -> None:
        """Take back the arrays of ``get_arrays``."""


class Backend:
    """Where arrays live: an Array API namespace plus a device.

    Attributes
    ----------
    xp : module
        The Array API namespace (array-api-compat wrapped where needed).
    device : object
        The device object that ``xp`` creation functions take.
    name : str
        A label such as ``"cpu"``, ``"cuda:0"`` or ``"torch:cuda:0"``.
    """

    xp: Any
    device: Any
    name: str
    library: str = ""

    # --- creation and transfer -------------------------------------------
    def dtype(self, dtype: Any) -> Any:
        """Map ``"float32"``/``"float64"`` (or an ``xp`` dtype) to ``xp``'s dtype.

        Raises ``ValueError`` when the name is unknown and
        ``BackendUnavailableError`` when this device cannot hold it.
        """
        if dtype is None:
            dtype = "float32"
        if isinstance(dtype, str):
            if dtype not in _DTYPE_NAMES and dtype not in ("int64", "int32", "bool"):
                raise ValueError(
                    f"dtype: expected 'float32' or 'float64', got {dtype!r}"
                )
            name = dtype
            dt = getattr(self.xp, dtype)
        else:
            try:  # a NumPy dtype or scalar type, e.g. numpy.float32
                name = np.dtype(dtype).name
            except TypeError:
                name = None
            if name in _DTYPE_NAMES:
                dt = getattr(self.xp, name)
            elif name is not None and name not in ("int64", "int32", "bool"):
                raise ValueError(f"dtype: expected 'float32' or 'float64', got {name}")
            else:
                dt = dtype
                name = self.dtype_name(dt)
        if not self.supports(dt):
            raise BackendUnavailableError(
                f"dtype: {name} is not supported on device {self.name!r} "
                f"({self.device!r}); use dtype='float32'"
            )
        return dt

    def dtype_name(self, dtype: Any) -> str:
        for name in ("float32", "float64", "int64", "int32", "bool"):
            if dtype == getattr(self.xp, name):
                return name
        return str(dtype)

    def supports(self, dtype: Any) -> bool:
        """Whether this device can hold arrays of ``dtype``."""
        if isinstance(dtype, str):
            dtype = getattr(self.xp, dtype)
        try:
            info = self.xp.__array_namespace_info__()
            supported = info.dtypes(device=self.device).values()
        except Exception:  # a namespace without the inspection API
            return True
        return any(dtype == d for d in supported)

    def asarray(self, host: Any, dtype: Any = None) -> Any:
        """Copy a host array (or nested lists) to this backend's device."""
        dt = None if dtype is None else self.dtype(dtype)
        with self.context():
            return self.xp.asarray(host, dtype=dt, device=self.device)

    def to_numpy(self, array: Any) -> np.ndarray:
        """Copy ``array`` to the host as a ``numpy.ndarray``."""
        return np.asarray(array)

    def plain(self, array: Any) -> Any:
        """``array`` as data alone, for an array this backend owns: without
        any autograd history (PyTorch's ``requires_grad``), which would
        otherwise grow a graph through every step that touches it."""
        return array

    def owns(self, array: Any) -> bool:
        """True when ``array`` is of this backend's library and on its device."""
        import array_api_compat

        try:
            xp = array_api_compat.array_namespace(array)
        except TypeError:
            return False
        if not self._same_library(xp):
            return False
        return array_api_compat.device(array) == self.device

    def _same_library(self, xp: Any) -> bool:
        return xp is self.xp

    def pack(self, arrays: list[Any]) -> np.ndarray:
        """Device arrays -> one float64 host vector (for scipy.optimize)."""
        if not arrays:
            return np.zeros(0)
        return np.concatenate(
            [self.to_numpy(a).astype(np.float64, copy=False).ravel() for a in arrays]
        )

    def unpack(
        self, vector: Any, shapes: list[tuple[int, ...]], dtype: Any
    ) -> list[Any]:
        """A flat host vector -> device arrays of ``shapes`` (explicit reshapes)."""
        vector = np.asarray(vector, dtype=np.float64)
        total = sum(int(np.prod(s)) for s in shapes)
        if vector.ndim != 1 or vector.size != total:
            raise ValueError(
                f"theta: expected a flat vector of {total} parameters, "
                f"got an array of shape {vector.shape}"
            )
        out, start = [], 0
        for shape in shapes:
            size = int(np.prod(shape))
            out.append(self.asarray(vector[start : start + size].reshape(shape), dtype))
            start += size
        return out

    def synchronize(self) -> None:
        """Wait for queued device work; a no-op on the CPU."""

    def context(self) -> contextlib.AbstractContextManager:
        """A context within which creation and compute happen on ``device``."""
        return contextlib.nullcontext()

    def take_rows(self, x: Any, indices: Any) -> Any:
        """Rows ``indices`` of ``x``: ``xp.take(x, indices, axis=0)`` for
        indices already in ``[0, x.shape[0])``, such as a batch of a
        permutation. A backend may skip work its ``take`` does for other
        indices (the torch one does).
        """
        return self.xp.take(x, indices, axis=0)

    #: ``softmax_cross_entropy(Z, T) -> (loss, dL/dZ)``: the unweighted
    #: ``SoftmaxCrossEntropy.loss_and_grad`` as this backend's own kernel, or
    #: None for the portable one. A kernel must give the portable loss's
    #: numbers bit for bit (the same operations in the same order).
    softmax_cross_entropy: Any = None

    #: whether reading a 0-D array into a Python number is free (host memory,
    #: no device to wait for): a training loop may then keep its running sums
    #: as Python numbers instead of updating 0-D arrays every step
    host_scalars = False

    #: whether ``take_rows_into`` writes the rows straight into ``out``; the
    #: pure fallback gathers into a new array first, so a caller that keeps
    #: its own buffers gains nothing there and should call ``take_rows``
    gathers_into = False

    def take_rows_into(self, x: Any, indices: Any, out: Any) -> Any:
        """``take_rows(x, indices)`` written into ``out`` (C-contiguous, of
        ``x``'s dtype, ``len(indices)`` rows, not overlapping ``x``); returns
        ``out``, or the new array where ``out`` cannot be written in place.
        As for ``take_rows`` the indices must lie in
        ``[-x.shape[0], x.shape[0])``: a backend may skip the check (NumPy's
        wraps others around rather than gather into a temporary first). A
        backend with ``gathers_into`` writes there directly: a training loop
        that gathers every batch into the same buffer allocates nothing per
        step.
        """
        return _writer(out).set(out, self.take_rows(x, indices))

    def matmul(self, a: Any, b: Any) -> Any:
        """``a @ b`` for 2-D arrays; a backend may route it to its own library
        call (the CuPy backend does while it captures a graph)."""
        return a @ b

    def matmul_into(
        self, a: Any, b: Any, out: Any, alpha: float = 1.0, beta: float = 0.0
    ) -> Any:
        """``out = alpha * (a @ b) + beta * out`` for 2-D arrays, written into
        ``out``; returns ``out`` (a new array where ``out`` cannot be written
        in place: the caller keeps what is returned). With ``beta == 0`` the
        old contents of ``out`` are never read (NaNs there do not leak
        through).

        The pure fallback makes the product and copies it in; a backend may
        write the product straight into ``out`` (the NumPy one calls BLAS
        ``gemm`` with ``beta``), which saves a pass over ``out`` and, with
        ``beta == 1``, folds an in-place update into the product.
        """
        p = self.matmul(a, b)
        w = _writer(out)
        if alpha != 1.0:
            p = w.mul(p, alpha)
        if beta == 0.0:
            return w.set(out, p)
        if beta != 1.0:
            out = w.mul(out, beta)
        return w.add(out, p)

    # --- sparse input (the first layer's product and weight gradient) ----
    #: whether this backend's first layer takes a sparse batch as it is
    #: (``sparse_rows``, ``sparse_matmul``, ``sparse_rmatmul``); elsewhere
    #: ``sparse_rows`` hands out dense rows and nothing else is called
    takes_sparse = False

    def is_sparse(self, x: Any) -> bool:
        """Whether ``x`` is a sparse matrix this backend multiplies as it is."""
        return False

    def sparse_rows(self, X: Any, rows: Any, dtype: Any) -> Any:
        """Rows ``rows`` (indices or a slice) of a host or device sparse
        matrix ``X`` in ``dtype``, as this backend's first layer takes them:
        a sparse matrix where ``takes_sparse``; the pure fallback densifies
        only these rows and copies them to the device."""
        part = X[rows] if isinstance(rows, slice) else X[rows, :]
        dense = part.toarray()
        if not isinstance(dense, np.ndarray):  # a device sparse matrix's
            dense = dense.get()
        return self.asarray(dense, dtype=dtype)

    def sparse_matmul(self, x: Any, W: Any) -> Any:
        """``x @ W`` for a sparse ``x`` (n, d) and a dense ``W`` (d, k): a
        dense (n, k) array on the device. Pure fallback: ``x`` made dense."""
        return self.matmul(self.sparse_rows(x, slice(None), W.dtype), W)

    def sparse_rmatmul(self, x: Any, dy: Any) -> Any:
        """``x.T @ dy`` for a sparse ``x`` (n, d) and a dense ``dy`` (n, k): the
        first layer's weight gradient, a dense (d, k) array on the device."""
        return self.matmul(self.sparse_rows(x, slice(None), dy.dtype).T, dy)

    #: whether ``matmul_into`` with ``beta != 0`` writes the product straight
    #: into ``out`` (one pass over it); the pure fallback makes the product
    #: first, so folding an update into it saves nothing there
    folds_matmul_update = False

    #: whether ``random().uniform`` may run inside a captured graph (its state
    #: lives on the device, so each replay draws new numbers)
    graph_safe_random = False

    #: whether ``capture_graph`` can record device work for replay
    supports_graphs = False

    def capture_graph(self, fn: Any) -> Any:
        """Record the device work of ``fn()`` once; return a callable that
        replays it. Only backends with ``supports_graphs`` implement it.
        """
        raise NotImplementedError(f"{self.name} cannot capture graphs")

    def epoch_runner(self, run_epoch: Any, capture: bool = False) -> EpochRunner:
        """How a fit runs its epochs: ``runner(after_step)`` calls
        ``run_epoch(after_step)`` and returns False, or replays it and returns
        True. The one hook for replaying recorded device work.

        With ``capture`` on a backend that ``supports_graphs``, the first call
        runs eagerly (compiling every kernel), then records ``run_epoch(None)``
        with ``capture_graph``; later calls replay that recording (no per-step
        calls). Everywhere else, and when a capture fails (it then has run
        nothing), every call runs eagerly.
        """
        if capture and self.supports_graphs:
            return GraphRunner(self, run_epoch)
        return EpochRunner(run_epoch)

    def is_out_of_memory(self, exc: BaseException) -> bool:
        """Whether ``exc`` is this library's out-of-memory error."""
        return isinstance(exc, MemoryError)

    def errstate(self) -> contextlib.AbstractContextManager:
        """Silence floating-point warnings where the caller checks for NaN itself."""
        return contextlib.nullcontext()

    def random(self, seed: int | None = 0) -> DeviceRandom:
        """A seeded generator of uniform numbers on this device."""
        return DeviceRandom(self, seed)

    def describe(self) -> str:
        """One line for logs: library, version and device."""
        return self.name

    @property
    def is_gpu(self) -> bool:
        return False

    def __repr__(self) -> str:
        return f"<Backend {self.name}: {self.describe()}>"


class EpochRunner:
    """Runs the epoch function on every call: the pure fallback."""

    replaying = False  # whether calls replay a recorded graph

    def __init__(self, run_epoch: Any) -> None:
        self.run_epoch = run_epoch

    def __call__(self, after_step: Any) -> bool:
        self.run_epoch(after_step)
        return False


class GraphRunner(EpochRunner):
    """Runs the first epoch eagerly, records the next as a graph and replays it."""

    def __init__(self, backend: Backend, run_epoch: Any) -> None:
        super().__init__(run_epoch)
        self.backend = backend
        self.replay: Any = None
        self.tried = False

    def __call__(self, after_step: Any) -> bool:
        if self.replay is not None:
            self.replay()
            return True
        self.run_epoch(after_step)
        if not self.tried:  # kernels are compiled now: capture the rest
            self.tried = True
            try:
                self.replay = self.backend.capture_graph(lambda: self.run_epoch(None))
            except Exception:  # nothing ran: the eager path goes on
                self.replay = None
            self.replaying = self.replay is not None
        return False


def _writer(x: Any) -> Any:
    """bpnet's ``Writer`` for ``x``: in place where its library allows it,
    else new arrays (``bpnet.nn.mutation``, imported at first use: bpnet
    imports this package)."""
    global _writer
    from bpnet.nn.mutation import writer

    _writer = writer
    return writer(x)
