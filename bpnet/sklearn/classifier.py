"""``MLPClassifier``: scikit-learn's estimator API over a bpnet network.

A drop-in for :class:`sklearn.neural_network.MLPClassifier` on the parameters
the two share, trained by bpnet on any device. scikit-learn checks the input
at the boundary (``validate_data``, ``LabelBinarizer``) and keeps the labels;
bpnet holds the weights on the device and does the arithmetic.

The numbers follow scikit-learn's definitions: ``alpha`` is bpnet's ``l2``
(scikit-learn adds ``0.5 * alpha * sum(W**2) / n`` to the mean loss of a batch
of n rows and ``alpha * W / n`` to the weight gradients, biases excluded:
exactly ``l2 / (2 n) * sum(W**2)``); weights and biases start uniform in
+-sqrt(6 / (fan_in + fan_out)) (2 instead of 6 for ``logistic``); multiclass
problems end in a softmax, binary and multilabel ones in sigmoids; training
stops once the loss (or, with ``early_stopping``, the validation accuracy) has
not improved by ``tol`` for more than ``n_iter_no_change`` epochs in a row.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

try:
    import scipy  # noqa: F401
    import sklearn  # noqa: F401
except ImportError as exc:  # the `train` extra is missing
    raise ImportError(
        f"bpnet.MLPClassifier needs scikit-learn and scipy ({exc}); "
        "pip install 'bpnet-arrayapi[train]'"
    ) from exc
from scipy import special
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from bpnet.nn.model import Sequential
from bpnet.sklearn import params, state
from bpnet.sklearn.training import fit_full_batch, fit_stochastic


class MLPClassifier(ClassifierMixin, BaseEstimator):
    """Multi-layer perceptron classifier trained by bpnet on any device.

    Parameters shared with :class:`sklearn.neural_network.MLPClassifier` mean
    the same; ``device`` and ``dtype`` say where and in what precision.

    Parameters
    ----------
    hidden_layer_sizes : int or sequence of int, default=(100,)
        Width of each hidden layer; ``()`` gives a linear (softmax) model.
    activation : {"relu", "tanh", "logistic", "identity", ...}, default="relu"
        Hidden-layer activation; ``"identity"`` puts no activation layer. Any
        name in ``bpnet.nn.activations.ACTIVATIONS`` works too.
    solver : {"adam", "sgd", "lbfgs", "cg", "tnc", ...}, default="adam"
        Minibatch ``adam`` or ``sgd`` (with ``momentum``), or full-batch
        scipy L-BFGS-B, conjugate gradient or truncated Newton through
        ``bpnet.minimize`` (for those, ``max_iter`` counts iterations). Any
        other name in ``bpnet.train.optimizers.OPTIMIZERS`` (``rmsprop``,
        ...) or ``bpnet.train.fullbatch.SOLVERS`` works too, taking
        ``learning_rate_init`` and those of the settings below it has.
    alpha : float, default=1e-4
        L2 penalty ``alpha / (2 n) * sum(W**2)``, bpnet's ``l2``.
    batch_size : int or "auto", default="auto"
        Rows per step for the minibatch solvers; ``"auto"`` is ``min(200, n)``.
    learning_rate : {"constant", "invscaling", "adaptive"}, default="constant"
        Step-size schedule of ``sgd``: constant; ``learning_rate_init /
        (t_ + 1) ** power_t`` after every epoch; or divided by 5 each time
        ``n_iter_no_change`` epochs pass without progress, stopping once it
        is at most 1e-6.
    learning_rate_init : float, default=1e-3
        Step size of ``sgd`` and ``adam``.
    power_t : float, default=0.5
        Exponent of the ``invscaling`` schedule.
    max_iter : int, default=200
        Epochs (minibatch solvers) or iterations (full-batch solvers).
    max_fun : int, default=15000
        Loss-and-gradient evaluations at most, for ``lbfgs`` only.
    shuffle : bool, default=True
        Reshuffle the rows every epoch.
    random_state : int, RandomState instance or None, default=None
        Seeds the initial weights, the batch order and the validation split.
    tol : float, default=1e-4
        Improvement that counts as progress; the full-batch solvers pass it to
        ``scipy.optimize.minimize``.
    verbose : bool, default=False
        Print the loss after every epoch or iteration.
    warm_start : bool, default=False
        ``fit`` continues from the weights of the previous ``fit`` (same
        classes required) instead of starting afresh; the optimizer starts
        afresh either way.
    early_stopping : bool, default=False
        Hold out ``validation_fraction`` of the rows, stop when their accuracy
        has not improved by ``tol`` for more than ``n_iter_no_change`` epochs,
        and keep the weights of the best epoch.
    validation_fraction : float, default=0.1
        Held out when ``early_stopping``.
    n_iter_no_change : int, default=10
        Epochs without improvement before stopping (minibatch solvers).
    momentum : float, default=0.9
        Momentum of ``sgd`` (0 for plain gradient descent) and ``momentum``.
    nesterovs_momentum : bool, default=True
        Nesterov's form of the momentum update.
    beta_1, beta_2 : float, default=0.9, 0.999
        Decay rates of Adam's moment estimates.
    epsilon : float, default=1e-8
        Numerical-stability term of ``adam`` (and of ``adagrad``, ``rmsprop``).
    device : str, default="cpu"
        Where the network lives: ``"cpu"``, ``"cuda"``, ``"torch"``, ...
    dtype : {"float32", "float64"}, default="float32"
        Precision of the weights and of the arithmetic.

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels, sorted (for multilabel targets, ``arange(n_labels)``).
    coefs_ : list of ndarray
        Host copies of the weights; ``coefs_[i]`` has shape (in, out).
    intercepts_ : list of ndarray
        Host copies of the biases; ``intercepts_[i]`` has shape (out,).
    loss_ : float
        The loss (with its L2 term) of the last epoch or iteration.
    loss_curve_ : list of float
        The loss after every epoch or iteration.
    best_loss_ : float or None
        Lowest training loss (minibatch solvers without early stopping).
    validation_scores_ : list of float or None
        Validation accuracy after every epoch, with ``early_stopping``.
    best_validation_score_ : float or None
        Its best value, whose weights were kept.
    n_iter_ : int
        Epochs or iterations run by the last call to ``fit``/``partial_fit``.
    t_ : int
        Training rows seen by the minibatch solvers.
    n_features_in_ : int
    feature_names_in_ : ndarray of str, present when X had column names
    n_layers_ : int
        Layers of units, input and output included.
    n_outputs_ : int
        Output units: 1 for a binary problem, else one per class or label.
    out_activation_ : {"softmax", "logistic"}
    net_ : bpnet.Sequential
        The trained network, on ``device``.

    Examples
    --------
    >>> from sklearn.datasets import load_digits
    >>> import bpnet
    >>> X, y = load_digits(return_X_y=True)
    >>> clf = bpnet.MLPClassifier((64,), max_iter=30, random_state=0)
    >>> clf.fit(X / 16, y).score(X / 16, y) > 0.95  # doctest: +SKIP
    True
    """

    def __init__(
        self,
        hidden_layer_sizes: Any = (100,),
        activation: str = "relu",
        *,
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
        dtype: str = "float32",
    ) -> None:
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.solver = solver
        self.alpha = alpha
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.learning_rate_init = learning_rate_init
        self.power_t = power_t
        self.max_iter = max_iter
        self.max_fun = max_fun
        self.shuffle = shuffle
        self.random_state = random_state
        self.tol = tol
        self.verbose = verbose
        self.warm_start = warm_start
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.device = device
        self.dtype = dtype

    # --- input ----------------------------------------------------------
    def _validate_input(self, X: Any, y: Any, incremental: bool, reset: bool) -> tuple:
        X, y = validate_data(
            self,
            X,
            y,
            multi_output=True,
            dtype=self._np_dtype(),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        check_classification_targets(y)
        if reset and not incremental:
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        elif not incremental:  # warm_start
            seen = unique_labels(y)
            if self._label_binarizer.y_type_.startswith("multilabel"):
                seen = np.arange(y.shape[1])
            if not np.array_equal(seen, self.classes_):
                raise ValueError(
                    f"y: warm_start=True continues the previous fit, whose classes "
                    f"were {self.classes_.tolist()}; y has {seen.tolist()}"
                )
        else:
            new = np.setdiff1d(unique_labels(y), self.classes_, assume_unique=True)
            if len(new):
                raise ValueError(
                    f"y: has classes {new.tolist()} not in classes_ "
                    f"{self.classes_.tolist()}; pass all classes on the first "
                    "call to partial_fit"
                )
        Y = self._label_binarizer.transform(y).astype(self._np_dtype())
        return X, Y

    # --- the network ---------------------------------------------------
    def _np_dtype(self) -> Any:
        return np.float64 if self.dtype == "float64" else np.float32

    def _build_net(
        self,
        n_features: int,
        n_outputs: int,
        y_type: str,
        device: Any = None,
        dtype: str | None = None,
    ) -> Sequential:
        """A fresh network for this problem; sets the shape attributes."""
        softmax = y_type == "multiclass"
        self.out_activation_ = "softmax" if softmax else "logistic"
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(params.hidden_sizes(self.hidden_layer_sizes)) + 2
        return params.build_network(
            self,
            n_features,
            n_outputs,
            softmax,
            device=self.device if device is None else device,
            dtype=self.dtype if dtype is None else dtype,
        )

    def _make_optimizer(self) -> Any:
        return params.make_optimizer(self)

    def _sync_host(self) -> None:
        """Host copies of the weights: ``coefs_`` (in, out), ``intercepts_``."""
        be = self.net_.backend
        named = [layer.named_parameters() for layer in self.net_.layers]
        self.coefs_ = [be.to_numpy(p["W"]) for p in named if "W" in p]
        self.intercepts_ = [be.to_numpy(p["b"]) for p in named if "b" in p]

    # --- fitting --------------------------------------------------------
    def fit(self, X: Any, y: Any) -> MLPClassifier:
        """Train from scratch on X (n_samples, n_features) and labels y.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels of any type, or a 0/1 multilabel indicator matrix.

        Returns
        -------
        self

        Warns
        -----
        ConvergenceWarning
            ``max_iter`` was reached before the stopping rule was met.

        Raises
        ------
        bpnet.DivergenceError
            The loss became NaN or Inf (the last good weights are kept);
            lower ``learning_rate_init`` or scale the inputs.
        """
        return self._fit(X, y, incremental=False)

    def _check_solver(self) -> bool:
        if self.solver not in params.STOCHASTIC_SOLVERS:
            raise AttributeError(
                f"partial_fit is only available for the minibatch solvers "
                f"{params.STOCHASTIC_SOLVERS}; solver={self.solver!r} trains on "
                "all data at once"
            )
        if self.early_stopping is True:
            raise AttributeError(
                "partial_fit is not available with early_stopping=True: one "
                "epoch at a time leaves nothing to hold out"
            )
        return True

    @available_if(_check_solver)
    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> MLPClassifier:
        """One epoch over X, y, continuing from the current weights.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        classes : array-like of shape (n_classes,), optional
            Every class that any call will see; required on the first call.

        Returns
        -------
        self
        """
        first = getattr(self, "classes_", None) is None
        if first and classes is None:
            raise ValueError(
                "classes: must be passed on the first call to partial_fit "
                "(every label any call will see, e.g. np.unique(y_all))"
            )
        if classes is not None:
            wanted = unique_labels(classes)
            if first:
                self._label_binarizer = LabelBinarizer()
                if type_of_target(y).startswith("multilabel"):
                    self._label_binarizer.fit(y)
                else:
                    self._label_binarizer.fit(wanted)
                self.classes_ = self._label_binarizer.classes_
            elif not np.array_equal(self.classes_, wanted):
                raise ValueError(
                    f"classes: {wanted.tolist()} differs from the classes of the "
                    f"first call to partial_fit, {self.classes_.tolist()}"
                )
        return self._fit(X, y, incremental=True)

    def _fit(self, X: Any, y: Any, incremental: bool) -> Any:
        params.check_params(self)
        warm = not incremental and self.warm_start and hasattr(self, "net_")
        fresh = not hasattr(self, "net_") or not (incremental or warm)
        X, Y = self._validate_input(X, y, incremental, reset=fresh)
        if warm:
            self._optimizer = None  # as scikit-learn: a new optimizer per fit
            if self.early_stopping and self.validation_scores_ is None:
                self.validation_scores_ = []
                self.best_validation_score_ = -math.inf
            if not self.early_stopping and self.best_loss_ is None:
                self.best_loss_ = math.inf
        if fresh:
            self.net_ = self._build_net(
                X.shape[1], Y.shape[1], self._label_binarizer.y_type_
            )
            self._optimizer = None
            self.n_iter_ = 0
            self.t_ = 0
            self.loss_curve_ = []
            self._no_improvement_count = 0
            stochastic = self.solver in params.STOCHASTIC_SOLVERS
            self.best_loss_ = (
                math.inf if stochastic and not self.early_stopping else None
            )
            self.validation_scores_ = [] if self.early_stopping else None
            self.best_validation_score_ = -math.inf if self.early_stopping else None
        try:
            if self.solver in params.STOCHASTIC_SOLVERS:
                fit_stochastic(self, X, Y, incremental)
            else:
                fit_full_batch(self, X, Y)
        finally:
            self._sync_host()
        return self

    # --- prediction -----------------------------------------------------
    def _check_X(self, X: Any) -> np.ndarray:
        check_is_fitted(self)
        return validate_data(self, X, dtype=self._np_dtype(), reset=False)

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels, shape (n_samples,) (or (n_samples, n_labels) for
        multilabel targets), as a host NumPy array of ``classes_``' type.
        """
        X = self._check_X(X)
        if self._label_binarizer.y_type_.startswith("multilabel"):
            return self._label_binarizer.inverse_transform(self._proba(X))
        if len(self.classes_) == 1:
            return np.repeat(self.classes_, X.shape[0])
        net = self.net_
        return self.classes_[net.backend.to_numpy(net.predict(X))]

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of shape (n_samples, n_classes), ordered as
        ``classes_`` (for multilabel targets, one sigmoid per label).

        The logits come to the host and go through softmax or sigmoid in
        float64, so that small probabilities do not round to 0 in float32.
        """
        P = self._proba(self._check_X(X))
        if P.shape[1] == 1:
            return np.hstack([1.0 - P, P])
        return P

    def _proba(self, X: np.ndarray) -> np.ndarray:
        Z = self.net_.backend.to_numpy(self.net_.forward(X)).astype(np.float64)
        if self.out_activation_ == "softmax":
            return special.softmax(Z, axis=1)
        return special.expit(Z)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log(predict_proba(X))``."""
        P = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(P, out=P)

    # --- scikit-learn plumbing ------------------------------------------
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        tags.input_tags.sparse = False
        return tags

    def __getstate__(self) -> dict:
        """Pickle without device objects: the network and optimizer go as host
        arrays and are rebuilt on ``device`` when unpickled.
        """
        d = super().__getstate__()
        d = dict(d)
        d.pop("net_", None)
        d.pop("_optimizer", None)
        if hasattr(self, "net_"):
            d["_bpnet_state"] = state.get_state(self)
        return d

    def __setstate__(self, d: dict) -> None:
        d = dict(d)
        saved = d.pop("_bpnet_state", None)
        super().__setstate__(d)
        if saved is not None:
            state.restore(self, *saved)

    def _get_state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """(host arrays, JSON-ready metadata) describing the fitted model."""
        check_is_fitted(self)
        return state.get_state(self)

    @classmethod
    def _from_state(
        cls,
        arrays: dict[str, np.ndarray],
        metadata: dict[str, Any],
        device: Any = "cpu",
        dtype: str | None = None,
    ) -> MLPClassifier:
        """A fitted estimator rebuilt on ``device`` from ``_get_state()``."""
        return state.from_state(cls, arrays, metadata, device, dtype)

    def save(self, path: Any, **metadata: Any) -> Any:
        """Save the fitted model to a bpnet model file (``bpnet.io.save``)."""
        check_is_fitted(self)
        try:
            from bpnet import io
        except ImportError as exc:  # pragma: no cover - io ships with bpnet
            raise ImportError("save: needs the bpnet.io module") from exc
        return io.save(self, path, **metadata)


def _register_model_file_kind() -> None:
    """Teach ``bpnet.io.save``/``load`` this estimator (a file's "kind")."""
    try:
        from bpnet import io
    except ImportError:  # pragma: no cover - io ships with bpnet
        return
    io.register_kind(
        "MLPClassifier",
        lambda est: est._get_state(),
        lambda arrays, metadata, backend, dtype: MLPClassifier._from_state(
            arrays, metadata, backend, dtype
        ),
        types=MLPClassifier,
    )


_register_model_file_kind()
