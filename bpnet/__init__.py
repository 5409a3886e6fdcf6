"""bpnet: backpropagation networks written once against the Python Array API.

The same network, losses and backprop run on NumPy (CPU), CuPy (CUDA GPU),
PyTorch and array-api-strict; ``backends`` picks where the arrays live.
"""

from bpnet import metrics
from bpnet.checkpoint import resume
from bpnet.epoch import evaluate
from bpnet.ex4 import from_thetas, to_thetas
from bpnet.fullbatch import minimize
from bpnet.gates import Add, Multiply
from bpnet.gradcheck import check_gradients, numerical_gradient
from bpnet.history import DivergenceError, History
from bpnet.io import ModelFileError, load, save
from bpnet.layers import Dense, Dropout, Layer, LeakyReLU, ReLU, Sigmoid, Tanh
from bpnet.losses import (
    Loss,
    MeanSquaredError,
    SigmoidCrossEntropy,
    SoftmaxCrossEntropy,
)
from bpnet.model import Sequential
from bpnet.optimizers import SGD, Adam, CosineDecay, Momentum, Optimizer, StepDecay
from bpnet.training import fit

__version__ = "0.1.0"


def __getattr__(name: str):
    # MLPClassifier needs scikit-learn and scipy (the `train` extra): import it
    # on first use so that `import bpnet` needs only numpy and array-api-compat.
    if name == "MLPClassifier":
        from bpnet.estimator import MLPClassifier

        return MLPClassifier
    raise AttributeError(f"module 'bpnet' has no attribute {name!r}")


__all__ = [
    "SGD",
    "Adam",
    "CosineDecay",
    "DivergenceError",
    "History",
    "ModelFileError",
    "Momentum",
    "Optimizer",
    "StepDecay",
    "evaluate",
    "fit",
    "load",
    "metrics",
    "minimize",
    "resume",
    "save",
    "Add",
    "Dense",
    "Dropout",
    "Layer",
    "LeakyReLU",
    "Loss",
    "MLPClassifier",
    "MeanSquaredError",
    "Multiply",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "SigmoidCrossEntropy",
    "SoftmaxCrossEntropy",
    "Tanh",
    "check_gradients",
    "from_thetas",
    "numerical_gradient",
    "to_thetas",
]
