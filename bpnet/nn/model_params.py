"""``Sequential``'s arrays: its parameters and buffers, by position and by
name, how new values are checked and handed to their layers, and the flat
float64 vector scipy works on."""

from __future__ import annotations

from typing import Any

from bpnet.nn import validation as check


class ParametersMixin:
    """The parameters and buffers of a ``Sequential``'s layers.

    Each layer owns its arrays by name; these methods list them layer after
    layer (the order of ``parameters()``) and set them, checked, on the
    model's device and in its dtype.
    """

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
