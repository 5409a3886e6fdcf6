"""Optimizers written once on the Array API, and learning-rate schedules.

An optimizer keeps its state in lists aligned with the parameters and returns
new parameter arrays (``p = p - lr * g``): it never writes into an array the
caller may still hold.
"""

from __future__ import annotations

import math
from typing import Any

from array_api_compat import device

from bpnet.nn import validation as check
from bpnet.nn._namespace import namespace


class Schedule:
    """Learning rate as a function of the epoch (0-based)."""

    def __call__(self, base_lr: float, epoch: int) -> float:
        raise NotImplementedError


class StepDecay(Schedule):
    """lr * gamma ** (epoch // step_size)."""

    def __init__(self, step_size: int = 10, gamma: float = 0.5) -> None:
        self.step_size = check.check_int(step_size, "step_size")
        self.gamma = check.check_positive(gamma, "gamma")

    def __call__(self, base_lr: float, epoch: int) -> float:
        return base_lr * self.gamma ** (epoch // self.step_size)

    def __repr__(self) -> str:
        return f"StepDecay(step_size={self.step_size}, gamma={self.gamma})"


class CosineDecay(Schedule):
    """Cosine from lr down to ``min_lr`` over ``epochs`` epochs."""

    def __init__(self, epochs: int, min_lr: float = 0.0) -> None:
        self.epochs = check.check_int(epochs, "epochs")
        self.min_lr = check.check_nonnegative(min_lr, "min_lr")

    def __call__(self, base_lr: float, epoch: int) -> float:
        t = min(epoch, self.epochs) / self.epochs
        return self.min_lr + 0.5 * (base_lr - self.min_lr) * (1 + math.cos(math.pi * t))

    def __repr__(self) -> str:
        return f"CosineDecay(epochs={self.epochs}, min_lr={self.min_lr})"


class Optimizer:
    """Base class.

    ``update(params, grads)`` changes the parameter arrays in place and does
    only device work, so a whole training step can be captured and replayed
    (CUDA graphs); the learning rate lives in a 0-D device array for that
    reason. ``step(params, grads)`` is the same rule returning new arrays.
    """

    def __init__(self, lr: float, schedule: Schedule | None = None) -> None:
        self.base_lr = check.check_positive(lr, "lr")
        if schedule is not None and not callable(schedule):
            raise TypeError(f"schedule: expected a Schedule, got {schedule!r}")
        self.schedule = schedule
        self.lr = self.base_lr
        self.t = 0  # steps taken
        self.state: dict[str, list[Any]] = {}
        self._lr: Any = None  # 0-D device copy of lr
        self._t: Any = None  # 0-D device step count (for bias corrections)

    def set_lr(self, lr: float) -> None:
        self.lr = check.check_positive(lr, "lr")
        if self._lr is not None:
            self._lr[...] = self.lr

    def set_epoch(self, epoch: int) -> None:
        """Apply the schedule for ``epoch`` (0-based)."""
        if self.schedule is not None:
            lr = self.schedule(self.base_lr, epoch)
            if not lr > 0:
                raise ValueError(
                    f"schedule: {self.schedule!r} gives a learning rate of {lr} at "
                    f"epoch {epoch + 1}; train within the schedule's epochs, or "
                    "give it min_lr > 0"
                )
            self.set_lr(lr)

    def _prepare(self, params: list[Any]) -> Any:
        """Namespace of the parameters; creates the device scalars once."""
        xp = namespace(params[0])
        if self._lr is None:
            dev = device(params[0])
            self._lr = xp.asarray(self.lr, dtype=params[0].dtype, device=dev)
            self._t = xp.asarray(float(self.t), dtype=params[0].dtype, device=dev)
        return xp

    def _zeros(self, name: str, params: list[Any]) -> list[Any]:
        if name not in self.state:
            self.state[name] = [p * 0.0 for p in params]
        return self.state[name]

    def update(self, params: list[Any], grads: list[Any]) -> None:
        """Apply one step to ``params`` in place (device work only)."""
        raise NotImplementedError

    def _update_owned(self, params: list[Any], grads: list[Any]) -> None:
        """``update`` for gradients nobody else holds (a training step's
        own): a rule may use them as scratch space. The default leaves them be.
        """
        self.update(params, grads)

    def step(self, params: list[Any], grads: list[Any]) -> list[Any]:
        """One step on copies of ``params``; returns the new arrays."""
        new = [p * 1.0 for p in params]
        self.update(new, grads)
        self.t += 1
        return new

    def state_dict(self) -> tuple[dict, dict[str, list[Any]]]:
        """(scalars, arrays): what a checkpoint needs to resume exactly."""
        return {"t": self.t, "lr": self.lr}, self.state

    def load_state_dict(self, scalars: dict, arrays: dict[str, list[Any]]) -> None:
        self.t = int(scalars.get("t", 0))
        self.lr = float(scalars.get("lr", self.base_lr))
        self.state = {k: list(v) for k, v in arrays.items()}
        self._lr = self._t = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(lr={self.base_lr})"


class SGD(Optimizer):
    """Plain minibatch gradient descent: p <- p - lr * g."""

    def update(self, params: list[Any], grads: list[Any]) -> None:
        self._prepare(params)
        lr = self._lr
        for p, g in zip(params, grads):
            p -= lr * g

    def _update_owned(self, params: list[Any], grads: list[Any]) -> None:
        if type(self).update is not SGD.update:  # a subclass's own rule wins
            self.update(params, grads)
            return
        # scale the gradient in place: no temporary the size of each weight
        self._prepare(params)
        lr = self._lr
        for p, g in zip(params, grads):
            g *= lr
            p -= g


class Momentum(Optimizer):
    """Heavy-ball momentum, optionally Nesterov (scikit-learn's formulation):
    v <- mu v - lr g; p <- p + v  (Nesterov: p <- p + mu v - lr g).
    """

    def __init__(
        self,
        lr: float = 0.01,
        momentum: float = 0.9,
        nesterov: bool = False,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(lr, schedule)
        if not isinstance(momentum, (int, float)) or not 0 <= momentum < 1:
            raise ValueError(f"momentum: expected a number in [0, 1), got {momentum!r}")
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)

    def update(self, params: list[Any], grads: list[Any]) -> None:
        self._prepare(params)
        lr, mu = self._lr, self.momentum
        for p, g, v in zip(params, grads, self._zeros("velocity", params)):
            step = lr * g
            v *= mu
            v -= step
            if self.nesterov:
                p += mu * v
                p -= step
            else:
                p += v

    def __repr__(self) -> str:
        return (
            f"Momentum(lr={self.base_lr}, momentum={self.momentum}, "
            f"nesterov={self.nesterov})"
        )


class Adam(Optimizer):
    """Adam (Kingma & Ba) with optional decoupled weight decay (AdamW)."""

    def __init__(
        self,
        lr: float = 1e-3,
        beta1: float = 0.9,
        beta2: float = 0.999,
        eps: float = 1e-8,
        weight_decay: float = 0.0,
        schedule: Schedule | None = None,
    ) -> None:
        super().__init__(lr, schedule)
        for name, b in (("beta1", beta1), ("beta2", beta2)):
            if not isinstance(b, (int, float)) or not 0 <= b < 1:
                raise ValueError(f"{name}: expected a number in [0, 1), got {b!r}")
        self.beta1, self.beta2 = float(beta1), float(beta2)
        self.eps = check.check_positive(eps, "eps")
        self.weight_decay = check.check_nonnegative(weight_decay, "weight_decay")

    def update(self, params: list[Any], grads: list[Any]) -> None:
        xp = self._prepare(params)
        b1, b2 = self.beta1, self.beta2
        m, v = self._zeros("m", params), self._zeros("v", params)
        self._t += 1.0
        # Bias corrections folded into the step size and epsilon (the paper's
        # Algorithm 1 note), computed on the device from the device step count.
        root = xp.sqrt(1.0 - b2**self._t)
        step = self._lr * root / (1.0 - b1**self._t)
        eps = self.eps * root
        for p, g, m_i, v_i in zip(params, grads, m, v):
            m_i *= b1
            m_i += (1.0 - b1) * g
            v_i *= b2
            v_i += (1.0 - b2) * (g * g)
            if self.weight_decay:
                p -= (self.weight_decay * self._lr) * p
            p -= step * m_i / (xp.sqrt(v_i) + eps)

    def __repr__(self) -> str:
        return (
            f"Adam(lr={self.base_lr}, beta1={self.beta1}, beta2={self.beta2}, "
            f"eps={self.eps}, weight_decay={self.weight_decay})"
        )


OPTIMIZERS: dict[str, type[Optimizer]] = {
    "sgd": SGD,
    "momentum": Momentum,
    "adam": Adam,
}


def get_optimizer(
    optimizer: str | Optimizer, lr: float | None = None, **kwargs
) -> Optimizer:
    """An optimizer by name ('sgd', 'momentum', 'nesterov', 'adam') or instance."""
    if isinstance(optimizer, Optimizer):
        if lr is not None:
            optimizer.base_lr = check.check_positive(lr, "lr")
            optimizer.set_lr(optimizer.base_lr)
        return optimizer
    if isinstance(optimizer, str):
        name = optimizer.lower()
        if name == "nesterov":
            kwargs.setdefault("nesterov", True)
            name = "momentum"
        if name in OPTIMIZERS:
            if lr is not None:
                kwargs["lr"] = lr
            elif name == "sgd":
                kwargs["lr"] = 0.1
            return OPTIMIZERS[name](**kwargs)
    raise ValueError(
        "optimizer: expected 'sgd', 'momentum', 'nesterov', 'adam' or a bpnet "
        f"Optimizer (full-batch 'cg', 'tnc', 'lbfgs' go through bpnet.minimize), "
        f"got {optimizer!r}"
    )
