"""BatchNorm and Scale: gradients on every backend, PyTorch's BatchNorm1d as an
independent reference, and the whole trip: fit, save/load, exact resume, the
flat vector for scipy, and bpnet-train --batch-norm."""

import json
import warnings

import numpy as np
import pytest
from conftest import HAVE_TORCH

import bpnet
from bpnet.cli.train import train_main


def _data(n=9, d=5, k=4, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(loc=0.5, scale=2.0, size=(n, d)), np.arange(n) % k


def _blobs(n=120, d=5, k=4, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(k, d))
    y = np.arange(n) % k
    return centers[y] + rng.normal(loc=3.0, size=(n, d)), y


def _bn_net(device="cpu", dtype="float64", seed=0, momentum=0.9):
    return bpnet.Sequential(
        [
            bpnet.Dense(5, 6),
            bpnet.BatchNorm(momentum=momentum),
            bpnet.Tanh(),
            bpnet.Scale(),
            bpnet.Dense(6, 4),
        ],
        device=device,
        dtype=dtype,
        seed=seed,
    )


def test_declared_parameters_and_buffers():
    net = _bn_net()
    assert list(net.named_parameters()) == [
        "0.W",
        "0.b",
        "1.gamma",
        "1.beta",
        "3.scale",
        "4.W",
        "4.b",
    ]
    assert net.decay_mask() == [True, False, False, False, False, True, False]
    assert list(net.named_buffers()) == ["1.running_mean", "1.running_var"]
    np.testing.assert_array_equal(net.buffers()[1], np.ones(6))
    assert bpnet.BatchNorm in bpnet.nn.layers.LAYERS.get("BatchNorm").__mro__
    assert bpnet.nn.layers.LAYERS.get("Scale") is bpnet.Scale


@pytest.mark.parametrize("first", ["BatchNorm", "Scale"])
def test_gradient_check_in_training_mode(backend, first):
    X, y = _data()
    net = _bn_net(backend)
    assert bpnet.check_gradients(net, X, y, l2=0.7) < 1e-7
    # first in the network, the width given by the data
    layer = bpnet.BatchNorm(momentum=0.5) if first == "BatchNorm" else bpnet.Scale()
    net = bpnet.Sequential([layer, bpnet.Dense(5, 4)], device=backend, dtype="float64")
    assert bpnet.check_gradients(net, X, y, l2=0.3) < 1e-7


def test_gradient_check_in_inference_mode(backend):
    """minimize trains the inference-mode function: its backward is checked
    against central differences of that function."""
    X, y = _data()
    net = _bn_net(backend)
    net.fit(X, y, epochs=2, batch_size=4, verbose=0)  # running stats away from 0, 1
    loss = bpnet.SoftmaxCrossEntropy()
    with net.backend.context():
        Xd, T = net._prepare(X, y, loss)
        _, grads = net._loss_and_grad(Xd, T, loss, 0.2, training=False)
        analytic = net.backend.pack(grads)
        theta = net.get_flat_parameters()
        numeric = np.zeros_like(theta)
        for i in range(theta.size):
            for sign in (1, -1):
                t = theta.copy()
                t[i] += sign * 1e-5
                net.set_flat_parameters(t)
                numeric[i] += sign * float(net._loss(Xd, T, loss, 0.2, training=False))
        numeric /= 2e-5
    diff = np.linalg.norm(numeric - analytic) / np.linalg.norm(numeric + analytic)
    assert diff < 1e-7


def test_batch_statistics_in_training_running_statistics_in_inference():
    X, _ = _data(n=50)
    net = bpnet.Sequential([bpnet.BatchNorm(momentum=0.8)], n_in=5, dtype="float64")
    net.set_parameters([np.full(5, 2.0), np.full(5, -1.0)])
    out = net.forward(X, training=True)
    np.testing.assert_allclose(out.mean(axis=0), -1.0, atol=1e-12)
    np.testing.assert_allclose(out.std(axis=0), 2.0 / np.sqrt(1 + 1e-5 / X.var(0)))
    mean, var = net.buffers()
    np.testing.assert_allclose(mean, 0.2 * X.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(var, 0.8 + 0.2 * X.var(axis=0), rtol=1e-12)
    inference = net.forward(X)
    np.testing.assert_allclose(
        inference, 2.0 * (X - mean) / np.sqrt(var + 1e-5) - 1.0, rtol=1e-12
    )
    np.testing.assert_array_equal(net.buffers()[0], mean)  # inference: unchanged


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: bpnet.BatchNorm(momentum=1.0), "BatchNorm momentum: expected"),
        (lambda: bpnet.BatchNorm(momentum=True), "BatchNorm momentum"),
        (lambda: bpnet.BatchNorm(eps=0.0), "BatchNorm eps: expected a finite"),
    ],
)
def test_bad_batchnorm_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch is not installed")
def test_batchnorm_matches_torch_batchnorm1d():
    """momentum m in bpnet is BatchNorm1d(momentum=1 - m); torch's running
    variance takes the unbiased batch variance, bpnet's the biased one."""
    import torch

    rng = np.random.default_rng(3)
    n, d, m = 16, 7, 0.8
    net = bpnet.Sequential([bpnet.BatchNorm(momentum=m, eps=1e-3)], n_in=d)
    net = net.to("cpu", dtype="float64")
    gamma, beta = rng.normal(size=d), rng.normal(size=d)
    net.set_parameters([gamma, beta])
    ref = torch.nn.BatchNorm1d(d, eps=1e-3, momentum=1 - m, dtype=torch.float64)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(gamma))
        ref.bias.copy_(torch.from_numpy(beta))
    ref.train()
    bn = net.layers[0]
    for step in range(3):
        X = rng.normal(loc=step, scale=1 + step, size=(n, d))
        dy = rng.normal(size=(n, d))
        var_before = net.buffers()[1].copy()
        ref_var_before = ref.running_var.numpy().copy()
        x_t = torch.from_numpy(X).requires_grad_(True)
        y_t = ref(x_t)
        y_t.backward(torch.from_numpy(dy))
        y = net.forward(X, training=True)
        dx = bn.backward(dy)
        np.testing.assert_allclose(y, y_t.detach().numpy(), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(dx, x_t.grad.numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(bn.grads["gamma"], ref.weight.grad.numpy())
        np.testing.assert_allclose(bn.grads["beta"], ref.bias.grad.numpy())
        ref.weight.grad = ref.bias.grad = None
        np.testing.assert_allclose(
            net.buffers()[0], ref.running_mean.numpy(), rtol=1e-12
        )
        # the same recurrence, each side with its own batch variance
        np.testing.assert_allclose(
            net.buffers()[1], m * var_before + (1 - m) * X.var(axis=0), rtol=1e-12
        )
        np.testing.assert_allclose(
            ref.running_var.numpy(),
            m * ref_var_before + (1 - m) * X.var(axis=0, ddof=1),
            rtol=1e-12,
        )
    # inference with the same running statistics
    net.set_buffers([ref.running_mean.numpy(), ref.running_var.numpy()])
    ref.eval()
    X = rng.normal(size=(5, d))
    x_t = torch.from_numpy(X).requires_grad_(True)
    y_t = ref(x_t)
    y_t.sum().backward()
    np.testing.assert_allclose(net.forward(X), y_t.detach().numpy(), rtol=1e-12)
    bn.forward(X)
    np.testing.assert_allclose(bn.backward(np.ones((5, d))), x_t.grad.numpy())


def test_fit_trains_the_parameters_and_never_the_buffers():
    X, y = _blobs()
    net = _bn_net(dtype="float32")
    opt = bpnet.Adam(0.01)
    h = net.fit(X, y, epochs=15, batch_size=16, optimizer=opt, l2=0.01)
    assert h.loss[-1] < 0.7 * h.loss[0]
    assert [tuple(m.shape) for m in opt.state["m"]] == net.shapes
    gamma = net.layers[1].gamma
    assert not np.allclose(gamma, 1.0) and not np.allclose(net.layers[3].scale, 1.0)
    # the running mean follows the hidden layer's batch means, not Adam
    net.layers[1].running_mean[...] = 0.0
    hidden = net.layers[0].forward(net.backend.asarray(X, "float32"))
    # lr 1e-30 on purpose: the weights stay, so fit says their updates round away
    with pytest.warns(bpnet.TrainingWarning, match="changed no weight"):
        net.fit(
            X, y, epochs=1, batch_size=120, optimizer=bpnet.SGD(1e-30), shuffle=False
        )
    np.testing.assert_allclose(
        net.buffers()[0], 0.1 * hidden.mean(axis=0), rtol=1e-4, atol=1e-6
    )


def test_save_and_load_keep_the_running_statistics(tmp_path, backend):
    X, y = _data(n=60)
    net = _bn_net(backend)
    net.fit(X, y, epochs=3, batch_size=8, verbose=0)
    path = bpnet.save(net, tmp_path / "bn.npz")
    again = bpnet.load(path, device=backend)
    for a, b in zip(
        net.buffers() + net.parameters(), again.buffers() + again.parameters()
    ):
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))
    assert not np.allclose(backend.to_numpy(again.buffers()[1]), 1.0)
    np.testing.assert_array_equal(
        backend.to_numpy(net.forward(X)), backend.to_numpy(again.forward(X))
    )


