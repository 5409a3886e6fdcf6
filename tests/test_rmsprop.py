"""RMSprop: the update rule against a NumPy reference and torch.optim.RMSprop,
on every backend (tests/test_registry.py resumes it from checkpoints)."""

import numpy as np
import pytest

import bpnet
from bpnet.train.optimizers import OPTIMIZERS, RMSprop


def _reference(p, grads, lr, decay_rate, eps):
    """Deep Learning from Scratch's RMSprop.update, in float64."""
    p, h = p.copy(), np.zeros_like(p)
    for g in grads:
        h *= decay_rate
        h += (1 - decay_rate) * g * g
        p -= lr * g / (np.sqrt(h) + eps)
    return p, h


def _problem(seed=0, steps=6):
    rng = np.random.default_rng(seed)
    p = rng.normal(size=(4, 3))
    return p, [
        rng.normal(size=(4, 3)) * 10.0 ** rng.integers(-3, 2) for _ in range(steps)
    ]


def test_rmsprop_steps_equal_the_numpy_reference(backend):
    p0, grads = _problem()
    opt = RMSprop(lr=0.02, decay_rate=0.9, eps=1e-7)
    params = [backend.asarray(p0, "float64")]
    for g in grads:
        params = opt.step(params, [backend.asarray(g, "float64")])
    want, h = _reference(p0, grads, lr=0.02, decay_rate=0.9, eps=1e-7)
    np.testing.assert_allclose(backend.to_numpy(params[0]), want, rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(opt.state["h"][0]), h, rtol=1e-12)
    assert opt.t == len(grads)


def test_rmsprop_equals_torch_optim_rmsprop():
    """torch's RMSprop (not centered, no momentum) adds eps outside the root
    too and calls decay_rate alpha; its default eps is 1e-8 (ours 1e-7, the
    book's), so the test passes ours to it. Keras puts eps inside the root."""
    torch = pytest.importorskip("torch")
    p0, grads = _problem(seed=1)
    w = torch.tensor(p0, requires_grad=True)
    ref = torch.optim.RMSprop([w], lr=0.02, alpha=0.9, eps=1e-7)
    opt, params = RMSprop(lr=0.02, decay_rate=0.9, eps=1e-7), [p0.copy()]
    for g in grads:
        w.grad = torch.tensor(g)
        ref.step()
        params = opt.step(params, [g])
    np.testing.assert_allclose(params[0], w.detach().numpy(), rtol=1e-12)


def test_rmsprop_is_registered_and_checks_its_arguments():
    assert OPTIMIZERS.get("rmsprop") is RMSprop is bpnet.RMSprop
    assert isinstance(bpnet.train.optimizers.get_optimizer("rmsprop"), RMSprop)
    with pytest.raises(ValueError, match=r"decay_rate: expected a number in \[0, 1\)"):
        RMSprop(decay_rate=1.0)
    with pytest.raises(ValueError, match="eps: expected a finite number > 0"):
        RMSprop(eps=-1e-7)
