#!/usr/bin/env python
"""bpnet.MLPClassifier beside scikit-learn's MLPClassifier on Fashion-MNIST:
the same parameters, the same epochs, one process, one BLAS thread each.

    python -m benchmarks estimators classifier [--data-dir DIR] [--epochs 5]
"""

import argparse
import time
import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier as SklearnMLP
from threadpoolctl import threadpool_limits

import bpnet
import bpnet.data
from benchmarks import DEFAULT_DATA


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", default=str(DEFAULT_DATA))
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args(argv)
    warnings.simplefilter("ignore", ConvergenceWarning)
    ds = bpnet.data.load_mnist("fashion", data_dir=args.data_dir)
    kw = dict(
        hidden_layer_sizes=(128,),
        solver="adam",
        max_iter=args.epochs,
        random_state=0,
        tol=0.0,
        n_iter_no_change=10**6,
    )
    best = {}
    with threadpool_limits(1):
        for _ in range(args.repeats):
            for name, cls in (("bpnet", bpnet.MLPClassifier), ("sklearn", SklearnMLP)):
                t = time.perf_counter()
                clf = cls(**kw).fit(ds.X_train, ds.y_train)
                seconds = time.perf_counter() - t
                acc = clf.score(ds.X_test, ds.y_test)
                print(f"{name:8s} {seconds:6.2f} s  test accuracy {acc:.4f}")
                best[name] = min(best.get(name, seconds), seconds)
    print(
        f"{args.epochs} epochs: scikit-learn / bpnet = "
        f"{best['sklearn'] / best['bpnet']:.2f}"
    )
