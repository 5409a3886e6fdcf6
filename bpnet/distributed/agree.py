"""Every rank of a job runs the same run: rank 0's settings and data
fingerprint are checked on every rank at start-up.

Ranks started with different settings would otherwise train garbage (a
different learning rate or seed: each rank steps its own way and the summed
gradients mean nothing) or wait forever in a reduction whose buffers differ
(a different network or batch size). One ``bcast`` of rank 0's settings and
one ``allgather`` of each rank's first disagreement make every rank raise the
same ``RankMismatchError``, naming the first rank that disagrees and the
setting, before any training step.
"""

from __future__ import annotations

from typing import Any


class RankMismatchError(ValueError):
    """A rank was started with other settings or data than rank 0; ``rank``
    is that rank. Every rank of the job raises the same error."""

    def __init__(self, message: str, rank: int) -> None:
        super().__init__(message)
        self.rank = rank


def _shown(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(map(str, value))
    if isinstance(value, dict) and "blake2b" in value:  # a data fingerprint
        from bpnet.io.fingerprint import describe

        return describe(value)
    return f"{value!r:.200}" if isinstance(value, dict) else str(value)


def first_difference(mine: dict[str, Any], root: dict[str, Any]) -> str | None:
    """``"NAME is MINE, rank 0 has ROOT'S"`` for the first setting in which
    ``mine`` and rank 0's ``root`` differ (one side missing counts; in a
    nested config, its first field that differs: ``optimizer.lr``), or
    None."""
    missing = object()
    for key in list(root) + [k for k in mine if k not in root]:
        a, b = mine.get(key, missing), root.get(key, missing)
        nested = isinstance(a, dict) and isinstance(b, dict)
        if nested and a != b and "blake2b" not in b:  # a config: its field
            inner = first_difference(a, b)
            if inner is not None:
                return f"{key}.{inner}"
        if a != b:
            a_s = "not set" if a is missing else _shown(a)
            b_s = "not set" if b is missing else _shown(b)
            return f"{key} is {a_s}, rank 0 has {b_s}"
    return None


def check_ranks_agree(comm: Any, settings: dict[str, Any], what: str) -> None:
    """Raise ``RankMismatchError`` on every rank unless every rank's
    ``settings`` (picklable, compared with ``==``) equal rank 0's. ``what``
    says what was compared, for the message (``"settings"``, ``"data"``)."""
    root = comm.bcast(settings)
    mine = first_difference(settings, root)
    found = comm.allgather(mine)
    for rank, diff in enumerate(found):
        if diff is not None:
            raise RankMismatchError(
                f"rank {rank} of {comm.size}: {diff}; every rank of a job must be "
                f"started with the same {what} (the job stopped before training)",
                rank,
            )
