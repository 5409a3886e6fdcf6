import math
import os
import signal

import numpy as np
import pytest

import bpnet


def _blobs(n=120, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(k, d))
    y = np.arange(n) % k
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y


def _net(device="cpu", dtype="float32", seed=0, d=4, k=3, hidden=16):
    return bpnet.Sequential(
        [bpnet.Dense(d, hidden), bpnet.ReLU(), bpnet.Dense(hidden, k)],
        device=device,
        dtype=dtype,
        seed=seed,
    )


def _linear_problem(seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(64, 3))
    w = np.array([[1.0], [-2.0], [0.5]])
    return X, X @ w + 0.3


@pytest.mark.parametrize(
    "opt", [bpnet.SGD(lr=0.05), bpnet.Momentum(lr=0.02, momentum=0.9)]
)
def test_sgd_and_momentum_decrease_a_convex_loss(opt):
    X, t = _linear_problem()
    net = bpnet.Sequential([bpnet.Dense(3, 1)], dtype="float64", loss="mse")
    h = net.fit(X, t, epochs=30, batch_size=16, optimizer=opt)
    assert h.loss[-1] < h.loss[0] / 50
    assert h.loss[-1] <= min(h.loss[:10])
    W, b = net.parameters()
    np.testing.assert_allclose(W[:, 0], [1.0, -2.0, 0.5], atol=0.05)


def test_adam_first_step_equals_the_hand_computed_one(backend):
    p = backend.asarray(np.array([0.5, -1.0, 2.0]), "float64")
    g = backend.asarray(np.array([0.1, -3.0, 0.0]), "float64")
    lr, eps = 0.01, 1e-8
    (new,) = bpnet.Adam(lr=lr, eps=eps).step([p], [g])
    # m = 0.1 g, v = 0.001 g^2; bias-corrected: m_hat = g, v_hat = g^2
    g_h = np.array([0.1, -3.0, 0.0])
    expected = np.array([0.5, -1.0, 2.0]) - lr * g_h / (np.abs(g_h) + eps)
    np.testing.assert_allclose(backend.to_numpy(new), expected, rtol=1e-12)


def test_adam_weight_decay_is_decoupled():
    p, g = np.array([2.0]), np.array([0.0])
    (new,) = bpnet.Adam(lr=0.1, weight_decay=0.5).step([p], [g])
    assert new[0] == pytest.approx(2.0 - 0.1 * 0.5 * 2.0)


def test_nesterov_and_momentum_take_different_steps():
    p, g = [np.array([1.0])], [np.array([1.0])]
    plain, nest = bpnet.Momentum(lr=0.1), bpnet.Momentum(lr=0.1, nesterov=True)
    a, b = plain.step(p, g), nest.step(p, g)
    assert a[0][0] == pytest.approx(0.9) and b[0][0] == pytest.approx(1 - 0.1 - 0.09)


def test_schedules_set_the_learning_rate_per_epoch():
    X, y = _blobs()
    h = _net().fit(
        X, y, epochs=4, optimizer=bpnet.SGD(0.1, schedule=bpnet.StepDecay(2, 0.5))
    )
    assert h.lr == [0.1, 0.1, 0.05, 0.05]
    cos = bpnet.CosineDecay(epochs=4)
    assert [cos(1.0, e) for e in (0, 2, 4)] == pytest.approx([1.0, 0.5, 0.0])


def test_fit_converges_on_every_backend(backend):
    X, y = _blobs()
    net = _net(backend)
    h = net.fit(X, y, epochs=15, batch_size=16, optimizer="adam", lr=0.01)
    assert h.accuracy[-1] == 1.0 and h.loss[-1] < 0.1
    assert (backend.to_numpy(net.predict(X)) == y).all()


