"""How the estimators train: ``bpnet.fit`` with scikit-learn's stopping
rule as a callback, or ``bpnet.minimize`` for the full-batch solvers.

A sparse X never goes to the device whole: each minibatch is sliced from it
alone (``sparse_epochs``), and the full-batch solvers sum the loss and
gradient over slices of rows (``ChunkedObjective``). On NumPy and CuPy the
first layer multiplies a sparse slice as it is (``Backend.sparse_rows``);
on the other backends the slice alone is made dense.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state

from bpnet.nn.mutation import writes_in_place
from bpnet.sklearn.params import FULL_BATCH_SOLVERS, make_optimizer
from bpnet.sklearn.sparse import (
    chunk_rows,
    is_device_sparse,
    is_sparse,
)
from bpnet.train.fullbatch import minimize
from bpnet.train.history import DivergenceError, History
from bpnet.train.loop import fit


class NonFiniteWeightsError(DivergenceError, ValueError):
    """Training diverged: scikit-learn's ValueError, and bpnet's
    ``DivergenceError`` (the network keeps its last good weights)."""

    def __init__(self, cause: DivergenceError) -> None:
        super().__init__(
            "Solver produced non-finite parameter weights. The input data may "
            f"contain large values and need to be preprocessed. ({cause})",
            cause.history,
        )


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
        self.w_val: Any = None
        self.diverged = False

    def set_validation(self, X_val: Any, Y_val: np.ndarray, w_val: Any) -> None:
        """Keep the held-out rows (a dense X goes to the device once); they
        are scored by the estimator's own criterion (accuracy or R^2).
        """
        net = self.est.net_
        if not is_sparse(X_val):
            X_val = net.backend.asarray(X_val, dtype=net.dtype)
        self.X_val, self.Y_val, self.w_val = X_val, Y_val, w_val

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
            Z = est._logits(self.X_val)
            if not np.isfinite(Z).all():  # diverged: scored NaN, as scikit-learn
                est.validation_scores_.append(math.nan)
                self.stopped = self.diverged = True
                return True
            score = est._validation_score(Z, self.Y_val, self.w_val)
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


def _split(est: Any, X: Any, Y: np.ndarray, w: Any) -> tuple:
    """Hold out ``validation_fraction`` of the rows (and their weights), as
    scikit-learn does: (X, X_val, Y, Y_val, w, w_val)."""
    fraction = float(est.validation_fraction)
    arrays = (X, Y) if w is None else (X, Y, w)
    parts = train_test_split(
        *arrays,
        random_state=check_random_state(est.random_state),
        test_size=fraction,
        stratify=est._stratify(Y),
    )
    n_val = parts[1].shape[0]
    if n_val < 2:  # checked after the split, as scikit-learn does
        raise ValueError(
            "The validation set is too small. Increase 'validation_fraction' or "
            f"the size of your dataset. (validation_fraction={fraction:g} of "
            f"{X.shape[0]} samples holds out {n_val}; early stopping needs 2)"
        )
    return (*parts, None, None) if w is None else tuple(parts)


def fit_stochastic(est: Any, X: Any, Y: np.ndarray, w: Any, incremental: bool) -> None:
    """``max_iter`` epochs (one when ``incremental``) of minibatch training."""
    net = est.net_
    if est._optimizer is None:
        est._optimizer = make_optimizer(est)
    X_val = Y_val = w_val = None
    if est.early_stopping:
        X, X_val, Y, Y_val, w, w_val = _split(est, X, Y, w)
    n = X.shape[0]
    monitor = NoImprovement(est, n)
    if X_val is not None:
        monitor.set_validation(X_val, Y_val, w_val)
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
    epochs = 1 if incremental else int(est.max_iter)
    try:
        if is_sparse(X):
            sparse_epochs(est, X, Y, w, epochs, batch_size, monitor)
        else:
            fit(
                net,
                X,
                Y,
                epochs=epochs,
                batch_size=batch_size,
                optimizer=est._optimizer,
                l2=float(est.alpha),
                shuffle=bool(est.shuffle),
                callbacks=[monitor],
                sample_weight=w,
            )
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.", stacklevel=4)
    except DivergenceError as exc:
        if monitor.best is None:
            raise NonFiniteWeightsError(exc) from exc
        # early stopping has a best epoch to go back to, as scikit-learn does
        est.validation_scores_.append(math.nan)
        monitor.diverged = True
    if monitor.best is not None:
        net.set_parameters(monitor.best)
    if monitor.diverged:
        warnings.warn(
            "the loss became NaN or Inf; kept the weights of the best validation "
            "score (lower learning_rate_init or scale the inputs)",
            RuntimeWarning,
            stacklevel=4,
        )
    elif not incremental and not monitor.stopped and est.n_iter_ == est.max_iter:
        warnings.warn(
            f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) reached "
            "and the optimization hasn't converged yet.",
            ConvergenceWarning,
            stacklevel=4,
        )


def sparse_epochs(
    est: Any,
    X: Any,
    Y: np.ndarray,
    w: Any,
    epochs: int,
    batch_size: int,
    monitor: NoImprovement,
) -> None:
    """``bpnet.fit``'s epochs for a sparse X: the same batch order (drawn from
    the network's host generator), each batch's rows sliced alone. Where the
    backend ``takes_sparse`` (NumPy, CuPy) the first layer multiplies the
    sparse batch as it is; elsewhere the batch alone is made dense.
    """
    net, opt = est.net_, est._optimizer
    be, loss, l2 = net.backend, net.loss, float(est.alpha)
    if not is_device_sparse(X):
        X = X.tocsr()  # row slices of CSR are cheap
    n = X.shape[0]
    total = n if w is None else float(np.sum(w))
    params = net.parameters()
    with be.context(), be.errstate():
        for epoch in range(epochs):
            opt.set_epoch(epoch)
            order = net.host_rng.permutation(n) if est.shuffle else np.arange(n)
            loss_sum = 0.0
            for lo in range(0, n, batch_size):
                rows = order[lo : lo + batch_size]
                Xb = be.sparse_rows(X, rows, net.dtype)  # sparse where it can
                Tb = be.asarray(Y[rows], dtype=net.dtype)
                wb = None
                if w is not None:
                    wb = be.asarray(w[rows].reshape(-1, 1), dtype=net.dtype)
                L, grads = net._loss_and_grad(Xb, Tb, loss, l2, weights=wb)
                opt.update(params, grads)
                if not writes_in_place(params[0]):
                    net._assign(params)
                opt.t += 1
                loss_sum += float(L) * (
                    len(rows) if w is None else float(w[rows].sum())
                )
            train_loss = loss_sum / total
            if not math.isfinite(train_loss):
                raise DivergenceError(
                    f"training diverged: the loss became NaN or Inf in epoch "
                    f"{epoch + 1}; lower learning_rate_init or scale the inputs",
                    History(),
                )
            if monitor(epoch, {"loss": train_loss}, net):
                break


class ChunkedObjective:
    """Loss and gradient over all rows of a sparse X, summed over slices of
    ``chunk_rows`` rows densified one at a time: what ``minimize`` computes on
    a dense X, without the dense X."""

    def __init__(self, net: Any, X: Any, Y: np.ndarray, w: Any, l2: float) -> None:
        self.net, self.X, self.Y, self.w, self.l2 = net, X, Y, w, l2
        self.chunk = chunk_rows(X.shape[1])
        if not is_device_sparse(X):
            self.X = X.tocsr()

    def __call__(self) -> tuple[Any, list[Any]]:
        net, X, Y, w = self.net, self.X, self.Y, self.w
        be, loss = net.backend, net.loss
        n = X.shape[0]
        total = float(n) if w is None else float(np.sum(w))
        L_sum: Any = 0.0
        g_sum: list[Any] | None = None
        for lo in range(0, n, self.chunk):
            rows = slice(lo, min(lo + self.chunk, n))
            Xb = be.sparse_rows(X, rows, net.dtype)
            Tb = be.asarray(Y[rows], dtype=net.dtype)
            if w is None:
                share = (rows.stop - rows.start) / total
                L, grads = net._loss_and_grad(Xb, Tb, loss, training=False)
            else:  # each chunk's weighted mean, weighed by its share of sum(w)
                wb = be.asarray(w[rows].reshape(-1, 1), dtype=net.dtype)
                share = float(np.sum(w[rows])) / total
                L, grads = net._loss_and_grad(Xb, Tb, loss, training=False, weights=wb)
            L_sum = L_sum + L * share
            scaled = [g * share for g in grads]
            g_sum = scaled if g_sum is None else [a + b for a, b in zip(g_sum, scaled)]
        if self.l2:
            L_sum = L_sum + net._l2_penalty(self.l2, total)
            for k, layer, name in net._decayed:
                g_sum[k] = g_sum[k] + (self.l2 / total) * getattr(layer, name)
        return L_sum, g_sum


def fit_full_batch(est: Any, X: Any, Y: np.ndarray, w: Any) -> None:
    """scipy's L-BFGS-B, CG or TNC on all rows, ``max_iter`` iterations at most."""

    def report(iteration: int, loss: float) -> None:
        if est.verbose:
            print(f"Iteration {iteration}, loss = {loss:.8f}")

    try:
        result = _minimize(est, X, Y, w, report)
    except DivergenceError as exc:
        raise NonFiniteWeightsError(exc) from exc
    _record_full_batch(est, result)


