"""``export_onnx``: a network's inference forward as an ONNX model.

The network is copied onto the ``ndonnx`` backend, whose arrays record the
operations done on them: its weights become constants, its input an argument.
Running the copy's own ``predict_proba`` (and the labels rule of ``predict``)
on that argument gives the graph. It is traced with a fixed batch size, twice
(2 and 3 rows); onnxscript's optimizer folds the shape checks that ndonnx
puts around reductions for zero-sized inputs, and where both traces give the
same graph the batch size took no part in it, and the batch dimension is made
dynamic. Otherwise the graph is traced again with a dynamic batch.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import json
import os
from collections.abc import Callable
from typing import Any

from bpnet._version import __version__
from bpnet.export.heads import ExportError, estimator_heads, sequential_heads, why
from bpnet.io.atomic import atomic_open, check_path
from bpnet.nn.model import Sequential

#: the fixed batch sizes of the two traces compared (see the module's text)
TRACE_BATCHES = (2, 3)
#: the opset ndonnx writes; ``opset=`` converts to another with onnx's converter
NATIVE_OPSET = 21
MIN_OPSET = 13
BATCH = "N"


Heads = Callable[[Sequential, Any], dict[str, Any]]


def export_onnx(
    model: Any,
    path: str | os.PathLike[str] | None,
    *,
    dtype: str | None = None,
    opset: int | None = None,
    metadata: dict | None = None,
) -> Any:
    """Write ``model``'s prediction as an ONNX model; return the ``ModelProto``.

    Parameters
    ----------
    model : Sequential, MLPClassifier or MLPRegressor
        A built network, or a fitted estimator.
    path : str or os.PathLike or None
        The ``.onnx`` file to write (atomically: on any error nothing is
        written); None writes nothing.
    dtype : {"float32", "float64"}, optional
        The precision of the input and the arithmetic; default: the model's.
    opset : int, optional
        The ONNX opset of the default domain (13 up to onnx's newest); default
        21, the one the graph is recorded in (others go through onnx's
        version converter: dense networks and estimators convert down to 14,
        convolutional ones to 20).
    metadata : dict, optional
        JSON-ready; stored in the model's ``metadata_props`` under ``"bpnet"``.

    Returns
    -------
    onnx.ModelProto
        Input ``X`` (float, [N, n_features], N dynamic). A Sequential gives
        ``label`` (int64 [N], ``predict``) and ``probabilities`` ([N,
        n_outputs], ``predict_proba``). An MLPClassifier gives what
        skl2onnx gives for scikit-learn's with ``zipmap=False``: ``label``
        ([N], ``classes_``' values, int64 or string) and ``probabilities``
        ([N, n_classes], two columns for a binary problem); an MLPRegressor
        gives ``variable`` ([N, n_outputs]).

    Raises
    ------
    ExportError
        A layer (or the loss's output) cannot be recorded on ndonnx arrays;
        the message names it and says why.
    ModuleNotFoundError
        ndonnx, onnx or onnxscript is missing (``pip install
        'bpnet-arrayapi[onnx]'``).
    """
    net, heads = _heads_for(model)
    dtype = _check_dtype(dtype, net)
    opset = _check_opset(opset)
    target = None if path is None else _check_target(path)
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise TypeError(
                f"metadata: expected a dict of JSON values, got "
                f"{type(metadata).__name__}"
            )
        text = json.dumps(metadata)  # refused here, before any work
    onnx = _require()
    proto = _graph(net, heads, dtype)
    if opset != NATIVE_OPSET:
        proto = _convert(proto, opset)
    proto.producer_name = "bpnet"
    proto.producer_version = __version__
    proto.graph.name = type(model).__name__
    if metadata is not None:
        onnx.helper.set_model_props(proto, {"bpnet": text})
    onnx.checker.check_model(proto)
    if target is not None:
        try:
            with atomic_open(target) as fh:
                fh.write(proto.SerializeToString())
        except OSError as exc:
            raise type(exc)(
                exc.errno, f"path: cannot write {str(target)!r}: {exc.strerror}"
            ) from exc
    return proto


# --- what is exported ---------------------------------------------------------
def _heads_for(model: Any) -> tuple[Sequential, Heads]:
    """The network and the function that gives the graph's outputs."""
    if isinstance(model, Sequential):
        if model.n_inputs is None:
            raise ValueError(
                "model: the network is not built yet (its input width is unknown); "
                "pass Sequential(..., n_in=WIDTH) or call forward or fit first"
            )
        return model, sequential_heads
    kind = type(model).__name__
    if kind in ("MLPClassifier", "MLPRegressor"):
        return estimator_heads(model)
    raise TypeError(
        f"model: expected a bpnet Sequential, MLPClassifier or MLPRegressor, got {kind}"
    )


# --- the arguments ------------------------------------------------------------
def _check_dtype(dtype: Any, net: Sequential) -> str:
    if dtype is None:
        return net.dtype_name
    name = dtype if isinstance(dtype, str) else getattr(dtype, "__name__", None)
    if name not in ("float32", "float64"):
        raise ValueError(f"dtype: expected 'float32' or 'float64', got {dtype!r}")
    return name


def _check_opset(opset: Any) -> int:
    if opset is None:
        return NATIVE_OPSET
    import onnx

    newest = onnx.defs.onnx_opset_version()
    if (
        isinstance(opset, bool)
        or not isinstance(opset, int)
        or not (MIN_OPSET <= opset <= newest)
    ):
        raise ValueError(
            f"opset: expected an integer from {MIN_OPSET} to {newest}, got {opset!r}"
        )
    return opset


def _check_target(path: Any) -> Any:
    target = check_path(path)
    if target.is_dir():
        raise IsADirectoryError(
            f"path: {str(target)!r} is a folder; expected the name of the .onnx "
            "file to write, such as model.onnx"
        )
    if not target.parent.is_dir():
        raise FileNotFoundError(
            f"path: the folder {str(target.parent)!r} does not exist; create it first"
        )
    if not os.access(target.parent, os.W_OK):
        raise PermissionError(
            f"path: the folder {str(target.parent)!r} is not writable; "
            f"cannot write {target.name}"
        )
    return target


def _require() -> Any:
    """onnx, after checking that ndonnx and onnxscript are there too."""
    for name in ("ndonnx", "onnx", "onnxscript"):
        try:
            __import__(name)
        except ModuleNotFoundError as exc:
            raise ModuleNotFoundError(
                f"export_onnx needs {name}; install the onnx extra: "
                "pip install 'bpnet-arrayapi[onnx]'",
                name=name,
            ) from exc
    import onnx

    return onnx


# --- tracing --------------------------------------------------------------------
def _graph(net: Sequential, heads: Heads, dtype: str) -> Any:
    with _constants_by_reference():
        traced = tracing_copy(net, dtype)
        graphs = [_optimized(_trace(traced, heads, b)) for b in TRACE_BATCHES]
        same = [_normalized(g, b) for g, b in zip(graphs, TRACE_BATCHES)]
        if same[0].SerializeToString() == same[1].SerializeToString():
            return same[0]
        # the batch size entered the graph as a number: record it as unknown
        return _normalized(_optimized(_trace(traced, heads, None)), None)


def _constants_by_reference() -> Any:
    """Work out the values of constant subexpressions (which ndonnx makes
    for its shape guards) with onnx's reference evaluator rather than a new
    onnxruntime session each: the same values, the trace three times faster."""
    try:
        from spox._future import ValuePropBackend, value_prop_backend
    except ImportError:  # another spox: its default
        return contextlib.nullcontext()
    return value_prop_backend(ValuePropBackend.REFERENCE)


def tracing_copy(net: Sequential, dtype: str) -> Sequential:
    """``net`` on the ndonnx backend: copies of its layers, built there, with
    its parameters and buffers as constants. A layer's ``build`` or
    ``forward`` that fails there raises an ExportError that names it."""
    from backends import get_backend

    layers = []
    for i, layer in enumerate(net.layers):
        clone = copy.copy(layer)  # the layer's settings; its arrays are rebuilt
        if getattr(clone, "init", None) is not None:
            # the weights drawn in build are replaced: draw them the default
            # way (an estimator's initializer hands out its draws only once)
            clone.init = None
        for method in ("build", "forward"):
            setattr(clone, method, _naming(getattr(clone, method), i, layer, method))
        layers.append(clone)
    traced = Sequential(
        layers,
        device=get_backend("ndonnx"),
        dtype=dtype,
        seed=0,
        loss=net.loss,
        n_in=net.n_inputs,
    )
    to_host = net.backend.to_numpy
    traced.set_parameters([to_host(p) for p in net.parameters()])
    traced.set_buffers([to_host(b) for b in net.buffers()])
    return traced


def _naming(method: Callable, i: int, layer: Any, what: str) -> Callable:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        try:
            return method(*args, **kwargs)
        except ExportError:
            raise
        except Exception as exc:
            raise ExportError(
                f"layers[{i}] ({layer!r}) cannot be recorded as ONNX: its {what} "
                f"failed on ndonnx arrays: {why(exc)}"
            ) from exc

    return call


def _trace(traced: Sequential, heads: Heads, batch: int | None) -> Any:
    import ndonnx as ndx

    X = ndx.argument(
        shape=(BATCH if batch is None else batch, traced.n_inputs),
        dtype=getattr(ndx, traced.dtype_name),
    )
    outputs = heads(traced, X)
    return ndx.build({"X": X}, outputs)


def _optimized(proto: Any) -> Any:
    import onnxscript.optimizer

    return onnxscript.optimizer.optimize(proto)


def _normalized(proto: Any, batch: int | None) -> Any:
    """The graph with a dynamic batch dimension ``N`` in its input and
    outputs, no intermediate shapes (they held the traced batch size) and no
    ndonnx metadata."""
    for value in [*proto.graph.input, *proto.graph.output]:
        dims = value.type.tensor_type.shape.dim
        if dims and (batch is None or dims[0].dim_value == batch):
            dims[0].Clear()
            dims[0].dim_param = BATCH
    del proto.graph.value_info[:]
    del proto.metadata_props[:]
    return proto


#: the first opset whose ReduceMax and ReduceMin take booleans
BOOL_REDUCE_OPSET = 20


def _reduce_booleans_as_integers(proto: Any) -> Any:
    """The graph with each ReduceMax or ReduceMin of a boolean tensor (ndonnx
    writes one in ``argmax``'s NaN rule) done on 0/1 integers instead, cast
    back to booleans: the same values, in operators every opset from 13 has
    (booleans enter ReduceMax and ReduceMin in opset 20)."""
    import onnx
    from onnx import TensorProto, helper

    inferred = onnx.shape_inference.infer_shapes(proto)
    types = {
        v.name: v.type.tensor_type.elem_type
        for v in (*inferred.graph.input, *inferred.graph.value_info)
    }
    nodes = []
    for i, node in enumerate(proto.graph.node):
        if node.op_type not in ("ReduceMax", "ReduceMin") or (
            types.get(node.input[0]) != TensorProto.BOOL
        ):
            nodes.append(node)
            continue
        as_int, reduced = f"_bool_reduce{i}_in", f"_bool_reduce{i}_out"
        nodes.append(
            helper.make_node("Cast", [node.input[0]], [as_int], to=TensorProto.INT32)
        )
        inner = onnx.NodeProto()
        inner.CopyFrom(node)
        inner.input[0] = as_int
        inner.output[0] = reduced
        nodes.append(inner)
        nodes.append(
            helper.make_node("Cast", [reduced], [node.output[0]], to=TensorProto.BOOL)
        )
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    return proto


#: the first opset whose Cast has the ``saturate`` attribute (float8 only)
SATURATE_OPSET = 19
#: the first opset whose reductions (but ReduceSum, from 13) take their axes
#: as an input and have ``noop_with_empty_axes``
AXES_INPUT_OPSET = 18


def _drop_attribute(
    proto: Any, name: str, ops: Callable[[str], bool], value: int | None = None
) -> None:
    """Remove the attribute ``name`` (only where it holds ``value``, when
    given) from the nodes whose op type ``ops`` accepts: the converter keeps
    attributes of the newer opset that the older one does not have."""
    for node in proto.graph.node:
        if ops(node.op_type):
            kept = [
                a
                for a in node.attribute
                if not (a.name == name and (value is None or a.i == value))
            ]
            del node.attribute[:]
            node.attribute.extend(kept)


def _convert(proto: Any, opset: int) -> Any:
    """The graph in ``opset``, or an ``ExportError`` that names the lowest
    opset this graph does convert to."""
    try:
        return _converted(proto, opset)
    except Exception as exc:
        lowest = next(
            (o for o in range(opset + 1, NATIVE_OPSET) if _converts(proto, o)),
            NATIVE_OPSET,
        )
        reason = why(exc)
        reason = reason if len(reason) <= 160 else reason[:157] + "..."
        raise ExportError(
            f"opset: this network's graph (recorded in opset {NATIVE_OPSET}) does "
            f"not convert to opset {opset}; the lowest it converts to is {lowest} "
            f"(onnx's converter: {reason})"
        ) from exc


def _converted(proto: Any, opset: int) -> Any:
    import onnx
    from onnx import version_converter

    if opset < BOOL_REDUCE_OPSET:
        proto = _reduce_booleans_as_integers(copy.deepcopy(proto))
    converted = version_converter.convert_version(proto, opset)
    if opset < SATURATE_OPSET:
        # Cast's saturate speaks of float8 targets only, which a bpnet graph
        # never casts to: its value changes nothing here
        _drop_attribute(converted, "saturate", lambda op: op == "Cast")
    if opset < AXES_INPUT_OPSET:
        # the converter moves the reductions' axes to an attribute but keeps
        # noop_with_empty_axes=0, the default they had no name for
        _drop_attribute(
            converted,
            "noop_with_empty_axes",
            lambda op: op.startswith("Reduce") and op != "ReduceSum",
            value=0,
        )
    # the converter leaves some nodes as the newer opset wrote them
    onnx.checker.check_model(converted)
    return converted


def _converts(proto: Any, opset: int) -> bool:
    try:
        _converted(proto, opset)
    except Exception:
        return False
    return True
