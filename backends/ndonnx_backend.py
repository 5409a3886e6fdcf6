"""ndonnx: arrays that build an ONNX graph instead of holding numbers.

bpnet's forward pass run on these arrays records itself as an ONNX model
(``bpnet.export_onnx``). The weights become constants of the graph; the
input is an argument with a dynamic batch dimension. Nothing here trains.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from backends._base import Backend


class NdonnxBackend(Backend):
    library = "ndonnx"

    def __init__(self) -> None:
        import ndonnx

        self.xp = ndonnx
        self.device = ndonnx.__array_namespace_info__().default_device()
        self.name = "ndonnx"

    def asarray(self, host: Any, dtype: Any = None) -> Any:
        dt = None if dtype is None else self.dtype(dtype)
        if not isinstance(host, self.xp.Array):
            host = np.asarray(host)
        return self.xp.asarray(host, dtype=dt)

    def to_numpy(self, array: Any) -> np.ndarray:
        # the values of constants only: an argument's are not known until run
        return array.unwrap_numpy()

    def matmul(self, a: Any, b: Any) -> Any:
        # ONNX's own MatMul: ndonnx's ``@`` wraps each product in an ``If``
        # that guards zero-sized operands (an old onnxruntime bug), which
        # costs a branch per layer at run time and seconds when tracing
        from spox.opset.ai.onnx.v21 import matmul

        return self.xp.asarray(matmul(a.unwrap_spox(), b.unwrap_spox()))

    def describe(self) -> str:
        import ndonnx

        return f"ndonnx {ndonnx.__version__} (builds an ONNX graph)"
