"""``Sequential``'s predictions: the loss's output function on the logits,
class labels, and ``evaluate`` (inference mode, ``nn/evaluation.py``)."""

from __future__ import annotations

from typing import Any

from bpnet.nn.evaluation import evaluate


class PredictMixin:
    """What a trained ``Sequential`` gives for new data."""

    def predict_proba(self, X: Any) -> Any:
        """The loss's output function on the logits: softmax rows, sigmoids, or
        the raw outputs for mean squared error. On the model's device.
        """
        with self.backend.context():
            return self.loss.output(self.forward(X))

    def predict(self, X: Any) -> Any:
        """Class indices (n,) on the device: argmax, or p > 0.5 for one output."""
        with self.backend.context():
            return self._labels(self.predict_proba(X))

    def _labels(self, P: Any) -> Any:
        """``predict`` from ``predict_proba``'s output. Which rule applies is
        the network's output width, not ``P.shape``: an array that records a
        graph (``export_onnx``) may not know its shape."""
        xp = self.xp
        if self.n_outputs == 1:
            return xp.astype(xp.reshape(P, (-1,)) > 0.5, xp.int64)
        return xp.argmax(P, axis=1)

    def evaluate(self, X: Any, y: Any, **kwargs: Any) -> tuple[float, float]:
        """(mean loss, accuracy) on ``X``, ``y``; see ``bpnet.evaluate``."""
        return evaluate(self, X, y, **kwargs)
