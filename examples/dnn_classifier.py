"""
DNNClassifier: a ReLU network with a softmax output, fit and predict
====================================================================

Follows the DNNClassifier notebook: hidden layers of ReLU units, a softmax
output with the cross-entropy loss, minibatch stochastic gradient descent,
and scikit-learn's ``fit`` / ``predict`` / ``score`` on MNIST or
Fashion-MNIST. ``bpnet.MLPClassifier`` is that classifier: scikit-learn's
estimator API over a bpnet network, on any device (``--device torch``,
``cuda``, ...).

``python examples/dnn_classifier.py --data-dir DIR`` reads the four IDX
``.gz`` files of MNIST or Fashion-MNIST (``--kind fashion``) from DIR; without
it the example uses scikit-learn's 8x8 digits, and says so.
"""

# %%
# The data: 28x28 images flattened to 784 pixels in [0, 1], labels 0..9.
# ``--subset N`` keeps the first N training rows, for a quick run.
import argparse
import warnings

from sklearn.exceptions import ConvergenceWarning

import bpnet
from bpnet.data import load_digits, load_mnist


def load(data_dir, kind, subset):
    if data_dir is None:
        print("no --data-dir given: using scikit-learn's 8x8 digits instead of MNIST")
        ds = load_digits()
    else:
        ds = load_mnist(kind, data_dir=data_dir, download=False)
    n = len(ds.y_train) if subset is None else subset
    print(f"{ds.name}: {n} training and {len(ds.y_test)} test images")
    return ds.X_train[:n], ds.y_train[:n], ds.X_test, ds.y_test, ds.classes


# %%
# The classifier: ``hidden_layer_sizes`` gives the ReLU layers; plain
# minibatch SGD is ``solver="sgd"`` without momentum; ``alpha`` is the L2
# penalty. ``verbose=True`` prints the loss after every epoch. A fixed number
# of epochs is what is asked for, so scikit-learn's warning that the loss was
# still falling at the end is not shown.
def fit(X, y, hidden, epochs, lr, device):
    clf = bpnet.MLPClassifier(
        hidden_layer_sizes=[int(h) for h in hidden.split(",")],
        activation="relu",
        solver="sgd",
        momentum=0.0,
        learning_rate_init=lr,
        batch_size=64,
        alpha=1e-4,
        max_iter=epochs,
        n_iter_no_change=epochs,  # run every epoch asked for
        random_state=0,
        device=device,
        verbose=True,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return clf.fit(X, y)


# %%
# Predictions are the classes of the largest softmax probabilities.
def evaluate(clf, X_train, y_train, X_test, y_test, classes):
    print(f"Train accuracy: {clf.score(X_train, y_train):.4f}")
    print(f"Test accuracy: {clf.score(X_test, y_test):.4f}")
    proba = clf.predict_proba(X_test[:1])
    label = classes[int(clf.predict(X_test[:1])[0])]
    print(f"First test image: {label}, with probability {proba.max():.3f}")
    report = bpnet.metrics.classification_report(
        y_test, clf.predict(X_test), class_names=classes, digits=3, zero_division=0
    )
    print(report)


def main(argv=None):
    parser = argparse.ArgumentParser(description="DNNClassifier")
    parser.add_argument("--data-dir", help="folder with the IDX .gz files")
    parser.add_argument("--kind", default="mnist", choices=["mnist", "fashion"])
    parser.add_argument("--subset", type=int, help="training rows to use")
    parser.add_argument("--hidden", default="128,64", help="hidden layer sizes")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    data = load(args.data_dir, args.kind, args.subset)
    clf = fit(data[0], data[1], args.hidden, args.epochs, args.lr, args.device)
    evaluate(clf, *data)


if __name__ == "__main__":
    main()
