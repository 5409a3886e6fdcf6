"""Divergence is caught wherever it happens: in the loss, in the weights after
the last step, with a checkpoint, and as a loss that ends above its start."""

import subprocess
import sys
import warnings

import numpy as np
import pytest

import bpnet
from bpnet.train.history import TrainingWarning


def _blobs(n=120, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(k, d))
    y = np.arange(n) % k
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y


def _net(seed=0):
    return bpnet.Sequential(
        [bpnet.Dense(4, 16), bpnet.ReLU(), bpnet.Dense(16, 3)], seed=seed
    )


def _assert_restored(net, before):
    for a, b in zip(before, net.parameters()):
        np.testing.assert_array_equal(a, b)


def test_inf_weights_after_the_only_step_raise_and_are_restored():
    # the one step's loss (computed before its update) is finite; the update
    # leaves Inf weights that nothing read before the run ended
    X, y = _blobs()
    net = _net()
    before = [p.copy() for p in net.parameters()]
    with pytest.raises(bpnet.DivergenceError, match="weights") as info:
        net.fit(X * 1000, y, epochs=1, batch_size=10**6, optimizer="sgd", lr=1e36)
    _assert_restored(net, before)
    assert "lr=0.1" in str(info.value) and "e+35" not in str(info.value)


def test_huge_but_finite_weights_are_divergence_too():
    # lr 3e38 leaves float32 weights near 1e37: finite, but the next forward
    # pass overflows to NaN
    X, y = _blobs()
    net = _net()
    before = [p.copy() for p in net.parameters()]
    with pytest.raises(bpnet.DivergenceError, match="weights"):
        net.fit(X, y, epochs=1, batch_size=2000, optimizer="sgd", lr=3e38)
    _assert_restored(net, before)


def test_divergence_in_a_later_epoch_restores_the_epoch_before(tmp_path, monkeypatch):
    from bpnet.train.optimizers import OPTIMIZERS

    X, y = _blobs()
    net = _net()
    after_two = []

    class Blowup(bpnet.SGD):
        def update(self, params, grads):
            super().update(params, grads)
            if self.t == 2 * 4 + 3:  # the last step of the third epoch
                params[0] *= 1e30

    # registered for this test only: a checkpoint must be able to rebuild it
    monkeypatch.setitem(OPTIMIZERS._classes, "Blowup", Blowup)

    def keep(epoch, logs, net):
        if epoch == 1:
            after_two.extend(p.copy() for p in net.parameters())

    ck = tmp_path / "ck.npz"
    with pytest.raises(bpnet.DivergenceError, match="epoch 3"):
        net.fit(
            X,
            y,
            epochs=5,
            batch_size=30,
            optimizer=Blowup(0.1),
            callbacks=[keep],
            checkpoint=ck,
        )
    _assert_restored(net, after_two)
    _, _, training = bpnet.io.load_checkpoint(ck)
    assert training["epoch"] == 2


def test_divergence_with_a_checkpoint_is_no_plain_value_error(tmp_path):
    X, y = _blobs()
    net = _net()
    ck = tmp_path / "ck.npz"
    net.fit(X, y, epochs=2, checkpoint=ck)
    before = [p.copy() for p in net.parameters()]
    with pytest.raises(bpnet.DivergenceError):
        net.fit(
            X * 1000,
            y,
            epochs=1,
            batch_size=10**6,
            optimizer="sgd",
            lr=1e36,
            checkpoint=ck,
        )
    _assert_restored(net, before)
    saved, _, training = bpnet.io.load_checkpoint(ck)  # the last good file
    assert training["epoch"] == 2
    assert all(np.isfinite(np.asarray(p)).all() for p in saved.parameters())


@pytest.mark.parametrize(
    "lr, hint",
    [(0.5, "lr=0.05"), (0.37, "lr=0.04"), (3e-3, "lr=0.0003"), (1e4, "lr=0.1")],
)
def test_the_hint_is_a_tenth_of_the_rate_rounded_and_never_absurd(lr, hint):
    from bpnet.train.guard import suggest_lr

    assert f"lr={suggest_lr(bpnet.SGD(lr))}" == hint
    assert suggest_lr(bpnet.Adam(50.0)) == "0.001"  # Adam's own default


def test_a_loss_that_ends_above_its_start_warns_with_the_numbers():
    from bpnet.data import load_digits

    ds = load_digits()
    net = bpnet.Sequential(
        [bpnet.Dense(64, 128), bpnet.ReLU(), bpnet.Dense(128, 10)], seed=0
    )
    with pytest.warns(TrainingWarning, match=r"rose from \d+\.\d+ .* to \d+") as rec:
        h = net.fit(ds.X_train, ds.y_train, epochs=5, optimizer="sgd", lr=1000)
    assert len(h) == 5 and "lr=0.1" in str(rec[0].message)
    assert issubclass(TrainingWarning, UserWarning)