def test_same_seed_same_history_and_cpu_matches_other_backends(backend):
    X, y = _blobs()
    kw = dict(
        epochs=3, batch_size=10, optimizer="momentum", lr=0.05, validation_fraction=0.2
    )
    ref = _net("cpu", "float64", seed=4).fit(X, y, **kw)
    again = _net("cpu", "float64", seed=4).fit(X, y, **kw)
    assert ref.loss == again.loss and ref.val_loss == again.val_loss
    other = _net(backend, "float64", seed=4).fit(X, y, **kw)
    np.testing.assert_allclose(other.loss, ref.loss, rtol=1e-9)
    np.testing.assert_allclose(other.val_accuracy, ref.val_accuracy)


def test_data_is_shuffled_from_the_host_generator():
    X, y = _blobs()
    a = _net(seed=1).fit(X, y, epochs=2, batch_size=8, shuffle=False)
    b = _net(seed=1).fit(X, y, epochs=2, batch_size=8, shuffle=True)
    assert a.loss != b.loss


def test_full_batch_methods_reach_the_same_minimum(backend):
    X, y = _blobs(n=60, seed=3)
    results = {}
    for method in ("CG", "TNC", "L-BFGS-B"):
        net = bpnet.Sequential([bpnet.Dense(4, 3)], device=backend, dtype="float64")
        r = bpnet.minimize(net, X, y, l2=1.0, method=method, maxiter=500, tol=1e-12)
        results[method] = (r.fun, net.get_flat_parameters())
        assert r.fun == pytest.approx(net.loss_and_grad(X, y, l2=1.0)[0])
    funs = [f for f, _ in results.values()]
    assert max(funs) - min(funs) < 1e-7
    # softmax ignores a constant added to every bias: compare centred biases
    thetas = [
        np.concatenate([t[:12], t[12:] - t[12:].mean()]) for _, t in results.values()
    ]
    np.testing.assert_allclose(thetas[0], thetas[1], atol=1e-3)
    np.testing.assert_allclose(thetas[0], thetas[2], atol=1e-3)


def test_minimize_records_a_decreasing_curve_and_rejects_bad_methods():
    X, y = _blobs(n=60)
    net = _net(dtype="float64")
    seen = []
    r = bpnet.minimize(
        net, X, y, method="cg", maxiter=20, callback=lambda i, L: seen.append(L)
    )
    assert len(r.loss_curve) == r.nit == len(seen) <= 20
    assert r.loss_curve[-1] < r.loss_curve[0]
    with pytest.raises(ValueError, match="method: expected one of"):
        bpnet.minimize(net, X, y, method="newton")
    with pytest.raises(TypeError, match="maxiter"):
        bpnet.minimize(net, X, y, maxiter=2.5)


@pytest.mark.parametrize("method", ["CG", "TNC", "L-BFGS-B"])
def test_minimize_counts_evaluations_also_when_it_stops_at_maxiter(method):
    X, y = _blobs(n=60)
    net = _net(dtype="float64")
    calls = []
    original = net._loss_and_grad

    def counted(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    net._loss_and_grad = counted
    r = bpnet.minimize(net, X, y, method=method, maxiter=5)
    assert r.nit == 5  # stopped by maxiter, not converged
    assert r.nfev == len(calls) >= 5


def test_early_stopping_restores_the_best_weights():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=40)  # pure noise: validation loss soon rises
    Xv = rng.normal(size=(40, 4)).astype(np.float32)
    yv = rng.integers(0, 3, size=40)
    net = _net(hidden=64)
    h = net.fit(
        X,
        y,
        epochs=200,
        batch_size=8,
        optimizer="adam",
        lr=0.01,
        validation_data=(Xv, yv),
        early_stopping=True,
        patience=5,
    )
    assert h.stopped_early and len(h) < 200
    best = int(np.argmin(h.val_loss))
    assert h.best_epoch == best + 1 and len(h) == best + 1 + 5
    assert net.evaluate(Xv, yv)[0] == pytest.approx(h.val_loss[best], rel=1e-5)


