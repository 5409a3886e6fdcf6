"""A checkpoint is untrusted input: everything in it is checked, from its
metadata and its arrays' headers alone, before any array is unpacked and
before anything is built from it.

What is expected derives from the checkpoint's own description rather than
from a list of names kept here: the parameter shapes and dtype come from the
network's config (through the model file's kind), the optimizer state arrays
from the optimizer the checkpoint names (built from its config and asked which
state it keeps), the fit settings from what ``fit`` records. Every problem is
one ``ModelFileError`` naming the field.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from bpnet.io.fingerprint import check_record
from bpnet.io.modelfile import ModelFileError

MAX_EPOCHS = 10**9
MAX_STEPS = 2**62


def _is_int(value: Any, low: int, high: int) -> bool:
    return type(value) is int and low <= value <= high


def _is_number(value: Any) -> bool:
    return (
        isinstance(value, (int, float))
        and not isinstance(value, bool)
        and math.isfinite(value)
    )


def _nonnegative(value: Any) -> bool:
    return _is_number(value) and value >= 0


# What fit records of its settings (its ``fit_config``), each with its check
# and what the check expects, for the message.
FIT_SETTINGS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "epochs": (lambda v: _is_int(v, 0, MAX_EPOCHS), f"an integer in [0, {MAX_EPOCHS}]"),
    "batch_size": (lambda v: _is_int(v, 1, 2**31), "an integer >= 1"),
    "l2": (_nonnegative, "a number >= 0"),
    "loss": (lambda v: isinstance(v, str) and 0 < len(v) < 100, "a loss name"),
    "validation_fraction": (
        lambda v: _is_number(v) and 0 <= v < 1,
        "a number in [0, 1)",
    ),
    "early_stopping": (lambda v: isinstance(v, bool), "true or false"),
    "patience": (lambda v: _is_int(v, 1, MAX_EPOCHS), "an integer >= 1"),
    "min_delta": (_nonnegative, "a number >= 0"),
    "shuffle": (lambda v: isinstance(v, bool), "true or false"),
}


def _field(where: str, value: Any, expected: str) -> ModelFileError:
    return ModelFileError(f"{where}: expected {expected}, got {value!r:.80}")


def _dict(training: dict, key: str, optional: bool = False) -> dict | None:
    value = training.get(key)
    if value is None and optional:
        return None
    if not isinstance(value, dict):
        raise _field(f"training.{key}", value, "a JSON object")
    return value


def check_fit_settings(fit: Any) -> dict:
    """The fit settings of a checkpoint, complete and each valid."""
    if not isinstance(fit, dict):
        raise _field("training.fit", fit, "a JSON object of fit's settings")
    missing = [k for k in FIT_SETTINGS if k not in fit]
    if missing:
        raise ModelFileError(
            f"training.fit: missing {', '.join(missing)}; a checkpoint records "
            f"all of fit's settings ({', '.join(FIT_SETTINGS)})"
        )
    for key, (ok, expected) in FIT_SETTINGS.items():
        if not ok(fit[key]):
            raise _field(f"training.fit.{key}", fit[key], expected)
    return fit


def _optimizer(training: dict, rebuild: Callable[[dict], Any]) -> Any:
    config = _dict(training, "optimizer")
    try:
        return rebuild(config)
    except Exception as exc:  # an unknown type or argument, a bad value
        kind = config.get("type") if isinstance(config, dict) else None
        raise ModelFileError(
            f"training.optimizer: {config!r:.100} does not describe an optimizer "
            f"this bpnet can rebuild (type {kind!r:.40}: "
            f"{type(exc).__name__}: {exc})"
        ) from None


def _state_names(opt: Any, shapes: list[tuple[int, ...]]) -> list[str]:
    """The state the optimizer keeps per parameter, found by asking it: one
    step on a one-element stand-in for each parameter."""
    params = [np.zeros((1,) * len(s)) for s in shapes]
    opt.step(params, [np.zeros_like(p) for p in params])
    return sorted(opt.state)


def _check_history(history: Any, epoch: int) -> None:
    if not isinstance(history, dict):
        raise _field("training.history", history, "a JSON object of per-epoch lists")
    for key, values in history.items():
        ok = isinstance(values, list) and len(values) == epoch
        if not ok or not all(v is None or _is_number(v) for v in values):
            raise _field(
                f"training.history.{key:.40}",
                values,
                f"a list of {epoch} numbers (one per epoch done)",
            )


def _check_host_rng(state: Any) -> None:
    if state is None:
        return
    try:
        np.random.default_rng().bit_generator.state = state
    except Exception:
        raise _field(
            "training.host_rng", state, "the state of NumPy's PCG64 generator"
        ) from None


# A device generator's state: NumPy's PCG64 (CPU, array-api-strict), a torch
# generator's bytes (5056 on the CPU, 16 for CUDA's Philox) or a JAX key; CuPy
# keeps none.
MAX_TORCH_STATE = 1 << 16
MAX_JAX_KEY = 8  # threefry's key is 2 words, rbg's 4


def _check_device_rng(state: Any) -> None:
    if state is None:
        return
    if isinstance(state, list):
        if len(state) <= MAX_TORCH_STATE and all(
            type(v) is int and 0 <= v <= 255 for v in state
        ):
            return
    elif isinstance(state, dict):
        key = state.get("jax_key")
        if set(state) == {"jax_key"} and isinstance(key, list):
            # a JAX PRNG key: a few unsigned 32-bit words
            if len(key) <= MAX_JAX_KEY and all(
                type(v) is int and 0 <= v < 2**32 for v in key
            ):
                return
        else:
            try:
                np.random.default_rng().bit_generator.state = state
                return
            except Exception:  # OverflowError for 2**200, ValueError for MT19937
                pass
    raise _field(
        "training.device_rng",
        state,
        "the state of NumPy's PCG64 generator, a torch generator's state "
        f"(a list of at most {MAX_TORCH_STATE} bytes), a JAX key "
        f"({{'jax_key': at most {MAX_JAX_KEY} 32-bit words}}) or null",
    )


def _check_early(early: Any, epoch: int) -> bool:
    """Early stopping's state; True when it has best weights."""
    if early is None:
        return False
    if not isinstance(early, dict):
        raise _field("training.early_stopping", early, "a JSON object or null")
    best_loss, best_epoch = early.get("best_loss"), early.get("best_epoch")
    if best_loss is not None and not _is_number(best_loss):
        raise _field("training.early_stopping.best_loss", best_loss, "a number")
    if best_epoch is not None and not _is_int(best_epoch, 0, max(epoch - 1, 0)):
        raise _field(
            "training.early_stopping.best_epoch",
            best_epoch,
            f"null or an epoch index in [0, {epoch - 1}]",
        )
    if not _is_int(early.get("wait"), 0, epoch):
        raise _field(
            "training.early_stopping.wait", early.get("wait"), f"0..{epoch} epochs"
        )
    if not isinstance(early.get("stopped"), bool):
        raise _field("training.early_stopping.stopped", early.get("stopped"), "bool")
    return best_epoch is not None


