"""``Sequential``: a stack of layers, its forward and its backward pass."""

from __future__ import annotations

import numbers
from typing import Any

from backends import HostRandom, get_backend
from bpnet.nn import validation as check
from bpnet.nn.evaluation import evaluate
from bpnet.nn.initializers import get_initializer
from bpnet.nn.layers import Dense, Dropout, Layer, layer_from_config
from bpnet.nn.losses import Loss, get_loss


class Sequential:
    """A feed-forward network with explicit backprop.

    ``fit`` (minibatch training, ``bpnet.fit``) is attached by ``bpnet.train``,
    which ``import bpnet`` loads: the core knows no fit loop.

    Parameters
    ----------
    layers : list of Layer
        Applied in order; the first must be ``Dense`` (it fixes the input width).
    device : str or Backend, default "cpu"
        Where the parameters live: ``"cpu"``, ``"cuda"``, ``"torch"``, ...
    dtype : {"float32", "float64"}, default "float32"
    seed : int or None, default 0
        Seeds the host generator that draws the initial weights (identical on
        every device) and the device generator for dropout masks.
    loss : str or Loss, default SoftmaxCrossEntropy()
        Used by ``predict_proba`` and as the default of ``loss_and_grad``.

    Examples
    --------
    >>> import bpnet
    >>> net = bpnet.Sequential([bpnet.Dense(4, 8), bpnet.ReLU(), bpnet.Dense(8, 3)])
    >>> net.forward([[0.0, 1.0, 2.0, 3.0]]).shape
    (1, 3)
    """

    def __init__(
        self,
        layers: list[Layer],
        device: Any = "cpu",
        dtype: Any = "float32",
        seed: int | None = 0,
        loss: str | Loss | None = None,
    ) -> None:
        if not isinstance(layers, (list, tuple)) or len(layers) == 0:
            raise ValueError(
                f"layers: expected a non-empty list of bpnet layers, got {layers!r}"
            )
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(
                    f"layers[{i}]: expected a bpnet layer (Dense, ReLU, ...), "
                    f"got {type(layer).__name__}"
                )
        if not isinstance(layers[0], Dense):
            raise ValueError(
                f"layers: the first layer must be Dense (it fixes the input width), "
                f"got {type(layers[0]).__name__}"
            )
        if len({id(layer) for layer in layers}) != len(layers):
            raise ValueError("layers: the same layer object appears twice")
        if seed is not None and (
            isinstance(seed, bool) or not isinstance(seed, numbers.Integral)
        ):
            raise TypeError(f"seed: expected an integer or None, got {seed!r}")
        if seed is not None:
            seed = int(seed)
            if seed < 0:
                raise ValueError(f"seed: expected an integer >= 0 or None, got {seed}")
        self.layers = list(layers)
        self.backend = get_backend(device)
        self.xp = self.backend.xp
        self.dtype = self.backend.dtype(dtype)
        if self.backend.dtype_name(self.dtype) not in ("float32", "float64"):
            raise ValueError(
                "dtype: expected 'float32' or 'float64' (weights are real numbers), "
                f"got {self.backend.dtype_name(self.dtype)!r}"
            )
        self.seed = seed
        self.loss = get_loss(loss)
        self.host_rng = HostRandom(seed)
        self.device_rng = self.backend.random(None if seed is None else seed + 1)
        self._build()

    # --- structure ------------------------------------------------------
    def _build(self) -> None:
        width = self.layers[0].n_in
        with self.backend.context():
            for i, layer in enumerate(self.layers):
                if isinstance(layer, Dense):
                    width = layer.build(width, self, init=self._default_init(i))
                else:
                    width = layer.build(width, self)
        self.n_inputs = self.layers[0].n_in
        self.n_outputs = width
        self._dense = [layer for layer in self.layers if isinstance(layer, Dense)]
        # positions of the Dense weights in parameters(): l2 applies to these only
        self._weight_index = [2 * i for i in range(len(self._dense))]

    def _default_init(self, i: int) -> Any:
        """He before a ReLU-family activation, Glorot otherwise."""
        for layer in self.layers[i + 1 :]:
            if isinstance(layer, Dropout):
                continue
            return get_initializer(getattr(layer, "init_name", "glorot"))
        return get_initializer("glorot")

    @property
    def dtype_name(self) -> str:
        return self.backend.dtype_name(self.dtype)

    @property
    def device(self) -> Any:
        return self.backend.device

    def parameters(self) -> list[Any]:
        """[W1, b1, W2, b2, ...] on the model's device (Dense W is (in, out))."""
        return [p for layer in self.layers for p in layer.params]

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(p.shape) for p in self.parameters()]

    @property
    def n_parameters(self) -> int:
        total = 0
        for shape in self.shapes:
            size = 1
            for s in shape:
                size *= s
            total += size
        return total

    def set_parameters(self, params: list[Any]) -> None:
        """Replace every parameter; any array-likes of the right shapes.

        Host arrays are copied to the device; arrays already there are cast
        to the model's dtype.
        """
        shapes = self.shapes
        if not isinstance(params, (list, tuple)) or len(params) != len(shapes):
            n = (
                len(params)
                if isinstance(params, (list, tuple))
                else type(params).__name__
            )
            raise ValueError(
                f"params: expected a list of {len(shapes)} arrays with shapes "
                f"{shapes}, got {n}"
            )
        converted = []
        for i, (p, shape) in enumerate(zip(params, shapes)):
            arr, on_device = check.to_host_or_device(p, self.backend, f"params[{i}]")
            if tuple(arr.shape) != shape:
                raise ValueError(
                    f"params[{i}]: expected shape {shape}, got {tuple(arr.shape)}"
                )
            if on_device:
                arr = (
                    arr if arr.dtype == self.dtype else self.xp.astype(arr, self.dtype)
                )
            else:
                if arr.dtype.kind not in "iuf":
                    raise TypeError(
                        f"params[{i}]: expected numbers, got dtype {arr.dtype}"
                    )
                arr = self.backend.asarray(arr, dtype=self.dtype)
            if not bool(self.xp.all(self.xp.isfinite(arr))):
                raise ValueError(
                    f"params[{i}]: expected finite numbers, got NaN or infinity"
                )
            converted.append(arr)
        self._assign(self._owned(converted))

    def _assign(self, params: list[Any]) -> None:
        it = iter(params)
        for layer in self._dense:
            layer.set_params(next(it), next(it))

    def get_flat_parameters(self) -> Any:
        """All parameters as one float64 host vector (the notebooks' unroll)."""
        return self.backend.pack(self.parameters())

    def set_flat_parameters(self, theta: Any) -> None:
        """Set every parameter from a flat vector made by ``get_flat_parameters``."""
        self._assign(self._owned(self.backend.unpack(theta, self.shapes, self.dtype)))

    def _owned(self, arrays: list[Any]) -> list[Any]:
        """Private copies: optimizers update parameters in place, and must never
        write into an array the caller still holds (NumPy and PyTorch CPU share
        memory with host arrays)."""
        with self.backend.context():
            return [self.xp.asarray(a, copy=True) for a in arrays]

    # --- passes -----------------------------------------------------------
    def _forward(self, X: Any, training: bool = False) -> Any:
        for layer in self.layers:
            X = layer.forward(X, training)
        return X

    def _backward(self, dZ: Any) -> list[Any]:
        last = len(self.layers) - 1
        for i in range(last, -1, -1):
            dZ = self.layers[i].backward(dZ, need_dx=i > 0)
        return [g for layer in self.layers for g in layer.grads]

    def _loss_and_grad(
        self,
        X: Any,
        T: Any,
        loss: Loss,
        l2: float = 0.0,
        training: bool = True,
        return_logits: bool = False,
    ) -> tuple[Any, ...]:
        """Device loss (0-D) and gradients (and the logits), with no host
        synchronization.
        """
        Z = self._forward(X, training)
        L, dZ = loss.loss_and_grad(Z, T)
        grads = self._backward(dZ)
        if l2:
            L = L + self._l2_penalty(l2, X.shape[0])
            scale = l2 / X.shape[0]
            for k, layer in zip(self._weight_index, self._dense):
                grads[k] = grads[k] + scale * layer.W
        return (L, grads, Z) if return_logits else (L, grads)

    def _loss(
        self, X: Any, T: Any, loss: Loss, l2: float = 0.0, training: bool = True
    ) -> Any:
        L = loss.forward(self._forward(X, training), T)
        return L + self._l2_penalty(l2, X.shape[0]) if l2 else L

    def _l2_penalty(self, l2: float, n: int) -> Any:
        xp = self.xp
        total = sum(xp.sum(layer.W * layer.W) for layer in self._dense)
        return total * (l2 / (2.0 * n))

    def _prepare(self, X: Any, Y: Any, loss: Loss) -> tuple[Any, Any]:
        Xd = check.check_X(X, self.backend, self.dtype, self.n_inputs)
        T = check.check_targets(
            Y, self.backend, self.dtype, loss, Xd.shape[0], self.n_outputs
        )
        return Xd, T

    def forward(self, X: Any, training: bool = False) -> Any:
        """Raw outputs (logits) of shape (n, n_outputs), on the model's device."""
        with self.backend.context():
            Xd = check.check_X(X, self.backend, self.dtype, self.n_inputs)
            return self._forward(Xd, training)

    __call__ = forward

    def backward(self, dZ: Any) -> list[Any]:
        """Backpropagate dL/dlogits through the last ``forward``; return the
        parameter gradients, parallel to ``parameters()``.
        """
        with self.backend.context():
            return self._backward(dZ)

    def loss_and_grad(
        self, X: Any, Y: Any, loss: str | Loss | None = None, l2: float = 0.0
    ) -> tuple[float, list[Any]]:
        """Loss (Python float) and its gradients (device arrays, parallel to
        ``parameters()``) on the batch ``X`` (n, n_inputs), ``Y`` labels (n,)
        or targets (n, n_outputs). ``l2`` adds ``l2 / (2 n) * sum(W**2)``.

        It runs in training mode, as a step of ``fit`` does: ``Dropout``
        layers draw a new mask each call, so two calls on one batch differ
        (``evaluate`` gives the loss in inference mode).
        """
        loss = self.loss if loss is None else get_loss(loss)
        l2 = check.check_nonnegative(l2, "l2")
        with self.backend.context():
            Xd, T = self._prepare(X, Y, loss)
            L, grads = self._loss_and_grad(Xd, T, loss, l2)
            return float(L), grads

    def predict_proba(self, X: Any) -> Any:
        """The loss's output function on the logits: softmax rows, sigmoids, or
        the raw outputs for mean squared error. On the model's device.
        """
        with self.backend.context():
            return self.loss.output(self.forward(X))

    def predict(self, X: Any) -> Any:
        """Class indices (n,) on the device: argmax, or p > 0.5 for one output."""
        xp = self.xp
        with self.backend.context():
            P = self.predict_proba(X)
            if P.shape[1] == 1:
                return xp.astype(xp.reshape(P, (-1,)) > 0.5, xp.int64)
            return xp.argmax(P, axis=1)

    def evaluate(self, X: Any, y: Any, **kwargs: Any) -> tuple[float, float]:
        """(mean loss, accuracy) on ``X``, ``y``; see ``bpnet.evaluate``."""
        return evaluate(self, X, y, **kwargs)

    # --- copies, config -----------------------------------------------
    def get_config(self) -> dict:
        return {
            "layers": [layer.get_config() for layer in self.layers],
            "loss": type(self.loss).__name__,
            "dtype": self.dtype_name,
            "seed": self.seed,
        }

    @classmethod
    def from_config(
        cls, config: dict, device: Any = "cpu", dtype: Any = None
    ) -> Sequential:
        layers = [layer_from_config(c) for c in config["layers"]]
        return cls(
            layers,
            device=device,
            dtype=dtype or config.get("dtype", "float32"),
            seed=config.get("seed", 0),
            loss=config.get("loss"),
        )

    def to(self, device: Any, dtype: Any = None) -> Sequential:
        """A copy of this network on another device (and/or dtype)."""
        clone = Sequential.from_config(self.get_config(), device=device, dtype=dtype)
        clone.set_parameters([self.backend.to_numpy(p) for p in self.parameters()])
        return clone

    def __repr__(self) -> str:
        lines = [
            f"Sequential(device={self.backend.name!r}, dtype={self.dtype_name}, "
            f"loss={type(self.loss).__name__})"
        ]
        width = self.n_inputs
        for layer in self.layers:
            n = 0
            for p in layer.params:
                size = 1
                for s in p.shape:
                    size *= s
                n += size
            if isinstance(layer, Dense):
                width = layer.n_out
            lines.append(f"  {layer!r:<22} -> (n, {width:<5}) {n:>10,} params")
        lines.append(f"  total: {self.n_parameters:,} parameters")
        return "\n".join(lines)
