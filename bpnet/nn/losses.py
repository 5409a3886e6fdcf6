"""Losses on logits, each a mean over the samples of the batch.

``loss_and_grad(Z, T)`` returns the 0-D loss and dL/dZ together (they share
the softmax or sigmoid); ``output(Z)`` is what ``predict_proba`` shows. The
targets ``T`` are float matrices of the logits' shape, made by ``targets``;
called directly, ``forward`` and ``loss_and_grad`` also take integer labels
(n,) (and a column's values (n,) for one output), through ``as_targets``,
and refuse any other shape by name.
Listed in ``LOSSES`` by short name (softmax, sigmoid, mse,
half_squared_error, poisson), with the long names and class names as other
spellings. ``weights``, a device column (n, 1)
summing to 1, turns the mean over the samples into a weighted mean; without it
the arithmetic is the plain mean's.
"""

from __future__ import annotations

import functools
import math
from typing import Any

from array_api_compat import array_namespace, device

from bpnet.nn._namespace import namespace as _ns
from bpnet.nn.functional import one_hot, row_sums, sigmoid, softmax, softplus, xlogy
from bpnet.nn.registry import Registry

LOSSES = Registry("loss")


class Loss:
    """Base class: a loss maps logits (n, k) and targets (n, k) to a scalar."""

    #: integer labels are one-hot encoded against the output width
    accepts_labels = True
    #: the outputs are values to fit, not classes (no accuracy to report)
    regression = False

    def targets(self, Y: Any, n_outputs: int, dtype: Any) -> Any:
        """(n,) integer labels or (n, k) rows -> (n, k) float targets."""
        xp = _ns(Y)
        if Y.ndim == 1:
            if xp.isdtype(Y.dtype, "integral"):
                return one_hot(Y, n_outputs, dtype)
            return xp.reshape(xp.astype(Y, dtype), (-1, 1))
        return xp.astype(Y, dtype) if Y.dtype != dtype else Y

    def check_targets(self, T: Any, name: str) -> None:
        """Raise ValueError when host targets ``T`` (n, k) lie outside what
        this loss takes; ``name`` is the argument they came in."""

    def as_targets(self, Z: Any, T: Any, name: str = "T") -> Any:
        """``T`` as the (n, k) targets of the logits ``Z`` (n, k).

        Targets of ``Z``'s shape and dtype pass as they are (what ``fit`` and
        the network's methods hand in). Integer labels (n,) are one-hot
        encoded against the k outputs (for one output they are the values
        themselves, as a column); float values (n,) are a column for one
        output; rows (n, k) are cast to ``Z``'s dtype.

        Raises
        ------
        ValueError
            ``T`` has another shape, labels lie outside [0, k), or float
            values (n,) are given for k > 1 outputs; the message names ``T``,
            the shapes expected and the shape given.
        """
        shape = getattr(T, "shape", None)
        if shape == Z.shape and len(shape) == 2:
            dt = T.dtype
            if dt is Z.dtype or dt == Z.dtype:  # `is`: the common case, cheaper
                return T  # the fit loop's case: no copy
        return _targets_like(Z, T, name)

    def forward(self, Z: Any, T: Any) -> Any:
        """The loss of logits ``Z`` (n, k) against ``T``: integer labels
        (n,) or targets (n, k) (see ``as_targets``); a 0-D array."""
        return self.loss_and_grad(Z, T, need_grad=False)[0]

    def loss_and_grad(
        self, Z: Any, T: Any, need_grad: bool = True, weights: Any = None
    ) -> tuple[Any, Any]:
        raise NotImplementedError

    def output(self, Z: Any) -> Any:
        return Z

    #: The logit at which ``output`` is 0.5: a one-output network's class
    #: boundary, as ``predict`` (output > 0.5) draws it, for the accuracy
    #: counts (``evaluate``, ``fit``'s history). Identity output: 0.5. A
    #: class that overrides ``output`` declares its own beside it, or the
    #: counts compute ``output(Z) > 0.5`` (``decision_boundary``).
    decision_logit: float | None = 0.5

    def get_config(self) -> dict:
        return {"type": LOSSES.name_of(self) or type(self).__name__}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"

    def __eq__(self, other: object) -> bool:
        return type(self) is type(other)

    def __hash__(self) -> int:
        return hash(type(self).__name__)


