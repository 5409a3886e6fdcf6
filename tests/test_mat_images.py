"""ex4's .mat images are column-major: ``bpnet-train --data ex4.mat --out``
draws them (samples.png, first_layer.png) upright, in MATLAB's order."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("matplotlib")
scipy_io = pytest.importorskip("scipy.io")

import bpnet.plots  # noqa: E402
from bpnet.cli.train import train_main  # noqa: E402


def _ex4_file(path, n=60, seed=0):
    """n 20x20 images, each flattened column-major into a row of X as
    MATLAB stores ex4data1.mat, with ex4's labels 1..10."""
    rng = np.random.default_rng(seed)
    images = rng.random((n, 20, 20))
    images[:, :4, :] += 2.0  # a bright top band: upright and on its side differ
    X = images.reshape(n, 400, order="F")
    y = (np.arange(n) % 10 + 1).reshape(-1, 1)
    scipy_io.savemat(path, {"X": X, "y": y})
    lo, hi = X.min(), X.max()
    return ((images - lo) / (hi - lo)).astype(np.float32)


def test_ex4_images_reach_the_plots_upright(tmp_path, monkeypatch):
    images = _ex4_file(tmp_path / "ex4.mat")
    drawn = {}
    real = bpnet.plots.as_images

    def spy(X, name, image_shape, order):
        out = real(X, name, image_shape, order)
        drawn[name] = out[0]
        return out

    monkeypatch.setattr(bpnet.plots, "as_images", spy)
    out = tmp_path / "run"
    args = ["--data", str(tmp_path / "ex4.mat"), "--hidden", "5", "--epochs", "1"]
    assert train_main([*args, "--quiet", "--out", str(out)]) == 0

    # the sample grid: each image drawn is one of the file's, upright
    sample = drawn["X"][0]
    flat = images.reshape(len(images), -1)
    i = int(np.argmin(np.abs(flat - sample.reshape(-1)).sum(axis=1)))
    np.testing.assert_allclose(sample, images[i], atol=1e-6)
    assert sample[:4, :].mean() > sample[4:, :].mean() + 0.3  # the band on top
    # the first layer: unit j's 400 weights unravelled column-major
    W = np.load(out / "first_layer.npy")
    units = drawn["W.T"]
    for j in range(W.shape[1]):
        np.testing.assert_allclose(units[j], W[:, j].reshape(20, 20, order="F"))