def test_a_model_file_without_its_buffers_is_refused(tmp_path):
    from bpnet.io import ModelFileError, read_model_file, write_model_file

    path = bpnet.save(_bn_net(), tmp_path / "bn.npz")
    arrays, meta = read_model_file(path)
    del arrays["buffer_1"]
    meta = {
        k: v
        for k, v in meta.items()
        if k not in ("format", "format_version", "bpnet_version", "created", "arrays")
    }
    write_model_file(path, arrays, meta)
    with pytest.raises(ModelFileError, match="buffer_0..buffer_1"):
        bpnet.load(path)


def test_resume_equals_uninterrupted(tmp_path, backend):
    X, y = _data(n=90)

    def net():
        return bpnet.Sequential(
            [
                bpnet.BatchNorm(),
                bpnet.Dense(5, 8),
                bpnet.BatchNorm(0.7),
                bpnet.ReLU(),
                bpnet.Scale(),
                bpnet.Dense(8, 4),
            ],
            device=backend,
            dtype="float64",
            seed=4,
        )

    def opt():
        return bpnet.Adam(0.01, schedule=bpnet.StepDecay(2, 0.5))

    kw = dict(batch_size=16, l2=0.01, validation_fraction=0.2)
    full = net()
    h_full = full.fit(X, y, epochs=4, optimizer=opt(), **kw)
    ck = tmp_path / "ck.npz"
    net().fit(X, y, epochs=2, optimizer=opt(), checkpoint=ck, **kw)
    resumed, h = bpnet.resume(ck, X, y, device=backend, epochs=4)
    assert h.loss == h_full.loss and h.val_loss == h_full.val_loss
    for a, b in zip(
        full.parameters() + full.buffers(), resumed.parameters() + resumed.buffers()
    ):
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))


