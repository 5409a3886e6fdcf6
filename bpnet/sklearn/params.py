"""What the estimators' parameters mean: their checks, and the network and
optimizer they describe (scikit-learn's architecture and initialization).
"""

from __future__ import annotations

import inspect
import math
import numbers
from typing import Any

import numpy as np
from sklearn.utils import check_random_state

from bpnet.nn.activations import ACTIVATIONS, Sigmoid
from bpnet.nn.layers import Dense, Layer
from bpnet.nn.losses import Loss
from bpnet.nn.model import Sequential
from bpnet.train.fullbatch import SOLVERS
from bpnet.train.optimizers import OPTIMIZERS, SGD, Momentum, Optimizer

# scikit-learn's names (identity, logistic, tanh, relu) and every registered
# activation under each of its names.
HIDDEN_ACTIVATIONS: dict[str, type[Layer] | None] = {
    "identity": None,
    **{name: ACTIVATIONS.get(name) for name in ACTIVATIONS.names(aliases=True)},
}
# Every registered optimizer; "sgd" keeps scikit-learn's meaning (SGD with
# `momentum` and `nesterovs_momentum`).
STOCHASTIC_SOLVERS = tuple(OPTIMIZERS.names())
FULL_BATCH_SOLVERS = {name: SOLVERS.get(name).scipy_method for name in SOLVERS}
# The estimator's optimizer settings, by the argument name that takes them.
OPTIMIZER_SETTINGS = {
    "momentum": "momentum",
    "nesterov": "nesterovs_momentum",
    "beta1": "beta_1",
    "beta2": "beta_2",
    "eps": "epsilon",
}
LEARNING_RATES = ("constant", "invscaling", "adaptive")


def _real(value: Any, name: str, expected: str) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    v = float(value)
    if math.isnan(v):
        raise ValueError(f"{name}: expected {expected}, got {value!r}")
    return v


def _positive(value: Any, name: str) -> None:
    v = _real(value, name, "a finite number > 0")
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name}: expected a finite number > 0, got {value!r}")


def _nonnegative(value: Any, name: str) -> None:
    v = _real(value, name, "a finite number >= 0")
    if not (math.isfinite(v) and v >= 0):
        raise ValueError(f"{name}: expected a finite number >= 0, got {value!r}")


def _unit_interval(value: Any, name: str) -> float:
    v = _real(value, name, "a number in [0, 1)")
    if not 0.0 <= v < 1.0:
        raise ValueError(f"{name}: expected a number in [0, 1), got {value!r}")
    return v


def _integer(value: Any, name: str, minimum: int = 1) -> None:
    if (
        isinstance(value, (bool, np.bool_))
        or not isinstance(value, numbers.Integral)
        or value < minimum
    ):
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value!r}")


def hidden_sizes(value: Any) -> tuple[int, ...]:
    """``hidden_layer_sizes`` as a tuple of positive ints (an int is one layer)."""
    sizes = [value] if isinstance(value, numbers.Integral) else value
    try:
        sizes = list(sizes)
    except TypeError:
        sizes = None
    if sizes is None or not all(
        isinstance(s, numbers.Integral)
        and not isinstance(s, (bool, np.bool_))
        and s >= 1
        for s in sizes
    ):
        raise ValueError(
            "hidden_layer_sizes: expected a positive integer or a sequence of "
            f"positive integers, got {value!r}"
        )
    return tuple(int(s) for s in sizes)


