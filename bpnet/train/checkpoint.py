"""Checkpoints that resume exactly: weights, optimizer state, both random
generators, the epoch count and the history, in one atomic model file.

On the CPU with the same seed, a run stopped after any epoch and resumed ends
with the same weights as one that never stopped (CuPy's dropout generator
keeps its state on the device and is the one exception).
"""

from __future__ import annotations

import math
import os
import warnings
from typing import Any

from bpnet import io
from bpnet.io.fingerprint import check_same_data
from bpnet.train.checkpoint_check import check_training_state
from bpnet.train.history import TrainingWarning
from bpnet.train.optimizers import OPTIMIZERS, Optimizer


def optimizer_config(opt: Optimizer) -> dict:
    """Enough to rebuild ``opt`` (its state is stored separately)."""
    return opt.get_config()


def optimizer_from_config(config: dict) -> Optimizer:
    """The optimizer ``optimizer_config`` described, of any registered kind."""
    return OPTIMIZERS.from_config(config)


def save_checkpoint(
    path: str | os.PathLike[str],
    net: Any,
    opt: Optimizer,
    history: Any,
    epoch: int,
    fit_config: dict,
    metadata: dict | None = None,
    early: dict | None = None,
    data: dict | None = None,
    trend_start: float | None = None,
) -> None:
    """Write everything ``restore`` needs after ``epoch`` epochs (atomic);
    ``metadata`` adds JSON-ready keys to the file's metadata; ``data`` is the
    fingerprint of the training data (``bpnet.io.fingerprint``). ``early`` is
    early stopping's state: ``best_loss``, ``best_epoch``, ``wait``,
    ``stopped`` and the best epoch's weights (``weights``, or None) and
    buffers (``buffers``, or None). ``trend_start`` is the loss the loss
    trend measured before the run's first step, so that a resumed run
    compares its end with the run's start (``bpnet.train.guard.LossTrend``)."""
    scalars, state = opt.state_dict()
    arrays = {f"opt/{k}/{i}": a for k, v in state.items() for i, a in enumerate(v)}
    early_meta = None
    if early is not None:
        early_meta = {k: v for k, v in early.items() if k not in ("weights", "buffers")}
        if not math.isfinite(early_meta["best_loss"]):  # no best yet; JSON has no inf
            early_meta["best_loss"] = None
        for i, w in enumerate(early.get("weights") or []):
            arrays[f"best/{i}"] = w
        for i, b in enumerate(early.get("buffers") or []):
            arrays[f"best_buffer/{i}"] = b
    io.save(
        net,
        path,
        extra_arrays=arrays,
        training={
            "epoch": epoch,
            "optimizer": optimizer_config(opt),
            "optimizer_scalars": scalars,
            "host_rng": net.host_rng.get_state(),
            "device_rng": net.device_rng.get_state(),
            "history": history.to_dict(),
            "fit": fit_config,
            "early_stopping": early_meta,
            "data_fingerprint": data,
            "trend_start": trend_start,
        },
        **(metadata or {}),
    )


def check_checkpoint(
    metadata: dict,
    state: dict[str, tuple],
    params: dict[str, tuple],
    buffers: dict[str, tuple],
) -> None:
    """``bpnet.io``'s ``check_state`` for the checkpoints ``save_checkpoint``
    writes: see ``bpnet.train.checkpoint_check``."""
    check_training_state(metadata, state, params, buffers, optimizer_from_config)


def read_checkpoint(
    path: str | os.PathLike[str], device: Any = None, dtype: Any = None
) -> tuple[Any, dict, dict]:
    """(network, state arrays, metadata) of the checkpoint ``path``, checked
    completely before anything is built from it; ``ModelFileError`` naming
    the field that is missing, damaged or inconsistent."""
    return io.read_checkpoint(path, device, dtype, check_state=check_checkpoint)


