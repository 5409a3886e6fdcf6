"""Saving and loading models: files that are safe to load from strangers and
survive crashes.

A model file is a NumPy ``.npz`` archive read without pickle, plus a JSON
metadata document (see ``bpnet.io.modelfile`` for the layout and the checks).
Writes are atomic: a crash leaves the previous file whole. Every problem with
a file's contents raises ``ModelFileError`` (a ``ValueError``) naming the file
and what is wrong; a missing file raises the usual ``FileNotFoundError``.

>>> import bpnet, bpnet.io
>>> net = bpnet.Sequential([bpnet.Dense(4, 8), bpnet.ReLU(), bpnet.Dense(8, 3)])
>>> path = bpnet.io.save(net, "model.npz", classes=["a", "b", "c"])  # doctest: +SKIP
>>> same = bpnet.io.load(path, device="cpu")  # doctest: +SKIP

What is stored for an object is decided by its *kind*: ``Sequential`` is
built in, and other model types plug in with ``register_kind``.

The kinds are kept in ``bpnet.io.kinds``, ``save`` is in ``bpnet.io.saving``,
``load`` and the checkpoint readers in ``bpnet.io.loading``; the file format
itself in ``bpnet.io.modelfile``.

A checkpoint is a model file with training state added: arrays under
``extra_arrays`` (stored as ``"state/NAME"``) and a JSON ``training`` dict::

    scalars, state = optimizer.state_dict()
    save(net, "ckpt.npz",
         extra_arrays={f"{k}/{i}": a for k, v in state.items()
                       for i, a in enumerate(v)},
         training={"epoch": epoch, "optimizer": scalars, "history": history})
    net, arrays, training = load_checkpoint("ckpt.npz", device="cuda")
"""

from __future__ import annotations

from bpnet.io.atomic import atomic_write_bytes, atomic_write_text
from bpnet.io.kinds import (  # noqa: F401 (the types a kind's functions have)
    ArraysOf,
    Loader,
    Saver,
    Shapes,
    register_kind,
)
from bpnet.io.loading import (  # noqa: F401 (StateCheck: check_state's type)
    StateCheck,
    load,
    load_checkpoint,
    read_checkpoint,
)
from bpnet.io.modelfile import (
    FORMAT_VERSION,
    MAX_MEMORY,
    ModelFileError,
    memory_budget,
    read_model_file,
    write_model_file,
)
from bpnet.io.saving import STATE_PREFIX, save  # noqa: F401 (a checkpoint's state/)
from bpnet.io.sequential import (
    sequential_arrays,
    sequential_from_arrays,
    sequential_to_arrays,
)
from bpnet.nn.model import Sequential

__all__ = [
    "FORMAT_VERSION",
    "MAX_MEMORY",
    "ModelFileError",
    "atomic_write_bytes",
    "atomic_write_text",
    "load",
    "load_checkpoint",
    "memory_budget",
    "read_checkpoint",
    "read_model_file",
    "register_kind",
    "save",
    "sequential_arrays",
    "sequential_from_arrays",
    "sequential_to_arrays",
    "write_model_file",
]

register_kind(
    "Sequential",
    sequential_to_arrays,
    sequential_from_arrays,
    types=Sequential,
    arrays=sequential_arrays,
)
