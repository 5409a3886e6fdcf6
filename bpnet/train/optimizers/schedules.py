"""Learning-rate schedules, listed in ``SCHEDULES`` (bpnet-train's --schedule)."""

from __future__ import annotations

import math

from bpnet.nn import validation as check
from bpnet.nn.registry import Registry, init_config

SCHEDULES = Registry("schedule")


class Schedule:
    """Learning rate as a function of the epoch (0-based)."""

    def __call__(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError

    @classmethod
    def for_epochs(cls, epochs: int) -> Schedule:
        """The schedule bpnet-train uses over a run of ``epochs`` epochs."""
        raise NotImplementedError

    def get_config(self) -> dict:
        return {"type": SCHEDULES.name_of(self), **init_config(self)}

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in init_config(self).items())
        return f"{type(self).__name__}({shown})"


@SCHEDULES.register("cosine")
class CosineDecay(Schedule):
    """Cosine from lr down to ``min_lr`` over ``epochs`` epochs."""

    def __init__(self, epochs: int, min_lr: float = 0.0) -> None:
        self.epochs = check.check_int(epochs, "epochs")
        self.min_lr = check.check_nonnegative(min_lr, "min_lr")

    @classmethod
    def for_epochs(cls, epochs: int) -> Schedule:
        return cls(epochs)

    def __call__(self, base_lr: float, epoch: int) -> float:
        t = min(epoch, self.epochs) / self.epochs
        return self.min_lr + 0.5 * (base_lr - self.min_lr) * (1 + math.cos(math.pi * t))


@SCHEDULES.register("step")
class StepDecay(Schedule):
    """lr * gamma ** (epoch // step_size)."""

    def __init__(self, step_size: int = 10, gamma: float = 0.5) -> None:
        self.step_size = check.check_int(step_size, "step_size")
        self.gamma = check.check_positive(gamma, "gamma")

    @classmethod
    def for_epochs(cls, epochs: int) -> Schedule:
        return cls(max(1, epochs // 3), 0.3)

    def __call__(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)
