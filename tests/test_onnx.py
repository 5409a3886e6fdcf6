"""ONNX export: bpnet's own forward recorded on ndonnx arrays, run by
onnxruntime, gives what bpnet's NumPy prediction gives.
"""

import collections
import importlib.util
from typing import Any

import numpy as np
import pytest

import bpnet
from bpnet.nn.layers import Layer

for _name in ("ndonnx", "onnx", "onnxscript", "onnxruntime"):
    if importlib.util.find_spec(_name) is None:
        pytest.skip(
            f"{_name} is not installed (pip install 'bpnet-arrayapi[onnx]')",
            allow_module_level=True,
        )

import onnx  # noqa: E402
from _onnx_helpers import (  # noqa: E402
    assert_close,
    data_fixture,  # noqa: F401 (a fixture, found by pytest by name)
    run,
)

NETWORKS = {
    "relu-softmax": (
        lambda: [bpnet.Dense(6, 16), bpnet.ReLU(), bpnet.Dense(16, 3)],
        "softmax",
    ),
    "one-output-sigmoid": (
        lambda: [
            bpnet.Dense(6, 12),
            bpnet.Tanh(),
            bpnet.Dropout(0.3),
            bpnet.Dense(12, 1),
        ],
        "sigmoid",
    ),
    "leaky-scale-mse": (
        lambda: [
            bpnet.Dense(6, 8),
            bpnet.LeakyReLU(0.1),
            bpnet.Scale(),
            bpnet.Sigmoid(),
            bpnet.Dense(8, 2),
        ],
        "mse",
    ),
    "poisson": (
        lambda: [bpnet.Dense(6, 5), bpnet.Tanh(), bpnet.Dense(5, 1)],
        "poisson",
    ),
}


def _trained(layers: list, loss: str, dtype: str, data: tuple) -> bpnet.Sequential:
    X, y = data
    net = bpnet.Sequential(layers, loss=loss, dtype=dtype, seed=3)
    Y = {
        "softmax": y,
        "sigmoid": (y > 0).astype(np.float64),
        "mse": np.stack([X[:, 0], X[:, 1] * X[:, 2]], axis=1),
        "poisson": np.exp(0.3 * X[:, :1]),
    }[loss]
    net.fit(X, Y, epochs=2, batch_size=100, verbose=0)
    return net


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(NETWORKS))
def test_the_graph_predicts_what_bpnet_predicts(name, dtype, data, tmp_path):
    layers, loss = NETWORKS[name]
    net = _trained(layers(), loss, dtype, data)
    path = tmp_path / "net.onnx"
    bpnet.export_onnx(net, path)
    proto = onnx.load(path)
    onnx.checker.check_model(proto, full_check=True)
    X = data[0].astype(dtype)
    out = run(proto, X)
    P = net.backend.to_numpy(net.predict_proba(X))
    assert list(out) == ["label", "probabilities"]
    assert_close(out["probabilities"], P, dtype)
    np.testing.assert_array_equal(out["label"], net.backend.to_numpy(net.predict(X)))
    assert out["label"].dtype == np.int64


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_a_network_trained_with_batchnorm_exports_its_running_statistics(dtype, data):
    X, y = data
    net = bpnet.Sequential(
        [bpnet.Dense(6, 10), bpnet.BatchNorm(), bpnet.ReLU(), bpnet.Dense(10, 3)],
        dtype=dtype,
        seed=1,
    )
    net.fit(X, y, epochs=3, batch_size=50, verbose=0)
    mean = net.backend.to_numpy(net.layers[1].running_mean)
    assert np.abs(mean).max() > 0.01  # trained: not the zeros it starts with
    out = run(bpnet.export_onnx(net, None), X.astype(dtype))
    assert_close(out["probabilities"], net.predict_proba(X), dtype)
    np.testing.assert_array_equal(out["label"], net.predict(X))


def test_the_batch_is_dynamic_and_takes_one_row_and_none(data):
    net = _trained(NETWORKS["relu-softmax"][0](), "softmax", "float32", data)
    proto = bpnet.export_onnx(net, None)
    for value in [*proto.graph.input, *proto.graph.output]:
        assert value.type.tensor_type.shape.dim[0].dim_param == "N"
    X = data[0].astype(np.float32)
    one = run(proto, X[:1])
    assert one["probabilities"].shape == (1, 3) and one["label"].shape == (1,)
    assert_close(one["probabilities"], net.predict_proba(X[:1]), "float32")
    none = run(proto, X[:0])
    assert none["probabilities"].shape == (0, 3) and none["label"].shape == (0,)


def test_the_graph_has_no_branches_and_no_scatters(data):
    net = bpnet.Sequential(
        [bpnet.Dense(6, 10), bpnet.BatchNorm(), bpnet.ReLU(), bpnet.Dense(10, 3)]
    )
    ops = collections.Counter(
        n.op_type for n in bpnet.export_onnx(net, None).graph.node
    )
    assert ops["MatMul"] == 2
    assert not {"If", "Loop", "Scan"} & set(ops)
    assert not [op for op in ops if "Scatter" in op]


class HiddenWidth(bpnet.SigmoidCrossEntropy):
    """Sigmoid outputs whose width a graph recorded with an unknown batch does
    not know: sliced up to a width read from the graph's own shape."""

    def output(self, Z: Any) -> Any:
        P = super().output(Z)
        width = getattr(P, "dynamic_shape", P.shape)[1]  # an array when recorded
        return P[:, :width]


