"""Convolution and pooling: against PyTorch's conv2d / max_pool2d / avg_pool2d
autograd (an independent implementation) and central differences on every
backend; shapes checked before anything is built; saved, resumed, copied and
trained through the graph and data-parallel paths like any other layer."""

import copy

import numpy as np
import pytest
from conftest import HAVE_TORCH

import backends
import bpnet
from bpnet.nn.im2col import geometry, pixel_indices, window_indices

needs_torch = pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch is not installed")

# (C, H, W, filters, kernel, stride, padding): odd sizes, strides 1 and 2,
# padding 0 and 1, a kernel wider than the stride, a 1x1 kernel, tiles
CONV_CASES = [
    (3, 7, 9, 4, 3, 1, 0),
    (2, 9, 7, 3, 3, 2, 1),
    (2, 7, 7, 3, 3, 2, 0),
    (1, 8, 8, 2, 2, 2, 0),
    (2, 6, 6, 3, 5, 1, 1),
    (2, 5, 7, 3, 1, 2, 0),
    (1, 5, 5, 2, (3, 1), 1, 1),
]
# (C, H, W, pool, stride)
POOL_CASES = [(2, 6, 8, 2, None), (3, 7, 7, 3, 1), (2, 7, 9, 3, 2), (1, 5, 5, 1, 1)]


def _host(be, a):
    return be.to_numpy(a)


def _conv_net(backend, C, H, W, F, K, s, p, dtype="float64"):
    return bpnet.Sequential(
        [bpnet.Reshape((C, H, W)), bpnet.Conv2D(F, K, s, p), bpnet.Flatten()],
        device=backend,
        dtype=dtype,
        n_in=C * H * W,
        seed=2,
    )


@needs_torch
@pytest.mark.parametrize("case", CONV_CASES, ids=str)
def test_conv2d_matches_torch_conv2d_and_its_autograd(backend, case):
    import torch
    import torch.nn.functional as F

    if not backend.supports("float64"):
        pytest.skip("float64 comparison")
    C, H, W, n_filters, K, s, p = case
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, C, H, W))
    net = _conv_net(backend, *case)
    conv = net.layers[1]
    y = conv.forward(backend.asarray(x, "float64"))
    xt = torch.tensor(x, requires_grad=True)
    Wt = torch.tensor(_host(backend, conv.W), requires_grad=True)
    bt = torch.tensor(_host(backend, conv.b), requires_grad=True)
    yt = F.conv2d(xt, Wt, bt, stride=s, padding=p)
    dy = rng.normal(size=tuple(yt.shape))
    yt.backward(torch.tensor(dy))
    dx = conv.backward(backend.asarray(dy, "float64"))
    pairs = [
        (y, yt),
        (dx, xt.grad),
        (conv.grads["W"], Wt.grad),
        (conv.grads["b"], bt.grad),
    ]
    for ours, theirs in pairs:
        np.testing.assert_allclose(
            _host(backend, ours), theirs.detach().numpy(), rtol=1e-10, atol=1e-10
        )


