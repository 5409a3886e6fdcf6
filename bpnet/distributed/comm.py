"""Communicators: who the ranks are, and how a buffer is summed across them.

``MPICommunicator`` sums host memory with MPI (NumPy, and array-api-strict or
PyTorch CPU through a DLPack view of the same memory). ``NCCLCommunicator``
sums CuPy device memory with NCCL on a side stream; MPI only starts the job
and hands every rank NCCL's unique id. CUDA-aware MPI (MPI on device pointers)
is the documented alternative (docs/scaling.md).
"""

from __future__ import annotations

import os
import sys
import time
from typing import Any

import numpy as np

EXTRA = "pip install 'bpnet-arrayapi[mpi]'"


def _mpi() -> Any:
    try:
        from mpi4py import MPI
    except ImportError as exc:
        raise ModuleNotFoundError(
            f"distributed training needs mpi4py and an MPI library: {EXTRA} "
            f"(installs mpi4py and the mpich wheel) ({exc})",
            name="mpi4py",
        ) from exc
    return MPI


def shard(n: int, rank: int, size: int) -> tuple[int, int]:
    """Rows [start, stop) of ``n`` that ``rank`` of ``size`` holds.

    Contiguous, sizes differ by at most one, and the first ranks get the extra
    rows, so rank 0 holds a row whenever ``n >= 1``.
    """
    base, extra = divmod(n, size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


class MPICommunicator:
    """Ranks of an MPI communicator; buffers summed in host memory.

    Parameters
    ----------
    mpi_comm : mpi4py.MPI.Comm, optional
        Defaults to ``MPI.COMM_WORLD``.
    overlap : bool
        Start each bucket's reduction as soon as the layers in it have finished
        their backward pass (non-blocking ``Iallreduce``) instead of one
        reduction after the whole backward pass.
    bucket_mb : float
        With ``overlap``: gradient bytes per bucket (layers are never split).
    timeout : float, optional
        Seconds a reduction may wait for the other ranks before this rank stops
        with an error (default: ``BPNET_MPI_TIMEOUT`` or 300; 0 waits forever).
    """

    kind = "mpi"

    def __init__(
        self,
        mpi_comm: Any = None,
        *,
        overlap: bool = False,
        bucket_mb: float = 4.0,
        timeout: float | None = None,
    ) -> None:
        MPI = _mpi()
        self.MPI = MPI
        self.mpi = MPI.COMM_WORLD if mpi_comm is None else mpi_comm
        # Errors come back as Python exceptions instead of killing the job
        # silently, so the rank that failed can say what happened.
        self.mpi.Set_errhandler(MPI.ERRORS_RETURN)
        self.rank, self.size = self.mpi.Get_rank(), self.mpi.Get_size()
        node = self.mpi.Split_type(MPI.COMM_TYPE_SHARED, key=self.rank)
        self.local_rank, self.local_size = node.Get_rank(), node.Get_size()
        node.Free()
        self.overlap = bool(overlap)
        self.bucket_bytes = int(bucket_mb * 2**20)
        if timeout is None:
            timeout = float(os.environ.get("BPNET_MPI_TIMEOUT", "300"))
        self.timeout = float(timeout)
        self.device = "cpu"

    @property
    def is_root(self) -> bool:
        return self.rank == 0

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"

    # --- the gradient buffer -------------------------------------------
    def wrap(self, buf: Any, backend: Any) -> Any:
        """What ``start`` reduces: a NumPy view of ``buf``'s memory."""
        if backend.is_gpu:
            raise ValueError(
                f"MPI sums host memory, and {backend.name!r} arrays live on a GPU: "
                + (
                    "use bpnet.distributed.init(device='cuda'), which reduces with NCCL"
                    if "cuda" in backend.name
                    else "train on device 'cpu' (NumPy) or 'torch'"
                )
            )
        try:
            view = np.from_dlpack(buf)
        except (TypeError, RuntimeError, BufferError) as exc:
            raise ValueError(
                f"MPI sums host memory, and {backend.name!r} arrays offer no host "
                f"view of theirs ({exc}); train on device 'cpu' (NumPy) or 'torch'"
            ) from exc
        if not view.flags.writeable:
            raise ValueError(
                f"MPI sums in place, and the host view of {backend.name!r} arrays "
                "is read-only; train on device 'cpu' (NumPy) or 'torch'"
            )
        return view

    def start(self, view: Any, lo: int, hi: int) -> Any:
        """Begin summing ``view[lo:hi]`` in place across ranks; a request."""
        return self.mpi.Iallreduce(self.MPI.IN_PLACE, view[lo:hi], op=self.MPI.SUM)

    def progress(self, requests: list[Any]) -> None:
        """Let MPI move pending reductions on (MPICH progresses only in calls)."""
        if requests:
            self.MPI.Request.Testall(requests)

    def wait(self, requests: list[Any], what: str = "gradient allreduce") -> None:
        """Wait for ``requests``; past the timeout, stop with an error."""
        if not self.timeout:
            self.MPI.Request.Waitall(requests)
            return
        deadline = time.monotonic() + self.timeout
        spins = 0
        while not self.MPI.Request.Testall(requests):
            spins += 1
            if spins % 1024 == 0:
                if time.monotonic() > deadline:
                    raise TimeoutError(
                        f"rank {self.rank}: the {what} waited {self.timeout:g} s "
                        f"for the other {self.size - 1} rank(s); one of them has "
                        "died or hangs (set BPNET_MPI_TIMEOUT to wait longer)"
                    )
                time.sleep(1e-5)

    # --- small host collectives --------------------------------------
    def allreduce_host(self, *parts: Any, what: str = "allreduce") -> np.ndarray:
        """Sum host numbers across ranks: ``parts`` (arrays, lists) end to end,
        as one new float64 vector."""
        buf = np.concatenate([np.asarray(p, dtype=np.float64).ravel() for p in parts])
        self.wait([self.start(buf, 0, buf.size)], what)
        return buf

    def bcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` on every rank."""
        return self.mpi.bcast(obj, root=0)

    def allgather(self, obj: Any) -> list[Any]:
        """Every rank's ``obj``, in rank order, on every rank."""
        return self.mpi.allgather(obj)

    def barrier(self) -> None:
        self.mpi.Barrier()

    def abort(self, code: int = 1) -> None:
        """End every rank of the job now (after an error on this one)."""
        sys.stdout.flush()
        sys.stderr.flush()
        # mpiexec forwards each rank's output through its proxies, and an abort
        # can tear them down before the last lines (the error) are through.
        time.sleep(1.0)
        self.mpi.Abort(code)

    def shard(self, n: int) -> tuple[int, int]:
        """This rank's rows [start, stop) of ``n``."""
        return shard(n, self.rank, self.size)

    def data_parallel(self, net: Any) -> Any:
        """The strategy ``fit`` calls between backward and update."""
        from bpnet.distributed.strategy import DataParallel

        return DataParallel(self, net)


_NCCL_TYPES = {"float32": "NCCL_FLOAT32", "float64": "NCCL_FLOAT64"}


class NCCLCommunicator(MPICommunicator):
    """One GPU per rank, buffers summed on the device by NCCL.

    The GPU is picked from the node-local rank (rank ``i`` on a node uses
    ``cuda:i % n_gpus``); ``device`` names it for ``Sequential(device=...)``.
    Reductions run on a side stream that waits for the compute stream's work
    so far, and the compute stream waits for them before the update.
    """

    kind = "nccl"

    def __init__(self, mpi_comm: Any = None, **kwargs: Any) -> None:
        super().__init__(mpi_comm, **kwargs)
        try:
            import cupy
            from cupy.cuda import nccl
        except ImportError as exc:
            raise ImportError(
                "NCCL reductions need CuPy with NCCL: pip install "
                f"'bpnet-arrayapi[cuda,mpi]' ({exc})"
            ) from exc
        n_gpus = cupy.cuda.runtime.getDeviceCount()
        if n_gpus < 1:
            raise RuntimeError(f"rank {self.rank}: no CUDA device answered")
        self.gpu = self.local_rank % n_gpus
        self.device = f"cuda:{self.gpu}"
        self.cupy, self.nccl_mod = cupy, nccl
        uid = nccl.get_unique_id() if self.rank == 0 else None
        uid = self.mpi.bcast(uid, root=0)
        with cupy.cuda.Device(self.gpu):
            self.nccl = nccl.NcclCommunicator(self.size, uid, self.rank)
            self.stream = cupy.cuda.Stream(non_blocking=True)

    def wrap(self, buf: Any, backend: Any) -> Any:
        if backend.library != "cupy":
            raise ValueError(
                f"NCCL sums CuPy arrays; the network lives on {backend.name!r}: "
                f"build it with device=comm.device ({self.device!r})"
            )
        return buf

    def start(self, buf: Any, lo: int, hi: int) -> Any:
        cp, nccl = self.cupy, self.nccl_mod
        self.stream.wait_event(cp.cuda.get_current_stream().record())
        seg = buf[lo:hi]
        kind = getattr(nccl, _NCCL_TYPES[str(seg.dtype)])
        self.nccl.allReduce(
            seg.data.ptr, seg.data.ptr, seg.size, kind, nccl.NCCL_SUM, self.stream.ptr
        )
        return self.stream.record()

    def progress(self, requests: list[Any]) -> None:
        pass  # NCCL progresses on its own stream

    def wait(self, requests: list[Any], what: str = "gradient allreduce") -> None:
        current = self.cupy.cuda.get_current_stream()
        for event in requests:
            current.wait_event(event)


def init(
    device: str = "cpu",
    *,
    mpi_comm: Any = None,
    overlap: bool = False,
    bucket_mb: float = 4.0,
    timeout: float | None = None,
    abort_on_error: bool = True,
) -> MPICommunicator:
    """The communicator for training on ``device`` across the ranks of the job.

    ``"cuda"`` gives an ``NCCLCommunicator`` (one GPU per rank, from the
    node-local rank: build the network with ``device=comm.device``); anything
    else an ``MPICommunicator`` on host memory (``comm.device`` is ``device``).
    Needs the ``mpi`` extra: ``pip install 'bpnet-arrayapi[mpi]'``.

    With ``abort_on_error`` an exception that nothing catches on one rank
    prints ``rank R: ...`` and ends every rank of the job (``MPI_Abort``),
    instead of leaving the others waiting in a reduction.
    """
    kwargs = {"overlap": overlap, "bucket_mb": bucket_mb, "timeout": timeout}
    if isinstance(device, str) and device.split(":")[0] == "cuda":
        comm: MPICommunicator = NCCLCommunicator(mpi_comm, **kwargs)
    else:
        comm = MPICommunicator(mpi_comm, **kwargs)
        comm.device = device
    if abort_on_error and comm.size > 1:
        _abort_on_uncaught(comm)
    return comm


def _abort_on_uncaught(comm: MPICommunicator) -> None:
    """Chain ``sys.excepthook``: report the rank, then end the whole job."""
    previous = sys.excepthook

    def hook(kind: Any, exc: Any, tb: Any) -> None:
        previous(kind, exc, tb)
        if not issubclass(kind, KeyboardInterrupt):
            print(
                f"bpnet.distributed: rank {comm.rank} of {comm.size} failed "
                f"({kind.__name__}: {exc}); ending every rank",
                file=sys.stderr,
            )
        comm.abort(1)

    sys.excepthook = hook
