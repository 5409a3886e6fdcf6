"""bpnet: backpropagation networks written once against the Python Array API.

The same network, losses and backprop run on NumPy (CPU), CuPy (CUDA GPU),
PyTorch and array-api-strict; ``backends`` picks where the arrays live.
"""

from bpnet import metrics
from bpnet._version import __version__
from bpnet.export import ExportError, export_onnx
from bpnet.io import ModelFileError, load, save
from bpnet.io.fingerprint import DataFileChangedError, DataMismatchError
from bpnet.nn.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from bpnet.nn.conv import Conv2D, Flatten, Reshape
from bpnet.nn.evaluation import evaluate
from bpnet.nn.ex4 import from_thetas, to_thetas
from bpnet.nn.gates import Add, Multiply
from bpnet.nn.gradcheck import check_gradients, numerical_gradient
from bpnet.nn.layers import Dense, Dropout, Layer
from bpnet.nn.losses import (
    HalfPoissonDeviance,
    HalfSquaredError,
    Loss,
    MeanSquaredError,
    SigmoidCrossEntropy,
    SoftmaxCrossEntropy,
)
from bpnet.nn.model import Sequential
from bpnet.nn.normalization import BatchNorm
from bpnet.nn.pooling import AvgPool2D, MaxPool2D
from bpnet.nn.scale import Scale
from bpnet.sklearn.persistence import skops_trusted_types
from bpnet.train import optimizers as _optimizers
from bpnet.train.callbacks import Callback
from bpnet.train.fullbatch import minimize
from bpnet.train.history import DivergenceError, History, TrainingWarning
from bpnet.train.loop import fit, resume
from bpnet.train.optimizers import CosineDecay, Optimizer, StepDecay

# Every registered optimizer by class name (SGD, Momentum, Adam, ...): a new
# optimizer module in bpnet/train/optimizers/ appears here with no edit.
globals().update(_optimizers.CLASSES)


def __getattr__(name: str):
    # The estimators need scikit-learn and scipy (the `train` extra): import
    # them on first use so that `import bpnet` needs only numpy and
    # array-api-compat.
    if name == "MLPClassifier":
        from bpnet.sklearn.classifier import MLPClassifier

        return MLPClassifier
    if name == "MLPRegressor":
        from bpnet.sklearn.regressor import MLPRegressor

        return MLPRegressor
    raise AttributeError(f"module 'bpnet' has no attribute {name!r}")


__all__ = [
    "__version__",
    *_optimizers.CLASSES,
    "Callback",
    "CosineDecay",
    "DataFileChangedError",
    "DataMismatchError",
    "DivergenceError",
    "ExportError",
    "HalfPoissonDeviance",
    "HalfSquaredError",
    "History",
    "ModelFileError",
    "Optimizer",
    "StepDecay",
    "TrainingWarning",
    "evaluate",
    "export_onnx",
    "fit",
    "load",
    "metrics",
    "minimize",
    "resume",
    "save",
    "Add",
    "AvgPool2D",
    "BatchNorm",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Layer",
    "LeakyReLU",
    "Loss",
    "MLPClassifier",
    "MLPRegressor",
    "MaxPool2D",
    "MeanSquaredError",
    "Multiply",
    "ReLU",
    "Reshape",
    "Scale",
    "Sequential",
    "Sigmoid",
    "SigmoidCrossEntropy",
    "SoftmaxCrossEntropy",
    "Tanh",
    "check_gradients",
    "from_thetas",
    "numerical_gradient",
    "skops_trusted_types",
    "to_thetas",
]
