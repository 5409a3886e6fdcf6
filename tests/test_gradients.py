"""Backprop against central differences (every backend) and against PyTorch
autograd, an independent implementation (when installed)."""

import numpy as np
import pytest
from conftest import HAVE_TORCH

import bpnet

ACTIVATIONS = [bpnet.ReLU, bpnet.LeakyReLU, bpnet.Sigmoid, bpnet.Tanh]
LOSSES = [
    bpnet.SoftmaxCrossEntropy,
    bpnet.SigmoidCrossEntropy,
    bpnet.MeanSquaredError,
    bpnet.HalfSquaredError,
    bpnet.HalfPoissonDeviance,
]


def _data(n=9, d=5, k=4, seed=1):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), np.arange(n) % k


def _net(backend, act, hidden=(6,), d=5, k=4, seed=0, dropout=0.0):
    layers, width = [], d
    for h in hidden:
        layers += [bpnet.Dense(width, h), act()]
        if dropout:
            layers.append(bpnet.Dropout(dropout))
        width = h
    layers.append(bpnet.Dense(width, k))
    return bpnet.Sequential(layers, device=backend, dtype="float64", seed=seed)


def _away_from_kinks(net, X, margin=1e-3):
    """True when no ReLU-family input lies within ``margin`` of its kink."""
    x = net.backend.asarray(X, "float64")
    for layer in net.layers:
        if isinstance(layer, (bpnet.ReLU, bpnet.LeakyReLU)):
            if np.abs(net.backend.to_numpy(x)).min() < margin:
                return False
        x = layer.forward(x)
    return True


@pytest.mark.parametrize("act", ACTIVATIONS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("loss", LOSSES, ids=lambda c: c.__name__)
def test_gradient_check_every_activation_and_loss(backend, act, loss):
    X, y = _data()
    net = _net(backend, act, hidden=(6, 5))
    assert _away_from_kinks(net, X)
    diff = bpnet.check_gradients(net, X, y, loss=loss(), l2=0.7)
    assert diff < 1e-7


def test_gradient_check_with_dropout_holds_the_mask(backend):
    X, y = _data()
    net = _net(backend, bpnet.Tanh, hidden=(7,), dropout=0.4)
    assert bpnet.check_gradients(net, X, y, l2=0.2) < 1e-7


def test_gradient_check_detects_a_wrong_backward(backend):
    X, y = _data()
    net = _net(backend, bpnet.Tanh)
    tanh = net.layers[1]
    tanh.backward = lambda dy, need_dx=True: dy * (1.0 - tanh.y)  # wrong derivative
    assert bpnet.check_gradients(net, X, y) > 1e-3


def _debug_weights(fan_out, fan_in):
    """ex4's debugInitializeWeights: sin(1:numel) / 10, column-major."""
    n = fan_out * (1 + fan_in)
    return np.sin(np.arange(1, n + 1)).reshape(1 + fan_in, fan_out).T / 10


def test_ex4_check_network_below_1e_minus_9(backend):
    """ex4's checkNNGradients: 3-5-3 sigmoid network, 5 samples, lambda = 1."""
    theta1, theta2 = _debug_weights(5, 3), _debug_weights(3, 5)
    X = _debug_weights(5, 2)  # debugInitializeWeights(m, input_layer_size - 1)
    y = (1 + np.arange(1, 6) % 3) - 1  # ex4's 1 + mod(1:m, num_labels), shifted to 0..2
    net = bpnet.from_thetas([theta1, theta2], device=backend, dtype="float64")
    assert bpnet.check_gradients(net, X, y, loss="sigmoid", l2=1.0) < 1e-9


@pytest.mark.skipif(not HAVE_TORCH, reason="PyTorch is not installed")
@pytest.mark.parametrize("act", ACTIVATIONS, ids=lambda c: c.__name__)
@pytest.mark.parametrize("loss", LOSSES, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    "hidden", [(), (7,), (8, 6, 5)], ids=["linear", "shallow", "deep"]
)
def test_matches_torch_autograd(act, loss, hidden):
    import torch

    X, y = _data(n=11, seed=4)
    k, l2 = 4, 0.3
    net = _net("cpu", act, hidden=hidden, seed=2)
    L, grads = net.loss_and_grad(X, y, loss=loss(), l2=l2)

    params = [torch.tensor(np.asarray(p), requires_grad=True) for p in net.parameters()]
    t_act = {
        bpnet.ReLU: torch.relu,
        bpnet.LeakyReLU: lambda z: torch.nn.functional.leaky_relu(z, 0.01),
        bpnet.Sigmoid: torch.sigmoid,
        bpnet.Tanh: torch.tanh,
    }[act]
    a = torch.tensor(X)
    for i in range(0, len(params), 2):
        a = a @ params[i] + params[i + 1]
        if i + 2 < len(params):
            a = t_act(a)
    yt = torch.tensor(y)
    onehot = torch.nn.functional.one_hot(yt, k).double()
    n = X.shape[0]
    if loss is bpnet.SoftmaxCrossEntropy:
        t_loss = torch.nn.functional.cross_entropy(a, yt)
    elif loss is bpnet.SigmoidCrossEntropy:
        t_loss = (
            torch.nn.functional.binary_cross_entropy_with_logits(
                a, onehot, reduction="sum"
            )
            / n
        )
    elif loss is bpnet.HalfSquaredError:
        t_loss = torch.nn.functional.mse_loss(a, onehot, reduction="sum") / (2 * n)
    elif loss is bpnet.HalfPoissonDeviance:
        # PyTorch's sum(exp(a) - t a) leaves out half the deviance's constant,
        # sum(t log t - t)
        nll = torch.nn.functional.poisson_nll_loss(
            a, onehot, log_input=True, reduction="sum"
        )
        t_loss = (nll + (torch.special.xlogy(onehot, onehot) - onehot).sum()) / n
    else:
        t_loss = torch.nn.functional.mse_loss(a, onehot)
    t_loss = t_loss + l2 / (2 * n) * sum((w * w).sum() for w in params[0::2])
    t_loss.backward()

    assert L == pytest.approx(t_loss.item(), rel=1e-12, abs=1e-14)
    for g, p in zip(grads, params):
        np.testing.assert_allclose(
            np.asarray(g), p.grad.numpy(), rtol=1e-10, atol=1e-13
        )


def test_a_float32_network_is_checked_in_float64(backend):
    X, y = _data()
    net = bpnet.Sequential(
        [bpnet.Dense(5, 6), bpnet.Tanh(), bpnet.Dense(6, 4)], device=backend, seed=1
    )
    before = [backend.to_numpy(p).copy() for p in net.parameters()]
    assert bpnet.check_gradients(net, X, y, l2=0.5) < 1e-7
    assert net.dtype_name == "float32"  # the network itself is left as it was
    for a, b in zip(before, net.parameters()):
        np.testing.assert_array_equal(a, backend.to_numpy(b))
