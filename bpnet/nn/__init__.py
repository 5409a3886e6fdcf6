"""The core: layers (each owns its parameters), losses, the model and gradient
checks, written on the Array API only. It imports nothing above it (see
docs/architecture.md).

Importing the package imports every module that registers a building block,
so the registries (``bpnet.nn.layers.LAYERS``, ``ACTIVATIONS``, ...) are
complete whichever module a user imports first.
"""

from bpnet.nn import (  # noqa: F401  (they register classes)
    activations,
    conv,
    initializers,
    layers,
    losses,
    normalization,
    pooling,
    scale,
)