@needs_torch
@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("case", POOL_CASES, ids=str)
def test_pooling_matches_torch_and_its_autograd(backend, kind, case):
    import torch
    import torch.nn.functional as F

    if not backend.supports("float64"):
        pytest.skip("float64 comparison")
    C, H, W, P, s = case
    layer = (bpnet.MaxPool2D if kind == "max" else bpnet.AvgPool2D)(P, s)
    net = bpnet.Sequential(
        [bpnet.Reshape((C, H, W)), layer, bpnet.Flatten()],
        device=backend,
        dtype="float64",
        n_in=C * H * W,
    )
    rng = np.random.default_rng(1)
    x = rng.normal(size=(4, C, H, W))
    y = layer.forward(backend.asarray(x, "float64"))
    xt = torch.tensor(x, requires_grad=True)
    pool = F.max_pool2d if kind == "max" else F.avg_pool2d
    yt = pool(xt, P, P if s is None else s)
    dy = rng.normal(size=tuple(yt.shape))
    yt.backward(torch.tensor(dy))
    dx = layer.backward(backend.asarray(dy, "float64"))
    assert net.n_outputs == yt[0].numel()
    np.testing.assert_allclose(_host(backend, y), yt.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(_host(backend, dx), xt.grad.numpy(), atol=1e-12)


def test_max_pooling_gives_a_tie_s_gradient_to_the_first_maximum(backend):
    """As Deep Learning from Scratch's Pooling (argmax) and torch's
    max_pool2d: the whole gradient to the first tied entry, row-major."""
    layer = bpnet.MaxPool2D(2)
    bpnet.Sequential([bpnet.Reshape((1, 2, 4)), layer, bpnet.Flatten()], n_in=8)
    layer.xp = backend.xp
    x = np.array([[[[1.0, 3.0, 2.0, 2.0], [3.0, 0.0, 2.0, 2.0]]]], dtype=np.float32)
    y = layer.forward(backend.asarray(x, "float32"))
    dx = layer.backward(backend.asarray([[[[5.0, 7.0]]]], "float32"))
    np.testing.assert_array_equal(_host(backend, y), [[[[3.0, 2.0]]]])
    np.testing.assert_array_equal(
        _host(backend, dx), [[[[0.0, 5.0, 7.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]]
    )


def _simple_convnet(backend="cpu", dtype="float64", seed=0, pool=bpnet.MaxPool2D):
    """SimpleConvNet's shape, small: 1x6x6 -> conv 3 filters 3x3 -> pool."""
    return bpnet.Sequential(
        [
            bpnet.Reshape((1, 6, 6)),
            bpnet.Conv2D(3, 3, padding=1),
            bpnet.ReLU(),
            pool(2),
            bpnet.Conv2D(2, 2, stride=1),
            bpnet.Tanh(),
            bpnet.Flatten(),
            bpnet.Dense(8, 5),
            bpnet.ReLU(),
            bpnet.Dense(5, 3),
        ],
        device=backend,
        dtype=dtype,
        seed=seed,
    )


def _images(n=40, seed=3):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 36)), rng.integers(0, 3, size=n)


@pytest.mark.parametrize("pool", [bpnet.MaxPool2D, bpnet.AvgPool2D])
def test_gradient_check_of_a_convolutional_network(backend, pool):
    if not backend.supports("float64"):
        pytest.skip("gradient checks run in float64")
    X, y = _images(n=6)
    net = _simple_convnet(backend, pool=pool)
    assert bpnet.check_gradients(net, X, y, l2=0.3) < 1e-7


def test_index_arrays_are_in_range_and_their_adjoint_covers_every_read():
    """Every window read appears exactly once among the pixels' entries."""
    xp = backends.get_backend("cpu").xp
    for C, H, W, _, K, s, p in CONV_CASES:
        K = K if isinstance(K, tuple) else (K, K)
        g = geometry("layer", (C, H, W), K, s, p)
        win = window_indices(xp, g, "cpu")
        pix, slots = pixel_indices(xp, g, "cpu")
        assert win.min() >= 0 and win.max() <= C * H * W
        reads = np.flatnonzero(win < C * H * W)  # column positions reading pixels
        listed = pix[pix < win.size]
        np.testing.assert_array_equal(np.sort(listed), reads)
        # each listed entry reads the pixel that lists it
        owner = np.repeat(np.arange(C * H * W), slots)
        np.testing.assert_array_equal(win[pix[pix < win.size]], owner[pix < win.size])


@pytest.mark.parametrize(
    ("layers", "match"),
    [
        ([bpnet.Conv2D(2, 3)], r"Conv2D\(2, 3\) takes \(channels, height, width\)"),
        (
            [bpnet.Reshape((1, 4, 4)), bpnet.Conv2D(2, 5)],
            r"Conv2D\(2, 5\): the window height 5 is larger than the input's "
            r"height 4 \(input shape \(1, 4, 4\)\)",
        ),
        (
            [bpnet.Reshape((1, 4, 4)), bpnet.Conv2D(2, 3, stride=2)],
            r"the stride 2 does not divide the input height 4 - window 3 = 1",
        ),
        (
            [bpnet.Reshape((1, 4, 4)), bpnet.MaxPool2D(3)],
            r"MaxPool2D\(3\): the stride 3 does not divide",
        ),
        (
            [bpnet.Reshape((2, 3, 3))],
            r"n_in: expected a positive integer equal to Reshape\(\(2, 3, 3\)\)'s "
            r"18, got 16",
        ),
        (
            [bpnet.Reshape((1, 4, 4)), bpnet.Reshape((3, 5))],
            r"Reshape\(\(3, 5\)\) makes samples of 15 values, but receives samples "
            r"of 16 \(shape \(1, 4, 4\)\)",
        ),
        (
            [bpnet.Reshape((1, 4, 4)), bpnet.Dense(16, 2)],
            r"Dense\(16, 2\) takes \(n, features\) rows, but receives samples of "
            r"shape \(1, 4, 4\).*Flatten",
        ),
        (
            [bpnet.Reshape((1, 4, 4)), bpnet.Conv2D(2, 3)],
            r"layers\[1\]: the network's last layer Conv2D\(2, 3\) gives samples of "
            r"shape \(2, 2, 2\)",
        ),
    ],
)
def test_a_shape_that_does_not_fit_is_one_clear_error(layers, match):
    with pytest.raises(ValueError, match=match):
        bpnet.Sequential(layers, n_in=16)


@pytest.mark.parametrize(
    ("make", "match"),
    [
        (lambda: bpnet.Conv2D(0, 3), "Conv2D filters: expected an integer >= 1"),
        (lambda: bpnet.Conv2D(2, (3, 3, 3)), "Conv2D kernel_size: expected"),
        (lambda: bpnet.Conv2D(2, 3, padding=-1), "Conv2D padding: expected"),
        (lambda: bpnet.MaxPool2D(2, stride=0), "MaxPool2D stride: expected"),
        (lambda: bpnet.AvgPool2D((2, 3)), "AvgPool2D stride: expected an integer"),
        (lambda: bpnet.Reshape(()), "Reshape shape: expected a tuple"),
    ],
)
def test_bad_layer_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_model_files_are_checked_from_the_config_alone(tmp_path):
    """The file's config gives every array's shape before anything is built."""
    from bpnet.io.sequential import sequential_arrays

    net = _simple_convnet()
    path = bpnet.save(net, tmp_path / "conv.npz")
    from bpnet.io import read_model_file

    _, meta = read_model_file(path)
    params, _ = sequential_arrays(meta)
    assert list(params.values()) == [tuple(p.shape) for p in net.parameters()]
    assert list(params.values())[:2] == [(3, 1, 3, 3), (3,)]


def test_weights_use_the_convolution_s_fan_in():
    """He's N(0, 2 / fan_in) with fan_in = C * KH * KW (a ReLU follows)."""
    net = bpnet.Sequential(
        [bpnet.Reshape((4, 20, 20)), bpnet.Conv2D(64, 5), bpnet.ReLU(), bpnet.Flatten()]
        + [bpnet.Dense(64 * 16 * 16, 2)],
        n_in=1600,
    )
    W = net.parameters()[0]
    assert W.shape == (64, 4, 5, 5)
    assert abs(W.std() - np.sqrt(2.0 / 100)) < 0.01


def test_save_load_and_copies_keep_a_convolutional_network(tmp_path, backend):
    X, y = _images()
    dtype = "float64" if backend.supports("float64") else "float32"
    net = _simple_convnet(backend, dtype)
    net.fit(X, y, epochs=2, batch_size=8, verbose=0)
    again = bpnet.load(bpnet.save(net, tmp_path / "conv.npz"), device=backend)
    want = _host(backend, net.forward(X))
    for other in (again, copy.deepcopy(net)):
        assert [type(la) for la in other.layers] == [type(la) for la in net.layers]
        np.testing.assert_array_equal(_host(backend, other.forward(X)), want)


def test_resume_equals_uninterrupted(tmp_path, backend):
    X, y = _images(n=60)
    dtype = "float64" if backend.supports("float64") else "float32"

    def opt():
        return bpnet.Adam(0.01, schedule=bpnet.StepDecay(2, 0.5))

    kw = dict(batch_size=16, l2=0.01, validation_fraction=0.2)
    full = _simple_convnet(backend, dtype, seed=4)
    h_full = full.fit(X, y, epochs=4, optimizer=opt(), **kw)
    ck = tmp_path / "ck.npz"
    _simple_convnet(backend, dtype, seed=4).fit(
        X, y, epochs=2, optimizer=opt(), checkpoint=ck, **kw
    )
    resumed, h = bpnet.resume(ck, X, y, device=backend, epochs=4)
    assert h.loss == h_full.loss and h.val_loss == h_full.val_loss
    for a, b in zip(full.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(_host(backend, a), _host(backend, b))


def test_the_first_layer_gets_no_input_gradient_after_a_reshape(monkeypatch):
    """Nothing before the convolution learns: its col2im is skipped."""
    net = _simple_convnet()
    X, y = _images(n=5)
    asked = []
    conv = net.layers[1]
    original = conv.backward
    monkeypatch.setattr(
        conv,
        "backward",
        lambda dy, need_dx=True: asked.append(need_dx) or original(dy, need_dx),
    )
    net.loss_and_grad(X, y)
    assert asked == [False]


def test_the_graph_path_takes_convolutions(monkeypatch):
    """The CPU backend pretending to record graphs (the 'recording' is the
    epoch function itself): replayed epochs give the plain loop's weights."""
    be = backends.get_backend("cpu")
    monkeypatch.setattr(type(be), "supports_graphs", True)
    monkeypatch.setattr(type(be), "folds_matmul_update", False)
    captured = []
    monkeypatch.setattr(be, "capture_graph", lambda fn: captured.append(fn) or fn)
    X, y = _images()
    graph, plain = _simple_convnet(be), _simple_convnet("cpu")
    kw = dict(epochs=3, batch_size=8, optimizer="momentum", lr=0.05)
    h = graph.fit(X, y, **kw)
    monkeypatch.setattr(type(be), "supports_graphs", False)
    h_plain = plain.fit(X, y, **kw)
    assert captured and h.cuda_graph
    assert h.loss == h_plain.loss
    for a, b in zip(graph.parameters(), plain.parameters()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("overlap", [False, True])
def test_one_rank_data_parallel_is_plain_fit(backend, overlap):
    from test_distributed_local import OneRank, _host_view_or_skip

    _host_view_or_skip(backend)  # JAX's and dpnp's arrays: refused, by name
    X, y = _images(n=50)
    dtype = "float64" if backend.supports("float64") else "float32"
    plain, par = _simple_convnet(backend, dtype), _simple_convnet(backend, dtype)
    kw = {"epochs": 2, "batch_size": 16, "optimizer": "adam", "lr": 0.01, "l2": 0.1}
    h1 = bpnet.fit(plain, X, y, **kw)
    h2 = bpnet.fit(par, X, y, comm=OneRank(overlap, bucket_mb=1e-6), **kw)
    rtol = 1e-12 if dtype == "float64" else 1e-5
    for a, b in zip(plain.parameters(), par.parameters()):
        np.testing.assert_allclose(
            _host(backend, b), _host(backend, a), rtol=rtol, atol=rtol
        )
    np.testing.assert_allclose(h2["loss"], h1["loss"], rtol=rtol)


def test_repr_shows_each_layer_s_sample_shape():
    text = repr(_simple_convnet())
    assert "Conv2D(3, 3, padding=1)" in text and "-> (n, 3, 6, 6)" in text
    assert "MaxPool2D(2)" in text and "-> (n, 3, 3, 3)" in text


def test_bpnet_train_conv_on_the_digits_and_resume(tmp_path, capsys):
    """SimpleConvNet adapted to 8x8 digits (3x3 filters): trained, its filters
    drawn, its checkpoint resumed with the convolution recorded."""
    import json

    from bpnet.cli.train import train_main

    run = tmp_path / "run"
    assert train_main(["--conv", "--epochs", "1", "--quiet", "--out", str(run)]) == 0
    net = bpnet.load(run / "model.npz")
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds == [
        "Reshape",
        "Conv2D",
        "ReLU",
        "MaxPool2D",
        "Flatten",
        "Dense",
        "ReLU",
        "Dense",
    ]
    assert net.layers[1].kernel == (3, 3) and net.layers[5].n_out == 100
    assert (run / "first_layer.png").stat().st_size > 0
    capsys.readouterr()
    code = train_main(
        ["--resume", str(run / "checkpoint.npz"), "--epochs", "2", "--json", "-q"]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["conv"] is True and summary["epochs"] == 2


def test_bpnet_train_conv_refuses_data_that_are_not_square_images():
    from bpnet.cli.train import conv_block

    with pytest.raises(ValueError, match="--conv: takes square one-channel images"):
        conv_block(10)
    with pytest.raises(ValueError, match="2x2 max-pool cannot split"):
        conv_block(81)


def test_plot_first_layer_draws_convolution_filters(tmp_path):
    from bpnet.plots import plot_first_layer

    W = np.random.default_rng(0).normal(size=(4, 2, 3, 3))
    out = plot_first_layer(W, tmp_path / "f.png", n=3, dpi=50)
    assert out.stat().st_size > 0
    with pytest.raises(ValueError, match=r"or a Conv2D's \(filters, channels"):
        plot_first_layer(np.zeros((2, 2, 2)), tmp_path / "g.png")


def test_onnx_export_records_the_convolution_with_a_dynamic_batch(tmp_path):
    """The forward is pure Array API with the batch as -1: ndonnx records it,
    and the network's own index arrays are not replaced by the trace's."""
    pytest.importorskip("onnxscript")
    ort = pytest.importorskip("onnxruntime")
    net = bpnet.Sequential(
        [
            bpnet.Reshape((1, 9, 9)),
            bpnet.Conv2D(3, 3, padding=1),
            bpnet.ReLU(),
            bpnet.MaxPool2D(3),
            bpnet.Conv2D(2, 3, stride=2, padding=1),
            bpnet.AvgPool2D(2),
            bpnet.Flatten(),
            bpnet.Dense(2, 3),
        ],
        seed=1,
    )
    X = np.random.default_rng(0).random((5, 81), dtype=np.float32)
    before = net.predict_proba(X)
    bpnet.export_onnx(net, tmp_path / "conv.onnx")
    session = ort.InferenceSession(str(tmp_path / "conv.onnx"))
    assert session.get_inputs()[0].shape == ["N", 81]
    _, proba = session.run(None, {"X": X})
    np.testing.assert_allclose(proba, before, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(net.predict_proba(X), before)
