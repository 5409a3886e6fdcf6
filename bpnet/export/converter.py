"""skl2onnx converters for ``MLPClassifier`` and ``MLPRegressor``, so that a
scikit-learn pipeline holding one converts with ``skl2onnx.to_onnx`` as one
holding scikit-learn's own MLP does. The converter embeds the graph that
``export_onnx`` records from the estimator's own forward.

skl2onnx takes seconds to import, so it is never imported for this: the
converters are registered when skl2onnx is imported (now, if it already is).
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from typing import Any

MODULE = "skl2onnx"
ALIASES = {"MLPClassifier": "BpnetMLPClassifier", "MLPRegressor": "BpnetMLPRegressor"}


def register() -> None:
    """Register both converters with skl2onnx (which must be importable)."""
    from skl2onnx import update_registered_converter

    from bpnet.sklearn.classifier import MLPClassifier
    from bpnet.sklearn.regressor import MLPRegressor

    update_registered_converter(
        MLPClassifier,
        ALIASES["MLPClassifier"],
        _classifier_shapes,
        _convert,
        options={"zipmap": [True, False, "columns"]},
    )
    update_registered_converter(
        MLPRegressor, ALIASES["MLPRegressor"], _regressor_shapes, _convert
    )


def register_when_imported() -> None:
    """Register now if skl2onnx is imported, else right after its import."""
    if MODULE in sys.modules:
        _register_quietly()
    elif not any(isinstance(f, _AfterImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _AfterImport())


def _register_quietly() -> None:
    try:
        register()
    except ImportError:  # scikit-learn missing: no estimator to convert
        pass


class _AfterImport(importlib.abc.MetaPathFinder):
    """Finds nothing itself; wraps skl2onnx's loader so that the converters
    are registered once skl2onnx has run."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != MODULE:
            return None
        sys.meta_path.remove(self)  # one use; and find_spec below skips it
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.loader is not None:
            spec.loader = _RegisteringLoader(spec.loader)
        return spec


class _RegisteringLoader(importlib.abc.Loader):
    def __init__(self, loader: Any) -> None:
        self.loader = loader

    def create_module(self, spec: Any) -> Any:
        return self.loader.create_module(spec)

    def exec_module(self, module: Any) -> None:
        self.loader.exec_module(module)
        _register_quietly()

    def __getattr__(self, name: str) -> Any:  # get_resource_reader, get_data...
        return getattr(self.loader, name)


# --- shapes and conversion ------------------------------------------------------
def _float_type(operator: Any) -> Any:
    from skl2onnx.common.data_types import DoubleTensorType, FloatTensorType

    double = isinstance(operator.inputs[0].type, DoubleTensorType)
    return DoubleTensorType if double else FloatTensorType


def _classifier_shapes(operator: Any) -> None:
    from skl2onnx.common.data_types import Int64TensorType, StringTensorType

    from bpnet.export.heads import label_values

    model = operator.raw_operator
    n = operator.inputs[0].get_first_dimension()
    classes = label_values(model.classes_)
    if model._label_binarizer.y_type_.startswith("multilabel"):
        operator.outputs[0].type = Int64TensorType([n, len(classes)])
    elif classes.dtype.kind == "U":
        operator.outputs[0].type = StringTensorType([n])
    else:
        operator.outputs[0].type = Int64TensorType([n])
    operator.outputs[1].type = _float_type(operator)([n, len(classes)])


def _regressor_shapes(operator: Any) -> None:
    n = operator.inputs[0].get_first_dimension()
    width = operator.raw_operator.n_outputs_
    operator.outputs[0].type = _float_type(operator)([n, width])


def _convert(scope: Any, operator: Any, container: Any) -> None:
    """Embed the estimator's exported graph: its input is the operator's
    input, its outputs the operator's outputs, every other name made unique
    in ``scope``."""
    from onnx import helper

    from bpnet.export.onnx_graph import export_onnx

    double = _float_type(operator).__name__.startswith("Double")
    graph = export_onnx(
        operator.raw_operator,
        None,
        dtype="float64" if double else "float32",
        opset=container.target_opset,
    ).graph
    names = {graph.input[0].name: operator.inputs[0].full_name}
    for ours, theirs in zip(graph.output, operator.outputs):
        names[ours.name] = theirs.full_name

    def rename(name: str) -> str:
        if name and name not in names:
            names[name] = scope.get_unique_variable_name(name)
        return names.get(name, name)

    for tensor in graph.initializer:
        copy = type(tensor)()
        copy.CopyFrom(tensor)
        copy.name = rename(tensor.name)
        container.initializers.append(copy)
    for node in graph.node:
        container.add_node(
            node.op_type,
            [rename(i) for i in node.input],
            [rename(o) for o in node.output],
            op_domain=node.domain,
            name=scope.get_unique_operator_name(f"Bpnet{node.op_type}"),
            **{a.name: helper.get_attribute_value(a) for a in node.attribute},
        )
