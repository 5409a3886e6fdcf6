"""fit's arguments that would fail late, or silently: checked before any
training starts."""

import numpy as np
import pytest

import bpnet


def _problem():
    rng = np.random.default_rng(0)
    X = rng.random((40, 4)).astype(np.float32)
    return X, np.arange(40) % 3


def _net():
    return bpnet.Sequential(
        [bpnet.Dense(4, 8), bpnet.ReLU(), bpnet.Dense(8, 3)], seed=0
    )


def _untouched(net, fit_kwargs, error, match):
    X, y = _problem()
    before = [np.array(p) for p in net.parameters()]
    with pytest.raises(error, match=match):
        net.fit(X, y, epochs=2, **fit_kwargs)
    for p, q in zip(before, net.parameters()):
        np.testing.assert_array_equal(p, q)  # refused before the first step


def test_a_checkpoint_that_is_a_folder_is_refused_before_training(tmp_path):
    _untouched(_net(), {"checkpoint": tmp_path}, ValueError, "checkpoint: .* folder")
    _untouched(_net(), {"checkpoint": "/tmp"}, ValueError, "checkpoint: '/tmp' is a")


def test_a_checkpoint_in_a_missing_folder_is_refused_before_training(tmp_path):
    path = tmp_path / "no" / "such" / "ck.npz"
    _untouched(_net(), {"checkpoint": path}, ValueError, "folder .* does not exist")
    assert not (tmp_path / "no").exists()


def test_a_checkpoint_that_is_a_link_is_refused_before_training(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "ck.npz"
    link.symlink_to(victim)
    _untouched(_net(), {"checkpoint": link}, ValueError, "ck.npz.* is a symbolic link")
    assert victim.read_text() == "precious" and link.is_symlink()


@pytest.mark.parametrize("value", ["no", 0, 1, None, "False", np.array([True])])
def test_shuffle_takes_only_booleans(value):
    _untouched(_net(), {"shuffle": value}, TypeError, "shuffle: expected True or")


def test_shuffle_accepts_numpy_booleans():
    X, y = _problem()
    assert len(_net().fit(X, y, epochs=1, shuffle=np.bool_(False))) == 1


def test_masked_arrays_are_refused():
    X, y = _problem()
    masked = np.ma.masked_array(X, mask=X > 0.9)
    net = _net()
    with pytest.raises(TypeError, match=r"X: masked arrays \(numpy.ma\)"):
        net.fit(masked, y, epochs=1)
    with pytest.raises(TypeError, match=r"y: masked arrays"):
        net.fit(X, np.ma.masked_array(y, mask=y == 2), epochs=1)
    with pytest.raises(TypeError, match="X: masked arrays"):
        net.predict(masked)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda X, y: (X[:, :3], y), "validation_data X_val: expected 4 features"),
        (
            lambda X, y: (X, y[:5]),
            "validation_data y_val: validation_data X_val has 40 samples but "
            "validation_data y_val has 5",
        ),
        (lambda X, y: (X * np.nan, y), "validation_data X_val: contains 160 NaN"),
        (lambda X, y: (X, y + 5), "validation_data y_val: expected class labels"),
    ],
)
def test_bad_validation_data_is_named_as_such(make, match):
    # it was reported as X or y, the training data's names
    X, y = _problem()
    _untouched(_net(), {"validation_data": make(X, y)}, ValueError, match)


def test_fit_docstring_lists_every_optimizer_and_says_why_its_defaults():
    import bpnet
    from bpnet.cli.parsing import build_parser
    from bpnet.train.optimizers import OPTIMIZERS

    doc = " ".join(bpnet.fit.__doc__.split())
    for name in OPTIMIZERS.names():
        assert f'"{name}"' in doc
    assert 'default "sgd"' in doc and "epochs : int, default 10" in doc
    assert "``bpnet-train``'s (Adam, 40 epochs)" in doc
    assert bpnet.Sequential.fit.__doc__ == bpnet.fit.__doc__
    help_text = " ".join(build_parser().format_help().split())
    assert "bpnet.fit's sgd for 10 is the notebooks' plain descent" in help_text
