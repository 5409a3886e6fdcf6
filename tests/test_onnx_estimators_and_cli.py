"""ONNX export of the scikit-learn estimators, as skl2onnx exports scikit-learn's,
and bpnet-export then bpnet-predict on model.onnx.
"""

import importlib.util
import json
from typing import Any

import numpy as np
import pytest

import bpnet

for _name in ("ndonnx", "onnx", "onnxscript", "onnxruntime"):
    if importlib.util.find_spec(_name) is None:
        pytest.skip(
            f"{_name} is not installed (pip install 'bpnet-arrayapi[onnx]')",
            allow_module_level=True,
        )

import onnx  # noqa: E402
from _onnx_helpers import (  # noqa: E402
    ROWS,
    assert_close,
    run,
)

# --- scikit-learn's conventions -----------------------------------------------------
sklearn = pytest.importorskip("sklearn")
converge_quietly = pytest.mark.filterwarnings(
    "ignore::sklearn.exceptions.ConvergenceWarning"
)


@pytest.fixture(scope="module")
def estimator_data() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(5)
    X = rng.standard_normal((ROWS, 5)) * 3 + 1
    y = (X[:, 0] > 1).astype(np.int64) + (X[:, 1] > 2)
    return X, y


@converge_quietly
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("labels", ["binary", "three-strings", "three-ints"])
def test_a_classifier_exports_as_skl2onnx_exports_sklearn_s(
    labels, dtype, estimator_data
):
    X, y = estimator_data
    y = {
        "binary": np.where(y > 0, 7, -3),
        "three-strings": np.array(["cat", "dog", "emu"])[y],
        "three-ints": y + 10,
    }[labels]
    clf = bpnet.MLPClassifier((9,), max_iter=5, random_state=0, dtype=dtype)
    clf.fit(X.astype(dtype), y)
    proto = bpnet.export_onnx(clf, None)
    onnx.checker.check_model(proto, full_check=True)
    (inp,) = proto.graph.input
    assert inp.name == "X" and inp.type.tensor_type.elem_type == (
        onnx.TensorProto.FLOAT if dtype == "float32" else onnx.TensorProto.DOUBLE
    )
    out = run(proto, X.astype(dtype))
    assert list(out) == ["label", "probabilities"]
    want = clf.predict_proba(X)
    assert out["probabilities"].shape == (ROWS, len(clf.classes_))
    assert_close(out["probabilities"], want.astype(dtype), dtype)
    np.testing.assert_array_equal(out["label"], clf.predict(X))
    assert out["label"].dtype == (object if labels == "three-strings" else np.int64)


@converge_quietly
def test_a_multilabel_classifier_exports_an_indicator_per_label(estimator_data):
    X, _ = estimator_data
    X = X.astype(np.float32)
    Y = np.stack([X[:, 0] > 1, X[:, 1] > 0, X[:, 2] > 2], axis=1).astype(np.int64)
    clf = bpnet.MLPClassifier((8,), max_iter=5, random_state=0).fit(X, Y)
    out = run(bpnet.export_onnx(clf, None), X)
    np.testing.assert_array_equal(out["label"], clf.predict(X))
    assert_close(
        out["probabilities"], clf.predict_proba(X).astype(np.float32), "float32"
    )


@converge_quietly
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("outputs", [1, 2])
def test_a_regressor_exports_its_variable(outputs, dtype, estimator_data):
    X, _ = estimator_data
    Y = np.stack([X[:, 0] - X[:, 1], X[:, 2] * 0.5], axis=1)[:, :outputs]
    reg = bpnet.MLPRegressor((7,), max_iter=5, random_state=0, dtype=dtype)
    reg.fit(X.astype(dtype), Y[:, 0] if outputs == 1 else Y)
    out = run(bpnet.export_onnx(reg, None), X.astype(dtype))
    assert list(out) == ["variable"] and out["variable"].shape == (ROWS, outputs)
    want = reg.predict(X).reshape(ROWS, outputs)
    assert_close(out["variable"], want, dtype)


