"""The optimizer base class and ``OPTIMIZERS``, the registry every optimizer
module of this package joins.

An optimizer keeps its state in lists aligned with the parameters and
describes itself: ``get_config()`` rebuilds it (``OPTIMIZERS.from_config``),
``state_dict()`` resumes it exactly, so checkpoints need to know no optimizer
by name.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import device

from bpnet.nn import validation as check
from bpnet.nn._namespace import namespace
from bpnet.nn.mutation import Writer, writer
from bpnet.nn.registry import Registry, init_config
from bpnet.train.optimizers.schedules import SCHEDULES, Schedule

OPTIMIZERS = Registry("optimizer")


class Optimizer:
    """Base class.

    Parameters
    ----------
    lr : float
        The base learning rate (each optimizer has its own default).
    schedule : Schedule, optional
        Learning rate per epoch, from ``lr``.

    ``update(params, grads)`` steps the arrays of the list ``params`` and
    does only device work, so a whole training step can be captured and
    replayed (CUDA graphs) or traced (``jax.jit``); the learning rate lives in
    a 0-D device array for that reason. Every array that lasts (parameters,
    moments in ``state``, ``_lr``, ``_t``) changes through one
    ``bpnet.nn.mutation.Writer``: in place where the library allows it, else
    the new array replaces the old one in its list, so the caller stores
    ``params`` back where it keeps them (``fit`` does). ``step(params,
    grads)`` is the same rule returning new arrays.

    A subclass keeps each argument of its ``__init__`` in an attribute of the
    same name (``lr`` as ``base_lr``), which is what ``get_config`` records,
    and sets ``suggested_lr``, bpnet-train's learning rate without --lr.
    """

    suggested_lr: float = 0.1

    def __init__(self, lr: float, schedule: Schedule | None = None) -> None:
        self.base_lr = check.check_positive(lr, "lr")
        if schedule is not None and not callable(schedule):
            raise TypeError(f"schedule: expected a Schedule, got {schedule!r}")
        self.schedule = schedule
        self.lr = self.base_lr
        self.t = 0  # steps taken
        self.state: dict[str, list[Any]] = {}
        self._lr: Any = None  # 0-D device copy of lr
        self._xp: Any = None  # the parameters' namespace
        self._t: Any = None  # 0-D device step count (for bias corrections)
        # Parallel to the parameters: which take weight decay. fit sets it from
        # the layers' decay_names (weights yes; biases, scales, shifts no);
        # None decays every parameter.
        self.decay_mask: list[bool] | None = None

    @property
    def learning_rate(self) -> float:
        """The current learning rate, ``lr`` (scikit-learn's optimizers name
        it so)."""
        return self.lr

    def set_lr(self, lr: float) -> None:
        self.lr = check.check_positive(lr, "lr")
        if self._lr is not None:
            self._lr = writer(self._lr).set(self._lr, self.lr)

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

    def _prepare(self, params: list[Any]) -> Writer:
        """The parameters' ``Writer`` (``_xp`` their namespace); creates the
        device scalars once."""
        self._xp = xp = namespace(params[0])
        if self._lr is None:
            dev = device(params[0])
            self._lr = xp.asarray(self.lr, dtype=params[0].dtype, device=dev)
            self._t = xp.asarray(float(self.t), dtype=params[0].dtype, device=dev)
        return writer(params[0])

    def _zeros(self, name: str, params: list[Any]) -> list[Any]:
        if name not in self.state:
            self.state[name] = [p * 0.0 for p in params]
        return self.state[name]

    def update(self, params: list[Any], grads: list[Any]) -> None:
        """Apply one step to the arrays of ``params`` (device work only): in
        place, or each replaced in the list by its new array."""
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

    def get_config(self) -> dict:
        """Enough to rebuild the optimizer (its state is ``state_dict``'s)."""
        schedule = self.schedule.get_config() if self.schedule is not None else None
        return {
            "type": OPTIMIZERS.name_of(self) or type(self).__name__,
            "lr": self.base_lr,
            "schedule": schedule,
            **init_config(self, skip=("lr", "schedule")),
        }

    @classmethod
    def from_config(cls, config: dict) -> Optimizer:
        kwargs = {k: v for k, v in config.items() if k != "type"}
        if kwargs.get("schedule") is not None:
            kwargs["schedule"] = SCHEDULES.from_config(kwargs["schedule"])
        return cls(**kwargs)

    def __repr__(self) -> str:
        shown = "".join(
            f", {k}={v}" for k, v in init_config(self, ("lr", "schedule")).items()
        )
        return f"{type(self).__name__}(lr={self.base_lr}{shown})"


def get_optimizer(
    optimizer: str | Optimizer, lr: float | None = None, **kwargs
) -> Optimizer:
    """An optimizer by registered name (``OPTIMIZERS.names()``) or instance;
    ``kwargs`` go to its class, ``lr`` defaults to the class's own."""
    if isinstance(optimizer, Optimizer):
        if lr is not None:
            optimizer.base_lr = check.check_positive(lr, "lr")
            optimizer.set_lr(optimizer.base_lr)
        return optimizer
    if isinstance(optimizer, str) and optimizer.lower() in OPTIMIZERS:
        if lr is not None:
            kwargs["lr"] = lr
        return OPTIMIZERS.create(optimizer.lower(), **kwargs)
    from bpnet.train.fullbatch import SOLVERS

    raise ValueError(
        f"optimizer: expected one of {OPTIMIZERS.names()} or a bpnet Optimizer "
        f"(full-batch {SOLVERS.names()} go through bpnet.minimize), got {optimizer!r}"
    )
