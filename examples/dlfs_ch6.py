"""
Deep Learning from Scratch, ch. 6: optimizers, Batch Normalization, Dropout
===========================================================================

Follows chapter 6 of Koki Saitoh's "Deep Learning from Scratch" on small
data: the same five-layer ReLU network trained from the same weights by SGD,
Momentum, AdaGrad and Adam (6.1.8); a deeper network whose weights start
very small, with and without Batch Normalization (6.3); and an overfitting
network on 300 training images, with and without Dropout (6.4).

``python examples/dlfs_ch6.py --data-dir DIR`` uses MNIST's IDX ``.gz`` files
in DIR, as the book does; without it scikit-learn's 8x8 digits.
"""

# %%
# One builder for every network of the chapter: hidden ReLU layers of 100
# units, optionally each Affine followed by BatchNorm, or each ReLU by
# Dropout. The same ``seed`` gives the same initial weights (He's, the
# book's ``weight_init_std="relu"``), so the comparisons start level.
import argparse

import numpy as np

import bpnet
from bpnet.data import load_digits, load_mnist


def network(n_in, hidden, batchnorm=False, dropout=0.0, weight_std=None):
    layers = []
    for n_out in hidden:
        layers.append(bpnet.Dense(n_in, n_out))
        layers += [bpnet.BatchNorm()] if batchnorm else []
        layers.append(bpnet.ReLU())
        layers += [bpnet.Dropout(dropout)] if dropout else []
        n_in = n_out
    net = bpnet.Sequential([*layers, bpnet.Dense(n_in, 10)], seed=0)
    if weight_std is not None:  # the book's explicit scale: W ~ std * N(0, 1)
        rng = np.random.default_rng(0)
        net.set_parameters(
            [
                weight_std * rng.standard_normal(p.shape) if p.ndim == 2 else p
                for p in net.parameters()
            ]
        )
    return net


# %%
# 6.1.8: the four update rules, each with the book's learning rate.
def compare_optimizers(ds, epochs):
    rules = {
        "SGD": bpnet.SGD(lr=0.01),
        "Momentum": bpnet.Momentum(lr=0.01),
        "AdaGrad": bpnet.AdaGrad(lr=0.01),
        "Adam": bpnet.Adam(lr=0.001),
    }
    for name, optimizer in rules.items():
        net = network(ds.X_train.shape[1], [100] * 4)
        history = net.fit(
            ds.X_train, ds.y_train, epochs=epochs, batch_size=128, optimizer=optimizer
        )
        print(f"{name:>8}: final training loss {history.loss[-1]:.4f}")


# %%
# 6.3.2: with weights this small (std 0.01) the signal fades layer by layer
# and plain SGD barely moves; BatchNorm rescales every layer's input and the
# network learns.
def compare_batchnorm(ds, epochs):
    X, y = ds.X_train[:1000], ds.y_train[:1000]
    for batchnorm in (False, True):
        net = network(X.shape[1], [100] * 5, batchnorm=batchnorm, weight_std=0.01)
        net.fit(X, y, epochs=epochs, batch_size=100, optimizer=bpnet.SGD(lr=0.01))
        accuracy = net.evaluate(X, y)[1]
        print(
            f"{'with' if batchnorm else 'without'} BatchNorm: train acc {accuracy:.4f}"
        )


# %%
# 6.4.3: 300 training images and six hidden layers overfit: training accuracy
# runs ahead of test accuracy. Dropout (ratio 0.2) narrows the gap.
def compare_dropout(ds, epochs):
    X, y = ds.X_train[:300], ds.y_train[:300]
    for ratio in (0.0, 0.2):
        net = network(X.shape[1], [100] * 6, dropout=ratio)
        net.fit(X, y, epochs=epochs, batch_size=100, optimizer=bpnet.SGD(lr=0.01))
        train_acc, test_acc = (
            net.evaluate(X, y)[1],
            net.evaluate(ds.X_test, ds.y_test)[1],
        )
        print(
            f"Dropout {ratio:.1f}: train acc {train_acc:.4f}, test acc {test_acc:.4f}"
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description="Deep Learning from Scratch, ch. 6")
    parser.add_argument("--data-dir", help="folder with MNIST's IDX .gz files")
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args(argv)
    if args.data_dir is None:
        print("no --data-dir given: using scikit-learn's 8x8 digits instead of MNIST")
        ds = load_digits()
    else:
        ds = load_mnist("mnist", data_dir=args.data_dir)
    compare_optimizers(ds, args.epochs)
    compare_batchnorm(ds, args.epochs)
    compare_dropout(ds, 10 * args.epochs)


if __name__ == "__main__":
    main()