@converge_quietly
def test_skl2onnx_converts_a_pipeline_holding_a_classifier(estimator_data):
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = estimator_data
    X = X.astype(np.float32)
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("mlp", bpnet.MLPClassifier((8,), max_iter=5, random_state=0)),
        ]
    ).fit(X, np.array(["a", "b", "c"])[y])
    proto = skl2onnx.to_onnx(
        pipe, X[:1], options={id(pipe.steps[-1][1]): {"zipmap": False}}
    )
    onnx.checker.check_model(proto, full_check=True)
    out = run(proto, X)
    np.testing.assert_array_equal(out["label"], pipe.predict(X))
    np.testing.assert_allclose(out["probabilities"], pipe.predict_proba(X), atol=1e-5)


@converge_quietly
def test_skl2onnx_converts_a_pipeline_holding_a_regressor(estimator_data):
    skl2onnx = pytest.importorskip("skl2onnx")
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, _ = estimator_data
    X = X.astype(np.float32)
    pipe = Pipeline(
        [
            ("scale", StandardScaler()),
            ("mlp", bpnet.MLPRegressor((8,), max_iter=5, random_state=0)),
        ]
    ).fit(X, X[:, 0] * 2)
    out = run(skl2onnx.to_onnx(pipe, X[:1]), X)
    np.testing.assert_allclose(out["variable"][:, 0], pipe.predict(X), atol=1e-4)


# --- bpnet-export and bpnet-predict model.onnx ------------------------------------
@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Any:
    from bpnet.cli.train import train_main

    out = tmp_path_factory.mktemp("run")
    assert train_main(["--epochs", "3", "--quiet", "--out", str(out)]) == 0
    return out


def _lines(capsys) -> tuple[list[str], list[str]]:
    captured = capsys.readouterr()
    return captured.out.splitlines(), captured.err.splitlines()


def test_bpnet_export_then_bpnet_predict_prints_what_it_prints_for_the_npz(
    run_dir, tmp_path, capsys
):
    from bpnet.cli.export import export_main
    from bpnet.cli.predict import predict_main

    onnx_path = tmp_path / "d.onnx"
    assert export_main([str(run_dir / "model.npz"), str(onnx_path)]) == 0
    out, _ = _lines(capsys)
    assert len(out) == 1 and "d.onnx" in out[0]
    onnx.checker.check_model(onnx.load(onnx_path), full_check=True)
    for extra in ([], ["--json"]):
        assert predict_main([str(run_dir / "model.npz"), *extra]) == 0
        npz, _ = _lines(capsys)
        assert predict_main([str(onnx_path), *extra]) == 0
        via_onnx, _ = _lines(capsys)
        assert via_onnx[0] == npz[0].replace("(cpu)", "(onnxruntime)")
        if extra:
            a, b = json.loads(npz[-1]), json.loads(via_onnx[-1])
            assert a.pop("device") == "cpu" and b.pop("device") == "onnxruntime"
            assert a["model"] != b["model"]
            a.pop("model"), b.pop("model")
            assert a == b
    X = np.random.default_rng(0).random((7, 64)).astype(np.float32) * 16
    np.save(tmp_path / "X.npy", X)
    assert (
        predict_main([str(run_dir / "model.npz"), "--data", str(tmp_path / "X.npy")])
        == 0
    )
    npz, _ = _lines(capsys)
    assert predict_main([str(onnx_path), "--data", str(tmp_path / "X.npy")]) == 0
    assert _lines(capsys)[0] == npz and len(npz) == 7


@pytest.mark.parametrize("shape", [(3, 10), (3, 2, 32), (3,)])
def test_bpnet_predict_refuses_data_of_another_shape_as_it_does_for_the_npz(
    run_dir, tmp_path, capsys, shape
):
    from bpnet.cli.export import export_main
    from bpnet.cli.predict import predict_main

    onnx_path = tmp_path / "d.onnx"
    assert export_main([str(run_dir / "model.npz"), str(onnx_path)]) == 0
    np.save(tmp_path / "bad.npy", np.ones(shape, dtype=np.float32))
    capsys.readouterr()
    for model in (run_dir / "model.npz", onnx_path):
        assert predict_main([str(model), "--data", str(tmp_path / "bad.npy")]) == 2
        (err,) = _lines(capsys)[1]
        assert err.startswith("bpnet-predict: error: X: expected") and "64" in err
        assert str(shape[-1]) in err and "ONNXRuntime" not in err


