"""The ``Layer`` base class: what every layer declares (its named parameters
and buffers, its config) and the contract ``Sequential`` relies on (build,
forward, backward filling ``grads`` by name). ``bpnet.nn.layers`` holds the
registry of layers and the layers themselves; a layer used on its own builds
itself for its input (``build_alone``)."""

from __future__ import annotations

import functools
from typing import Any

from backends import Backend, HostRandom, backend_of
from bpnet.nn.initializers import get_initializer
from bpnet.nn.mutation import writer


class Layer:
    """Base class of every layer; a layer owns its parameters, by name.

    ``forward(x, training)`` returns the output and keeps what ``backward``
    needs; ``backward(dy, need_dx)`` returns the input's gradient and fills
    ``grads``. A layer that learns declares its arrays as class attributes,
    creates them in ``build`` as attributes of itself (``self.W``), and gives
    their shapes from the input width alone (``parameter_shapes``,
    ``buffer_shapes``, ``output_width``), so a model file's config is
    checked without building anything.

    Attributes
    ----------
    param_names : tuple of str
        The trainable arrays, in order: ``Sequential.parameters()`` lists
        every layer's, layer after layer, in this order.
    decay_names : frozenset of str
        Those of ``param_names`` that take the L2 penalty (weights); biases
        and normalisation scales and shifts do not.
    buffer_names : tuple of str
        State that is not trained (running statistics): saved and restored
        with the parameters, never seen by an optimizer. The layer updates a
        buffer in place, so a captured CUDA graph keeps writing that array.
    grads : dict of str to array
        Filled by ``backward``: the gradient of each of ``param_names``.
    fresh_grads : bool
        True when ``backward`` hands out new gradient arrays every call,
        which an optimizer may then use as scratch space. It counts only when
        declared by the class that defines ``backward`` (a subclass with its
        own ``backward`` says so again): see ``hands_out_fresh_grads``.
    grad_out : dict of str to array, or None
        Where ``backward`` should write the gradients instead of new arrays
        (a flat buffer's views, for data-parallel training). Honoured only by
        layers that declare ``writes_grad_out`` on the class that defines
        ``backward`` (see ``writes_grad_out``); others ignore it.
    n_in : int or None
        The input width the layer requires, or None when it takes any.
    init_transparent : bool
        True when the layer may sit between a Dense and its activation
        without changing which initializer suits the Dense (Dropout,
        BatchNorm, Scale).
    flat_only : bool
        True when the layer takes (n, features) rows only (Dense, BatchNorm,
        Scale); False when it takes samples of any shape. A sample's shape is
        an int (its features) or, after ``Reshape`` or a convolution, a tuple
        such as (channels, height, width): the "width" the shape methods
        receive and give.

    A layer may define ``backward_sgd(dy, need_dx, lr, decay)``, backward and
    a plain SGD step in one (Dense does; see ``folds_sgd``, ``train/fused.py``).

    Notes
    -----
    A layer without ``param_names`` may instead assign its arrays to
    ``self.params`` in ``build`` (and their gradients, parallel, as a list
    to ``self.grads``): they are then named ``"0"``, ``"1"``, ..., take no
    decay, and ``set_parameter`` writes into them in place (where the array
    library allows it, else replaces them: ``bpnet.nn.mutation``).
    """

    param_names: tuple[str, ...] = ()
    decay_names: frozenset[str] = frozenset()
    buffer_names: tuple[str, ...] = ()
    fresh_grads = False
    writes_grad_out = False
    grad_out: dict[str, Any] | None = None
    n_in: int | None = None
    init_transparent = False
    flat_only = False

    #: the sample shape ``build_alone`` built the layer for, else None
    _alone_width: Any = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        # A layer called on its own in the wrong order, or on another width
        # than it was built for, says so instead of failing deep in its
        # array library; the check runs only once the call has failed.
        super().__init_subclass__(**kwargs)
        for name, guard in (
            ("forward", _explain_forward),
            ("backward", _explain_backward),
            ("backward_sgd", _explain_backward),
        ):
            fn = cls.__dict__.get(name)
            if callable(fn) and not getattr(fn, "_explained", False):
                setattr(cls, name, guard(fn))

    def __init__(self) -> None:
        self._params: list[Any] = []
        self.grads: Any = {}
        self.xp: Any = None

    @property
    def params(self) -> list[Any]:
        """The parameter arrays in declared order (``named_parameters()``'s
        values); a layer without ``param_names`` may assign this list."""
        if self.param_names:
            return [getattr(self, name) for name in self.param_names]
        return self._params

    @params.setter
    def params(self, arrays: list[Any]) -> None:
        if self.param_names:
            raise AttributeError(
                f"params: {type(self).__name__} declares param_names "
                f"{list(self.param_names)}; set each with set_parameter(name, array)"
            )
        self._params = list(arrays)

    def build(self, n_in: int, model: Any) -> int:
        """Bind to the model's namespace, create the arrays; return the
        output width."""
        self.xp = model.backend.xp
        return self.output_width(n_in)

    def build_alone(self, x: Any) -> None:
        """Build for the input ``x`` when the layer is used on its own, outside
        a ``Sequential``: on ``x``'s library and device, parameters in ``x``'s
        dtype (float32 for an integer input), drawn as a one-layer
        ``Sequential`` with its default seed draws them. Each layer's
        ``forward`` calls it while the layer is unbuilt.

        Raises
        ------
        TypeError
            ``x`` is not an array of a library bpnet has a backend for.
        ValueError
            The layer takes another width than ``x``'s last axis.
        """
        be = backend_of(x, "x")
        shape = tuple(x.shape)
        width = _sample_width(x)
        if self.n_in is not None and width != self.n_in:
            raise ValueError(
                f"x: {self!r} takes {self.n_in} features, got an input of shape {shape}"
            )
        dtype = x.dtype if be.xp.isdtype(x.dtype, "real floating") else "float32"
        with be.context():
            self.build(width, _Alone(be, be.dtype(dtype)))
        self._alone_width = width

    def forward(self, x: Any, training: bool = False) -> Any:
        raise NotImplementedError

    def backward(self, dy: Any, need_dx: bool = True) -> Any:
        raise NotImplementedError

    # --- parameters and buffers, by name ------------------------------------
    def _names(self) -> tuple[str, ...]:
        if self.param_names:
            return self.param_names
        return tuple(str(i) for i in range(len(self._params)))

    def named_parameters(self) -> dict[str, Any]:
        """The parameters by name.

        Returns
        -------
        dict of str to array
            In declared order, on the model's device: ``{"W": W, "b": b}``
            for Dense, W of shape (n_in, n_out) and b of shape (n_out,).
        """
        if not self.param_names:
            return {str(i): p for i, p in enumerate(self._params)}
        return {name: getattr(self, name) for name in self.param_names}

    def named_gradients(self) -> dict[str, Any]:
        """The gradients of the last ``backward``, with the keys (and shapes)
        of ``named_parameters()``."""
        grads = self.grads
        if isinstance(grads, dict):
            return {name: grads.get(name) for name in self._names()}
        return {str(i): g for i, g in enumerate(grads)}

    def named_buffers(self) -> dict[str, Any]:
        """The non-trained state by name, in declared order (e.g.
        BatchNorm's ``running_mean`` and ``running_var``, each (n_in,))."""
        return {name: getattr(self, name) for name in self.buffer_names}

    def set_parameter(self, name: str, value: Any) -> None:
        """Replace one parameter.

        Parameters
        ----------
        name : str
            One of the layer's parameter names.
        value : array
            On the model's device, of the parameter's shape and dtype
            (``Sequential.set_parameters`` checks and copies); the layer owns
            it from now on. A layer that derives state from a parameter
            overrides this to keep it in step.
        """
        names = self._names()
        if name not in names:
            raise KeyError(
                f"name: {self!r} has the parameters {list(names)}, got {name!r}"
            )
        if self.param_names:
            setattr(self, name, value)
        else:
            old = self._params[int(name)]
            self._params[int(name)] = writer(old).set(old, value)

    def set_buffer(self, name: str, value: Any) -> None:
        """Copy ``value`` into the buffer ``name``, in place where the array
        library allows it (a captured graph goes on reading the same array),
        else as a new array in its place (``bpnet.nn.mutation``).

        Parameters
        ----------
        name : str
            One of ``buffer_names``.
        value : array
            On the model's device, of the buffer's shape.
        """
        if name not in self.buffer_names:
            raise KeyError(
                f"name: {self!r} has the buffers {list(self.buffer_names)}, "
                f"got {name!r}"
            )
        old = getattr(self, name)
        setattr(self, name, writer(old).set(old, value))

    # --- shapes from the input width alone ----------------------------------
    def output_width(self, n_in: int) -> int:
        """The output width for ``n_in`` input features.

        Raises
        ------
        ValueError
            The layer cannot take ``n_in`` features (a Dense of another n_in).
        """
        if self.flat_only and isinstance(n_in, tuple):
            raise ValueError(
                f"{self!r} takes (n, features) rows, but receives samples of shape "
                f"{n_in} from the layer before it; put Flatten() before it"
            )
        if self.n_in is not None and n_in != self.n_in:
            raise ValueError(
                f"{self!r} receives {n_in} features from the layer before it: "
                "the layers do not chain (the widths must chain)"
            )
        return n_in

    def parameter_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        """Name -> shape of each parameter for ``n_in`` input features."""
        return {}

    def buffer_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        """Name -> shape of each buffer for ``n_in`` input features."""
        return {}

    def get_config(self) -> dict:
        return {"type": type(self).__name__}

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _sample_width(x: Any) -> Any:
    """A row's width, or an image's (C, H, W) for the image layers."""
    shape = tuple(getattr(x, "shape", ()))
    return tuple(shape[1:]) if len(shape) > 2 else (shape[-1] if shape else 1)


