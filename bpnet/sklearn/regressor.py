"""``MLPRegressor``: scikit-learn's regressor API over a bpnet network.

A drop-in for :class:`sklearn.neural_network.MLPRegressor` on the parameters
the two share, trained by bpnet on any device. With ``loss="squared_error"``
the network ends in the identity and the loss is scikit-learn's squared error
with its 1/2 factor, half the squared error summed over the outputs and
averaged over the samples (``bpnet.HalfSquaredError``); with
``loss="poisson"`` it ends in exp (a log link) and the loss is half the
Poisson deviance (``bpnet.HalfPoissonDeviance``). Both gradients are
scikit-learn's, so ``alpha``, ``learning_rate_init`` and ``tol`` mean the
same. ``score`` is R^2, and so is early stopping's criterion.
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:
    import scipy  # noqa: F401
    import sklearn  # noqa: F401
except ImportError as exc:  # the `train` extra is missing
    raise ImportError(
        f"bpnet.MLPRegressor needs scikit-learn and scipy ({exc}); "
        "pip install 'bpnet-arrayapi[train]'"
    ) from exc
from sklearn.base import RegressorMixin
from sklearn.metrics import r2_score
from sklearn.utils.metaestimators import available_if

from bpnet.nn.losses import HalfPoissonDeviance, HalfSquaredError, Loss
from bpnet.sklearn.base import BaseMLP, register_model_file_kind

# scikit-learn's loss names: the output activation and bpnet's loss for each
LOSSES: dict[str, tuple[str, type[Loss]]] = {
    "squared_error": ("identity", HalfSquaredError),
    "poisson": ("exp", HalfPoissonDeviance),
}


class MLPRegressor(RegressorMixin, BaseMLP):
    """Multi-layer perceptron regressor trained by bpnet on any device.

    The parameters are :class:`bpnet.MLPClassifier`'s, and mean what they
    mean in :class:`sklearn.neural_network.MLPRegressor`.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
    activation : {"relu", "tanh", "logistic", "identity"}, default="relu"
    loss : {"squared_error", "poisson"}, default="squared_error"
        ``"squared_error"``: half the squared error,
        ``0.5 * sum((y - y_pred)**2) / n``, with the identity as output.
        ``"poisson"``: half the Poisson deviance,
        ``sum(y * log(y / y_pred) - y + y_pred) / n``, with
        ``y_pred = exp(output)`` (a log link); y must be >= 0. Either plus
        the L2 term.
    solver : {"adam", "sgd", "lbfgs", "cg", "tnc"}, default="adam"
    alpha : float, default=1e-4
        L2 penalty ``alpha / (2 n) * sum(W**2)`` (n: the batch's summed
        sample weights, its rows without weights).
    batch_size, learning_rate, learning_rate_init, power_t, max_iter,
    max_fun, shuffle, random_state, tol, verbose, warm_start,
    validation_fraction, n_iter_no_change, momentum, nesterovs_momentum,
    beta_1, beta_2, epsilon
        As in ``MLPClassifier``.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows and stop when their R^2
        has not improved by ``tol`` for more than ``n_iter_no_change`` epochs,
        keeping the weights of the best epoch.
    device : str, default="cpu"
        Where the network lives: ``"cpu"``, ``"cuda"``, ``"torch"``, ...
    dtype : {"float32", "float64"} or None, default=None
        None follows X: float32 X trains in float32, anything else in
        float64, as scikit-learn does. ``"float32"`` is the fast choice.

    Attributes
    ----------
    coefs_, intercepts_ : list of ndarray
        Read-only host copies of the weights (in, out) and biases (out,);
        assigning a whole new list sets them in the network.
    loss_, loss_curve_, best_loss_, validation_scores_,
    best_validation_score_, n_iter_, t_, n_features_in_, feature_names_in_,
    n_layers_
        As in ``MLPClassifier`` (validation scores are R^2).
    n_outputs_ : int
        Columns of y (1 for a 1-D y).
    out_activation_ : {"identity", "exp"}
        "exp" with ``loss="poisson"``.
    net_ : bpnet.Sequential
        The trained network, on ``device``.

    Examples
    --------
    >>> from sklearn.datasets import make_regression
    >>> import bpnet
    >>> X, y = make_regression(200, 5, noise=1.0, random_state=0)
    >>> reg = bpnet.MLPRegressor((32,), solver="lbfgs", random_state=0)
    >>> reg.fit(X, y).score(X, y) > 0.99  # doctest: +SKIP
    True
    """

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
        loss: str = "squared_error",
        solver: str = "adam",
        alpha: float = 1e-4,
        batch_size: int | str = "auto",
        learning_rate: str = "constant",
        learning_rate_init: float = 1e-3,
        power_t: float = 0.5,
        max_iter: int = 200,
        max_fun: int = 15000,
        shuffle: bool = True,
        random_state: Any = None,
        tol: float = 1e-4,
        verbose: bool = False,
        warm_start: bool = False,
        early_stopping: bool = False,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 10,
        momentum: float = 0.9,
        nesterovs_momentum: bool = True,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-8,
        device: str = "cpu",
        dtype: str | None = None,
    ) -> None:
        super().__init__(
            hidden_layer_sizes,
            activation,
            solver=solver,
            alpha=alpha,
            batch_size=batch_size,
            learning_rate=learning_rate,
            learning_rate_init=learning_rate_init,
            power_t=power_t,
            max_iter=max_iter,
            max_fun=max_fun,
            shuffle=shuffle,
            random_state=random_state,
            tol=tol,
            verbose=verbose,
            warm_start=warm_start,
            early_stopping=early_stopping,
            validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change,
            momentum=momentum,
            nesterovs_momentum=nesterovs_momentum,
            beta_1=beta_1,
            beta_2=beta_2,
            epsilon=epsilon,
            device=device,
            dtype=dtype,
        )
        self.loss = loss

    # --- targets --------------------------------------------------------
    def _encode_targets(
        self, y: Any, incremental: bool, reset: bool, dtype: Any
    ) -> np.ndarray:
        if not isinstance(self.loss, str) or self.loss not in LOSSES:
            raise ValueError(f"loss: expected one of {list(LOSSES)}, got {self.loss!r}")
        Y = np.asarray(y)
        Y = Y.reshape(-1, 1) if Y.ndim == 1 else Y
        if self.loss == "poisson" and Y.size and Y.min() < 0:
            raise ValueError(
                "y: loss='poisson' takes counts or rates, y >= 0; got a minimum "
                f"of {float(Y.min())} (use loss='squared_error' for any real y)"
            )
        if not reset and Y.shape[1] != self.n_outputs_:
            raise ValueError(
                f"y: the network has {self.n_outputs_} outputs, as y had in the "
                f"first fit; got {Y.shape[1]} columns"
            )
        return Y.astype(dtype)

    def _output(self) -> tuple[str, Loss]:
        out_activation, loss = LOSSES[self.loss]
        return out_activation, loss()

    def _validation_score(self, Z: np.ndarray, Y: np.ndarray, w: Any) -> float:
        return float(r2_score(Y, self.net_.loss.output(Z), sample_weight=w))

    # --- fitting --------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """Train from scratch on X (n_samples, n_features) and targets y.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Sparse X (SciPy CSR/CSC) is densified one batch at a time.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional
            Weights >= 0: each batch's loss is their weighted mean; a sample
            of weight 0 is dropped.

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(BaseMLP._check_solver)
    def partial_fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPRegressor:
        """One epoch over X, y, continuing from the current weights.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        self
        """
        return self._fit(X, y, sample_weight, incremental=True)

    # --- prediction -----------------------------------------------------
    def predict(self, X: Any) -> np.ndarray:
        """Predicted values, shape (n_samples,) for a 1-D y, else
        (n_samples, n_outputs), as a host NumPy array in the network's dtype.
        """
        X = self._check_X(X)
        Y = self.net_.loss.output(self._logits(X))  # exp for loss="poisson"
        Y = Y.astype(np.dtype(self.net_.dtype_name))
        return Y[:, 0] if Y.shape[1] == 1 else Y

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        tags.target_tags.positive_only = self.loss == "poisson"
        return tags


register_model_file_kind(MLPRegressor)