@pytest.mark.parametrize("method", ["CG", "L-BFGS-B"])
def test_minimize_trains_through_the_flat_vector(method):
    X, y = _data(n=60)
    net = _bn_net()
    net.fit(X, y, epochs=1, batch_size=10, verbose=0)
    stats = [b.copy() for b in net.buffers()]
    before = net.evaluate(X, y, l2=0.1)[0]
    result = bpnet.minimize(net, X, y, l2=0.1, method=method, maxiter=40)
    assert result.fun < 0.5 * before
    assert net.evaluate(X, y, l2=0.1)[0] == pytest.approx(result.fun, rel=1e-9)
    for a, b in zip(stats, net.buffers()):  # inference mode: statistics fixed
        np.testing.assert_array_equal(a, b)


def test_a_float32_network_checks_its_gradients_in_float64():
    X, y = _data()
    net = _bn_net(dtype="float32")
    assert bpnet.check_gradients(net, X, y, l2=0.2) < 1e-7


def test_bpnet_train_batch_norm_and_resume(tmp_path, capsys):
    base = [
        "--hidden",
        "16",
        "8",
        "--batch-norm",
        "--optimizer",
        "momentum",
        "--quiet",
        "--json",
    ]
    straight, broken = tmp_path / "straight", tmp_path / "broken"
    assert train_main([*base, "--epochs", "4", "--out", str(straight)]) == 0
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])
    assert summary["test_accuracy"] > 0.9
    net = bpnet.load(straight / "model.npz")
    kinds = [type(layer).__name__ for layer in net.layers]
    assert kinds == [
        "Dense",
        "BatchNorm",
        "ReLU",
        "Dense",
        "BatchNorm",
        "ReLU",
        "Dense",
    ]
    assert train_main([*base, "--epochs", "2", "--out", str(broken)]) == 0
    ck = broken / "checkpoint.npz"
    assert train_main(["--resume", str(ck), "--epochs", "4", "--quiet"]) == 0
    again = bpnet.load(broken / "model.npz")
    for a, b in zip(
        net.parameters() + net.buffers(), again.parameters() + again.buffers()
    ):
        np.testing.assert_array_equal(a, b)
    capsys.readouterr()
    # the flag is recorded: a resumed run cannot drop or add it
    plain = tmp_path / "plain"
    assert (
        train_main(["--epochs", "1", "--hidden", "8", "--quiet", "--out", str(plain)])
        == 0
    )
    assert (
        train_main(
            ["--resume", str(plain / "checkpoint.npz"), "--epochs", "2", "--batch-norm"]
        )
        == 2
    )
    assert "--batch-norm: the checkpoint" in capsys.readouterr().err
    assert train_main(["--optimizer", "cg", "--batch-norm"]) == 2
    assert "--batch-norm: has no effect with --optimizer cg" in (
        capsys.readouterr().err
    )