def restore(path: str | os.PathLike[str], net: Any, opt: Optimizer) -> tuple[dict, int]:
    """Load a checkpoint's state into ``net`` and ``opt``; return
    (history dict, epochs completed)."""
    history, done, _, _ = restore_run(path, net, opt)
    return history, done


def _restore_device_rng(net: Any, state: Any, path: Any) -> None:
    """The dropout masks' generator, where this device's kind wrote the
    state; a run resumed on another array library starts its masks from
    the network's seed again (said when the network has dropout)."""
    if state is None or net.device_rng.takes_state(state):
        net.device_rng.set_state(state)
        return
    if any(getattr(layer, "rate", 0) for layer in net.layers):
        warnings.warn(
            f"resume: the checkpoint {os.fspath(path)!r} was trained on another "
            f"array library than {net.backend.name}'s; dropout's masks start again "
            "from the network's seed, so the run will differ from an unbroken one "
            "(resume on the checkpoint's device to go on exactly)",
            TrainingWarning,
            stacklevel=4,
        )


def _check_data(path: Any, recorded: Any, data: dict) -> None:
    """Refuse to go on with other data than the checkpoint's run had; a
    checkpoint that records none (an older file) goes on with a warning."""
    if recorded is None:
        warnings.warn(
            f"resume: the checkpoint {os.fspath(path)!r} records no fingerprint of "
            "the data it was trained on (it was written by an older bpnet), so "
            "nothing checks that X and y are that data",
            TrainingWarning,
            stacklevel=5,
        )
        return
    check_same_data(recorded, data, f"the checkpoint {os.fspath(path)!r}")


def restore_run(
    path: str | os.PathLike[str], net: Any, opt: Optimizer, data: dict | None = None
) -> tuple[dict, int, dict | None, float | None]:
    """``restore``, plus early stopping's state as ``save_checkpoint`` took
    it (best weights on the network's device), or None, and the loss trend's
    start (None in a checkpoint written before it was recorded). With
    ``data``, the fingerprint of the data the run goes on with, a checkpoint
    trained on other data is refused (``DataMismatchError``) before anything
    changes."""
    saved, arrays, training = io.load_checkpoint(
        path, device=net.backend, dtype=net.dtype_name, check_state=check_checkpoint
    )
    if data is not None:
        _check_data(path, training.get("data_fingerprint"), data)
    if saved.shapes != net.shapes or saved.buffer_shapes != net.buffer_shapes:
        raise ValueError(
            f"resume: the checkpoint {os.fspath(path)!r} holds a network with "
            f"parameter shapes {saved.shapes} and buffer shapes "
            f"{saved.buffer_shapes}, this one has {net.shapes} and "
            f"{net.buffer_shapes}"
        )
    net.set_parameters(saved.parameters())
    net.set_buffers(saved.buffers())

    def numbered(prefix: str) -> list[str]:
        keys = [k for k in arrays if k.startswith(prefix)]
        return sorted(
            keys, key=lambda k: (k.rsplit("/", 1)[0], int(k.rsplit("/", 1)[1]))
        )

    state: dict[str, list] = {}
    for key in numbered("opt/"):
        _, name, _ = key.split("/")
        state.setdefault(name, []).append(net.backend.asarray(arrays[key], net.dtype))
    opt.load_state_dict(training.get("optimizer_scalars", {}), state)
    if training.get("host_rng") is not None:
        net.host_rng.set_state(training["host_rng"])
    _restore_device_rng(net, training.get("device_rng"), path)
    early = training.get("early_stopping")
    if early is not None:
        best = [net.backend.asarray(arrays[k], net.dtype) for k in numbered("best/")]
        best_buffers = [
            net.backend.asarray(arrays[k], net.dtype) for k in numbered("best_buffer/")
        ]
        best_loss = early["best_loss"]
        early = {
            **early,
            "best_loss": math.inf if best_loss is None else float(best_loss),
            "weights": best or None,
            "buffers": best_buffers or None,
        }
    trend = training.get("trend_start")
    done = int(training.get("epoch", 0))
    return training.get("history", {}), done, early, trend