def check_params(est: Any) -> None:
    """Raise ValueError naming the first bad parameter (checked at fit time,
    as scikit-learn does, so that ``set_params`` and ``clone`` never raise).
    """
    hidden_sizes(est.hidden_layer_sizes)
    if est.activation not in HIDDEN_ACTIVATIONS:
        raise ValueError(
            f"activation: expected one of {sorted(HIDDEN_ACTIVATIONS)}, got "
            f"{est.activation!r}"
        )
    solvers = [*STOCHASTIC_SOLVERS, *FULL_BATCH_SOLVERS]
    if est.solver not in solvers:
        raise ValueError(f"solver: expected one of {solvers}, got {est.solver!r}")
    _nonnegative(est.alpha, "alpha")
    if not (isinstance(est.batch_size, str) and est.batch_size == "auto"):
        _integer(est.batch_size, "batch_size")
    if est.learning_rate not in LEARNING_RATES:
        raise ValueError(
            f"learning_rate: expected one of {list(LEARNING_RATES)}, got "
            f"{est.learning_rate!r}"
        )
    _positive(est.learning_rate_init, "learning_rate_init")
    _nonnegative(est.power_t, "power_t")
    _integer(est.max_iter, "max_iter")
    _integer(est.max_fun, "max_fun")
    _nonnegative(est.tol, "tol")
    if est.n_iter_no_change != math.inf:
        _integer(est.n_iter_no_change, "n_iter_no_change")
    for name in ("shuffle", "warm_start", "early_stopping", "nesterovs_momentum"):
        if not isinstance(getattr(est, name), (bool, np.bool_)):
            raise ValueError(
                f"{name}: expected True or False, got {getattr(est, name)!r}"
            )
    if not isinstance(est.verbose, (bool, np.bool_)):
        _integer(est.verbose, "verbose", minimum=0)
    fraction = _unit_interval(est.validation_fraction, "validation_fraction")
    if est.early_stopping and fraction == 0.0:
        raise ValueError(
            "validation_fraction: expected a number in (0, 1) with "
            f"early_stopping=True, got {est.validation_fraction!r}"
        )
    for name in ("momentum", "beta_1", "beta_2"):
        _unit_interval(getattr(est, name), name)
    _positive(est.epsilon, "epsilon")
    if est.dtype not in (None, "float32", "float64"):
        raise ValueError(
            f"dtype: expected None (follow X), 'float32' or 'float64', got "
            f"{est.dtype!r}"
        )
    if not isinstance(est.device, str):
        raise ValueError(
            f"device: expected a name such as 'cpu', 'cuda' or 'torch', got "
            f"{est.device!r}"
        )
    try:
        check_random_state(est.random_state)
    except ValueError as exc:  # e.g. a negative seed, in NumPy's words
        raise ValueError(
            "random_state: expected None, an integer in [0, 2**32 - 1] or a "
            f"numpy RandomState, got {est.random_state!r} ({exc})"
        ) from None


def seed_from(random_state: Any) -> int | None:
    """The network's seed: ``random_state`` itself, or drawn from it."""
    if random_state is None:
        return None
    if isinstance(random_state, numbers.Integral):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _uniform_draws(widths: list[int], factor: float, random_state: Any) -> list:
    """scikit-learn's initial weights for ``random_state``: per layer W (in, out)
    then b (out,), uniform in +-sqrt(factor / (in + out)), drawn in that order
    from ``check_random_state(random_state)``, as its ``_init_coef`` draws them.
    """
    rs = check_random_state(random_state)
    draws = []
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        bound = math.sqrt(factor / (fan_in + fan_out))
        W = rs.uniform(-bound, bound, (fan_in, fan_out))
        draws.append((W, rs.uniform(-bound, bound, fan_out)))
    return draws


def _uniform_init(factor: float, draws: list | None) -> Any:
    """scikit-learn's initializer: W and b uniform in +-sqrt(factor / (in + out)),
    the layers' ``draws`` in order, or from the network's own generator."""
    pending = None if draws is None else iter(draws)

    def init(fan_in: int, fan_out: int, rng: Any) -> tuple[Any, Any]:
        if pending is not None:
            return next(pending)
        bound = math.sqrt(factor / (fan_in + fan_out))
        W = rng.uniform(-bound, bound, (fan_in, fan_out))
        return W, rng.uniform(-bound, bound, (fan_out,))

    return init