def _explain_forward(fn: Any) -> Any:
    """``forward``, which on failure says when the layer, built on its own for
    one sample shape, was given another."""

    @functools.wraps(fn)
    def forward(self: Layer, x: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, x, *args, **kwargs)
        except Exception as exc:
            built = self._alone_width
            if built is not None and _sample_width(x) != built:
                what = (
                    f"shape {built}"
                    if isinstance(built, tuple)
                    else f"{built} features"
                )
                raise ValueError(
                    f"x: {self!r} was built on its first forward for samples of "
                    f"{what}, got an input of shape {tuple(x.shape)}; "
                    "a new layer takes another width"
                ) from exc
            raise

    forward._explained = True
    return forward


def _explain_backward(fn: Any) -> Any:
    """``backward`` (or ``backward_sgd``), which on failure says when it ran
    before any ``forward``, whose kept arrays it needs."""

    @functools.wraps(fn)
    def backward(self: Layer, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(self, *args, **kwargs)
        except AttributeError as exc:
            if self.xp is None:
                why = "it is not built yet"
            elif getattr(exc, "obj", None) is self:
                why = f"it has no {exc.name!r} yet, which forward keeps"
            elif getattr(exc, "obj", False) is None:  # a cache forward fills
                why = "it holds no forward's arrays yet"
            else:
                raise
            raise RuntimeError(
                f"{self!r}.{fn.__name__}: call forward first ({why})"
            ) from None

    backward._explained = True
    return backward


class _Alone:
    """What ``Layer.build`` reads from its network, for a layer built on its
    own: the input's backend and dtype, and the generators and initializer a
    one-layer ``Sequential(seed=0)`` would give it (the same numbers)."""

    def __init__(self, backend: Backend, dtype: Any, seed: int = 0) -> None:
        self.backend, self.dtype = backend, dtype
        self.host_rng = HostRandom(seed)
        self.device_rng = backend.random(seed + 1)

    def default_initializer(self, layer: Layer) -> Any:
        return get_initializer("glorot")  # no activation after it


def _declared_by_backward(layer: Layer, flag: str) -> bool:
    """``flag`` as declared by the class that defines ``layer.backward`` (a
    subclass with its own backward does not inherit it)."""
    for cls in type(layer).__mro__:
        if "backward" in cls.__dict__:
            return bool(cls.__dict__.get(flag, False))
    return False


def hands_out_fresh_grads(layer: Layer) -> bool:
    """Whether ``layer.backward`` makes new gradient arrays each call."""
    return _declared_by_backward(layer, "fresh_grads")


def writes_grad_out(layer: Layer) -> bool:
    """Whether ``layer.backward`` writes its gradients into ``grad_out``."""
    return _declared_by_backward(layer, "writes_grad_out")


def folds_sgd(layer: Layer) -> bool:
    """Whether ``layer`` steps its parameters itself (``backward_sgd``),
    declared by the class that defines its ``backward``."""
    return _declared_by_backward(layer, "backward_sgd")
