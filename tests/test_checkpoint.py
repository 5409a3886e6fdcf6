"""Checkpoints: a run stopped and resumed ends where an unbroken run ends."""

import subprocess
import sys
import textwrap

import numpy as np
import pytest

import bpnet


def _data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(150, 6)).astype(np.float32), rng.integers(0, 3, 150)


def _net(device="cpu", seed=5):
    return bpnet.Sequential(
        [bpnet.Dense(6, 16), bpnet.ReLU(), bpnet.Dropout(0.2), bpnet.Dense(16, 3)],
        device=device,
        seed=seed,
    )


def _opt():
    return bpnet.Adam(0.01, schedule=bpnet.StepDecay(2, 0.5))


KW = dict(batch_size=16, validation_fraction=0.2)


def test_resume_equals_uninterrupted(tmp_path, backend):
    if backend.name.startswith("cuda"):
        pytest.skip("CuPy's dropout generator state is not exported")
    X, y = _data()
    full = _net(backend)
    h_full = full.fit(X, y, epochs=5, optimizer=_opt(), **KW)

    ck = tmp_path / "ck.npz"
    _net(backend).fit(X, y, epochs=2, optimizer=_opt(), checkpoint=ck, **KW)
    net, h = bpnet.resume(ck, X, y, device=backend, epochs=5)
    assert h.loss == h_full.loss and len(h) == 5
    for a, b in zip(full.parameters(), net.parameters()):
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))


def test_fit_resume_flag_continues_from_the_file(tmp_path):
    X, y = _data()
    ck = tmp_path / "run.npz"
    _net().fit(X, y, epochs=3, optimizer=_opt(), checkpoint=ck, **KW)
    again = _net()
    h = again.fit(X, y, epochs=4, optimizer=_opt(), checkpoint=ck, resume=True, **KW)
    assert len(h) == 4 and h.lr == [0.01, 0.01, 0.005, 0.005]
    full = _net()
    full.fit(X, y, epochs=4, optimizer=_opt(), **KW)
    for a, b in zip(full.parameters(), again.parameters()):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_loads_as_a_model(tmp_path):
    X, y = _data()
    net = _net()
    net.fit(X, y, epochs=1, checkpoint=tmp_path / "c.npz")
    loaded = bpnet.load(tmp_path / "c.npz")
    np.testing.assert_array_equal(loaded.forward(X), net.forward(X))


def test_resume_refuses_a_plain_model_file_and_a_missing_checkpoint_path(tmp_path):
    X, y = _data()
    net = _net()
    bpnet.save(net, tmp_path / "m.npz")
    with pytest.raises(ValueError, match="is a model file, not a checkpoint"):
        bpnet.resume(tmp_path / "m.npz", X, y)
    with pytest.raises(ValueError, match="resume: needs checkpoint"):
        net.fit(X, y, resume=True)


def test_resume_refuses_a_checkpoint_of_another_shape(tmp_path):
    X, y = _data()
    other = bpnet.Sequential([bpnet.Dense(6, 3)])
    other.fit(X, y, epochs=1, checkpoint=tmp_path / "o.npz")
    with pytest.raises(ValueError, match="parameter shapes"):
        _net().fit(X, y, epochs=2, checkpoint=tmp_path / "o.npz", resume=True)