def test_predict_on_a_recorded_array_takes_the_rule_of_the_network_s_width(data):
    import ndonnx

    from bpnet.export.onnx_graph import tracing_copy

    X, y = data
    net = bpnet.Sequential(
        [bpnet.Dense(6, 5), bpnet.Tanh(), bpnet.Dense(5, 1)], loss=HiddenWidth()
    )
    net.fit(X, (y > 0).astype(np.float64), epochs=2, batch_size=100)
    traced = tracing_copy(net, "float32")
    arg = ndonnx.argument(shape=("N", 6), dtype=ndonnx.float32)
    labels = traced.predict(arg)
    assert traced.predict_proba(arg).shape == (None, None)  # width unknown
    out = run(ndonnx.build({"X": arg}, {"label": labels}), X.astype(np.float32))
    want = net.predict(X)
    assert 0 < want.sum() < len(want)  # both classes: argmax would give 0s
    np.testing.assert_array_equal(out["label"], want)


class Swish(Layer):
    """x * sigmoid(x): a layer written in a test, registered nowhere."""

    def forward(self, x: Any, training: bool = False) -> Any:
        self.x = x
        return x * bpnet.nn.functional.sigmoid(x)


class Host(Layer):
    """A layer that reads its input's values on the host."""

    def forward(self, x: Any, training: bool = False) -> Any:
        if float(self.xp.max(x)) > 1e6:
            raise ValueError("too large")
        return x


def test_a_layer_written_on_the_array_api_exports_with_no_code_of_its_own(data):
    net = bpnet.Sequential([bpnet.Dense(6, 7), Swish(), bpnet.Dense(7, 3)], seed=2)
    X = data[0].astype(np.float32)
    out = run(bpnet.export_onnx(net, None), X)
    assert_close(out["probabilities"], net.predict_proba(X), "float32")


def test_a_layer_that_cannot_be_recorded_is_named_and_nothing_is_written(tmp_path):
    net = bpnet.Sequential([bpnet.Dense(6, 7), bpnet.ReLU(), Host(), bpnet.Dense(7, 3)])
    path = tmp_path / "net.onnx"
    with pytest.raises(bpnet.ExportError, match=r"layers\[2\] \(Host\(\)\)") as info:
        bpnet.export_onnx(net, path)
    assert "\n" not in str(info.value)
    assert not path.exists() and not list(tmp_path.iterdir())


@pytest.mark.parametrize("opset", [14, 17, 18, 19, 21, 22])
@pytest.mark.parametrize("batchnorm", [False, True])
def test_opset(opset, batchnorm):
    norm = [bpnet.BatchNorm()] if batchnorm else []
    net = bpnet.Sequential([bpnet.Dense(6, 4), *norm, bpnet.ReLU(), bpnet.Dense(4, 3)])
    proto = bpnet.export_onnx(net, None, opset=opset)
    assert [o.version for o in proto.opset_import if o.domain == ""] == [opset]
    onnx.checker.check_model(proto, full_check=True)
    X = np.random.default_rng(1).standard_normal((20, 6)).astype(np.float32)
    got = run(proto, X)
    assert_close(got["probabilities"], net.predict_proba(X), "float32")
    np.testing.assert_array_equal(got["label"], net.predict(X))
    # argmax's NaN rule (a boolean ReduceMax, done on integers below opset 20)
    # gives the labels the recorded graph gives
    X[3, 2] = np.nan
    native = run(bpnet.export_onnx(net, None), X)["label"]
    np.testing.assert_array_equal(run(proto, X)["label"], native)


def test_an_opset_the_graph_cannot_go_down_to_is_one_error_naming_the_lowest():
    net = bpnet.Sequential([bpnet.Dense(6, 4), bpnet.ReLU(), bpnet.Dense(4, 3)])
    with pytest.raises(bpnet.ExportError, match="lowest it converts to is 14") as info:
        bpnet.export_onnx(net, None, opset=13)
    assert "\n" not in str(info.value) and len(str(info.value)) < 400
    conv = bpnet.Sequential(
        [
            bpnet.Reshape((1, 4, 4)),
            bpnet.Conv2D(2, 3),
            bpnet.Flatten(),
            bpnet.Dense(8, 3),
        ],
        n_in=16,
    )
    with pytest.raises(bpnet.ExportError, match="lowest it converts to is 20"):
        bpnet.export_onnx(conv, None, opset=19)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"dtype": "float16"}, "dtype: expected 'float32' or 'float64'"),
        ({"opset": 7}, "opset: expected an integer from 13"),
        ({"opset": "21"}, "opset: expected an integer"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    net = bpnet.Sequential([bpnet.Dense(6, 4), bpnet.Dense(4, 3)])
    with pytest.raises(ValueError, match=match):
        bpnet.export_onnx(net, None, **kwargs)


def test_what_is_not_a_model_or_not_built_is_refused(tmp_path):
    with pytest.raises(TypeError, match="model: expected a bpnet Sequential"):
        bpnet.export_onnx(object(), None)
    net = bpnet.Sequential([bpnet.ReLU(), bpnet.Dense(4, 3)])  # width unknown
    with pytest.raises(ValueError, match="not built yet"):
        bpnet.export_onnx(net, None)
    with pytest.raises(IsADirectoryError, match="is a folder"):
        bpnet.export_onnx(bpnet.Sequential([bpnet.Dense(2, 2)]), tmp_path)
