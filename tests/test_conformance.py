"""The whole stack on every backend present, against NumPy's numbers.

Every layer, activation, loss, optimizer and schedule; ``fit`` with
validation, early stopping and checkpoints; exact resume; save and load; a
gradient check; the estimators; ``bpnet-train --device``. Tolerances are per
dtype (float rounding), never per machine. A new backend is its file in
``backends/`` plus one line in ``BACKENDS`` below; a backend absent here
skips, saying why.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import backends
import bpnet
from bpnet.nn.layers import LAYERS
from bpnet.nn.losses import LOSSES
from bpnet.train.optimizers import OPTIMIZERS, SCHEDULES

# tiny problems, a few steps: whether training helps is not the question here
pytestmark = pytest.mark.filterwarnings("ignore::bpnet.train.history.TrainingWarning")

#: (device name, test id): one line per backend
BACKENDS = [
    ("cpu", "numpy"),
    ("array-api-strict", "strict"),
    ("torch", "torch"),
    ("jax", "jax"),
    ("cuda", "cupy"),
    ("torch:cuda", "torch-cuda"),
]

#: float rounding after a few steps of tiny problems, per dtype
TOL = {
    "float32": dict(rtol=2e-4, atol=2e-5),
    "float64": dict(rtol=1e-9, atol=1e-11),
}


@pytest.fixture(
    scope="module", params=[b for b, _ in BACKENDS], ids=[i for _, i in BACKENDS]
)
def be(request):
    """A backend of ``BACKENDS``, or a skip with the reason it is absent."""
    if request.param.startswith("jax"):
        from conftest import jax_x64

        try:
            jax_x64()  # float64 rows run on JAX too
        except ImportError:
            pytest.skip("JAX is not installed")
    try:
        return backends.get_backend(request.param)
    except backends.BackendUnavailableError as exc:
        pytest.skip(str(exc))


def _floats(be):
    return [d for d in ("float32", "float64") if be.supports(d)]


def _data(n=50, d=5, k=3, seed=0):
    """50 rows: batches of 16 leave a last one of 2 (two batch shapes)."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, d))
    return X, rng.integers(0, k, n)


def _host(be, arrays):
    """Host copies (NumPy's to_numpy is the array itself)."""
    return [np.array(be.to_numpy(a), copy=True) for a in arrays]


def _close(got, want, dtype, what=""):
    for i, (g, w) in enumerate(zip(got, want)):
        np.testing.assert_allclose(g, w, **TOL[dtype], err_msg=f"{what}[{i}]")


def _bpnet_layers() -> set[str]:
    """The layers bpnet registers (other test modules register their own)."""
    return {
        name
        for name in LAYERS.names()
        if LAYERS.get(name).__module__.startswith("bpnet.")
    }


def _every_layer_net(device, dtype, n_out):
    """Every registered layer (Dropout at rate 0: its masks are each
    library's own numbers, checked below for reproducibility instead)."""
    assert _bpnet_layers() == {
        "Dense", "Dropout", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "BatchNorm",
        "Scale", *CONV_LAYERS,
    }, "a new layer: add it to this network or to _conv_net"  # fmt: skip
    layers = [
        bpnet.Dense(5, 8),
        bpnet.BatchNorm(),
        bpnet.LeakyReLU(),
        bpnet.Dense(8, 8),
        bpnet.Scale(),
        bpnet.Tanh(),
        bpnet.Dropout(0.0),
        bpnet.Dense(8, 6),
        bpnet.Sigmoid(),
        bpnet.Dense(6, 6),
        bpnet.ReLU(),
        bpnet.Dense(6, n_out),
    ]
    return bpnet.Sequential(layers, device=device, dtype=dtype, seed=3)


CONV_LAYERS = ("Reshape", "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten")