@converge_quietly
def test_bpnet_predict_runs_an_exported_estimator(tmp_path, capsys, estimator_data):
    from bpnet.cli.export import export_main
    from bpnet.cli.predict import predict_main

    X, y = estimator_data
    X = X.astype(np.float32)
    clf = bpnet.MLPClassifier((6,), max_iter=3, random_state=0)
    clf.fit(X, np.array(["no", "yes", "maybe"])[y])
    clf.save(tmp_path / "clf.npz")
    np.save(tmp_path / "X.npy", X[:20])
    np.save(tmp_path / "y.npy", np.array(["no", "yes", "maybe"])[y[:20]])
    assert export_main([str(tmp_path / "clf.npz"), str(tmp_path / "clf.onnx")]) == 0
    capsys.readouterr()
    for model in ("clf.npz", "clf.onnx"):
        args = [str(tmp_path / model), "--data", str(tmp_path / "X.npy")]
        assert predict_main(args) == 0
        assert _lines(capsys)[0] == clf.predict(X[:20]).tolist()
        assert predict_main([*args, "--labels", str(tmp_path / "y.npy")]) == 0
        (line,) = _lines(capsys)[0]
        assert line.startswith(
            f"accuracy: {clf.score(X[:20], np.load(tmp_path / 'y.npy')):.4f}"
        )


def test_bpnet_export_refuses_bad_input_in_one_line(
    run_dir, tmp_path, capsys, monkeypatch
):
    import os

    from bpnet.cli.export import export_main

    damaged = tmp_path / "damaged.npz"
    damaged.write_bytes((run_dir / "model.npz").read_bytes()[:300])
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    access = os.access  # root writes into a folder of mode 0o500 all the same
    monkeypatch.setattr(
        os, "access", lambda p, mode: access(p, mode) and str(p) != str(locked)
    )
    model = str(run_dir / "model.npz")
    cases = {
        "damaged": ([str(damaged), str(tmp_path / "a.onnx")], "damaged.npz"),
        "folder model": ([str(tmp_path), str(tmp_path / "b.onnx")], "model"),
        "folder target": ([model, str(tmp_path)], "is a folder"),
        "unwritable": ([model, str(locked / "c.onnx")], "not writable"),
        "no folder": ([model, str(tmp_path / "nope" / "d.onnx")], "does not exist"),
        "opset": ([model, str(tmp_path / "e.onnx"), "--opset", "3"], "opset"),
    }
    try:
        for name, (argv, match) in cases.items():
            assert export_main(argv) == 2, name
            out, err = _lines(capsys)
            assert out == [] and len(err) == 1, (name, err)
            assert err[0].startswith("bpnet-export: error: ") and match in err[0], name
    finally:
        locked.chmod(0o700)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged.npz", "locked"]


@pytest.mark.parametrize("skl2onnx_first", [False, True])
def test_the_converters_are_registered_whichever_is_imported_first(skl2onnx_first):
    """skl2onnx is never imported by bpnet (it takes seconds); its import, before
    or after bpnet's, registers the converters."""
    import subprocess
    import sys

    pytest.importorskip("skl2onnx")
    first, second = ("skl2onnx", "bpnet") if skl2onnx_first else ("bpnet", "skl2onnx")
    code = (
        "import sys\n"
        f"import {first}\n"
        "import bpnet\n"
        "assert skl2onnx_first or 'skl2onnx' not in sys.modules\n"
        f"import {second}\n"
        "from skl2onnx._supported_operators import sklearn_operator_name_map as names\n"
        "print(names[bpnet.MLPClassifier], names[bpnet.MLPRegressor])\n"
    ).replace("skl2onnx_first", str(skl2onnx_first))
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["BpnetMLPClassifier", "BpnetMLPRegressor"]


def test_metadata_that_is_no_dict_or_whose_classes_are_no_labels_is_refused(
    tmp_path, capsys
):
    from bpnet.cli.predict import predict_main

    net = bpnet.Sequential([bpnet.Dense(4, 3)], device="cpu", dtype="float32", seed=0)
    with pytest.raises(TypeError, match="metadata: expected a dict"):
        bpnet.export_onnx(net, None, metadata=[1, 2])
    path = tmp_path / "m.onnx"
    bpnet.export_onnx(net, path, metadata={"classes": "abc"})
    np.save(tmp_path / "X.npy", np.zeros((2, 4), np.float32))
    assert predict_main([str(path), "--data", str(tmp_path / "X.npy")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "metadata 'classes' is not a list" in err[0], err
