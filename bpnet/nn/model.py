"""``Sequential``: a stack of layers, its forward and its backward pass."""

from __future__ import annotations

import numbers
from typing import Any

from backends import HostRandom, get_backend
from bpnet.nn import validation as check
from bpnet.nn.evaluation import evaluate
from bpnet.nn.initializers import get_initializer
from bpnet.nn.layers import (
    LAYERS,
    Layer,
    declared_shapes,
    input_gradients_needed,
    layer_from_config,
)
from bpnet.nn.losses import LOSSES, Loss, SoftmaxCrossEntropy, get_loss


class Sequential:
    """A feed-forward network with explicit backprop.

    ``fit`` (minibatch training, ``bpnet.fit``) is attached by ``bpnet.train``,
    which ``import bpnet`` loads: the core knows no fit loop.

    Parameters
    ----------
    layers : list of Layer
        Applied in order. A first layer that takes any width (``BatchNorm``,
        ``ReLU``, ...) needs ``n_in``, or the network is built at the first
        ``forward``/``fit``, with the width of the data it is given.
    device : str or Backend, default "cpu"
        Where the parameters live: ``"cpu"``, ``"cuda"``, ``"torch"``, ...
    dtype : {"float32", "float64"}, default "float32"
    seed : int or None, default 0
        Seeds the host generator that draws the initial weights (identical on
        every device) and the device generator for dropout masks.
    loss : str or Loss, default SoftmaxCrossEntropy()
        Used by ``predict_proba`` and as the default of ``loss_and_grad``.
    n_in : int, optional
        The input width; default: the first layer's (``Dense``'s ``n_in``).

    Every layer owns its parameters by name (``Layer.param_names``);
    ``parameters()`` lists them layer after layer, ``named_parameters()``
    with their names, and ``buffers()`` the state that is saved but not
    trained (BatchNorm's running statistics).

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
        n_in: int | None = None,
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
        first = layers[0].n_in
        if n_in is not None:
            if isinstance(n_in, bool) or not isinstance(n_in, numbers.Integral):
                raise TypeError(f"n_in: expected a positive integer, got {n_in!r}")
            if n_in <= 0 or (first is not None and n_in != first):
                raise ValueError(
                    "n_in: expected a positive integer"
                    + ("" if first is None else f" equal to {layers[0]!r}'s {first}")
                    + f", got {n_in}"
                )
        elif first is None and not any(layer.param_names for layer in layers):
            raise ValueError(
                f"layers: the first layer must be Dense (it fixes the input width), "
                f"or pass n_in; got {type(layers[0]).__name__} first, in a network "
                "with no parameters to learn"
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
        self.n_inputs: int | None = None
        self.n_outputs: int | None = None
        width = first if n_in is None else int(n_in)
        if width is not None:
            self._build(width)

    # --- structure ------------------------------------------------------
    def _build(self, width: int) -> None:
        n_in = width
        with self.backend.context():
            for i, layer in enumerate(self.layers):
                try:
                    layer.output_width(width)
                except ValueError as exc:
                    raise ValueError(f"layers[{i}]: {exc}") from None
                width = layer.build(width, self)
        if not isinstance(width, int):
            raise ValueError(
                f"layers[{len(self.layers) - 1}]: the network's last layer "
                f"{self.layers[-1]!r} gives samples of shape {width}; expected "
                "(n, outputs) rows: end with Flatten() (and a Dense)"
            )
        self.n_inputs, self.n_outputs = n_in, width
        self._need_dx = input_gradients_needed(self.layers)
        # (layer, name) of each entry of parameters(), and the positions there
        # of those that take the l2 penalty
        self._slots = [
            (layer, name) for layer in self.layers for name in layer.named_parameters()
        ]
        self._decayed = [
            (k, layer, name)
            for k, (layer, name) in enumerate(self._slots)
            if name in layer.decay_names
        ]
        self._buffer_slots = [
            (layer, name) for layer in self.layers for name in layer.buffer_names
        ]
        self._learning = [layer for layer in self.layers if layer.named_parameters()]

    def _build_for(self, X: Any) -> None:
        """Build with the width of ``X`` (the first forward or fit)."""
        shape = getattr(X, "shape", None)
        if shape is None:
            shape = check.to_host_or_device(X, self.backend, "X")[0].shape
        if len(shape) != 2 or not shape[1]:
            raise ValueError(
                "X: expected a 2-D array (n_samples, n_features), whose width the "
                f"network takes as its input width, got shape {tuple(shape)}"
            )
        self._build(int(shape[1]))

    def _check_built(self) -> None:
        if self.n_inputs is None:
            raise ValueError(
                f"n_in: the network's input width is not known yet (its first "
                f"layer, {self.layers[0]!r}, takes any width); pass "
                "Sequential(..., n_in=WIDTH), or call forward or fit first"
            )

    def default_initializer(self, layer: Layer) -> Any:
        """The initializer for ``layer``'s weights when it names none: He
        before a ReLU-family activation, Glorot otherwise."""
        i = next(k for k, other in enumerate(self.layers) if other is layer)
        for after in self.layers[i + 1 :]:
            if after.init_transparent:
                continue
            return get_initializer(getattr(after, "init_name", "glorot"))
        return get_initializer("glorot")

    @property
    def dtype_name(self) -> str:
        return self.backend.dtype_name(self.dtype)

    @property
    def device(self) -> Any:
        return self.backend.device

    def parameters(self) -> list[Any]:
        """Every layer's parameters, layer after layer, each layer's in the
        order it declares them: [W1, b1, W2, b2, ...] for a stack of Dense
        (W is (in, out)). On the model's device."""
        self._check_built()
        return [p for layer in self.layers for p in layer.named_parameters().values()]

    def named_parameters(self) -> dict[str, Any]:
        """``parameters()`` by name: ``"0.W"``, ``"0.b"``, ``"1.gamma"``, ...
        (the layer's index in ``layers``, then the parameter's name)."""
        self._check_built()
        return {
            f"{i}.{name}": p
            for i, layer in enumerate(self.layers)
            for name, p in layer.named_parameters().items()
        }

    def decay_mask(self) -> list[bool]:
        """Parallel to ``parameters()``: True for those the l2 penalty (and
        weight decay) applies to, the weights; False for biases and
        normalisation scales and shifts."""
        self._check_built()
        mask = [False] * len(self._slots)
        for k, _, _ in self._decayed:
            mask[k] = True
        return mask

    def buffers(self) -> list[Any]:
        """Every layer's non-trained state (running statistics), in layer
        order; saved and restored with the parameters, never trained."""
        self._check_built()
        return [getattr(layer, name) for layer, name in self._buffer_slots]

    def named_buffers(self) -> dict[str, Any]:
        """``buffers()`` by name, as ``named_parameters``."""
        self._check_built()
        return {
            f"{i}.{name}": b
            for i, layer in enumerate(self.layers)
            for name, b in layer.named_buffers().items()
        }

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        return [tuple(p.shape) for p in self.parameters()]

    @property
    def buffer_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(b.shape) for b in self.buffers()]

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
        """Replace every parameter; any array-likes of the right shapes, in
        the order of ``parameters()``.

        Host arrays are copied to the device; arrays already there are cast
        to the model's dtype. Each goes to the layer and parameter it stands
        for in ``parameters()``; nothing is replaced unless all fit.
        """
        converted = self._convert(params, "params", self.parameters(), self._slots)
        self._assign(self._owned(converted))

    def set_buffers(self, buffers: list[Any]) -> None:
        """Copy new values into every buffer (in the order of ``buffers()``),
        in place; checked as ``set_parameters`` checks parameters."""
        converted = self._convert(
            buffers, "buffers", self.buffers(), self._buffer_slots
        )
        for (layer, name), value in zip(self._buffer_slots, converted):
            layer.set_buffer(name, value)

    def _convert(
        self, arrays: Any, what: str, current: list[Any], slots: list
    ) -> list[Any]:
        """``arrays`` checked against the ``current`` ones (those of
        ``slots``' (layer, name)), on the device in the model's dtype."""

        def describe(i: int) -> str:
            layer, name = slots[i]
            j = next(k for k, other in enumerate(self.layers) if other is layer)
            return f"layers[{j}] {layer!r}'s {name!r}"

        shapes = [tuple(a.shape) for a in current]
        return check.check_arrays(
            arrays, what, shapes, self.backend, self.dtype, describe
        )

    def _assign(self, params: list[Any]) -> None:
        """Hand each array (owned, checked) to its layer, by name."""
        for (layer, name), p in zip(self._slots, params, strict=True):
            layer.set_parameter(name, p)

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
        need_dx = self._need_dx
        for i in range(len(self.layers) - 1, -1, -1):
            dZ = self.layers[i].backward(dZ, need_dx=need_dx[i])
        return [g for layer in self._learning for g in layer.named_gradients().values()]

    def _loss_and_grad(
        self,
        X: Any,
        T: Any,
        loss: Loss,
        l2: float = 0.0,
        training: bool = True,
        return_logits: bool = False,
        weights: Any = None,
    ) -> tuple[Any, ...]:
        """Device loss (0-D) and gradients (and the logits), with no host
        synchronization. ``weights``, a device column (n, 1) of sample
        weights, makes the loss their weighted mean and divides the L2 term by
        their sum instead of n (scikit-learn's ``sample_weight``).
        """
        Z, L, dZ, n = self._loss_head(X, T, loss, training, weights)
        grads = self._backward(dZ)
        if l2:
            L = L + self._l2_penalty(l2, n)
            scale = l2 / n
            for k, layer, name in self._decayed:
                grads[k] = grads[k] + scale * getattr(layer, name)
        return (L, grads, Z) if return_logits else (L, grads)

    def _loss_head(
        self, X: Any, T: Any, loss: Loss, training: bool, weights: Any
    ) -> tuple[Any, Any, Any, Any]:
        """Forward pass and loss: (logits, 0-D loss, its gradient for the
        logits, what L2 divides by: the rows, or their summed weight)."""
        Z = self._forward(X, training)
        if weights is None:
            kernel = self.backend.softmax_cross_entropy
            if kernel is not None and type(loss) is SoftmaxCrossEntropy:
                L, dZ = kernel(Z, T)  # the same numbers, the backend's way
            else:
                L, dZ = loss.loss_and_grad(Z, T)
            return Z, L, dZ, X.shape[0]
        n = self.xp.sum(weights)
        L, dZ = loss.loss_and_grad(Z, T, weights=weights / n)
        return Z, L, dZ, n

    def _loss(
        self, X: Any, T: Any, loss: Loss, l2: float = 0.0, training: bool = True
    ) -> Any:
        L = loss.forward(self._forward(X, training), T)
        return L + self._l2_penalty(l2, X.shape[0]) if l2 else L

    def _l2_penalty(self, l2: float, n: int) -> Any:
        """``l2 / (2 n)`` times the sum of squares of the decayed parameters."""
        xp = self.xp
        total = sum(
            xp.sum(getattr(layer, name) * getattr(layer, name))
            for _, layer, name in self._decayed
        )
        return total * (l2 / (2.0 * n))

    def _prepare(
        self, X: Any, Y: Any, loss: Loss, names: tuple[str, str] = ("X", "y")
    ) -> tuple[Any, Any]:
        if self.n_inputs is None:
            self._build_for(X)
        Xd = check.check_X(X, self.backend, self.dtype, self.n_inputs, names[0])
        T = check.check_targets(
            Y, self.backend, self.dtype, loss, Xd.shape[0], self.n_outputs, *names[::-1]
        )
        return Xd, T

    def forward(self, X: Any, training: bool = False) -> Any:
        """Raw outputs (logits) of shape (n, n_outputs), on the model's device."""
        with self.backend.context():
            if self.n_inputs is None:
                self._build_for(X)
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
        self,
        X: Any,
        Y: Any,
        loss: str | Loss | None = None,
        l2: float = 0.0,
        sample_weight: Any = None,
    ) -> tuple[float, list[Any]]:
        """Loss (Python float) and its gradients (device arrays, parallel to
        ``parameters()``) on the batch ``X`` (n, n_inputs), ``Y`` labels (n,)
        or targets (n, n_outputs). ``l2`` adds ``l2 / (2 n) * sum(W**2)``.

        ``sample_weight`` (n,) of weights >= 0 makes the loss their weighted
        mean, ``sum(w_i * loss_i) / sum(w)``, and puts ``sum(w)`` for n in the
        L2 term, as scikit-learn does; a weight of 0 drops a sample.

        It runs in training mode, as a step of ``fit`` does: ``Dropout``
        layers draw a new mask each call, so two calls on one batch differ
        (``evaluate`` gives the loss in inference mode).
        """
        loss = self.loss if loss is None else get_loss(loss)
        l2 = check.check_nonnegative(l2, "l2")
        with self.backend.context():
            Xd, T = self._prepare(X, Y, loss)
            w = None
            if sample_weight is not None:
                w = check.check_sample_weight(
                    sample_weight, self.backend, self.dtype, Xd.shape[0]
                )
            L, grads = self._loss_and_grad(Xd, T, loss, l2, weights=w)
            return float(L), grads

    def predict_proba(self, X: Any) -> Any:
        """The loss's output function on the logits: softmax rows, sigmoids, or
        the raw outputs for mean squared error. On the model's device.
        """
        with self.backend.context():
            return self.loss.output(self.forward(X))

    def predict(self, X: Any) -> Any:
        """Class indices (n,) on the device: argmax, or p > 0.5 for one output."""
        with self.backend.context():
            return self._labels(self.predict_proba(X))

    def _labels(self, P: Any) -> Any:
        """``predict`` from ``predict_proba``'s output. Which rule applies is
        the network's output width, not ``P.shape``: an array that records a
        graph (``export_onnx``) may not know its shape."""
        xp = self.xp
        if self.n_outputs == 1:
            return xp.astype(xp.reshape(P, (-1,)) > 0.5, xp.int64)
        return xp.argmax(P, axis=1)

    def evaluate(self, X: Any, y: Any, **kwargs: Any) -> tuple[float, float]:
        """(mean loss, accuracy) on ``X``, ``y``; see ``bpnet.evaluate``."""
        return evaluate(self, X, y, **kwargs)

    # --- copies, config -----------------------------------------------
    def get_config(self) -> dict:
        config = {
            "layers": [layer.get_config() for layer in self.layers],
            "loss": type(self.loss).__name__,
            "dtype": self.dtype_name,
            "seed": self.seed,
        }
        if self.layers[0].n_in is None:  # the first layer does not fix it
            config["n_in"] = self.n_inputs
        return config

    @classmethod
    def from_config(
        cls, config: dict, device: Any = "cpu", dtype: Any = None, loss: Any = None
    ) -> Sequential:
        """The network ``get_config`` describes, unbuilt or with fresh weights;
        ``loss`` (a name or a Loss object) stands in for the config's."""
        layers = [layer_from_config(c) for c in config["layers"]]
        return cls(
            layers,
            device=device,
            dtype=dtype or config.get("dtype", "float32"),
            seed=config.get("seed", 0),
            loss=config.get("loss") if loss is None else loss,
            n_in=config.get("n_in"),
        )

    def to(self, device: Any, dtype: Any = None) -> Sequential:
        """A copy of this network on another device (and/or dtype): its layers,
        loss, weights, buffers and batch-order generator (the dropout masks'
        generator goes on where the device is of the same kind)."""
        self.check_rebuildable("to", loss=False)
        return self._rebuilt(device, self._host_state(), dtype)

    # --- copies: copy.deepcopy and pickle --------------------------------
    def __deepcopy__(self, memo: dict) -> Sequential:
        """An independent network on the same device: the same layers, loss,
        parameters, buffers and random streams (array-library modules and
        device handles are not copied, they are looked up again)."""
        self.check_rebuildable("copy", loss=False)
        clone = self._rebuilt(self.backend, self._host_state())
        memo[id(self)] = clone
        return clone

    def __reduce__(self) -> tuple:
        """Pickled as host arrays and its config; unpickled onto the device
        it was on (by name: ``"cpu"``, ``"torch"``, ``"cuda:0"``...)."""
        self.check_rebuildable("pickle", loss=False)
        return (_unpickle_sequential, (self.backend.name, self._host_state()))

    def check_rebuildable(self, what: str = "save", loss: bool = True) -> None:
        """Refuse, naming the class and the cure, a network that a file or a
        copy could not rebuild from its config: a layer class (or, with
        ``loss``, a loss class) that is not registered, or a layer whose
        ``parameter_shapes``/``buffer_shapes`` do not give the arrays it
        holds. Files and copies rebuild each layer as
        ``LAYERS.from_config(layer.get_config())``, so ``get_config`` must
        return the constructor's arguments."""
        for i, layer in enumerate(self.layers):
            if LAYERS.name_of(layer) is None:
                raise ValueError(
                    f"{what}: layer {i} ({type(layer).__name__}) is not registered, "
                    "so it cannot be rebuilt from its config; decorate its class with "
                    "@bpnet.nn.layers.LAYERS.register() and import its module before "
                    "loading a file"
                )
        if loss and LOSSES.name_of(self.loss) is None:
            raise ValueError(
                f"{what}: the loss ({type(self.loss).__name__}) is not registered, so "
                "a file cannot name it; decorate its class with "
                "@bpnet.nn.losses.LOSSES.register() and import its module before "
                "loading a file"
            )
        if self.n_inputs is None:
            return
        fresh = [layer_from_config(layer.get_config()) for layer in self.layers]
        try:  # what a file's check (io.sequential) will ask of the rebuilt layers
            declared = declared_shapes(fresh, self.n_inputs)
        except ValueError as exc:
            raise ValueError(
                f"{what}: the layers rebuilt from their configs do not chain: {exc}"
            ) from None
        for i, (layer, (width, *shapes)) in enumerate(zip(self.layers, declared)):
            for kind, said, held in zip(
                ("parameter", "buffer"),
                shapes,
                (layer.named_parameters(), layer.named_buffers()),
            ):
                have = {k: tuple(v.shape) for k, v in held.items()}
                if {k: tuple(v) for k, v in said.items()} != have:
                    raise ValueError(
                        f"{what}: layer {i} ({type(layer).__name__}) holds the "
                        f"{kind}s {have}, but its config rebuilds one whose "
                        f"{kind}_shapes({width}) gives {dict(said)}; define "
                        f"{kind}_shapes (and get_config with the constructor's "
                        "arguments)"
                    )

    def _host_state(self) -> dict:
        import copy

        to_host = self.backend.to_numpy
        built = self.n_inputs is not None
        return {
            "config": self.get_config(),
            "dtype": self.dtype_name,
            "loss": copy.deepcopy(self.loss),
            "parameters": [to_host(p) for p in self.parameters()] if built else [],
            "buffers": [to_host(b) for b in self.buffers()] if built else [],
            "host_rng": copy.deepcopy(self.host_rng),
            "device_rng": self.device_rng.get_state(),  # dropout's masks
            # what a network not built yet will draw its weights with (an
            # initializer object too, which a config cannot name)
            "inits": []
            if built
            else [copy.deepcopy(getattr(la, "init", None)) for la in self.layers],
        }

    @classmethod
    def _rebuilt(cls, device: Any, state: dict, dtype: Any = None) -> Sequential:
        """The network ``_host_state`` describes, on ``device``; the dropout
        generator's state goes on where the device's kind wrote it."""
        clone = cls.from_config(
            state["config"],
            device=device,
            dtype=dtype or state["dtype"],
            loss=state["loss"],  # the object: a loss of the user's own too
        )
        if state["parameters"]:  # a network not built yet has none
            clone.set_parameters(state["parameters"])
            clone.set_buffers(state["buffers"])
        for layer, init in zip(clone.layers, state["inits"]):
            if init is not None:
                layer.init = init
        clone.host_rng = state["host_rng"]
        if clone.device_rng.takes_state(state["device_rng"]):
            clone.device_rng.set_state(state["device_rng"])
        return clone

    def __repr__(self) -> str:
        lines = [
            f"Sequential(device={self.backend.name!r}, dtype={self.dtype_name}, "
            f"loss={type(self.loss).__name__})"
        ]
        if self.n_inputs is None:
            lines += [f"  {layer!r}" for layer in self.layers]
            lines.append("  (built at the first forward or fit, for its data's width)")
            return "\n".join(lines)
        width = self.n_inputs
        for layer in self.layers:
            n = 0
            for p in layer.named_parameters().values():
                size = 1
                for s in p.shape:
                    size *= s
                n += size
            width = layer.output_width(width)
            shown = ", ".join(map(str, width)) if isinstance(width, tuple) else width
            lines.append(f"  {layer!r:<22} -> (n, {shown:<5}) {n:>10,} params")
        lines.append(f"  total: {self.n_parameters:,} parameters")
        return "\n".join(lines)


def _unpickle_sequential(device: str, state: dict) -> Sequential:
    return Sequential._rebuilt(device, state)