def _conv_net(device, dtype):
    """Every image layer: 16 features as one 4 x 4 channel."""
    layers = [
        bpnet.nn.conv.Reshape((1, 4, 4)),
        bpnet.nn.conv.Conv2D(2, 2, padding=1),
        bpnet.ReLU(),
        bpnet.nn.pooling.MaxPool2D(2, stride=1),
        bpnet.nn.pooling.AvgPool2D(2),
        bpnet.nn.conv.Flatten(),
        bpnet.Dense(8, 3),
    ]
    return bpnet.Sequential(layers, device=device, dtype=dtype, seed=3)


def test_image_layers(be):
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(12, 16)), rng.integers(0, 3, 12)
    for dtype in _floats(be):
        got, want = _conv_net(be, dtype), _conv_net("cpu", dtype)
        Lg, gg = got.loss_and_grad(X, y, "softmax", l2=0.01)
        Lw, gw = want.loss_and_grad(X, y, "softmax", l2=0.01)
        np.testing.assert_allclose(Lg, Lw, **TOL[dtype])
        _close(_host(be, gg), gw, dtype, f"image layers {dtype} gradients")


def _targets(loss, X, y):
    rng = np.random.default_rng(1)
    if loss == "softmax":
        return y
    if loss == "sigmoid":
        return (rng.random((X.shape[0], 3)) < 0.5).astype(np.float64)
    if loss == "poisson":
        return rng.poisson(1.5, size=(X.shape[0], 3)).astype(np.float64)
    return rng.normal(size=(X.shape[0], 3))


@pytest.mark.parametrize("loss", LOSSES.names())
def test_every_layer_and_loss(be, loss):
    X, y = _data()
    T = _targets(loss, X, y)
    for dtype in _floats(be):
        got = _every_layer_net(be, dtype, 3)
        want = _every_layer_net("cpu", dtype, 3)
        Lg, gg = got.loss_and_grad(X, T, loss, l2=0.01)
        Lw, gw = want.loss_and_grad(X, T, loss, l2=0.01)
        np.testing.assert_allclose(Lg, Lw, **TOL[dtype])
        _close(_host(be, gg), gw, dtype, f"{loss} {dtype} gradients")
        _close(_host(be, got.buffers()), want.buffers(), dtype, "running stats")
        _close([be.to_numpy(got.predict_proba(X))], [want.predict_proba(X)], dtype)


def _mlp(device, dtype="float32", dropout=0.0, seed=0):
    # BatchNorm after the ReLU: right after a Dense it would leave that bias a
    # gradient of rounding noise, which AdaGrad and RMSprop scale up to steps
    layers = [bpnet.Dense(5, 8), bpnet.ReLU(), bpnet.BatchNorm()]
    if dropout:
        layers.append(bpnet.Dropout(dropout))
    layers.append(bpnet.Dense(8, 3))
    return bpnet.Sequential(layers, device=device, dtype=dtype, seed=seed)


@pytest.mark.parametrize("name", OPTIMIZERS.names())
def test_every_optimizer_and_schedule_trains_as_numpy(be, name):
    # float64 where the backend holds it: AdaGrad and RMSprop divide by the
    # root of summed squares, which turns float32 rounding in a near-zero
    # gradient into a visible step
    dtype = _floats(be)[-1]
    X, y = _data()
    i = OPTIMIZERS.names().index(name)
    schedules = SCHEDULES.names()
    schedule = SCHEDULES.get(schedules[i % len(schedules)]).for_epochs(3)
    out = {}
    for device in ("cpu", be):
        net = _mlp(device, dtype)
        before = _host(net.backend, net.parameters())
        opt = OPTIMIZERS.create(name, lr=0.05, schedule=schedule)
        h = net.fit(X, y, epochs=3, batch_size=16, optimizer=opt, l2=0.01)
        after = _host(net.backend, net.parameters())
        for k, (a, b) in enumerate(zip(before, after)):
            assert np.any(a != b), f"{name} on {device}: parameter {k} never changed"
        out[device is be] = (after, _host(net.backend, net.buffers()), h.loss)
    (got, gbuf, gloss), (want, wbuf, wloss) = out[True], out[False]
    _close(got, want, dtype, f"{name} weights")
    _close(gbuf, wbuf, dtype, f"{name} running stats")
    np.testing.assert_allclose(gloss, wloss, **TOL[dtype])