def test_nan_loss_stops_training_and_keeps_the_last_good_weights():
    X, y = _blobs()
    net = _net()
    net.fit(X, y, epochs=1)
    good = [p.copy() for p in net.parameters()]
    with pytest.raises(bpnet.DivergenceError, match="smaller learning rate") as info:
        net.fit(X * 1e3, y, epochs=3, optimizer="sgd", lr=1e4)
    assert len(info.value.history) == 0
    for a, b in zip(good, net.parameters()):
        np.testing.assert_array_equal(a, b)


def test_callbacks_run_each_epoch_and_can_stop_training():
    X, y = _blobs()
    seen = []

    class Stopper:
        def on_epoch_end(self, epoch, logs, net):
            seen.append((epoch, round(logs["loss"], 6)))
            return epoch == 2

    h = _net().fit(X, y, epochs=10, callbacks=[Stopper()])
    assert [e for e, _ in seen] == [0, 1, 2] and len(h) == 3
    assert [L for _, L in seen] == [round(v, 6) for v in h.loss]


def test_verbose_prints_one_line_per_epoch():
    X, y = _blobs()
    lines = []
    _net().fit(
        X, y, epochs=3, verbose=1, validation_fraction=0.25, print_fn=lines.append
    )
    assert len(lines) == 3 and lines[0].startswith("Epoch 1/3 - loss: ")
    assert "val_accuracy" in lines[2]


def test_progress_bar_runs(capsys):
    X, y = _blobs()
    h = _net().fit(X, y, epochs=2, progress=True)
    assert len(h) == 2


def test_ctrl_c_keeps_the_weights_of_the_last_completed_step():
    X, y = _blobs()
    net = _net()

    class Interrupting(bpnet.SGD):
        def update(self, params, grads):
            super().update(params, grads)
            if self.t == 2:  # the third step, before fit counts it
                os.kill(os.getpid(), signal.SIGINT)  # arrives mid-step
                self.after_third = [p.copy() for p in params]

    opt = Interrupting(lr=0.1)
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=5, batch_size=10, optimizer=opt)
    assert opt.t == 3
    for a, b in zip(opt.after_third, net.parameters()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "kwargs, err, match",
    [
        (dict(batch_size=0), ValueError, "batch_size: expected an integer >= 1, got 0"),
        (dict(epochs=-1), ValueError, "epochs: expected an integer >= 0, got -1"),
        (dict(lr=0.0), ValueError, "lr: expected a finite number > 0"),
        (dict(lr=math.nan), ValueError, "lr: expected a finite number > 0"),
        (dict(optimizer="no-such-rule"), ValueError, "optimizer: expected"),
        (dict(l2=-1), ValueError, "l2"),
        (dict(validation_fraction=1.0), ValueError, "validation_fraction"),
        (dict(early_stopping=True), ValueError, "early_stopping: needs validation"),
        (dict(callbacks=[3]), TypeError, "callbacks"),
        (dict(validation_data=(1,)), ValueError, "validation_data"),
    ],
)
def test_bad_fit_arguments(kwargs, err, match):
    X, y = _blobs()
    with pytest.raises(err, match=match):
        _net().fit(X, y, **kwargs)


def test_evaluate_matches_loss_and_grad():
    X, y = _blobs()
    net = _net(dtype="float64")
    L, acc = bpnet.evaluate(net, X, y, batch_size=7)
    assert L == pytest.approx(net.loss_and_grad(X, y)[0], rel=1e-12)
    assert acc == pytest.approx((np.asarray(net.predict(X)) == y).mean())


def test_out_of_memory_suggests_a_smaller_batch(monkeypatch):
    X, y = _blobs()
    net = _net()
    before = [p.copy() for p in net.parameters()]
    calls = []

    def exhausted(Z, T, need_grad=True):
        calls.append(1)
        raise MemoryError("out of memory allocating 4 GiB")

    monkeypatch.setattr(net.loss, "loss_and_grad", exhausted)
    with pytest.raises(MemoryError, match="batch_size: .* smaller batch_size"):
        net.fit(X, y, epochs=2, batch_size=64)
    assert calls
    for a, b in zip(before, net.parameters()):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("l2", [0.0, 0.1])
