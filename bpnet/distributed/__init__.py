"""Data-parallel training over MPI (host memory) or NCCL (CuPy on GPUs).

Run the same script on every rank (``mpiexec -n 4 python train.py``)::

    from bpnet import distributed

    comm = distributed.init("cpu")          # or "cuda": NCCL, one GPU per rank
    net = bpnet.Sequential(layers, device=comm.device, seed=0)
    bpnet.fit(net, X, y, batch_size=256, comm=comm)

Every rank passes the same data and seed; each computes the gradients of its
slice of every global batch of ``batch_size`` rows, one allreduce averages
them, and every rank applies the same update: the weights are one process's,
to float summation order. Needs the ``mpi`` extra
(``pip install 'bpnet-arrayapi[mpi]'``); docs/scaling.md says how to launch
and what speed-up to expect.
"""

from bpnet.distributed.agree import RankMismatchError, check_ranks_agree
from bpnet.distributed.comm import (
    EXTRA,
    MPICommunicator,
    NCCLCommunicator,
    init,
    shard,
)
from bpnet.distributed.strategy import DataParallel, evaluate

__all__ = [
    "EXTRA",
    "DataParallel",
    "MPICommunicator",
    "NCCLCommunicator",
    "RankMismatchError",
    "check_ranks_agree",
    "evaluate",
    "init",
    "shard",
]