def test_a_run_that_learns_does_not_warn():
    X, y = _blobs()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        _net().fit(X, y, epochs=3)
        _net().fit(X, y, epochs=0)


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "bpnet.cli.train", *args],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_divergence_is_one_line_exit_2_and_no_files(tmp_path):
    out = tmp_path / "D"
    proc = _cli(
        "--optimizer", "sgd", "--lr", "3e38", "--batch-size", "2000", "--epochs", "1",
        "--out", str(out),
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bpnet-train: error: training div")
    assert "lr=0.1" in lines[0]
    assert not (out / "model.npz").exists() and not (out / "checkpoint.npz").exists()


def test_cli_warns_when_the_loss_ends_above_its_start():
    proc = _cli("--optimizer", "sgd", "--lr", "1000", "--epochs", "5", "--quiet")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr  # one line, like the CLI's errors
    assert lines[0].startswith("bpnet-train: warning: training made the loss worse")
    assert "lr=0.1" in lines[0]


# --- the full-batch solvers (scipy's CG, TNC, L-BFGS-B) -------------------------
@pytest.mark.parametrize("method", ["cg", "tnc", "lbfgs"])
def test_full_batch_nan_from_the_start_raises_and_keeps_the_weights(method):
    X, y = _blobs()
    net = _net()
    before = [np.array(p) for p in net.parameters()]
    with pytest.raises(bpnet.DivergenceError, match=f"the {method} solver") as info:
        bpnet.minimize(net, X, y, l2=1e300, method=method, maxiter=5)
    assert "smaller l2" in str(info.value) and "starting weights" in str(info.value)
    _assert_restored(net, before)


@pytest.mark.parametrize("method", ["cg", "tnc", "lbfgs"])
def test_full_batch_nan_later_restores_the_lowest_finite_loss(method):
    X, y = _blobs()
    net = _net()
    seen = []

    def objective():  # finite for 6 evaluations, then NaN everywhere
        loss, grads = net.loss_and_grad(X, y)
        if len(seen) >= 6:
            return float("nan"), [g * float("nan") for g in grads]
        seen.append((loss, net.get_flat_parameters()))
        return loss, grads

    with pytest.raises(bpnet.DivergenceError, match="lowest finite loss"):
        bpnet.minimize(net, X, y, method=method, maxiter=50, objective=objective)
    best = min(seen, key=lambda s: s[0])
    np.testing.assert_array_equal(net.get_flat_parameters(), best[1])


def test_cli_full_batch_divergence_is_one_line_exit_2_and_no_model(tmp_path):
    out = tmp_path / "D"
    proc = _cli(
        "--optimizer", "cg", "--l2", "1e300", "--epochs", "3", "--out", str(out)
    )
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bpnet-train: error: training div")
    assert not (out / "model.npz").exists()


# --- silent nonsense gets a word ----------------------------------------------------
def _warnings_of(X, y, **kw):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            _net().fit(X, y, epochs=2, **kw)
        except bpnet.DivergenceError:  # the warning came first, before the step
            pass
    return [str(w.message) for w in caught if w.category is TrainingWarning]


@pytest.mark.parametrize("scale", [1e30, 1e7])
def test_inputs_far_outside_the_unit_scale_warn_to_standardise(scale):
    X, y = _blobs()
    said = _warnings_of(X * np.float32(scale), y)
    assert any(s.startswith("X: values as large as") for s in said), said
    assert any("standardise X" in s for s in said)
    assert not any(s.startswith("X:") for s in _warnings_of(X, y))


@pytest.mark.parametrize("value", [0.0, 0.5])
def test_identical_rows_warn_that_there_is_no_signal(value):
    X, y = _blobs()
    said = _warnings_of(np.full_like(X, value), y)
    assert any("training rows looked at are the same" in s for s in said), said


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
def test_a_rate_whose_updates_round_away_warns(optimizer):
    X, y = _blobs()
    said = _warnings_of(X, y, optimizer=optimizer, lr=1e-45)
    assert any(s.startswith("training changed no weight in epoch 1") for s in said)
    assert not any("changed no weight" in s for s in _warnings_of(X, y, lr=0.01))


def test_cli_says_when_the_rate_rounds_away():
    proc = _cli("--optimizer", "sgd", "--lr", "1e-45", "--epochs", "1", "--quiet")
    assert proc.returncode == 0
    assert "bpnet-train: warning: training changed no weight" in proc.stderr
