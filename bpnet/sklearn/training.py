"""How ``MLPClassifier`` trains: ``bpnet.fit`` with scikit-learn's stopping
rule as a callback, or ``bpnet.minimize`` for the full-batch solvers.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

from bpnet import metrics
from bpnet.sklearn.params import FULL_BATCH_SOLVERS, make_optimizer
from bpnet.train.fullbatch import minimize
from bpnet.train.loop import fit


class NoImprovement:
    """scikit-learn's stopping rule as a ``bpnet.fit`` callback.

    After each epoch: record the loss; count the epochs in a row whose
    training loss (or, with early stopping, validation accuracy) did not beat
    the best by ``tol``; stop once the count exceeds ``n_iter_no_change``.
    With early stopping, keep a copy of the weights of the best accuracy.
    """

    def __init__(self, est: Any, n_train: int) -> None:
        self.est = est
        self.n_train = n_train
        self.stopped = False
        self.best: list[Any] | None = None
        self.X_val: Any = None
        self.Y_val: Any = None
        self.multilabel = est._label_binarizer.y_type_.startswith("multilabel")

    def set_validation(self, X_val: np.ndarray, Y_val: np.ndarray) -> None:
        """Copy the held-out rows to the device once; labels as class indices
        (or 0/1 rows for multilabel targets).
        """
        net = self.est.net_
        self.X_val = net.backend.asarray(X_val, dtype=net.dtype)
        if not self.multilabel:
            Y_val = Y_val.argmax(axis=1) if Y_val.shape[1] > 1 else Y_val[:, 0]
        self.Y_val = net.backend.asarray(Y_val.astype(np.int64))

    def __call__(self, epoch: int, logs: dict, net: Any) -> bool:
        est = self.est
        est.n_iter_ += 1
        est.t_ += self.n_train
        est.loss_ = float(logs["loss"])
        est.loss_curve_.append(est.loss_)
        if est.verbose:
            print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
        tol = float(est.tol)
        if self.X_val is not None:
            score = metrics.accuracy(
                net, self.X_val, self.Y_val, multilabel=self.multilabel
            )
            est.validation_scores_.append(score)
            if est.verbose:
                print(f"Validation score: {score:f}")
            improved = score >= est.best_validation_score_ + tol
            if score > est.best_validation_score_:
                est.best_validation_score_ = score
                self.best = [p * 1.0 for p in net.parameters()]  # updated in place
        else:
            improved = est.loss_ <= est.best_loss_ - tol
            est.best_loss_ = min(est.best_loss_, est.loss_)
        est._no_improvement_count = 0 if improved else est._no_improvement_count + 1
        sgd = est.solver == "sgd"
        if sgd and est.learning_rate == "invscaling":
            net_lr = float(est.learning_rate_init) / (est.t_ + 1) ** float(est.power_t)
            est._optimizer.set_lr(net_lr)
        if est._no_improvement_count > est.n_iter_no_change:
            if sgd and est.learning_rate == "adaptive":
                opt = est._optimizer
                if opt.lr > 1e-6:  # scikit-learn's rule: a fifth, and go on
                    opt.set_lr(opt.lr / 5.0)
                    est._no_improvement_count = 0
                    if est.verbose:
                        print(f"Setting learning rate to {opt.lr:f}")
                    return False
                if est.verbose:
                    print("Learning rate too small. Stopping.")
            self.stopped = True
            if est.verbose:
                what = "Validation score" if self.X_val is not None else "Training loss"
                print(
                    f"{what} did not improve more than tol={tol:f} for "
                    f"{est.n_iter_no_change} consecutive epochs. Stopping."
                )
            return True
        return False


def _split(est: Any, X: np.ndarray, Y: np.ndarray) -> tuple:
    """Hold out ``validation_fraction`` of the rows, as scikit-learn does."""
    fraction = float(est.validation_fraction)
    n_val = math.ceil(fraction * X.shape[0])  # as train_test_split counts
    if n_val < 2:
        raise ValueError(
            f"validation_fraction: {fraction:g} of {X.shape[0]} samples holds out "
            f"{n_val} for early stopping, which needs at least 2; raise "
            "validation_fraction or give more samples"
        )
    return train_test_split(
        X,
        Y,
        random_state=check_random_state(est.random_state),
        test_size=fraction,
        stratify=Y if Y.shape[1] == 1 else None,  # scikit-learn stratifies binary y
    )


def fit_stochastic(est: Any, X: np.ndarray, Y: np.ndarray, incremental: bool) -> None:
    """``max_iter`` epochs (one when ``incremental``) of minibatch training."""
    net = est.net_
    if est._optimizer is None:
        est._optimizer = make_optimizer(est)
    X_val = Y_val = None
    if est.early_stopping:
        X, X_val, Y, Y_val = _split(est, X, Y)
    n = X.shape[0]
    monitor = NoImprovement(est, n)
    if X_val is not None:
        monitor.set_validation(X_val, Y_val)
    if est.batch_size == "auto":
        batch_size = min(200, n)
    else:
        if est.batch_size > n:
            warnings.warn(
                f"batch_size: {est.batch_size} is larger than the {n} training "
                "samples; it is clipped to that",
                stacklevel=4,
            )
        batch_size = min(int(est.batch_size), n)
    est.n_iter_ = 0
    try:
        fit(
            net,
            X,
            Y,
            epochs=1 if incremental else int(est.max_iter),
            batch_size=batch_size,
            optimizer=est._optimizer,
            l2=float(est.alpha),
            shuffle=bool(est.shuffle),
            callbacks=[monitor],
        )
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.", stacklevel=4)
    if monitor.best is not None:
        net.set_parameters(monitor.best)
    if not incremental and not monitor.stopped and est.n_iter_ == est.max_iter:
        warnings.warn(
            f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) reached "
            "and the optimization hasn't converged yet.",
            ConvergenceWarning,
            stacklevel=4,
        )


def fit_full_batch(est: Any, X: np.ndarray, Y: np.ndarray) -> None:
    """scipy's L-BFGS-B, CG or TNC on all rows, ``max_iter`` iterations at most."""

    def report(iteration: int, loss: float) -> None:
        if est.verbose:
            print(f"Iteration {iteration}, loss = {loss:.8f}")

    result = minimize(
        est.net_,
        X,
        Y,
        l2=float(est.alpha),
        method=FULL_BATCH_SOLVERS[est.solver],
        maxiter=int(est.max_iter),
        maxfun=int(est.max_fun) if est.solver == "lbfgs" else None,
        tol=float(est.tol),
        callback=report,
    )
    est.n_iter_ = int(result.nit)
    est.loss_ = float(result.fun)
    est.loss_curve_ = [float(v) for v in result.loss_curve]
    if not result.success and est.n_iter_ >= est.max_iter:
        warnings.warn(
            f"{est.solver}: maximum iterations ({est.max_iter}) reached and the "
            "optimization hasn't converged yet.",
            ConvergenceWarning,
            stacklevel=4,
        )
    elif (
        not result.success
        and est.solver == "lbfgs"
        and int(getattr(result, "nfev", 0)) >= est.max_fun
    ):
        warnings.warn(
            f"lbfgs: maximum function evaluations ({est.max_fun}) reached and the "
            "optimization hasn't converged yet.",
            ConvergenceWarning,
            stacklevel=4,
        )
