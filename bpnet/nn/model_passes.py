"""``Sequential``'s passes: forward, backward, and the loss and its
gradients (with the L2 term) that a training step and ``loss_and_grad``
take."""

from __future__ import annotations

from typing import Any

from bpnet.nn import validation as check
from bpnet.nn.losses import Loss, SoftmaxCrossEntropy, get_loss


class PassesMixin:
    """The forward and backward passes of a ``Sequential``, layer by layer,
    and the loss and gradients between them."""

    def _forward(self, X: Any, training: bool = False) -> Any:
        for layer in self.layers:
            X = layer.forward(X, training)
        return X

    def _backward(self, dZ: Any) -> list[Any]:
        need_dx = self._need_dx
        for i in range(len(self.layers) - 1, -1, -1):
            dZ = self.layers[i].backward(dZ, need_dx=need_dx[i])
        return [g for layer in self._learning for g in layer.named_gradients().values()]

    def _loss_and_grad(
        self,
        X: Any,
        T: Any,
        loss: Loss,
        l2: float = 0.0,
        training: bool = True,
        return_logits: bool = False,
        weights: Any = None,
    ) -> tuple[Any, ...]:
        """Device loss (0-D) and gradients (and the logits), with no host
        synchronization. ``weights``, a device column (n, 1) of sample
        weights, makes the loss their weighted mean and divides the L2 term by
        their sum instead of n (scikit-learn's ``sample_weight``).
        """
        Z, L, dZ, n = self._loss_head(X, T, loss, training, weights)
        grads = self._backward(dZ)
        if l2:
            L = L + self._l2_penalty(l2, n)
            scale = l2 / n
            for k, layer, name in self._decayed:
                grads[k] = grads[k] + scale * getattr(layer, name)
        return (L, grads, Z) if return_logits else (L, grads)

    def _loss_head(
        self, X: Any, T: Any, loss: Loss, training: bool, weights: Any
    ) -> tuple[Any, Any, Any, Any]:
        """Forward pass and loss: (logits, 0-D loss, its gradient for the
        logits, what L2 divides by: the rows, or their summed weight)."""
        Z = self._forward(X, training)
        if weights is None:
            kernel = self.backend.softmax_cross_entropy
            if kernel is not None and type(loss) is SoftmaxCrossEntropy:
                L, dZ = kernel(Z, T)  # the same numbers, the backend's way
            else:
                L, dZ = loss.loss_and_grad(Z, T)
            return Z, L, dZ, X.shape[0]
        n = self.xp.sum(weights)
        L, dZ = loss.loss_and_grad(Z, T, weights=weights / n)
        return Z, L, dZ, n

    def _loss(
        self, X: Any, T: Any, loss: Loss, l2: float = 0.0, training: bool = True
    ) -> Any:
        L = loss.forward(self._forward(X, training), T)
        return L + self._l2_penalty(l2, X.shape[0]) if l2 else L

    def _l2_penalty(self, l2: float, n: int) -> Any:
        """``l2 / (2 n)`` times the sum of squares of the decayed parameters."""
        xp = self.xp
        total = sum(
            xp.sum(getattr(layer, name) * getattr(layer, name))
            for _, layer, name in self._decayed
        )
        return total * (l2 / (2.0 * n))

    def _prepare(
        self, X: Any, Y: Any, loss: Loss, names: tuple[str, str] = ("X", "y")
    ) -> tuple[Any, Any]:
        if self.n_inputs is None:
            self._build_for(X)
        Xd = check.check_X(X, self.backend, self.dtype, self.n_inputs, names[0])
        T = check.check_targets(
            Y, self.backend, self.dtype, loss, Xd.shape[0], self.n_outputs, *names[::-1]
        )
        return Xd, T

    def forward(self, X: Any, training: bool = False) -> Any:
        """Raw outputs (logits) of shape (n, n_outputs), on the model's device."""
        with self.backend.context():
            if self.n_inputs is None:
                self._build_for(X)
            Xd = check.check_X(X, self.backend, self.dtype, self.n_inputs)
            return self._forward(Xd, training)

    __call__ = forward

    def backward(self, dZ: Any) -> list[Any]:
        """Backpropagate dL/dlogits through the last ``forward``; return the
        parameter gradients, parallel to ``parameters()``.
        """
        with self.backend.context():
            return self._backward(dZ)

    def loss_and_grad(
        self,
        X: Any,
        Y: Any,
        loss: str | Loss | None = None,
        l2: float = 0.0,
        sample_weight: Any = None,
    ) -> tuple[float, list[Any]]:
        """Loss (Python float) and its gradients (device arrays, parallel to
        ``parameters()``) on the batch ``X`` (n, n_inputs), ``Y`` labels (n,)
        or targets (n, n_outputs). ``l2`` adds ``l2 / (2 n) * sum(W**2)``.

        ``sample_weight`` (n,) of weights >= 0 makes the loss their weighted
        mean, ``sum(w_i * loss_i) / sum(w)``, and puts ``sum(w)`` for n in the
        L2 term, as scikit-learn does; a weight of 0 drops a sample.

        It runs in training mode, as a step of ``fit`` does: ``Dropout``
        layers draw a new mask each call, so two calls on one batch differ
        (``evaluate`` gives the loss in inference mode).
        """
        loss = self.loss if loss is None else get_loss(loss)
        l2 = check.check_nonnegative(l2, "l2")
        with self.backend.context():
            Xd, T = self._prepare(X, Y, loss)
            w = None
            if sample_weight is not None:
                w = check.check_sample_weight(
                    sample_weight, self.backend, self.dtype, Xd.shape[0]
                )
            L, grads = self._loss_and_grad(Xd, T, loss, l2, weights=w)
            return float(L), grads