@LOSSES.register(
    "softmax",
    aliases=("softmax_cross_entropy", "SoftmaxCrossEntropy"),
    help="softmax cross-entropy",
)
class SoftmaxCrossEntropy(Loss):
    """Softmax then cross-entropy: mean_i [logsumexp(z_i) - t_i . z_i].

    Takes integer labels (n,) or one-hot rows (n, k) through ``fit`` and the
    network's methods, which refuse other rows by name; ``forward`` and
    ``loss_and_grad`` called directly take the same labels or rows (the same
    number for both) and also probability rows (each summing to 1).
    Gradient: (softmax(Z) - T) / n.
    """

    def loss_and_grad(
        self, Z: Any, T: Any, need_grad: bool = True, weights: Any = None
    ) -> tuple[Any, Any]:
        T = self.as_targets(Z, T)
        xp = _ns(Z)
        n = Z.shape[0]
        S = Z - xp.max(Z, axis=1, keepdims=True)  # shifted: exp never overflows
        E = xp.exp(S)
        s = row_sums(E)
        # rows of T sum to 1, so sum(T * lse) = sum(log s) + sum(T * max)
        if weights is None:
            loss = (xp.sum(xp.log(s)) - xp.sum(T * S)) * (1.0 / n)
        else:
            rows = xp.log(s) - xp.sum(T * S, axis=1, keepdims=True)
            loss = xp.sum(weights * rows)
        if not need_grad:
            return loss, None
        E /= s  # softmax, in place on arrays made here
        E -= T
        if weights is None:
            E *= 1.0 / n
        else:
            E *= weights
        return loss, E

    def output(self, Z: Any) -> Any:
        return softmax(Z, axis=1)


@LOSSES.register(
    "sigmoid",
    aliases=("sigmoid_cross_entropy", "SigmoidCrossEntropy"),
    help="ex4's per-output sigmoid cross-entropy",
)
class SigmoidCrossEntropy(Loss):
    """ex4's cost: per sample the sum over outputs of binary cross-entropy,
    averaged over samples, as softplus(z) - t * z (never log(sigmoid(z))).

    Takes integer labels (one-hot encoded, as ex4 recodes y) or (n, k) targets
    in [0, 1]. Gradient: (sigmoid(Z) - T) / n.
    """

    def check_targets(self, T: Any, name: str) -> None:
        if bool(((T < 0) | (T > 1)).any()):
            raise ValueError(f"{name}: targets for a sigmoid output must lie in [0, 1]")

    def loss_and_grad(
        self, Z: Any, T: Any, need_grad: bool = True, weights: Any = None
    ) -> tuple[Any, Any]:
        T = self.as_targets(Z, T)
        xp = _ns(Z)
        n = Z.shape[0]
        if weights is None:
            loss = xp.sum(softplus(Z) - T * Z) / n
        else:
            loss = xp.sum(weights * (softplus(Z) - T * Z))
        if not need_grad:
            return loss, None
        if weights is None:
            return loss, (sigmoid(Z) - T) * (1.0 / n)
        return loss, (sigmoid(Z) - T) * weights

    decision_logit = 0.0  # sigmoid(0) = 0.5

    def output(self, Z: Any) -> Any:
        """sigmoid(Z), kept strictly inside (0, 1).

        A finite logit is never certainty, but sigmoid(z) rounds to exactly 1.0
        past z ~ 17 in float32 (~37 in float64) and to 0 far below. Whether a
        trained network lands there depends on the last bits of the BLAS
        kernel's rounding, so the probabilities are clipped to the floats
        nearest 0 and 1 instead: ``predict`` (p > 0.5) and the loss (computed
        on the logits) are unchanged.
        """
        xp = _ns(Z)
        info = xp.finfo(Z.dtype)
        return xp.clip(sigmoid(Z), info.smallest_normal, 1.0 - info.eps / 2)


@LOSSES.register(
    "mse",
    aliases=("mean_squared_error", "MeanSquaredError"),
    help="mean squared error",
)
class MeanSquaredError(Loss):
    """Mean over samples and outputs of (z - t)**2. Gradient 2 (Z - T) / (n k)."""

    regression = True

    def loss_and_grad(
        self, Z: Any, T: Any, need_grad: bool = True, weights: Any = None
    ) -> tuple[Any, Any]:
        T = self.as_targets(Z, T)
        xp = _ns(Z)
        D = Z - T
        if weights is None:
            scale = 1.0 / (Z.shape[0] * Z.shape[1])
            loss = xp.sum(D * D) * scale
            return loss, (D * (2.0 * scale) if need_grad else None)
        loss = xp.sum(weights * (D * D)) * (1.0 / Z.shape[1])
        return loss, (D * (weights * (2.0 / Z.shape[1])) if need_grad else None)


@LOSSES.register(
    "half_squared_error",
    aliases=("HalfSquaredError",),
    help="half the squared error summed over outputs (scikit-learn's regressor)",
)
class HalfSquaredError(Loss):
    """scikit-learn's regression loss: mean over samples of half the squared
    error summed over outputs, ``sum((z - t)**2) / (2 n)``. Gradient (Z - T) / n,
    scikit-learn's ``activations[-1] - y`` over n, so ``alpha`` weighs the same.
    """

    regression = True

    def loss_and_grad(
        self, Z: Any, T: Any, need_grad: bool = True, weights: Any = None
    ) -> tuple[Any, Any]:
        T = self.as_targets(Z, T)
        xp = _ns(Z)
        D = Z - T
        if weights is None:
            n = Z.shape[0]
            loss = xp.sum(D * D) * (0.5 / n)
            return loss, (D * (1.0 / n) if need_grad else None)
        loss = xp.sum(weights * (D * D)) * 0.5
        return loss, (D * weights if need_grad else None)


