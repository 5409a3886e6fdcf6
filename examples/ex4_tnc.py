"""
ex4 with TNC: a 400-25-10 sigmoid network, trained through scipy.optimize
=========================================================================

Follows Andrew Ng's Machine Learning exercise 4 (``ex4.m``): the cost of the
network at the given weights, with and without regularization, the sigmoid
gradient, a gradient check on a small network, then training from random
weights with scipy's truncated Newton method (TNC) and the training accuracy.

``python examples/ex4_tnc.py ex4data1.mat ex4weights.mat``; without the files
(they are the course's, not ours to ship) it uses a stand-in of the same
layout built from scikit-learn's digits (``bpnet.data.write_ex4_standin``).
"""

# %%
# The data: X is (m, 400), one 20x20 image per row in MATLAB's column-major
# order; ``load_mat`` turns ex4's label 10 (the digit 0) into 0. The weights:
# Theta1 (25, 401) and Theta2 (10, 26), bias column first. ``from_thetas``
# turns them into ``Dense`` layers (W = Theta[:, 1:].T, b = Theta[:, 0]);
# ``ex4_labels=True`` reorders Theta2's rows so that output j is digit j.
import argparse
import tempfile

import numpy as np

import bpnet
from bpnet.data import load_mat, write_ex4_standin


def load(data, weights, folder):
    if data is None or weights is None:
        print(
            "no ex4data1.mat / ex4weights.mat given: using a stand-in built from "
            "scikit-learn's digits at 20x20 (bpnet.data.write_ex4_standin)"
        )
        data, weights = write_ex4_standin(folder)
    d, w = load_mat(data), load_mat(weights)
    return d["X"], d["y"], [w["Theta1"], w["Theta2"]]


# %%
# ex4's checkpoints. ``SigmoidCrossEntropy`` (the network's loss) is ex4's
# cost: the binary cross-entropy summed over the 10 outputs, averaged over the
# samples; ``l2`` is ex4's lambda, ``lambda / (2 m) * sum(W**2)`` over the
# weights, never the biases.
def checkpoints(X, y, thetas):
    net = bpnet.from_thetas(thetas, ex4_labels=True)  # float64, as ex4
    J0, _ = net.loss_and_grad(X, y, l2=0.0)
    J1, _ = net.loss_and_grad(X, y, l2=1.0)
    print(f"Cost at the given Thetas: {J0:.6f} (ex4's files: 0.287629)")
    print(f"Cost at the given Thetas, lambda=1: {J1:.6f} (ex4's files: 0.383770)")

    # The sigmoid layer's backward pass is g'(z) = g(z) (1 - g(z)).
    z = np.array([[-1.0, -0.5, 0.0, 0.5, 1.0]])
    sigmoid = bpnet.Sigmoid()
    sigmoid.forward(z)
    grad = sigmoid.backward(np.ones_like(z))
    print(
        "Sigmoid gradient at [-1 -0.5 0 0.5 1]:", " ".join(f"{g:.6f}" for g in grad[0])
    )

    # checkNNGradients: a 3-5-3 network on 5 samples, weights from sin() as
    # ex4's debugInitializeWeights (MATLAB fills columns first), labels
    # 1 + mod(1:m, 3), here 0-based.
    def debug_weights(fan_out, fan_in):
        n = fan_out * (fan_in + 1)
        return np.sin(np.arange(1.0, n + 1)).reshape(fan_in + 1, fan_out).T / 10

    small = bpnet.from_thetas([debug_weights(5, 3), debug_weights(3, 5)])
    Xd, yd = debug_weights(5, 2), np.arange(1, 6) % 3
    for lam in (0.0, 3.0):
        diff = bpnet.check_gradients(small, Xd, yd, l2=lam)
        print(f"Gradient check, lambda={lam:g}: relative difference {diff:.3e}")


# %%
# Training from ex4's random start (uniform in +-0.12) with TNC, through
# ``bpnet.minimize``: scipy works on one flat float64 vector of every weight,
# and each evaluation is one forward and one backward pass over all of X.
def train(X, y, maxiter, lam):
    rng = np.random.default_rng(0)
    thetas = [rng.uniform(-0.12, 0.12, (25, 401)), rng.uniform(-0.12, 0.12, (10, 26))]
    net = bpnet.from_thetas(thetas)
    result = bpnet.minimize(net, X, y, l2=lam, method="tnc", maxiter=maxiter)
    print(
        f"TNC: {result.nit} iterations, {result.nfev} evaluations, "
        f"cost {result.fun:.6f}"
    )
    accuracy = float(np.mean(np.asarray(net.predict(X)) == y))
    print(f"Training accuracy: {accuracy:.4f} (ex4's files, 50 iterations: about 0.95)")


def main(argv=None):
    parser = argparse.ArgumentParser(description="ex4 with TNC")
    parser.add_argument("data", nargs="?", help="ex4data1.mat")
    parser.add_argument("weights", nargs="?", help="ex4weights.mat")
    parser.add_argument("--maxiter", type=int, default=50, help="TNC iterations")
    parser.add_argument("--lambda", dest="lam", type=float, default=1.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        X, y, thetas = load(args.data, args.weights, folder)
    checkpoints(X, y, thetas)
    train(X, y, args.maxiter, args.lam)


if __name__ == "__main__":
    main()