def test_validation_early_stopping_checkpoint_and_exact_resume(be, tmp_path):
    X, y = _data()
    kw = dict(batch_size=16, validation_fraction=0.2, optimizer="adam")
    # validation and early stopping: NumPy's history, to rounding
    runs = []
    for device in ("cpu", be):
        net = _mlp(device)
        h = net.fit(X, y, epochs=6, early_stopping=True, patience=1, **kw)
        runs.append(h)
    assert len(runs[0]) == len(runs[1])
    np.testing.assert_allclose(runs[1].val_loss, runs[0].val_loss, **TOL["float32"])
    # checkpoints, and a resume that ends where an unbroken run ends (with
    # dropout: the generator's state is in the checkpoint)
    full = _mlp(be, dropout=0.3)
    h_full = full.fit(X, y, epochs=4, **kw)
    ck = tmp_path / "ck.npz"
    _mlp(be, dropout=0.3).fit(X, y, epochs=2, checkpoint=ck, **kw)
    net, h = bpnet.resume(ck, X, y, device=be, epochs=4)
    assert h.loss == h_full.loss and len(h) == 4
    for a, b in zip(_host(be, full.parameters()), _host(be, net.parameters())):
        np.testing.assert_array_equal(a, b)


def test_dropout_masks_are_reproducible_for_a_seed(be):
    X, y = _data()
    nets = [_mlp(be, dropout=0.5, seed=s) for s in (0, 0, 1)]
    for net in nets:
        net.fit(X, y, epochs=1, batch_size=16)
    a, b, c = (_host(be, n.parameters()) for n in nets)
    for p, q in zip(a, b):
        np.testing.assert_array_equal(p, q)
    assert any(np.any(p != q) for p, q in zip(a, c))


def test_save_and_load(be, tmp_path):
    X, y = _data()
    net = _mlp(be)
    net.fit(X, y, epochs=1, batch_size=16)
    path = bpnet.save(net, tmp_path / "m.npz")
    again = bpnet.load(path, device=be)
    on_cpu = bpnet.load(path, device="cpu")
    p = be.to_numpy(net.predict_proba(X))
    np.testing.assert_array_equal(be.to_numpy(again.predict_proba(X)), p)
    np.testing.assert_allclose(on_cpu.predict_proba(X), p, **TOL["float32"])


def test_gradient_check(be):
    if "float64" not in _floats(be):
        pytest.skip(f"{be.name} holds no float64")
    X, y = _data(n=12)
    net = _every_layer_net(be, "float64", 3)
    assert bpnet.check_gradients(net, X, y, l2=0.1) < 1e-6


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_estimators(be):
    X, y = _data()
    est = {}
    for device in ("cpu", be.name):
        kw = dict(max_iter=3, random_state=0, device=device, batch_size=16)
        clf = bpnet.MLPClassifier((8,), **kw).fit(X, y)
        reg = bpnet.MLPRegressor((8,), **kw).fit(X, X[:, 0] - X[:, 1])
        est[device] = (clf.predict_proba(X), reg.predict(X), clf.loss_curve_)
    (pg, rg, lg), (pw, rw, lw) = est[be.name], est["cpu"]
    np.testing.assert_allclose(pg, pw, **TOL["float32"])
    np.testing.assert_allclose(rg, rw, **TOL["float32"])
    np.testing.assert_allclose(lg, lw, **TOL["float32"])


def _cli(device, out, capsys):
    from bpnet.cli.train import train_main

    argv = ["--device", device, "--epochs", "1", "--hidden", "16", "--json"]
    assert train_main([*argv, "--out", str(out)]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_bpnet_train_device(be, tmp_path, capsys):
    got = _cli(be.name, tmp_path / "got", capsys)
    want = _cli("cpu", tmp_path / "want", capsys)
    assert got["final_loss"] == pytest.approx(want["final_loss"], rel=1e-3)
    assert abs(got["test_accuracy"] - want["test_accuracy"]) <= 0.01
