"""AdaGrad: the update rule against a NumPy reference and torch.optim.Adagrad,
on every backend (tests/test_registry.py resumes it from checkpoints)."""

import numpy as np
import pytest

import bpnet
from bpnet.train.optimizers import OPTIMIZERS, AdaGrad


def _reference(p, grads, lr, eps):
    """Deep Learning from Scratch's AdaGrad.update, in float64."""
    p, h = p.copy(), np.zeros_like(p)
    for g in grads:
        h += g * g
        p -= lr * g / (np.sqrt(h) + eps)
    return p, h


def _problem(seed=0, steps=5):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(4, 3))
    return p, [
        rng.normal(size=(4, 3)) * 10.0 ** rng.integers(-3, 2) for _ in range(steps)
    ]


def test_adagrad_steps_equal_the_numpy_reference(backend):
    p0, grads = _problem()
    opt = AdaGrad(lr=0.05, eps=1e-7)
    params = [backend.asarray(p0, "float64")]
    for g in grads:
        params = opt.step(params, [backend.asarray(g, "float64")])
    want, h = _reference(p0, grads, lr=0.05, eps=1e-7)
    np.testing.assert_allclose(backend.to_numpy(params[0]), want, rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(opt.state["h"][0]), h, rtol=1e-12)
    assert opt.t == len(grads)


def test_adagrad_equals_torch_optim_adagrad():
    """torch's Adagrad adds eps outside the root too; its default eps is 1e-10
    (ours 1e-7, the book's), so the test passes ours to it. Its lr_decay,
    initial_accumulator_value and (coupled) weight_decay stay at 0."""
    torch = pytest.importorskip("torch")
    p0, grads = _problem(seed=1)
    w = torch.tensor(p0, requires_grad=True)
    ref = torch.optim.Adagrad([w], lr=0.05, eps=1e-7)
    opt, params = AdaGrad(lr=0.05, eps=1e-7), [p0.copy()]
    for g in grads:
        w.grad = torch.tensor(g)
        ref.step()
        params = opt.step(params, [g])
    np.testing.assert_allclose(params[0], w.detach().numpy(), rtol=1e-12)


def test_adagrad_is_registered_and_checks_its_arguments():
    assert OPTIMIZERS.get("adagrad") is AdaGrad is bpnet.AdaGrad
    assert isinstance(bpnet.train.optimizers.get_optimizer("adagrad"), AdaGrad)
    with pytest.raises(ValueError, match="eps: expected a finite number > 0, got 0"):
        AdaGrad(eps=0)
    with pytest.raises(ValueError, match="lr: expected a finite number > 0"):
        AdaGrad(lr=-1.0)