@pytest.mark.cuda
def test_cuda_graph_replays_update_the_running_statistics():
    """The graph writes the buffers in place: replayed epochs end with the
    plain loop's parameters and running statistics."""
    import backends

    try:
        be = backends.get_backend("cuda")
    except backends.BackendUnavailableError as exc:
        pytest.skip(str(exc))
    X, y = _blobs(n=200)

    def run(graph):
        net = _bn_net(be)
        h = net.fit(
            X, y, epochs=4, batch_size=32, optimizer=bpnet.SGD(0.1), cuda_graph=graph
        )
        return net, h

    plain, h_plain = run(False)
    graph, h_graph = run(True)
    assert h_graph.cuda_graph and not h_plain.cuda_graph
    np.testing.assert_allclose(h_graph.loss, h_plain.loss, rtol=1e-10)
    for a, b in zip(
        plain.parameters() + plain.buffers(), graph.parameters() + graph.buffers()
    ):
        np.testing.assert_allclose(be.to_numpy(a), be.to_numpy(b), rtol=1e-10)


def test_divergence_in_the_running_statistics_restores_the_last_good_ones():
    """A huge step leaves the weights finite but a running variance infinite:
    the guard sees it, and the last good parameters and buffers come back."""
    X, y = _blobs(n=200)
    net = bpnet.Sequential(
        [
            bpnet.Dense(5, 16),
            bpnet.BatchNorm(),
            bpnet.ReLU(),
            bpnet.Dense(16, 16),
            bpnet.BatchNorm(),
            bpnet.ReLU(),
            bpnet.Dense(16, 4),
        ],
        dtype="float64",
    )
    before = [b.copy() for b in net.parameters() + net.buffers()]
    with pytest.raises(bpnet.DivergenceError, match="in epoch 1"):
        net.fit(X, y, epochs=3, batch_size=10, optimizer=bpnet.SGD(1e8))
    for a, b in zip(before, net.parameters() + net.buffers()):
        np.testing.assert_array_equal(a, b)


def test_early_stopping_restores_the_best_epoch_s_running_statistics(tmp_path):
    X, y = _blobs(n=150)
    seen = {}

    def record(epoch, logs, net):
        seen[epoch] = [b.copy() for b in net.buffers()]

    def run(epochs, checkpoint=None, callbacks=()):
        net = _bn_net(seed=2)
        with warnings.catch_warnings():
            # a run resumed past the best epoch may end worse than it began
            warnings.simplefilter("ignore", bpnet.TrainingWarning)
            h = net.fit(
                X,
                y,
                epochs=epochs,
                batch_size=16,
                optimizer=bpnet.Adam(0.01),
                validation_fraction=0.3,
                early_stopping=True,
                patience=2,
                checkpoint=checkpoint,
                resume=checkpoint is not None,
                callbacks=callbacks,
            )
        return net, h

    net, h = run(30, callbacks=[record])
    assert h.stopped_early and h.best_epoch < len(h)
    for a, b in zip(seen[h.best_epoch - 1], net.buffers()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(seen[len(h) - 1][0], net.buffers()[0])
    # stopped after the best epoch and resumed: the same end
    ck = tmp_path / "ck.npz"
    run(h.best_epoch + 1, checkpoint=ck)
    again, h2 = run(30, checkpoint=ck)
    assert h2.loss == h.loss and h2.best_epoch == h.best_epoch
    for a, b in zip(
        net.parameters() + net.buffers(), again.parameters() + again.buffers()
    ):
        np.testing.assert_array_equal(a, b)