def build_network(
    est: Any,
    n_features: int,
    n_outputs: int,
    loss: Loss,
    device: Any,
    dtype: str,
    hidden: tuple[int, ...] | None = None,
    activation: str | None = None,
) -> Sequential:
    """Dense layers of widths n_features, *hidden_layer_sizes, n_outputs with
    the hidden activation between them, ending in the raw outputs that
    ``loss`` takes (logits of a softmax or sigmoid, or the regression's
    values). With a ``random_state`` the initial weights are the ones
    scikit-learn's estimator draws for it, so that both start from the same
    point; without one they come from the network's own generator. Either
    way they are drawn on the host and copied to ``device`` once. ``hidden``
    and ``activation``, when given, stand for the estimator's parameters (a
    fitted network rebuilt as it was, whatever ``set_params`` changed since).
    """
    hidden = hidden_sizes(est.hidden_layer_sizes if hidden is None else hidden)
    widths = [n_features, *hidden, n_outputs]
    act = HIDDEN_ACTIVATIONS[est.activation if activation is None else activation]
    factor = 2.0 if act is Sigmoid else 6.0
    draws = None
    if est.random_state is not None:  # before seed_from draws from a RandomState
        draws = _uniform_draws(widths, factor, est.random_state)
    init = _uniform_init(factor, draws)
    layers: list[Layer] = []
    for i in range(len(widths) - 1):
        layers.append(Dense(widths[i], widths[i + 1], init=init))
        if i < len(widths) - 2 and act is not None:
            layers.append(act())
    return Sequential(
        layers,
        device=device,
        dtype=dtype,
        seed=seed_from(est.random_state),
        loss=loss,
    )


def network_structure(net: Sequential) -> dict[str, Any]:
    """What a network built by ``build_network`` is made of, read from its
    layers: {"hidden_layer_sizes": [...], "activation": name}; the name is
    the first of ``HIDDEN_ACTIVATIONS`` that builds its hidden activation."""
    dense = [layer for layer in net.layers if isinstance(layer, Dense)]
    acts = {type(layer) for layer in net.layers if not isinstance(layer, Dense)}
    if len(acts) > 1:  # pragma: no cover - build_network makes one kind
        raise ValueError(f"net: expected one hidden activation, got {sorted(acts)}")
    act = acts.pop() if acts else None
    name = next(k for k, v in HIDDEN_ACTIVATIONS.items() if v is act)
    return {
        "hidden_layer_sizes": [int(layer.n_out) for layer in dense[:-1]],
        "activation": name,
    }


def check_same_network(est: Any, net: Sequential) -> None:
    """Refuse to go on training ``net`` (warm_start, partial_fit) when the
    estimator's parameters now describe another network: scikit-learn's
    ValueError naming the parameter, before any step."""
    held = network_structure(net)
    hidden = hidden_sizes(est.hidden_layer_sizes)
    how = (
        "set warm_start=False to train a new network, or set it back"
        if est.warm_start
        else "fit (not partial_fit) a new network, or set it back"
    )
    if list(hidden) != held["hidden_layer_sizes"]:
        raise ValueError(
            f"hidden_layer_sizes: the fitted network has hidden layers "
            f"{tuple(held['hidden_layer_sizes'])}, got {hidden}; a warm start or "
            f"partial_fit continues that network: {how}"
        )
    if HIDDEN_ACTIVATIONS[est.activation] is not HIDDEN_ACTIVATIONS[held["activation"]]:
        raise ValueError(
            f"activation: the fitted network uses {held['activation']!r}, got "
            f"{est.activation!r}; a warm start or partial_fit continues that "
            f"network: {how}"
        )
    if est.dtype is not None and est.dtype != net.dtype_name:
        raise ValueError(
            f"dtype: the fitted network is {net.dtype_name}, got {est.dtype!r}; a "
            f"warm start or partial_fit continues that network: {how}"
        )


def make_optimizer(est: Any) -> Optimizer:
    """The optimizer ``solver`` names, with the estimator's settings that its
    class takes (those its name fixes, as nesterov's, stay fixed)."""
    lr = float(est.learning_rate_init)
    if est.solver == "sgd":  # scikit-learn's sgd: momentum 0 is plain SGD
        if est.momentum == 0:
            return SGD(lr)
        return Momentum(lr, float(est.momentum), bool(est.nesterovs_momentum))
    takes = inspect.signature(OPTIMIZERS.get(est.solver)).parameters
    fixed = OPTIMIZERS.preset(est.solver)
    settings = {
        arg: _setting(getattr(est, name))
        for arg, name in OPTIMIZER_SETTINGS.items()
        if arg in takes and arg not in fixed
    }
    return OPTIMIZERS.create(est.solver, lr=lr, **settings)


def _setting(value: Any) -> bool | float:
    return bool(value) if isinstance(value, (bool, np.bool_)) else float(value)