def test_sgd_scaling_gradients_in_place_gives_the_plain_rule_s_weights(backend, l2):
    # fit lets SGD scale Dense's fresh gradients in place; a subclass with its
    # own update takes the plain rule, which must land on the same weights
    class PlainSGD(bpnet.SGD):
        def update(self, params, grads):
            w = self._prepare(params)
            for i, g in enumerate(grads):
                params[i] = w.sub(params[i], self._lr * g)

    X, y = _blobs()
    nets = [_net(device=backend.name, dtype="float64") for _ in range(2)]
    for net, opt in zip(nets, (bpnet.SGD(lr=0.1), PlainSGD(lr=0.1))):
        net.fit(X, y, epochs=3, batch_size=32, optimizer=opt, l2=l2, verbose=0)
    for a, b in zip(*(net.parameters() for net in nets)):
        np.testing.assert_allclose(
            backend.to_numpy(a), backend.to_numpy(b), rtol=1e-12, atol=1e-14
        )


def test_fit_never_writes_into_a_custom_layer_s_gradient_arrays():
    class Scale(bpnet.nn.layers.Layer):
        """x * s, whose backward hands out the same gradient array each step."""

        def build(self, n_in, model):
            super().build(n_in, model)
            self.s = model.backend.asarray(np.ones(n_in), model.dtype)
            self.kept = model.backend.asarray(np.full(n_in, 0.5), model.dtype)
            self.params, self.grads = [self.s], [None]
            return n_in

        def forward(self, x, training=False):
            return x * self.s

        def backward(self, dy, need_dx=True):
            self.grads = [self.kept]
            return dy * self.s

    X, y = _blobs()
    scale = Scale()
    net = bpnet.Sequential(
        [bpnet.Dense(4, 4), scale, bpnet.Dense(4, 3)], dtype="float64", seed=0
    )
    net.fit(X, y, epochs=2, batch_size=40, optimizer=bpnet.SGD(lr=0.1), verbose=0)
    np.testing.assert_array_equal(scale.kept, np.full(4, 0.5))
    # 2 epochs of 3 steps, each s -= 0.1 * 0.5
    np.testing.assert_allclose(scale.s, np.full(4, 1.0 - 6 * 0.05), rtol=1e-12)


def test_a_schedule_that_reaches_zero_names_itself():
    X, y = _blobs()
    opt = bpnet.SGD(lr=0.1, schedule=bpnet.CosineDecay(epochs=2))
    with pytest.raises(ValueError, match=r"schedule: CosineDecay.* at epoch 3"):
        _net().fit(X, y, epochs=4, optimizer=opt, verbose=0)


def test_adam_weight_decay_skips_what_the_mask_leaves_out():
    W, b = np.ones((3, 2)), np.ones(2)
    opt = bpnet.Adam(lr=0.1, weight_decay=0.5)
    opt.decay_mask = [True, False]
    new_W, new_b = opt.step([W, b], [np.zeros_like(W), np.zeros_like(b)])
    np.testing.assert_allclose(new_W, 1.0 - 0.5 * 0.1)
    np.testing.assert_array_equal(new_b, 1.0)


def test_fit_decays_the_weights_only():
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    net = bpnet.Sequential(
        [bpnet.Dense(3, 4), bpnet.BatchNorm(), bpnet.ReLU(), bpnet.Dense(4, 2)],
        dtype="float64",
    )
    opt = bpnet.Adam(lr=1e-3, weight_decay=0.1)
    net.fit(X, y, epochs=1, optimizer=opt)
    # W1, b1, gamma, beta, W2, b2
    assert opt.decay_mask == [True, False, False, False, True, False]
