"""
ex4 with L layers: the same backprop for any number of sigmoid layers
=====================================================================

Generalizes Andrew Ng's exercise 4 from one hidden layer to any list of them
(``--hidden 25,25`` is 400-25-25-10): ex4's random start for each Theta, a
gradient check on a small network of the same depth, training with scipy's
CG (or TNC, L-BFGS-B), and the accuracy on the training rows and on rows held
out. Nothing in the network is specific to two layers: each ``Dense`` and
``Sigmoid`` keeps what its backward pass needs, and ``Sequential`` runs the
backward passes in reverse, the ``for l = L-1:-1:2`` loop of the generic
derivation.

``python examples/ex4_deep.py ex4data1.mat``; without the file (the course's,
not ours to ship) it uses a stand-in of the same layout built from
scikit-learn's digits (``bpnet.data.write_ex4_standin``).
"""

# %%
# ex4's random start for a Theta of shape (out, in + 1): uniform in
# +-sqrt(6) / sqrt(in + out), the range ex4 suggests (0.12 for 400-25).
import argparse
import tempfile

import numpy as np
from sklearn.model_selection import train_test_split

import bpnet
from bpnet.data import load_mat, write_ex4_standin


def random_thetas(sizes, rng):
    thetas = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:]):
        eps = np.sqrt(6) / np.sqrt(n_in + n_out)
        thetas.append(rng.uniform(-eps, eps, (n_out, n_in + 1)))
    return thetas


# %%
# The gradient check on a network as deep as the one trained, but small:
# 3 inputs, hidden layers of 5, 3 classes, 5 samples.
def gradient_check(depth, lam):
    rng = np.random.default_rng(1)
    net = bpnet.from_thetas(random_thetas([3] + [5] * depth + [3], rng))
    X, y = rng.normal(size=(5, 3)), np.arange(1, 6) % 3
    diff = bpnet.check_gradients(net, X, y, l2=lam)
    print(f"Gradient check, {depth} hidden layers: relative difference {diff:.3e}")


# %%
# Training with a full-batch method through scipy.optimize, then the
# accuracies. ``to_thetas`` gives the weights back as ex4's Theta matrices.
def main(argv=None):
    parser = argparse.ArgumentParser(description="ex4 with L layers")
    parser.add_argument("data", nargs="?", help="ex4data1.mat")
    parser.add_argument("--hidden", default="25,25", help="hidden layer sizes")
    parser.add_argument("--method", default="cg", choices=["cg", "tnc", "lbfgs"])
    parser.add_argument("--maxiter", type=int, default=100)
    parser.add_argument("--lambda", dest="lam", type=float, default=1.0)
    args = parser.parse_args(argv)
    hidden = [int(h) for h in args.hidden.split(",")]
    with tempfile.TemporaryDirectory() as folder:
        if args.data is None:
            print(
                "no ex4data1.mat given: using a stand-in built from scikit-learn's "
                "digits at 20x20 (bpnet.data.write_ex4_standin)"
            )
            args.data, _ = write_ex4_standin(folder)
        d = load_mat(args.data)
    X_train, X_test, y_train, y_test = train_test_split(
        d["X"], d["y"], test_size=0.2, random_state=0, stratify=d["y"]
    )
    gradient_check(len(hidden), args.lam)

    sizes = [X_train.shape[1], *hidden, 10]
    net = bpnet.from_thetas(random_thetas(sizes, np.random.default_rng(0)))
    print("Network:", "-".join(map(str, sizes)), f"({net.n_parameters} weights)")
    result = bpnet.minimize(
        net, X_train, y_train, l2=args.lam, method=args.method, maxiter=args.maxiter
    )
    print(f"{args.method}: cost {result.fun:.6f} after {result.nit} iterations")
    for name, X, y in (("Training", X_train, y_train), ("Test", X_test, y_test)):
        accuracy = float(np.mean(np.asarray(net.predict(X)) == y))
        print(f"{name} accuracy: {accuracy:.4f}")
    print("Theta shapes:", [t.shape for t in bpnet.to_thetas(net)])


if __name__ == "__main__":
    main()
