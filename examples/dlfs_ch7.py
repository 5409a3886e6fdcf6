"""
Deep Learning from Scratch, ch. 7: convolutional networks
=========================================================

Follows chapter 7 of Koki Saitoh's "Deep Learning from Scratch": im2col's
shapes (7.4.3), the backward pass checked against numerical gradients, then
``SimpleConvNet`` (7.5: conv 30 filters, ReLU, 2x2 max-pool, Affine 100,
ReLU, Affine 10) trained with Adam, and its first-layer filters drawn (7.6).

``python examples/dlfs_ch7.py --data-dir DIR`` uses MNIST's IDX ``.gz`` files
in DIR with the book's 5x5 filters; without it scikit-learn's 8x8 digits,
with 3x3 filters (8x8 -> 6x6 -> 3x3).
"""

# %%
# 7.4.3: im2col lays every filter-sized window out as a column, so that a
# convolution is one matrix product. bpnet's layout is (N, C * FH * FW,
# OH * OW), the book's (N * OH * OW, C * FH * FW) transposed per sample, so
# that the product comes out in NCHW order.
import argparse

import numpy as np
from array_api_compat import array_namespace

import bpnet
from bpnet.data import load_digits, load_mnist
from bpnet.nn.im2col import geometry, im2col, window_indices


def show_im2col():
    for n in (1, 10):
        x = np.random.default_rng(0).random((n, 3, 7, 7))
        xp = array_namespace(x)
        g = geometry("im2col", (3, 7, 7), (5, 5), stride=1, pad=0)
        cols = im2col(xp, x, g, window_indices(xp, g, "cpu"))
        print(f"im2col of {x.shape}: {cols.shape}")


# %%
# The network, with the chapter's sizes: 30 filters, a 100-unit hidden layer.
def simple_convnet(side, kernel, hidden=100, filters=30, dtype="float32"):
    pooled = (side - kernel + 1) // 2
    return bpnet.Sequential(
        [
            bpnet.Reshape((1, side, side)),
            bpnet.Conv2D(filters, kernel),
            bpnet.ReLU(),
            bpnet.MaxPool2D(2),
            bpnet.Flatten(),
            bpnet.Dense(filters * pooled * pooled, hidden),
            bpnet.ReLU(),
            bpnet.Dense(hidden, 10),
        ],
        dtype=dtype,
        seed=0,
    )


# %%
# gradient_check.py for the convolutional network: backprop against central
# differences, in float64, on a few images.
def gradient_check(ds, side, kernel):
    net = simple_convnet(side, kernel, hidden=10, filters=3, dtype="float64")
    diff = bpnet.check_gradients(net, ds.X_train[:3], ds.y_train[:3])
    print(f"gradient check: relative difference {diff:.2e}")


# %%
# 7.5: train with Adam (lr 0.001, batch 100), the book's train_convnet.py,
# printing the accuracy after each epoch.
def train(ds, side, kernel, epochs, plot_dir=None):
    net = simple_convnet(side, kernel)
    if plot_dir:  # 7.6.1: the filters before learning are noise
        from bpnet.plots import plot_first_layer

        plot_first_layer(net.parameters()[0], f"{plot_dir}/filters_before.png")

    def report(epoch, logs, net):
        test_acc = net.evaluate(ds.X_test, ds.y_test)[1]
        print(
            f"epoch {epoch + 1}: train acc {logs['accuracy']:.4f}, "
            f"test acc {test_acc:.4f}"
        )

    net.fit(
        ds.X_train,
        ds.y_train,
        epochs=epochs,
        batch_size=100,
        optimizer=bpnet.Adam(lr=0.001),
        callbacks=[report],
    )
    print(f"filters: {tuple(net.parameters()[0].shape)}")
    if plot_dir:  # ... and after it, edge and blob detectors
        plot_first_layer(net.parameters()[0], f"{plot_dir}/filters_after.png")
    return net


def main(argv=None):
    parser = argparse.ArgumentParser(description="Deep Learning from Scratch, ch. 7")
    parser.add_argument("--data-dir", help="folder with MNIST's IDX .gz files")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--plot-dir", help="draw the filters here (7.6)")
    args = parser.parse_args(argv)
    if args.data_dir is None:
        print("no --data-dir given: using scikit-learn's 8x8 digits instead of MNIST")
        ds, side, kernel = load_digits(), 8, 3
    else:
        ds, side, kernel = load_mnist("mnist", data_dir=args.data_dir), 28, 5
    show_im2col()
    gradient_check(ds, side, kernel)
    train(ds, side, kernel, args.epochs, args.plot_dir)


if __name__ == "__main__":
    main()
