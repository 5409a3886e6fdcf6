"""What a load checks of a file's arrays before it reads them: that they are
the arrays the model's config needs (names, shapes, floating point), and how
many bytes reading them and building the model takes."""

from __future__ import annotations

from typing import Any

import numpy as np

from bpnet.io.modelfile import ModelFileError


def _span(names: list[str]) -> str:
    shown = f"{names[0]}..{names[-1]}" if len(names) > 1 else names[0]
    return f"the {len(names)} array{'s' if len(names) > 1 else ''} {shown}"


def _same_arrays(found: dict[str, tuple], params: dict, others: dict) -> None:
    needed = {**params, **others}
    if set(found) != set(needed):
        spans = [_span(list(group)) for group in (params, others) if group]
        raise ModelFileError(
            f"its config needs {' and '.join(spans) or 'no arrays'}, the file has "
            f"{sorted(found)[:10]}; arrays the metadata does not describe are "
            "refused"
        )
    for name, shape in needed.items():
        got, dtype = found[name]
        if tuple(got) != tuple(shape) or dtype.kind != "f":
            raise ModelFileError(
                f"array {name!r} is stored as {dtype} of shape {tuple(got)}, but "
                f"the config needs floating point of shape {tuple(shape)}"
            )


# What a load allocates per number of the model's parameters and buffers,
# besides the array read from the file: the network built fresh (its initial
# weights drawn in float64 on the host, then cast) and the read weights
# copied into it. Measured: loading a float32 Dense(64, 2**19) peaks at
# 4.1 times its 128 MiB of weights; this counts 5.
_BUILD_BYTES = 8


_COPIES = 2


def _load_bytes(headers: dict[str, tuple], model: dict[str, tuple], dtype: Any) -> int:
    """Bytes a load of these arrays allocates: each read once as stored, and
    the model's (``model``) built and copied in the dtype asked for."""
    import math

    need = 0
    for name, (shape, stored) in headers.items():
        n = math.prod(shape)
        need += n * stored.itemsize
        if name in model:
            size = stored.itemsize if dtype is None else np.dtype(dtype).itemsize
            need += n * (_BUILD_BYTES + _COPIES * size)
    return need
