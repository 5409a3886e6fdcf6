#!/usr/bin/env python
"""bpnet.MLPRegressor beside scikit-learn's MLPRegressor: the same parameters,
one process, one BLAS thread, medians over repeats (different seeds).

    python -m benchmarks estimators regressor [--repeats 3] [--out table.md]

Problems: load_diabetes; make_regression(n_samples=20000, n_features=50,
noise=10); a 4-output make_regression. X is standardised and y divided by its
standard deviation (fitted on the training 75%); R^2 is on the held-out 25%.
bpnet runs twice: with X's float64 (the default, as scikit-learn) and with
dtype="float32".
"""

import argparse
import statistics
import time
import warnings

from sklearn.datasets import load_diabetes, make_regression
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPRegressor as SklearnMLP
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

import bpnet
from benchmarks.harness import table_head


def problems():
    yield "load_diabetes (442 x 10)", *load_diabetes(return_X_y=True)
    yield (
        "make_regression 20000 x 50",
        *make_regression(n_samples=20000, n_features=50, noise=10, random_state=0),
    )
    yield (
        "make_regression 10000 x 20, 4 outputs",
        *make_regression(
            n_samples=10000, n_features=20, n_targets=4, noise=5, random_state=0
        ),
    )


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--out", help="also write the table here")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    kw = dict(hidden_layer_sizes=(64,), solver="adam", max_iter=200)
    runs = {
        "scikit-learn": lambda seed: SklearnMLP(random_state=seed, **kw),
        "bpnet float64": lambda seed: bpnet.MLPRegressor(random_state=seed, **kw),
        "bpnet float32": lambda seed: bpnet.MLPRegressor(
            random_state=seed, dtype="float32", **kw
        ),
    }
    rows = table_head(
        "problem", "estimator", "R^2 (test, median)", "fit s (median)", "epochs"
    )
    with threadpool_limits(1):
        for name, X, y in problems():
            X_tr, X_te, y_tr, y_te = train_test_split(X, y, random_state=0)
            scaler = StandardScaler().fit(X_tr)
            X_tr, X_te = scaler.transform(X_tr), scaler.transform(X_te)
            sd = y_tr.std(axis=0)
            y_tr, y_te = y_tr / sd, y_te / sd
            for label, make in runs.items():
                scores, seconds, epochs = [], [], []
                for seed in range(args.repeats):
                    est = make(seed)
                    t = time.perf_counter()
                    est.fit(X_tr, y_tr)
                    seconds.append(time.perf_counter() - t)
                    scores.append(est.score(X_te, y_te))
                    epochs.append(est.n_iter_)
                row = (
                    f"| {name} | {label} | {statistics.median(scores):.4f} | "
                    f"{statistics.median(seconds):.2f} | "
                    f"{int(statistics.median(epochs))} |"
                )
                print(row, flush=True)
                rows.append(row)
    if args.out:
        with open(args.out, "w") as f:
            f.write("\n".join(rows) + "\n")
