"""Training: optimizers, the fit loop and its callbacks, full-batch solvers,
checkpoints and the history of a run.

Importing this package gives ``Sequential`` its ``fit`` method (``bpnet.fit``
with the network as ``self``): the core in ``bpnet.nn`` knows no fit loop.
"""

import functools
import inspect

from bpnet.nn.model import Sequential
from bpnet.train.loop import fit


@functools.wraps(fit)
def _fit_method(self, X, y, **kwargs):
    return fit(self, X, y, **kwargs)


# help() and IDEs show fit's own arguments, with the network as self
_signature = inspect.signature(fit)
_net, *_rest = _signature.parameters.values()
_fit_method.__signature__ = _signature.replace(
    parameters=[_net.replace(name="self", annotation=inspect.Parameter.empty), *_rest]
)
Sequential.fit = _fit_method