def test_sigkill_while_writing_leaves_the_previous_checkpoint(tmp_path):
    """A real process, killed with SIGKILL in the middle of a checkpoint write."""
    ck = tmp_path / "ck.npz"
    script = textwrap.dedent(f"""
        import os, signal
        import numpy as np
        import bpnet
        from bpnet.io import modelfile as _modelfile
        rng = np.random.default_rng(0)
        X = rng.normal(size=(150, 6)).astype(np.float32)
        y = rng.integers(0, 3, 150)
        net = bpnet.Sequential([bpnet.Dense(6, 16), bpnet.ReLU(), bpnet.Dense(16, 3)])
        real = _modelfile.np.lib.format.write_array
        calls = []
        def dying(*args, **kwargs):
            calls.append(1)
            if len(calls) > 6:  # the second checkpoint, half written
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)
        _modelfile.np.lib.format.write_array = dying
        net.fit(X, y, epochs=5, checkpoint={str(ck)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert proc.returncode == -9, proc.stderr.decode()
    net, _, training = bpnet.io.load_checkpoint(ck)
    assert training["epoch"] == 1
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "ck.npz"]
    X, y = _data()
    h = _net_plain().fit(X, y, epochs=3, checkpoint=ck, resume=True)
    assert len(h) == 3 and h.loss[1:] != []
    assert all(name.startswith(".") or "tmp" in name for name in leftovers)


def _net_plain():
    return bpnet.Sequential([bpnet.Dense(6, 16), bpnet.ReLU(), bpnet.Dense(16, 3)])


def _noisy(seed=0):
    # pure noise: the validation loss soon rises, so early stopping fires
    rng = np.random.default_rng(seed)
    return rng.normal(size=(120, 6)).astype(np.float32), rng.integers(0, 3, 120)


ES = dict(batch_size=16, validation_fraction=0.25, early_stopping=True, patience=3)


def _es_net():
    return bpnet.Sequential(
        [bpnet.Dense(6, 64), bpnet.ReLU(), bpnet.Dense(64, 3)], seed=1
    )


@pytest.mark.parametrize("stop_after", [1, 2, 3, 4])
def test_resume_with_early_stopping_equals_an_unbroken_run(tmp_path, stop_after):
    X, y = _noisy()
    full = _es_net()
    h_full = full.fit(X, y, epochs=40, optimizer=bpnet.Adam(0.05), **ES)
    assert h_full.stopped_early and len(h_full) < 40
    assert stop_after < len(h_full)  # interrupted before the stop, mid-patience

    ck = tmp_path / "ck.npz"
    _es_net().fit(
        X, y, epochs=stop_after, optimizer=bpnet.Adam(0.05), checkpoint=ck, **ES
    )
    net, h = bpnet.resume(ck, X, y, epochs=40)
    assert h.stopped_early and len(h) == len(h_full) and h.loss == h_full.loss
    assert h.best_epoch == h_full.best_epoch
    for a, b in zip(full.parameters(), net.parameters()):
        np.testing.assert_array_equal(a, b)  # the best epoch's weights, both


def test_a_resumed_run_warns_about_its_loss_as_the_unbroken_run_does(tmp_path):
    """The loss trend compares a run's end with the start of the whole run,
    kept in the checkpoint, not with the epoch it was resumed from: with the
    same end weights, the resumed run says what the unbroken one says."""
    import warnings

    from bpnet.data import load_digits

    ds = load_digits()

    def net():
        layers = [bpnet.Dense(64, 32), bpnet.ReLU(), bpnet.Dense(32, 10)]
        return bpnet.Sequential(layers, seed=0)

    kw = dict(batch_size=64, optimizer="sgd", lr=2.0, patience=3)
    kw.update(validation_fraction=0.2, early_stopping=True)

    def fit(model, epochs, **more):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            h = model.fit(ds.X_train, ds.y_train, epochs=epochs, **kw, **more)
        return h, [str(w.message) for w in caught]

    full = net()
    h_full, said_full = fit(full, 30)
    ck = tmp_path / "ck.npz"
    fit(net(), 3, checkpoint=ck)  # the loss rose after epoch 3 in this run
    resumed = net()
    h, said = fit(resumed, 30, checkpoint=ck, resume=True)
    assert h.loss == h_full.loss
    for a, b in zip(full.parameters(), resumed.parameters()):
        np.testing.assert_array_equal(a, b)
    assert said == said_full


def test_resuming_a_run_that_stopped_early_trains_nothing_more(tmp_path):
    X, y = _noisy()
    ck = tmp_path / "ck.npz"
    done = _es_net()
    h_done = done.fit(X, y, epochs=40, optimizer=bpnet.Adam(0.05), checkpoint=ck, **ES)
    assert h_done.stopped_early
    net, h = bpnet.resume(ck, X, y, epochs=60)
    assert len(h) == len(h_done) and h.stopped_early
    for a, b in zip(done.parameters(), net.parameters()):
        np.testing.assert_array_equal(a, b)  # the best weights, restored


@pytest.mark.parametrize("dropout", [0.0, 0.2])
def test_a_checkpoint_of_another_array_library_resumes(tmp_path, dropout, recwarn):
    # torch's generator state once reached NumPy's: "state must be a dict"
    pytest.importorskip("torch")
    X, y = _data()
    layers = [
        bpnet.Dense(6, 16),
        bpnet.ReLU(),
        bpnet.Dropout(dropout),
        bpnet.Dense(16, 3),
    ]
    net = bpnet.Sequential(layers, device="torch", seed=5)
    ck = tmp_path / "ck.npz"
    net.fit(X, y, epochs=2, optimizer=_opt(), checkpoint=ck, verbose=0, **KW)
    resumed, history = bpnet.resume(ck, X, y, device="cpu", epochs=4)
    assert resumed.backend.name == "cpu" and len(history) == 4
    said = [
        str(w.message)
        for w in recwarn
        if "dropout's masks start again" in str(w.message)
    ]
    assert len(said) == (1 if dropout else 0)


@pytest.mark.parametrize("override", [{"lr": 0.5}, {"optimizer": "sgd"}])
def test_resume_refuses_another_optimizer(tmp_path, override):
    X, y = _data()
    ck = tmp_path / "ck.npz"
    _net().fit(X, y, epochs=1, optimizer=_opt(), checkpoint=ck, verbose=0, **KW)
    name = next(iter(override))
    with pytest.raises(ValueError, match=f"{name}: the checkpoint's optimizer goes on"):
        bpnet.resume(ck, X, y, epochs=3, **override)


# --- the data a checkpoint was trained on ------------------------------------
def test_resume_on_other_data_is_refused_naming_x_or_y(tmp_path):
    from bpnet.io.fingerprint import DataMismatchError

    X, y = _data()
    ck = tmp_path / "ck.npz"
    _net().fit(X, y, epochs=2, optimizer=_opt(), checkpoint=ck, **KW)
    permuted = np.random.default_rng(1).permutation(y)
    with pytest.raises(DataMismatchError, match=r"^y: the checkpoint .* int64 of sh"):
        bpnet.resume(ck, X, permuted, epochs=4)
    other = X.copy()
    other[75, 3] += 1.0
    net = _net()
    before = [p.copy() for p in net.parameters()]
    with pytest.raises(DataMismatchError, match=r"^X: .*float32 of shape \(150x6\)"):
        net.fit(X=other, y=y, epochs=4, optimizer=_opt(), checkpoint=ck, resume=True)
    for a, b in zip(before, net.parameters()):  # refused before anything changed
        np.testing.assert_array_equal(a, b)
    with pytest.raises(DataMismatchError, match=r"^X: .*float64 of shape"):
        bpnet.resume(ck, X.astype(np.float64), y, epochs=4)
    bpnet.resume(ck, X, y, epochs=3)  # the same data goes on


def test_a_checkpoint_without_a_fingerprint_resumes_with_a_warning(tmp_path):
    from bpnet.train import checkpoint as ckpt

    X, y = _data()
    ck = tmp_path / "ck.npz"
    _net().fit(X, y, epochs=1, optimizer=_opt(), checkpoint=ck, **KW)
    net, _, training = bpnet.io.load_checkpoint(ck)
    opt = _opt()
    opt.step(net.parameters(), [p * 0 for p in net.parameters()])
    ckpt.save_checkpoint(ck, net, opt, bpnet.History(), 0, training["fit"])
    with pytest.warns(bpnet.TrainingWarning, match="records no fingerprint"):
        bpnet.resume(ck, X, y, epochs=2)


def test_a_large_memory_map_is_fingerprinted_from_sampled_rows(tmp_path, backend):
    from bpnet.io import fingerprint as fp

    X = np.random.default_rng(0).normal(size=(40_000, 128)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)  # 20 MB, above what is hashed whole
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    record = fp.fingerprint(mapped)
    assert 0 < record["sampled_rows"] < 40_000
    assert record["file"]["size"] == (tmp_path / "X.npy").stat().st_size
    # a device copy samples the same rows: the same fingerprint
    on_device = fp.fingerprint(backend.asarray(X), backend)
    assert {k: on_device[k] for k in ("shape", "dtype", "blake2b")} == {
        k: record[k] for k in ("shape", "dtype", "blake2b")
    }
    X[-1, 0] += 1.0  # the last row is always among the sampled ones
    assert fp.fingerprint(X)["blake2b"] != record["blake2b"]


def test_a_damaged_fingerprint_is_one_error_naming_its_field():
    from bpnet.io.fingerprint import check_record

    good = {"shape": [3, 2], "dtype": "float32", "blake2b": "0" * 32}
    assert check_record({"X": good, "y": good}) is None
    assert check_record({"X": good, "y": {**good, "shape": [-1]}})[0] == ".y.shape"
    assert check_record({"X": {**good, "blake2b": "zz"}, "y": good})[0] == (
        ".X.blake2b"
    )
    assert check_record([1])[0] == ""
