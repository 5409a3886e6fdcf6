import array_api_compat
import numpy as np
import pytest

from bpnet.nn._namespace import namespace


def test_namespace_is_array_api_compat_s_for_every_backend(backend):
    x = backend.asarray(np.zeros((2, 3)), "float32")
    first, again = namespace(x), namespace(x[0, ...])
    assert first is array_api_compat.array_namespace(x)
    assert again is first


@pytest.mark.parametrize("value", [1.0, [1.0, 2.0], "abc", None])
def test_namespace_of_a_non_array_raises_every_time(value):
    for _ in range(2):  # a failed lookup is not remembered
        with pytest.raises(TypeError):
            namespace(value)