def _check_arrays(
    state: dict[str, tuple], expected: dict[str, tuple], why: dict[str, str]
) -> None:
    for name, (shape, dtype) in expected.items():
        if name not in state:
            raise ModelFileError(f"{why[name]}: state array {name!r} is missing")
        got_shape, got_dtype = state[name]
        if tuple(got_shape) != tuple(shape) or got_dtype != dtype:
            raise ModelFileError(
                f"{why[name]}: state array {name!r} is {got_dtype} of shape "
                f"{tuple(got_shape)}, but its parameter is {dtype} of shape "
                f"{tuple(shape)}"
            )
    extra = sorted(set(state) - set(expected))
    if extra:
        raise ModelFileError(
            f"state arrays {extra[:5]} are not part of this checkpoint's optimizer "
            "or early stopping; refused"
        )


def check_training_state(
    metadata: dict,
    state: dict[str, tuple],
    params: dict[str, tuple],
    buffers: dict[str, tuple],
    rebuild_optimizer: Callable[[dict], Any],
) -> None:
    """The checks of a checkpoint that ``fit`` writes (``bpnet.io``'s
    ``check_state``, with the function that rebuilds an optimizer from its
    config).

    ``state`` and ``params`` map names to (shape, dtype) as the file's headers
    give them; ``params`` are the network's parameters and ``buffers`` its
    running statistics, each in order, already checked against its config.
    Raises ``ModelFileError`` naming the field.
    """
    training = metadata.get("training")
    if not training:
        raise ModelFileError(
            "training: missing; this is a model file, not a checkpoint (it "
            "holds no training state to resume from)"
        )
    fit = check_fit_settings(training.get("fit"))
    epoch = training.get("epoch")
    if not _is_int(epoch, 0, fit["epochs"]):
        raise _field(
            "training.epoch",
            epoch,
            f"an integer in [0, {fit['epochs']}] (training.fit.epochs)",
        )
    opt = _optimizer(training, rebuild_optimizer)
    scalars = _dict(training, "optimizer_scalars")
    if not _is_int(scalars.get("t"), 0, MAX_STEPS):
        raise _field("training.optimizer_scalars.t", scalars.get("t"), "steps >= 0")
    lr = scalars.get("lr", opt.base_lr)
    if not (_is_number(lr) and lr > 0):
        raise _field("training.optimizer_scalars.lr", lr, "a number > 0")
    _check_history(training.get("history", {}), epoch)
    _check_host_rng(training.get("host_rng"))
    _check_device_rng(training.get("device_rng"))
    trend = training.get("trend_start")
    if trend is not None and not _is_number(trend):
        raise _field("training.trend_start", trend, "a finite number or null")
    has_best = _check_early(training.get("early_stopping"), epoch)
    bad = check_record(training.get("data_fingerprint"))
    if training.get("data_fingerprint") is not None and bad is not None:
        field, value, expected = bad
        raise _field(f"training.data_fingerprint{field}", value, expected)

    params = [(tuple(shape), dtype) for shape, dtype in params.values()]
    expected: dict[str, tuple] = {}
    why: dict[str, str] = {}
    if scalars["t"] > 0:  # an optimizer that has stepped holds its state
        for name in _state_names(opt, [shape for shape, _ in params]):
            for i, param in enumerate(params):
                expected[f"opt/{name}/{i}"] = param
                why[f"opt/{name}/{i}"] = "training.optimizer"
    if has_best:  # the best epoch's weights, and its running statistics
        best = [(f"best/{i}", p) for i, p in enumerate(params)]
        best += [
            (f"best_buffer/{i}", (tuple(shape), dtype))
            for i, (shape, dtype) in enumerate(buffers.values())
        ]
        for name, array in best:
            expected[name] = array
            why[name] = "training.early_stopping"
    _check_arrays(state, expected, why)
