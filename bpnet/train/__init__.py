"""Training: optimizers, the fit loop and its callbacks, full-batch solvers,
checkpoints and the history of a run.

Importing this package gives ``Sequential`` its ``fit`` method (``bpnet.fit``
with the network as ``self``): the core in ``bpnet.nn`` knows no fit loop.
"""

import functools

from bpnet.nn.model import Sequential
from bpnet.train.loop import fit


@functools.wraps(fit)
def _fit_method(self, X, y, **kwargs):
    return fit(self, X, y, **kwargs)


Sequential.fit = _fit_method
