"""The scikit-learn peer (``sklearn``): ``MLPClassifier`` with plain SGD from
the shared initial weights, one ``partial_fit`` an epoch.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from benchmarks.harness import Unavailable, initial_params, result, timed_epochs


def run_sklearn(cfg, data, s):
    try:
        from sklearn.exceptions import ConvergenceWarning
        from sklearn.neural_network import MLPClassifier
    except ImportError as exc:
        raise Unavailable("scikit-learn is not installed") from exc
    X, y, Xte, yte = data
    t0 = time.perf_counter()
    clf = MLPClassifier(
        hidden_layer_sizes=tuple(cfg["sizes"][1:-1]),
        activation="relu",
        solver="sgd",
        learning_rate="constant",
        learning_rate_init=cfg["lr"],
        momentum=0.0,
        nesterovs_momentum=False,
        batch_size=cfg["batch_size"],
        alpha=0.0,
        max_iter=1,
        shuffle=True,
        random_state=s["seed"],
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # One step on a single batch builds the arrays; then the shared
        # initial weights are copied in place (the optimizer holds these
        # very arrays, so rebinding them would detach it).
        first_batch = slice(0, cfg["batch_size"])
        clf.partial_fit(X[first_batch], y[first_batch], classes=np.arange(10))
        init = initial_params(cfg, s["seed"])
        for W, b, W0, b0 in zip(clf.coefs_, clf.intercepts_, init[0::2], init[1::2]):
            W[...] = W0
            b[...] = b0
        setup = time.perf_counter() - t0
        first, times = timed_epochs(lambda: clf.partial_fit(X, y), s["epochs"])
    acc = float(clf.score(Xte, yte))
    return result(setup + first, times, acc, dtype=str(clf.coefs_[0].dtype))
