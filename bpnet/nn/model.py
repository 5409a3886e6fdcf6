"""``Sequential``: a stack of layers, how it is built for an input width,
shown and pickled.

What it does is in the mixins it inherits, one idea each: its arrays
(``model_params.py``), the forward and backward passes and the loss
(``model_passes.py``), predictions (``model_predict.py``), and its config,
copies and rebuilding (``model_state.py``).
"""

from __future__ import annotations

import numbers
from typing import Any

from backends import HostRandom, get_backend
from bpnet.nn import validation as check
from bpnet.nn.initializers import get_initializer
from bpnet.nn.layers import Layer, input_gradients_needed
from bpnet.nn.losses import Loss, get_loss
from bpnet.nn.model_params import ParametersMixin
from bpnet.nn.model_passes import PassesMixin
from bpnet.nn.model_predict import PredictMixin
from bpnet.nn.model_state import StateMixin


class Sequential(ParametersMixin, PassesMixin, PredictMixin, StateMixin):
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

    # --- pickle: beside _unpickle_sequential, the dotted path pickles name --
    def __reduce__(self) -> tuple:
        """Pickled as host arrays and its config; unpickled onto the device
        it was on (by name: ``"cpu"``, ``"torch"``, ``"cuda:0"``...)."""
        self.check_rebuildable("pickle", loss=False)
        return (_unpickle_sequential, (self.backend.name, self._host_state()))

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
