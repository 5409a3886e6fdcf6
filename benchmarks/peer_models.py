"""The peers ``python -m benchmarks peers`` sets beside bpnet and its compiled
peers, by name: a hand-written NumPy MLP (``peer_numpy``), scikit-learn's
MLPClassifier (``peer_sklearn``), PyTorch eager and bpnet's step in plain
PyTorch (``peer_torch``), the GEMM bound (``peer_gemm``), and ex4's NumPy cost
function through scipy's CG (``peer_scipy_cg``). Each runs in its own process
(see ``peers``), so its library is imported only there.
"""

from __future__ import annotations

from benchmarks.peer_gemm import run_gemm, run_gemm_torch
from benchmarks.peer_numpy import run_numpy
from benchmarks.peer_scipy_cg import run_scipy_cg
from benchmarks.peer_sklearn import run_sklearn
from benchmarks.peer_torch import run_torch, run_torch_step

PEERS = {
    "numpy": run_numpy,
    "sklearn": run_sklearn,
    "torch": run_torch,
    "gemm": run_gemm,
    "gemm-torch": run_gemm_torch,
    "torch-step": run_torch_step,
    "scipy-cg": run_scipy_cg,
}
