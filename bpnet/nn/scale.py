"""A learnable per-feature scale: the smallest layer that learns something
other than an affine map's W and b."""

from __future__ import annotations

from typing import Any

from bpnet.nn.layers import LAYERS, Layer


@LAYERS.register()
class Scale(Layer):
    """``y = x * scale``, one learnable factor per feature.

    ``scale`` has shape (n_features,), starts at ones and takes no l2 penalty
    (it is a scale, as BatchNorm's gamma: decay would pull it to zero, not to
    the identity). Backward: ``dscale = sum(dy * x, axis=0)``, ``dx = dy * scale``.
    """

    param_names = ("scale",)
    fresh_grads = True
    init_transparent = True
    flat_only = True

    def parameter_shapes(self, n_in: int) -> dict[str, tuple[int, ...]]:
        return {"scale": (n_in,)}

    def build(self, n_in: int, model: Any) -> int:
        super().build(n_in, model)
        with model.backend.context():
            self.scale = self.xp.ones(
                (n_in,), dtype=model.dtype, device=model.backend.device
            )
        self.grads = {}
        return n_in

    def forward(self, x: Any, training: bool = False) -> Any:
        if self.xp is None:  # used on its own
            self.build_alone(x)
        self.x = x
        return x * self.scale

    def backward(self, dy: Any, need_dx: bool = True) -> Any:
        self.grads = {"scale": self.xp.sum(dy * self.x, axis=0)}
        return dy * self.scale if need_dx else None
