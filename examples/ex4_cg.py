"""
ex4 with CG: backprop checked by hand, then trained as fmincg trains it
=======================================================================

Follows Andrew Ng's Machine Learning exercise 4 (``ex4.m``) with the
conjugate-gradient method that its ``fmincg`` implements: the cost at the
given weights, the sigmoid gradient, ``checkNNGradients``'s two columns
(numerical and backprop gradients side by side), then 50 CG iterations from
ex4's random start, printed as fmincg prints them, and the training accuracy.

``python examples/ex4_cg.py ex4data1.mat ex4weights.mat``; without the files
(the course's, not ours to ship) it uses a stand-in of the same layout built
from scikit-learn's digits (``bpnet.data.write_ex4_standin``).
"""

# %%
# The data and the given weights, as in ``ex4_tnc.py``: X (m, 400) with one
# column-major 20x20 image per row, labels 0..9 (ex4's 10 is the digit 0), and
# Theta1 (25, 401), Theta2 (10, 26) as ``Dense`` layers.
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
# Feedforward and cost (ex4 parts 1-3), and the sigmoid gradient (part 4).
def cost_and_sigmoid_gradient(X, y, thetas):
    net = bpnet.from_thetas(thetas, ex4_labels=True)
    for lam, ex4 in ((0.0, "0.287629"), (1.0, "0.383770")):
        J, _ = net.loss_and_grad(X, y, l2=lam)
        print(f"Cost at the given Thetas, lambda={lam:g}: {J:.6f} (ex4's files: {ex4})")
    z = np.array([[-1.0, -0.5, 0.0, 0.5, 1.0]])
    sigmoid = bpnet.Sigmoid()
    sigmoid.forward(z)  # keeps g(z) for the backward pass
    grad = sigmoid.backward(np.ones_like(z))  # g(z) * (1 - g(z))
    print("Sigmoid gradient:", " ".join(f"{g:.6f}" for g in grad[0]))


# %%
# checkNNGradients (ex4 parts 7 and 8): central differences, one weight at a
# time, beside backprop's gradient, on a 3-5-3 network with sin() weights.
def check_nn_gradients(lam):
    def debug_weights(fan_out, fan_in):  # MATLAB's reshape fills columns first
        n = fan_out * (fan_in + 1)
        return np.sin(np.arange(1.0, n + 1)).reshape(fan_in + 1, fan_out).T / 10

    net = bpnet.from_thetas([debug_weights(5, 3), debug_weights(3, 5)])
    X, y = debug_weights(5, 2), np.arange(1, 6) % 3  # ex4's 1 + mod(1:m, 3)
    numeric, backprop = bpnet.numerical_gradient(net, X, y, l2=lam)
    for n, b in list(zip(numeric, backprop))[:5]:
        print(f"  {n: .10f}  {b: .10f}")
    diff = np.linalg.norm(numeric - backprop) / np.linalg.norm(numeric + backprop)
    print(f"Relative difference (lambda={lam:g}): {diff:.3e} (below 1e-9)")


# %%
# Training (ex4 part 9) with scipy's nonlinear conjugate gradient, the method
# fmincg implements, from ex4's random start: uniform in +-0.12.
def train(X, y, maxiter, lam):
    rng = np.random.default_rng(0)
    thetas = [rng.uniform(-0.12, 0.12, (25, 401)), rng.uniform(-0.12, 0.12, (10, 26))]
    net = bpnet.from_thetas(thetas)
    result = bpnet.minimize(
        net, X, y, l2=lam, method="cg", maxiter=maxiter, verbose=True
    )
    accuracy = float(np.mean(np.asarray(net.predict(X)) == y))
    print(f"CG: cost {result.fun:.6f} after {result.nit} iterations")
    print(f"Training accuracy: {accuracy:.4f} (ex4's files, 50 iterations: about 0.95)")


def main(argv=None):
    parser = argparse.ArgumentParser(description="ex4 with CG")
    parser.add_argument("data", nargs="?", help="ex4data1.mat")
    parser.add_argument("weights", nargs="?", help="ex4weights.mat")
    parser.add_argument("--maxiter", type=int, default=50, help="CG iterations")
    parser.add_argument("--lambda", dest="lam", type=float, default=1.0)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        X, y, thetas = load(args.data, args.weights, folder)
    cost_and_sigmoid_gradient(X, y, thetas)
    check_nn_gradients(lam=3.0)
    train(X, y, args.maxiter, args.lam)


if __name__ == "__main__":
    main()
