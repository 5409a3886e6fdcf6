"""Evaluation in inference mode: loss and correct counts summed on the device
in slices, with one readback at the end."""

from __future__ import annotations

from typing import Any

from bpnet.nn import validation as check
from bpnet.nn._namespace import namespace
from bpnet.nn.losses import Loss, decision_boundary, get_loss


def _labels(T: Any, loss: Loss) -> Any:
    xp = namespace(T)
    if T.shape[1] == 1:
        return xp.astype(T[:, 0] > 0.5, xp.int64)
    return xp.argmax(T, axis=1)


def decision_scores(Z: Any, loss: Loss) -> tuple[Any, float]:
    """(scores, cut): an output says "yes" (a one-output network's class 1, a
    multilabel network's label) where scores > cut, as ``predict`` (output >
    0.5) has it: the logits against the loss's ``decision_boundary``, or the
    outputs against 0.5 where it has none."""
    boundary = decision_boundary(loss)
    return (Z, boundary) if boundary is not None else (loss.output(Z), 0.5)


def _hits(Z: Any, labels: Any, loss: Loss | None = None) -> Any:
    """Boolean (n,): where the logits' predicted class is the label (one
    output: by ``decision_scores``; logits above 0 without a loss)."""
    xp = namespace(Z)
    if Z.shape[1] == 1:
        S, cut = (Z, 0.0) if loss is None else decision_scores(Z, loss)
        pred = xp.astype(S[:, 0] > cut, xp.int64)
    else:
        pred = xp.argmax(Z, axis=1)
    return pred == labels


def _correct(Z: Any, labels: Any, loss: Loss | None = None) -> Any:
    """Number of correct predictions in a batch, as a 0-D device array."""
    xp = namespace(Z)
    return xp.sum(xp.astype(_hits(Z, labels, loss), Z.dtype))


def _correct_count(Z: Any, labels: Any, loss: Loss | None = None) -> int:
    """``_correct`` as a Python int, for arrays in host memory: one count
    instead of a cast and a sum."""
    return int(namespace(Z).count_nonzero(_hits(Z, labels, loss)))


def evaluate(
    net: Any,
    X: Any,
    y: Any,
    loss: str | Loss | None = None,
    l2: float = 0.0,
    batch_size: int = 4096,
) -> tuple[float, float]:
    """(mean loss, accuracy) of ``net`` on ``X``, ``y``, in inference mode."""
    loss = net.loss if loss is None else get_loss(loss)
    batch_size = check.check_int(batch_size, "batch_size")
    with net.backend.context():
        Xd, T = net._prepare(X, y, loss)
        L, correct = _evaluate_device(net, Xd, T, _labels(T, loss), loss, batch_size)
        n = Xd.shape[0]
        L = L / n + (net._l2_penalty(l2, n) if l2 else 0.0)
        return float(L), float(correct) / n


def _evaluate_device(
    net: Any, X: Any, T: Any, labels: Any, loss: Loss, batch_size: int
) -> tuple[Any, Any]:
    """Summed loss and correct count on the device (no synchronization)."""
    n = X.shape[0]
    total = correct = 0.0
    for start in range(0, n, batch_size):
        stop = min(start + batch_size, n)
        Z = net._forward(X[start:stop, ...], training=False)
        total = total + loss.forward(Z, T[start:stop, ...]) * (stop - start)
        correct = correct + _correct(Z, labels[start:stop], loss)
    return total, correct
