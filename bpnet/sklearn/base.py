"""What ``MLPClassifier`` and ``MLPRegressor`` share: the parameters, input
checks (dense or sparse X, ``sample_weight``), the precision that follows X,
fitting and warm starts, ``partial_fit``'s rules, the weights as ``coefs_`` /
``intercepts_``, pickling and model files.

A subclass says what its targets are (``_encode_targets``), which loss and
output the network ends in (``_output``), and how a held-out set is scored
(``_validation_score``).
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
        f"bpnet's scikit-learn estimators need scikit-learn and scipy ({exc}); "
        "pip install 'bpnet-arrayapi[train]'"
    ) from exc
from scipy import sparse
from sklearn.base import BaseEstimator, is_regressor
from sklearn.utils.validation import (
    _check_sample_weight,
    check_is_fitted,
    validate_data,
)

from bpnet.nn.losses import Loss
from bpnet.nn.model import Sequential
from bpnet.sklearn import params, state
from bpnet.sklearn.sparse import chunk_rows, dense_rows, is_device_sparse, is_sparse
from bpnet.sklearn.training import fit_full_batch, fit_stochastic


class _ReadOnlyList(list):
    """``coefs_`` / ``intercepts_``: host copies that refuse item assignment
    (assign the whole list to change the network's weights)."""

    def __init__(self, items: list, name: str) -> None:
        super().__init__(items)
        self._name = name

    def _refuse(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError(
            f"{self._name}: is a read-only copy of the network's weights; to change "
            f"them assign a whole list, est.{self._name} = [...], which sets them "
            "in the network that predict uses"
        )

    __setitem__ = __delitem__ = append = extend = insert = pop = _refuse
    remove = clear = sort = reverse = __iadd__ = __imul__ = _refuse


class BaseMLP(BaseEstimator):
    """Shared machinery of bpnet's scikit-learn estimators; not for direct use."""

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
        dtype: str | None = None,
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

    # --- what a subclass defines ------------------------------------------
    def _encode_targets(
        self, y: Any, incremental: bool, reset: bool, dtype: Any
    ) -> np.ndarray:
        """y as an (n, n_outputs) array of ``dtype``; remembers what fit saw."""
        raise NotImplementedError

    def _output(self) -> tuple[str, Loss]:
        """(``out_activation_``, the network's loss) for the fitted targets."""
        raise NotImplementedError

    def _validation_score(self, Z: np.ndarray, Y: np.ndarray, w: Any) -> float:
        """Early stopping's score of logits Z against encoded targets Y."""
        raise NotImplementedError

    def _stratify(self, Y: np.ndarray) -> Any:
        """Labels to stratify early stopping's split by, or None."""
        return None

    # --- input ------------------------------------------------------------
    def _fitted_dtype(self) -> str | None:
        net = getattr(self, "net_", None)
        return None if net is None else net.dtype_name

    def _X_dtype(self, fresh: bool) -> Any:
        """What validate_data converts X to: the fitted network's precision, the
        ``dtype`` asked for, or (default) X's own float32/float64."""
        name = None if fresh else self._fitted_dtype()
        name = name or self.dtype
        if name is None:
            return (np.float64, np.float32)  # float32 stays; others go float64
        return np.dtype(name).type

    def _validate_X(self, X: Any, y: Any, reset: bool, dtype: Any) -> tuple:
        sparse_kw = {"accept_sparse": ("csr", "csc")}
        if is_device_sparse(X):  # CuPy's sparse matrices: checked by hand
            if X.ndim != 2:
                raise ValueError(f"X: expected a 2-D matrix, got shape {X.shape}")
            if reset:
                self.n_features_in_ = int(X.shape[1])
            elif X.shape[1] != self.n_features_in_:
                raise ValueError(
                    f"X: has {X.shape[1]} features, but {type(self).__name__} "
                    f"is expecting {self.n_features_in_} features as input"
                )
            if isinstance(y, str) and y == "no_validation":
                return X, None
            y = validate_data(self, X="no_validation", y=y, multi_output=True)
            return X, y
        if isinstance(y, str) and y == "no_validation":  # predicting
            return validate_data(self, X, dtype=dtype, reset=reset, **sparse_kw), None
        return validate_data(
            self,
            X,
            y,
            multi_output=True,
            dtype=dtype,
            reset=reset,
            y_numeric=is_regressor(self),
            **sparse_kw,
        )

    # --- the network ----------------------------------------------------
    def _build_net(
        self,
        n_features: int,
        n_outputs: int,
        device: Any = None,
        dtype: str | None = None,
        structure: dict | None = None,
    ) -> Sequential:
        """A fresh network for this problem; sets the shape attributes.
        ``structure`` ({"hidden_layer_sizes", "activation"}) stands for the
        parameters of those names: a saved network is rebuilt as it was."""
        structure = structure or {}
        hidden = structure.get("hidden_layer_sizes", self.hidden_layer_sizes)
        self.out_activation_, loss = self._output()
        self.n_outputs_ = n_outputs
        self.n_layers_ = len(params.hidden_sizes(hidden)) + 2
        return params.build_network(
            self,
            n_features,
            n_outputs,
            loss,
            device=self.device if device is None else device,
            dtype=dtype or self.dtype or "float32",
            hidden=hidden,
            activation=structure.get("activation"),
        )

    def _make_optimizer(self) -> Any:
        return params.make_optimizer(self)

    def _host_weights(self, key: str, name: str) -> list[np.ndarray]:
        """Read-only host copies of every layer's parameter ``key`` (W or b)."""
        if "net_" not in self.__dict__:
            raise AttributeError(
                f"{name}: {type(self).__name__} is not fitted yet; call fit first"
            )
        be = self.net_.backend
        arrays = []
        for layer in self.net_.layers:
            p = layer.named_parameters()
            if key in p:
                a = np.array(be.to_numpy(p[key]), copy=True)
                a.flags.writeable = False
                arrays.append(a)
        return _ReadOnlyList(arrays, name)

    def _set_host_weights(self, key: str, name: str, values: Any) -> None:
        """Set every layer's parameter ``key`` from ``values``, one per layer."""
        if "net_" not in self.__dict__:
            raise AttributeError(
                f"{name}: {type(self).__name__} is not fitted yet; fit it before "
                "setting its weights"
            )
        named = [layer.named_parameters() for layer in self.net_.layers]
        n = sum(key in p for p in named)
        if not isinstance(values, (list, tuple)) or len(values) != n:
            raise ValueError(
                f"{name}: expected a list of {n} arrays, one per layer, got "
                f"{values!r:.80}"
            )
        # host arrays as writable copies (ours are read-only; PyTorch warns)
        new = iter(np.array(v) if isinstance(v, np.ndarray) else v for v in values)
        current = [
            next(new) if k == key else p for params in named for k, p in params.items()
        ]
        try:
            self.net_.set_parameters(current)
        except ValueError as exc:
            raise ValueError(f"{name}: {exc}") from None

    @property
    def coefs_(self) -> list[np.ndarray]:
        """The weights, (in, out) per layer: read-only host copies. Assigning
        a new list sets them in the network (and so changes predictions)."""
        return self._host_weights("W", "coefs_")

    @coefs_.setter
    def coefs_(self, values: Any) -> None:
        self._set_host_weights("W", "coefs_", values)

    @property
    def intercepts_(self) -> list[np.ndarray]:
        """The biases, (out,) per layer: read-only host copies, as ``coefs_``."""
        return self._host_weights("b", "intercepts_")

    @intercepts_.setter
    def intercepts_(self, values: Any) -> None:
        self._set_host_weights("b", "intercepts_", values)

    # --- fitting --------------------------------------------------------
    def _check_solver(self) -> bool:
        if self.solver not in params.STOCHASTIC_SOLVERS:
            raise AttributeError(
                f"partial_fit is only available for stochastic optimizers "
                f"{params.STOCHASTIC_SOLVERS}; {self.solver} is not stochastic "
                "(it trains on all data at once)"
            )
        return True

    def _fit(self, X: Any, y: Any, sample_weight: Any, incremental: bool) -> Any:
        params.check_params(self)
        if incremental and self.early_stopping:
            raise ValueError(
                "partial_fit does not support early_stopping=True (one epoch at a "
                "time leaves nothing to hold out); use fit, or early_stopping=False"
            )
        warm = not incremental and self.warm_start and hasattr(self, "net_")
        fresh = not hasattr(self, "net_") or not (incremental or warm)
        if not fresh:  # the network fit left must be the one the params describe
            params.check_same_network(self, self.net_)
        X, y = self._validate_X(X, y, reset=fresh, dtype=self._X_dtype(fresh))
        dtype = self._fit_dtype_name(X) if fresh else self._fitted_dtype()
        Y = self._encode_targets(y, incremental, fresh, np.dtype(dtype).type)
        if sample_weight is not None:
            sample_weight = _check_sample_weight(
                sample_weight, X, dtype=np.float64, ensure_non_negative=True
            )
            keep = sample_weight > 0  # a weight of 0 drops its sample
            if not keep.all():
                X, Y, sample_weight = X[keep], Y[keep], sample_weight[keep]
        if warm:
            self._optimizer = None  # as scikit-learn: a new optimizer per fit
            if self.early_stopping and self.validation_scores_ is None:
                self.validation_scores_ = []
                self.best_validation_score_ = -math.inf
            if not self.early_stopping and self.best_loss_ is None:
                self.best_loss_ = math.inf
        if fresh:
            self.net_ = self._build_net(X.shape[1], Y.shape[1], dtype=dtype)
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
        if self.solver in params.STOCHASTIC_SOLVERS:
            fit_stochastic(self, X, Y, sample_weight, incremental)
        else:
            fit_full_batch(self, X, Y, sample_weight)
        return self

    def _fit_dtype_name(self, X: Any) -> str:
        if self.dtype is not None:
            return self.dtype
        return "float32" if X.dtype == np.float32 else "float64"

    # --- prediction -----------------------------------------------------
    def _check_X(self, X: Any) -> Any:
        check_is_fitted(self)
        dtype = np.dtype(self.net_.dtype_name).type
        return self._validate_X(X, "no_validation", reset=False, dtype=dtype)[0]

    def _logits(self, X: Any) -> np.ndarray:
        """The network's raw outputs on the host, float64; a sparse X goes
        through in slices of ``chunk_rows`` rows, each densified alone."""
        net = self.net_
        be = net.backend
        if not is_sparse(X):
            return be.to_numpy(net.forward(X)).astype(np.float64)
        if sparse.issparse(X):
            X = X.tocsr()  # row slices of CSR are cheap
        n = X.shape[0]
        out = np.empty((n, net.n_outputs), dtype=np.float64)
        step = chunk_rows(X.shape[1])
        for lo in range(0, n, step):
            hi = min(lo + step, n)
            Xb = dense_rows(X, slice(lo, hi))
            if isinstance(Xb, np.ndarray):
                Xb = Xb.astype(np.dtype(net.dtype_name), copy=False)
            out[lo:hi] = be.to_numpy(net.forward(Xb))
        return out

    # --- scikit-learn plumbing ------------------------------------------
    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags

    def __getstate__(self) -> dict:
        """Pickle without device objects: the network and optimizer go as host
        arrays and are rebuilt on ``device`` when unpickled.
        """
        d = dict(super().__getstate__())
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
    ) -> Any:
        """A fitted estimator rebuilt on ``device`` from ``_get_state()``."""
        return state.from_state(cls, arrays, metadata, device, dtype)

    def save(self, path: Any, **metadata: Any) -> Any:
        """Save the fitted model to a bpnet model file (``bpnet.io.save``)."""
        check_is_fitted(self)
        from bpnet import io

        return io.save(self, path, **metadata)


def register_model_file_kind(cls: type) -> None:
    """Teach ``bpnet.io.save``/``load`` an estimator (a file's "kind")."""
    from bpnet import io

    io.register_kind(
        cls.__name__,
        lambda est: est._get_state(),
        lambda arrays, metadata, backend, dtype: cls._from_state(
            arrays, metadata, backend, dtype
        ),
        types=cls,
        arrays=state.declared_arrays,
    )