@LOSSES.register(
    "poisson",
    aliases=("half_poisson_deviance", "HalfPoissonDeviance"),
    help="half the Poisson deviance of exp(output) (scikit-learn's loss='poisson')",
)
class HalfPoissonDeviance(Loss):
    """scikit-learn's ``loss="poisson"``: each output is the log of a mean
    ``mu = exp(z)`` (a log link), and the loss is the mean over samples of half
    the Poisson deviance summed over outputs,
    ``sum(t log(t / mu) - t + mu) / n`` with ``t log t = 0`` at ``t = 0``: 0 for
    a perfect fit. Gradient (exp(Z) - T) / n, scikit-learn's
    ``activations[-1] - y`` over n. Targets are counts or rates, >= 0.
    """

    regression = True

    def check_targets(self, T: Any, name: str) -> None:
        if bool((T < 0).any()):
            raise ValueError(
                f"{name}: targets for a Poisson loss are counts or rates and must "
                f"be >= 0; got a minimum of {float(T.min())}"
            )

    def loss_and_grad(
        self, Z: Any, T: Any, need_grad: bool = True, weights: Any = None
    ) -> tuple[Any, Any]:
        T = self.as_targets(Z, T)
        xp = _ns(Z)
        D = xp.exp(Z) - T  # mu - t: the gradient's numerator
        # t log(t / mu) - t + mu, with log mu = z
        terms = xlogy(T, T) - T * Z + D
        if weights is None:
            n = Z.shape[0]
            loss = xp.sum(terms) * (1.0 / n)
            return loss, (D * (1.0 / n) if need_grad else None)
        loss = xp.sum(weights * terms)
        return loss, (D * weights if need_grad else None)

    decision_logit = math.log(0.5)  # exp(log 0.5) = 0.5

    def output(self, Z: Any) -> Any:
        xp = _ns(Z)
        return xp.exp(Z)


def _targets_like(Z: Any, T: Any, name: str) -> Any:
    """``Loss.as_targets`` past its fast path: convert or refuse, by name."""
    zshape = tuple(getattr(Z, "shape", ()))
    if len(zshape) != 2:
        raise ValueError(
            f"Z: expected logits of shape (n_samples, n_outputs), got shape {zshape}"
        )
    n, k = zshape
    expected = f"integer labels of shape ({n},) or targets of shape ({n}, {k})"
    xp = _ns(Z)
    if not hasattr(T, "shape"):  # nested lists, as the book writes them
        T = xp.asarray(T, device=device(Z))
    try:
        array_namespace(Z, T)
    except TypeError:
        raise TypeError(
            f"{name}: expected an array of the logits' library "
            f"({type(Z).__name__}), got {type(T).__name__}"
        ) from None
    shape = tuple(T.shape)
    if shape == (n, k) and not xp.isdtype(T.dtype, "bool"):
        return xp.astype(T, Z.dtype)
    if len(shape) != 1 or shape[0] != n:
        raise ValueError(
            f"{name}: expected {expected} for logits Z of shape ({n}, {k}), "
            f"got shape {shape}"
        )
    if k == 1 and xp.isdtype(T.dtype, ("integral", "real floating")):
        return xp.reshape(xp.astype(T, Z.dtype), (n, 1))
    if xp.isdtype(T.dtype, "real floating"):
        if not bool(xp.all(T == xp.round(T))):
            raise ValueError(
                f"{name}: expected {expected}; got float values of shape {shape} "
                f"that are not whole numbers, for {k} outputs"
            )
        T = xp.astype(T, xp.int64)
    elif not xp.isdtype(T.dtype, "integral"):
        raise ValueError(f"{name}: expected {expected}, got dtype {T.dtype}")
    if n and (bool(xp.any(T < 0)) or bool(xp.any(T >= k))):
        raise ValueError(
            f"{name}: expected class labels in [0, {k - 1}] for logits Z of "
            f"shape ({n}, {k}), got labels from {int(xp.min(T))} to {int(xp.max(T))}"
        )
    return one_hot(T, k, Z.dtype)


def decision_boundary(loss: Loss) -> float | None:
    """``loss.decision_logit`` when the class that defines its ``output``
    declares it too, else None: a subclass that changed ``output`` without
    saying where it crosses 0.5 is counted through ``output`` itself."""
    return _declared_boundary(type(loss))


@functools.cache
def _declared_boundary(kind: type) -> float | None:
    # once per class: the accuracy count asks every training step
    for cls in kind.__mro__:
        if "output" in cls.__dict__:
            return cls.__dict__.get("decision_logit")
    return None


def get_loss(loss: str | Loss | type[Loss] | None) -> Loss:
    """A loss by name (softmax, sigmoid, mse), class or instance; None -> softmax."""
    if loss is None:
        return SoftmaxCrossEntropy()
    if isinstance(loss, Loss):
        return loss
    if isinstance(loss, type) and issubclass(loss, Loss):
        return loss()
    if isinstance(loss, str) and loss in LOSSES:
        return LOSSES.create(loss)
    raise ValueError(
        f"loss: expected one of {LOSSES.names(aliases=True)} or a bpnet Loss "
        f"instance, got {loss!r}"
    )
