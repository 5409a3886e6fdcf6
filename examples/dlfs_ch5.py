"""
Deep Learning from Scratch, ch. 5: backpropagation
==================================================

Follows chapter 5 of Koki Saitoh's "Deep Learning from Scratch": the apple
and orange shopping bill through multiply and add gates, the ReLU layer used
on its own, then ``TwoLayerNet`` (Affine, ReLU, Affine, SoftmaxWithLoss):
backprop's gradients against numerical ones, parameter by parameter, and
training with minibatch SGD, the train and test accuracy after every epoch.

``python examples/dlfs_ch5.py --data-dir DIR`` trains on MNIST's IDX ``.gz``
files in DIR, as the book does; without it on scikit-learn's 8x8 digits.
"""

# %%
# 5.4: the bill. Two apples at 100, three oranges at 150, tax 1.1. Each gate
# keeps its inputs in ``forward``; ``backward`` hands the incoming gradient
# on, multiplied by the other input (multiply) or unchanged (add).
import argparse

import numpy as np

import bpnet
from bpnet.data import load_digits, load_mnist


def apple_orange():
    apple, apple_num, orange, orange_num, tax = 100, 2, 150, 3, 1.1
    mul_apple = bpnet.Multiply()  # the book's MulLayer
    mul_orange = bpnet.Multiply()
    add_fruit = bpnet.Add()  # the book's AddLayer
    mul_tax = bpnet.Multiply()
    apple_price = mul_apple.forward(apple, apple_num)
    orange_price = mul_orange.forward(orange, orange_num)
    all_price = add_fruit.forward(apple_price, orange_price)
    price = mul_tax.forward(all_price, tax)

    dall_price, dtax = mul_tax.backward(1)  # dprice = 1, then backwards
    dapple_price, dorange_price = add_fruit.backward(dall_price)
    dorange, dorange_num = mul_orange.backward(dorange_price)
    dapple, dapple_num = mul_apple.backward(dapple_price)
    print(f"price: {price:g}")
    print(
        f"dapple: {dapple:g}, dapple_num: {dapple_num:g}, dorange: {dorange:g}, "
        f"dorange_num: {dorange_num:g}, dtax: {dtax:g}"
    )


# %%
# 5.5: a layer on its own, as the book uses it: ``forward`` remembers where
# the input was positive, ``backward`` lets the gradient through only there.
def relu_on_its_own():
    x = np.array([[1.0, -0.5], [-2.0, 3.0]])
    relu = bpnet.ReLU()
    out = relu.forward(x)
    dx = relu.backward(np.ones_like(x))
    print("ReLU forward:", out.tolist(), "backward:", dx.tolist())


# %%
# 5.7: TwoLayerNet is a ``Sequential``: Affine is ``Dense`` (x @ W + b), and
# SoftmaxWithLoss is the network's loss, ``SoftmaxCrossEntropy``. The book's
# start: W ~ 0.01 * N(0, 1), b = 0.
def two_layer_net(input_size, hidden_size, output_size, seed=0):
    net = bpnet.Sequential(
        [
            bpnet.Dense(input_size, hidden_size),
            bpnet.ReLU(),
            bpnet.Dense(hidden_size, output_size),
        ],
        dtype="float64",
        loss=bpnet.SoftmaxCrossEntropy(),
        seed=seed,
    )
    rng = np.random.default_rng(seed)
    net.set_parameters(
        [
            0.01 * rng.standard_normal((input_size, hidden_size)),
            np.zeros(hidden_size),
            0.01 * rng.standard_normal((hidden_size, output_size)),
            np.zeros(output_size),
        ]
    )
    return net


# %%
# 5.7.3: the gradient check. Central differences, one parameter at a time,
# against backprop, on three images; the mean absolute difference per array.
def gradient_check(net, X, y):
    numeric, backprop = bpnet.numerical_gradient(net, X[:3], y[:3])
    start = 0
    for name, param in zip(["W1", "b1", "W2", "b2"], net.parameters()):
        end = start + int(np.prod(param.shape))
        diff = np.mean(np.abs(numeric[start:end] - backprop[start:end]))
        print(f"{name}: {diff:.3e}")
        start = end


# %%
# 5.7.4: training with minibatch SGD (learning rate 0.1, batches of 100 as
# the book; of 20 on the digits, which have 1437 training rows to MNIST's
# 60000); after each epoch a callback measures the accuracy on all training
# and test rows.
def main(argv=None):
    parser = argparse.ArgumentParser(description="Deep Learning from Scratch, ch. 5")
    parser.add_argument("--data-dir", help="folder with MNIST's IDX .gz files")
    parser.add_argument("--epochs", type=int, default=16)
    args = parser.parse_args(argv)
    apple_orange()
    relu_on_its_own()
    if args.data_dir is None:
        print("no --data-dir given: using scikit-learn's 8x8 digits instead of MNIST")
        ds, batch_size = load_digits(), 20
    else:
        ds, batch_size = load_mnist("mnist", data_dir=args.data_dir), 100
    net = two_layer_net(ds.X_train.shape[1], 50, 10)
    gradient_check(net, ds.X_train, ds.y_train)

    def accuracies(epoch, logs, net):
        train_acc = net.evaluate(ds.X_train, ds.y_train)[1]
        test_acc = net.evaluate(ds.X_test, ds.y_test)[1]
        print(f"epoch {epoch + 1}: train acc {train_acc:.4f}, test acc {test_acc:.4f}")

    net.fit(
        ds.X_train,
        ds.y_train,
        epochs=args.epochs,
        batch_size=batch_size,
        optimizer="sgd",
        lr=0.1,
        callbacks=[accuracies],
    )


if __name__ == "__main__":
    main()
