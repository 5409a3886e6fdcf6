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
What the two estimators share lives in ``bpnet.sklearn.base``.
"""

from __future__ import annotations

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
from sklearn.base import ClassifierMixin
from sklearn.metrics import accuracy_score
from sklearn.preprocessing import LabelBinarizer
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import (
    check_classification_targets,
    type_of_target,
    unique_labels,
)
from sklearn.utils.validation import column_or_1d

from bpnet.nn.losses import Loss, SigmoidCrossEntropy, SoftmaxCrossEntropy
from bpnet.sklearn.base import BaseMLP, register_model_file_kind


class MLPClassifier(ClassifierMixin, BaseMLP):
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
    dtype : {"float32", "float64"} or None, default=None
        Precision of the weights and of the arithmetic. None follows X, as
        scikit-learn does: float32 X trains in float32, anything else in
        float64. ``"float32"`` is the fast choice (about twice the speed on a
        CPU, more on a GPU).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels, sorted (for multilabel targets, ``arange(n_labels)``).
    coefs_ : list of ndarray
        The weights, ``coefs_[i]`` of shape (in, out): read-only host copies
        taken from the network on each access; assigning a whole new list
        sets the network's weights (and so what ``predict`` uses).
    intercepts_ : list of ndarray
        The biases, ``intercepts_[i]`` of shape (out,), likewise.
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

    # --- targets --------------------------------------------------------
    def _encode_targets(
        self, y: Any, incremental: bool, reset: bool, dtype: Any
    ) -> np.ndarray:
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
                    "warm_start can only be used where `y` has the same classes as "
                    f"in the previous call to fit. Previously got {self.classes_}, "
                    f"`y` has {seen}"
                )
        else:
            new = np.setdiff1d(unique_labels(y), self.classes_, assume_unique=True)
            if len(new):
                raise ValueError(
                    f"`y` has classes not in `self.classes_`. `self.classes_` has "
                    f"{self.classes_}. 'y' has {unique_labels(y)}; pass every class "
                    "to the first call to partial_fit"
                )
        return self._label_binarizer.transform(y).astype(dtype)

    def _output(self) -> tuple[str, Loss]:
        if self._label_binarizer.y_type_ == "multiclass":
            return "softmax", SoftmaxCrossEntropy()
        return "logistic", SigmoidCrossEntropy()

    def _stratify(self, Y: np.ndarray) -> Any:
        # scikit-learn stratifies binary targets by their (n, 1) 0/1 column as
        # bools, so a class too small to split gets its message: ['True']
        return Y.astype(bool) if Y.shape[1] == 1 else None

    def _validation_score(self, Z: np.ndarray, Y: np.ndarray, w: Any) -> float:
        lb = self._label_binarizer
        return float(
            accuracy_score(lb.inverse_transform(Y), self._labels(Z), sample_weight=w)
        )

    # --- fitting --------------------------------------------------------
    def fit(self, X: Any, y: Any, sample_weight: Any = None) -> MLPClassifier:
        """Train from scratch on X (n_samples, n_features) and labels y.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
            Sparse X (SciPy CSR/CSC) is densified one batch at a time.
        y : array-like of shape (n_samples,) or (n_samples, n_labels)
            Class labels of any type, or a 0/1 multilabel indicator matrix.
        sample_weight : array-like of shape (n_samples,), optional
            Weights >= 0: each batch's loss is their weighted mean; a sample
            of weight 0 is dropped.

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
        return self._fit(X, y, sample_weight, incremental=False)

    @available_if(BaseMLP._check_solver)
    def partial_fit(
        self, X: Any, y: Any, sample_weight: Any = None, classes: Any = None
    ) -> MLPClassifier:
        """One epoch over X, y, continuing from the current weights.

        Parameters
        ----------
        X : array-like or sparse matrix of shape (n_samples, n_features)
        y : array-like of shape (n_samples,)
        sample_weight : array-like of shape (n_samples,), optional
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
        if classes is not None and not self.early_stopping:
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
                    f"`classes={wanted.tolist()}` is not the same as on last call "
                    f"to partial_fit, was: {self.classes_.tolist()}"
                )
        return self._fit(X, y, sample_weight, incremental=True)

    # --- prediction -----------------------------------------------------
    def _labels(self, Z: np.ndarray) -> np.ndarray:
        """Labels from host logits (n, n_outputs)."""
        if self._label_binarizer.y_type_.startswith("multilabel"):
            return self._label_binarizer.inverse_transform(self._probabilities(Z))
        if len(self.classes_) == 1:
            return np.repeat(self.classes_, Z.shape[0])
        if Z.shape[1] == 1:
            return self.classes_[(Z[:, 0] > 0).astype(np.int64)]
        return self.classes_[np.argmax(Z, axis=1)]

    def predict(self, X: Any) -> np.ndarray:
        """Predicted labels, shape (n_samples,) (or (n_samples, n_labels) for
        multilabel targets), as a host NumPy array of ``classes_``' type.
        """
        return self._labels(self._logits(self._check_X(X)))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of shape (n_samples, n_classes), ordered as
        ``classes_`` (for multilabel targets, one sigmoid per label).

        The logits come to the host and go through softmax or sigmoid in
        float64, so that small probabilities do not round to 0 in float32.
        """
        P = self._probabilities(self._logits(self._check_X(X)))
        if P.shape[1] == 1:
            return np.hstack([1.0 - P, P])
        return P

    def _probabilities(self, Z: np.ndarray) -> np.ndarray:
        if self.out_activation_ == "softmax":
            return special.softmax(Z, axis=1)
        # the network's sigmoid head, strictly inside (0, 1) as predict_proba's
        return SigmoidCrossEntropy().output(Z)

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """``log(predict_proba(X))``."""
        P = self.predict_proba(X)
        with np.errstate(divide="ignore"):
            return np.log(P, out=P)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


register_model_file_kind(MLPClassifier)
