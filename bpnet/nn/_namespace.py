"""The Array API namespace of an array, remembered per array type.

``array_api_compat.array_namespace`` inspects its argument every call (a few
microseconds); a training step asks it a dozen times about arrays of the same
type. The namespace depends only on the array's type, so one lookup per type
is enough.
"""

from __future__ import annotations

from typing import Any

from array_api_compat import array_namespace

_BY_TYPE: dict[type, Any] = {}


def namespace(x: Any) -> Any:
    """``array_namespace(x)``, looked up once per type of ``x``."""
    xp = _BY_TYPE.get(type(x))
    if xp is None:
        xp = array_namespace(x)  # raises TypeError for non-arrays: nothing cached
        _BY_TYPE[type(x)] = xp
    return xp
