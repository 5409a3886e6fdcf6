"""What a training run leaves behind: its per-epoch History, the error raised
when training diverges, and the warning given when it made things worse."""

from __future__ import annotations


class DivergenceError(ArithmeticError):
    """The loss or the weights became NaN or Inf (or overflowed); the network
    holds its last good weights."""

    def __init__(self, message: str, history: History) -> None:
        super().__init__(message)
        self.history = history


class TrainingWarning(UserWarning):
    """Training finished, but its numbers say something went wrong (the loss
    ended higher than it started)."""


class History:
    """Per-epoch records: loss, accuracy, val_loss, val_accuracy, lr, seconds.

    ``history["loss"]`` or ``history.loss``; ``to_dict()`` is JSON-ready.
    """

    KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr", "seconds")

    def __init__(self, records: dict[str, list] | None = None) -> None:
        self.history: dict[str, list] = {k: [] for k in self.KEYS}
        if records:
            for k, v in records.items():
                self.history[k] = list(v)
        self.stopped_early = False
        self.cuda_graph = False  # whether epochs were replayed as a CUDA graph
        self.best_epoch: int | None = None

    def append(self, logs: dict[str, float | None]) -> None:
        for k in self.KEYS:
            v = logs.get(k)
            if v is not None:
                self.history[k].append(v)

    def __getitem__(self, key: str) -> list:
        return self.history[key]

    def __getattr__(self, key: str) -> list:
        if key != "history" and key in self.__dict__.get("history", {}):
            return self.history[key]
        raise AttributeError(key)

    def __len__(self) -> int:
        return len(self.history["loss"])

    def to_dict(self) -> dict[str, list]:
        return {k: list(v) for k, v in self.history.items() if v}

    def __repr__(self) -> str:
        last = {k: v[-1] for k, v in self.history.items() if v}
        return f"History({len(self)} epochs, last={last})"
