"""Training: optimizers, the fit loop and its callbacks, full-batch solvers,
checkpoints and the history of a run."""
