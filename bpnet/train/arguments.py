"""Checks on ``fit``'s arguments that no layer or optimizer owns, made before
any data is copied or any step is taken: a run that cannot save its
checkpoint must fail in its first second, not after its first epoch."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from bpnet.io.atomic import refuse_link
from bpnet.io.modelfile import file_to_write, model_path


def check_checkpoint_path(checkpoint: Any) -> Path | None:
    """``checkpoint`` as a Path (or None): a file name in a folder that exists,
    not a folder itself, nor a link (checkpoints never write through one)."""
    if checkpoint is None:
        return None
    path = file_to_write(checkpoint, "checkpoint", "checkpoint.npz")
    if not path.parent.is_dir():
        raise ValueError(
            f"checkpoint: the folder {os.fspath(path.parent)!r} does not exist; "
            "create it first, or give a checkpoint path in an existing folder"
        )
    refuse_link(model_path(path), "checkpoint")
    return path


def check_bool(value: Any, name: str) -> bool:
    """True or False (NumPy's bool too); nothing else, not even 0 or 'no'."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise TypeError(f"{name}: expected True or False, got {value!r:.60}")