def _minimize(est: Any, X: Any, Y: np.ndarray, w: Any, report: Any) -> Any:
    return minimize(
        est.net_,
        None if is_sparse(X) else X,
        Y,
        l2=float(est.alpha),
        method=FULL_BATCH_SOLVERS[est.solver],
        maxiter=int(est.max_iter),
        maxfun=int(est.max_fun) if est.solver == "lbfgs" else None,
        # lbfgs as scikit-learn: the gradient's tolerance only (cg likewise).
        # tnc, which scikit-learn lacks, keeps scipy's tol: with gtol alone it
        # grows float32 weights on separable data until they overflow.
        gtol=None if est.solver == "tnc" else float(est.tol),
        tol=float(est.tol) if est.solver == "tnc" else None,
        callback=report,
        sample_weight=w,
        objective=(
            ChunkedObjective(est.net_, X, Y, w, float(est.alpha))
            if is_sparse(X)
            else None
        ),
    )


def _record_full_batch(est: Any, result: Any) -> None:
    """The fitted attributes from scipy's result, and scikit-learn's warning
    when it did not converge."""
    est.n_iter_ = int(result.nit)
    est.loss_ = float(result.fun)
    est.loss_curve_ = [float(v) for v in result.loss_curve]
    if not math.isfinite(est.loss_):
        raise NonFiniteWeightsError(
            DivergenceError(f"{est.solver}: the loss became NaN or Inf", History())
        )
    if result.success:
        return
    if est.n_iter_ >= est.max_iter:
        reason = f"maximum iterations ({est.max_iter}) reached"
    elif est.solver == "lbfgs" and int(getattr(result, "nfev", 0)) >= est.max_fun:
        reason = f"maximum function evaluations ({est.max_fun}) reached"
    else:  # scikit-learn warns on any status but success
        reason = f"stopped early ({' '.join(str(result.message).split())})"
    warnings.warn(
        f"{est.solver}: {reason} and the optimization hasn't converged yet.",
        ConvergenceWarning,
        stacklevel=5,
    )
