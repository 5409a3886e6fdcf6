"""Full-batch training through ``scipy.optimize.minimize`` (ex4's fmincg).

scipy works in float64 on the host: each evaluation copies the flat parameter
vector to the device once and returns ``(float(loss), float64 gradient)``.
The methods are listed in ``SOLVERS``; each knows its own scipy options.
A data-parallel run (``comm=``) takes its rows and sums the ranks' numbers
through ``fullbatch_parallel.py``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

from bpnet.nn import validation as check
from bpnet.nn.losses import Loss, get_loss
from bpnet.nn.registry import Registry
from bpnet.train.fullbatch_parallel import _objective_parallel, _shard

SOLVERS = Registry("solver")


class _Stop(Exception):
    """Raised from the iteration callback to end a TNC run at maxiter."""


class Solver:
    """A method of ``scipy.optimize.minimize`` and the options it takes."""

    scipy_method = ""

    def options(self, maxiter: int, maxfun: int | None) -> dict[str, Any]:
        options: dict[str, Any] = {"maxiter": maxiter}
        if maxfun is not None:
            options["maxfun"] = maxfun
        return options

    def get_config(self) -> dict:
        return {"type": SOLVERS.name_of(self)}


@SOLVERS.register("cg")
class CG(Solver):
    """scipy's nonlinear conjugate gradient, as ex4's fmincg."""

    scipy_method = "CG"

    def options(self, maxiter: int, maxfun: int | None) -> dict[str, Any]:
        if maxfun is not None:
            raise ValueError(
                "maxfun: scipy's CG has no limit on evaluations, only maxiter; "
                f"got maxfun={maxfun} with method='CG'"
            )
        return {"maxiter": maxiter}


@SOLVERS.register("tnc")
class TNC(Solver):
    """scipy's truncated Newton; it counts evaluations, not iterations."""

    scipy_method = "TNC"

    def options(self, maxiter: int, maxfun: int | None) -> dict[str, Any]:
        return {"maxfun": 100 * maxiter if maxfun is None else maxfun}


@SOLVERS.register("lbfgs", aliases=("l-bfgs-b",))
class LBFGS(Solver):
    """scipy's L-BFGS-B, limited-memory quasi-Newton."""

    scipy_method = "L-BFGS-B"


def minimize(
    net: Any,
    X: Any,
    y: Any,
    *,
    loss: str | Loss | None = None,
    l2: float = 0.0,
    method: str = "CG",
    maxiter: int = 400,
    maxfun: int | None = None,
    tol: float | None = None,
    gtol: float | None = None,
    callback: Callable[[int, float], Any] | None = None,
    verbose: bool = False,
    print_fn: Callable[[str], None] = print,
    sample_weight: Any = None,
    objective: Callable[[], tuple[Any, list[Any]]] | None = None,
    comm: Any = None,
) -> Any:
    """Train ``net`` on all of ``X``, ``y`` with scipy's CG, TNC or L-BFGS-B.

    The objective is the network in inference mode, a deterministic function
    of the flat parameter vector: Dropout is off, and BatchNorm normalises
    with its running statistics, which stay as they are (``fit`` moves them).

    Parameters
    ----------
    net : Sequential
    X : array of shape (n_samples, n_features)
    y : labels (n_samples,) or targets (n_samples, n_outputs)
    loss : str or Loss, optional
        Defaults to the network's loss.
    l2 : float
        ex4's lambda: ``l2 / (2 n) * sum(W**2)``.
    method : str
        A name in ``SOLVERS`` ("cg", "tnc", "lbfgs"), in any case; scipy's
        own "L-BFGS-B" too.
    maxiter : int
        Iterations (ex4 uses 50 to 400).
    maxfun : int, optional
        Loss-and-gradient evaluations at most (L-BFGS-B and TNC; TNC's
        default is 100 per allowed iteration).
    tol : float, optional
        scipy's ``tol``: sets every tolerance of the method (for L-BFGS-B
        both ``ftol`` and ``gtol``).
    gtol : float, optional
        Only the gradient tolerance: stop once the gradient's largest
        component is below it. It is what scikit-learn's MLP passes as its
        ``tol``; ``tol=`` would also set ``ftol``, which stops L-BFGS-B far
        earlier.
    callback : callable ``cb(iteration, loss)``, optional
    sample_weight : array of shape (n_samples,), optional
        Weights >= 0: the loss is their weighted mean (see
        ``Sequential.loss_and_grad``).
    objective : callable, optional
        ``objective() -> (loss, grads)`` on the device at the network's
        current parameters, in place of the loss on ``X``, ``y`` (which are
        then ignored): for data that is not one array, e.g. a sparse matrix
        densified in slices.
    comm : bpnet.distributed communicator, optional
        Data-parallel over the ranks of an MPI job: each rank computes the
        loss and gradient sums of its rows, one allreduce per evaluation gives
        every rank (and its scipy) the same numbers, ``sample_weight``
        included (not ``objective``). Only rank 0 prints.

    Returns
    -------
    scipy.optimize.OptimizeResult
        With ``x`` (already set into ``net``), ``fun``, ``nit``, ``nfev``, and
        ``loss_curve`` (the loss after each iteration) and ``seconds``.
    """
    from scipy import optimize

    solver, options, maxiter = _solver_options(method, maxiter, maxfun, gtol)
    l2 = check.check_nonnegative(l2, "l2")
    loss = net.loss if loss is None else get_loss(loss)
    be = net.backend
    trace = _Trace(net.get_flat_parameters())

    if comm is not None and objective is not None:
        raise ValueError(
            "comm: data-parallel minimize takes the rows of X and y; it does not "
            "take objective (a closure over one process's data)"
        )
    if comm is not None and not comm.is_root:
        verbose = False
    # an overflowing trial step is handled (its loss is inf, the line search
    # backs off; _flag_false_convergence reports a run it ended), not warned of
    with be.context(), be.errstate():
        data = _device_data(net, X, y, loss, l2, sample_weight, objective, comm)
        evaluate = _evaluator(net, data, loss, objective, comm, trace)

        def on_iteration(xk: Any, *args: Any) -> None:
            trace.iterated(xk)
            if verbose:
                print_fn(f"Iteration {len(trace.curve):4d} | cost: {trace.loss:.6f}")
            if callback is not None:
                callback(len(trace.curve), trace.loss)
            if len(trace.curve) >= maxiter:
                raise _Stop  # TNC counts evaluations, not iterations

        t0 = time.perf_counter()
        try:
            result = optimize.minimize(
                evaluate,
                trace.start.copy(),
                jac=True,
                method=solver.scipy_method,
                tol=tol,
                options=options,
                callback=on_iteration,
            )
        except _Stop:
            result = trace.stopped(maxiter)
        _check_finite(result, trace.best, solver, l2, net)
        net.set_flat_parameters(result.x)
        stop_gtol = options.get("gtol", tol)
        _flag_false_convergence(result, trace.late_nonfinite(), stop_gtol, net)
        result.loss_curve = trace.curve
        result.seconds = time.perf_counter() - t0
    return result


def _solver_options(
    method: Any, maxiter: Any, maxfun: Any, gtol: Any
) -> tuple[Solver, dict[str, Any], int]:
    """The ``SOLVERS`` entry ``method`` names, the scipy options it takes for
    these limits, and ``maxiter`` checked."""
    key = method.lower() if isinstance(method, str) else None
    if key not in SOLVERS:
        raise ValueError(
            f"method: expected one of {SOLVERS.names(aliases=True)} (any case), "
            f"got {method!r}"
        )
    solver = SOLVERS.create(key)
    maxiter = check.check_int(maxiter, "maxiter")
    if maxfun is not None:
        maxfun = check.check_int(maxfun, "maxfun")
    options = solver.options(maxiter, maxfun)
    if gtol is not None:
        options["gtol"] = float(gtol)
    return solver, options, maxiter


class _Trace:
    """What a run has been through: the loss after each iteration (the
    curve), the evaluations, the point of the lowest finite loss (what
    divergence falls back to), and the evaluations whose loss was not
    finite."""

    def __init__(self, start: Any) -> None:
        self.start = start
        self.curve: list[float] = []
        self.loss = float("nan")  # the last evaluation's
        self.nfev = 0
        self.x: Any = None  # the last iteration's point
        # the point of the lowest finite loss: (flat weights, loss, iteration)
        self.best: tuple[Any, float, int] = (start, math.inf, 0)
        self.nonfinite = 0
        self.nonfinite_after = -2  # the iteration whose search last overflowed

    def evaluated(self, theta: Any, value: float) -> None:
        self.loss = value
        if not math.isfinite(value):  # in the search after iteration len(curve)
            self.nonfinite += 1
            self.nonfinite_after = len(self.curve)
        elif value < self.best[1]:  # what divergence falls back to
            self.best = (theta.copy(), value, len(self.curve))

    def iterated(self, xk: Any) -> None:
        self.x = xk.copy()
        self.curve.append(self.loss)

    def late_nonfinite(self) -> int:
        """The evaluations that overflowed, if one was in the last
        iteration's search (or after it): an early one that the run got past
        says nothing about where it stopped."""
        late = self.nonfinite_after >= len(self.curve) - 1
        return self.nonfinite if late else 0

    def stopped(self, maxiter: int) -> Any:
        """The result of a run ended at ``maxiter`` by the iteration callback."""
        from scipy import optimize

        return optimize.OptimizeResult(
            x=self.x,
            fun=self.curve[-1],
            nit=len(self.curve),
            nfev=self.nfev,
            njev=self.nfev,
            success=False,
            message=f"stopped after maxiter={maxiter} iterations",
        )


def _device_data(
    net: Any,
    X: Any,
    y: Any,
    loss: Loss,
    l2: float,
    sample_weight: Any,
    objective: Any,
    comm: Any,
) -> tuple[Any, Any, Any, float, float]:
    """What each evaluation runs on: ``(X, targets, weights, this rank's share,
    its l2)`` on the device; only this rank's rows reach its device, and all
    are None when ``objective`` computes the loss."""
    W = Xd = T = None
    weight, my_l2 = 1.0, l2
    if comm is not None:
        Xd, T, W, weight = _shard(net, X, y, loss, sample_weight, comm)
        my_l2 = l2 if comm.is_root else 0.0
    elif objective is None:
        Xd, T = net._prepare(X, y, loss)
        if sample_weight is not None:
            W = check.check_sample_weight(
                sample_weight, net.backend, net.dtype, Xd.shape[0]
            )
    return Xd, T, W, weight, my_l2


def _evaluator(
    net: Any, data: tuple, loss: Loss, objective: Any, comm: Any, trace: _Trace
) -> Callable[[Any], tuple[float, Any]]:
    """scipy's objective: the flat float64 vector in, ``(float loss, float64
    host gradient)`` out, each evaluation recorded in ``trace``."""
    Xd, T, W, weight, l2 = data
    be = net.backend

    def evaluate(theta: Any) -> tuple[float, Any]:
        trace.nfev += 1
        net.set_flat_parameters(theta)
        if comm is not None:  # every rank: the same reduced numbers
            value, flat = _objective_parallel(net, Xd, T, W, loss, l2, weight, comm)
        else:
            if objective is None:
                L, grads = net._loss_and_grad(
                    Xd, T, loss, l2, training=False, weights=W
                )
            else:
                L, grads = objective()
            value, flat = float(L), be.pack(grads)
        trace.evaluated(theta, value)
        return value, flat

    return evaluate


def _check_finite(
    result: Any, best: tuple, solver: Solver, l2: float, net: Any
) -> None:
    """Stop a run that ended on NaN or Inf (its loss, or its weights) as
    ``fit`` stops a diverged one: the weights of the lowest finite loss seen
    (the starting weights when there was none) go back into ``net`` and
    ``DivergenceError`` says so."""
    from bpnet.train.history import DivergenceError, History

    finite_x = math.isfinite(float((result.x * 0.0).sum()))  # inf * 0 is NaN
    if finite_x and math.isfinite(float(result.fun)):
        return
    theta, loss, iteration = best
    net.set_flat_parameters(theta)
    name = SOLVERS.name_of(solver)
    if math.isfinite(loss):
        kept = (
            f"the weights of the lowest finite loss ({loss:.6g}, "
            f"{'the starting weights' if iteration == 0 else f'iteration {iteration}'})"
            " were restored"
        )
    else:
        kept = "the loss was not finite even at the starting weights, kept as they were"
    hint = (
        f"a smaller l2 (got {l2:g})"
        if l2 > 1e6
        else "scaling the inputs to [0, 1]"
        + ("" if net.dtype_name == "float64" else ", or dtype float64")
    )
    raise DivergenceError(
        f"training diverged: the {name} solver ended with a NaN or Inf "
        f"{'loss' if finite_x else 'in its weights'} "
        f"after {int(getattr(result, 'nit', 0))} iteration(s); {kept}. Try {hint}.",
        History({"loss": list(getattr(result, "loss_curve", []))}),
    )


def _flag_false_convergence(result: Any, nonfinite: int, gtol: Any, net: Any) -> None:
    """Mark a run that scipy calls converged as failed when some evaluation's
    loss overflowed and it stopped with the gradient above its tolerance.

    scipy's relative-reduction test stops L-BFGS-B once a step changes the
    loss by less than ``ftol`` (2.2e-9) of it. After a trial step whose loss
    overflowed (``exp`` of a large output, most often in float32) the line
    search can end on the loss it started from, which passes that test far
    from any minimum. scikit-learn's run of the same fit ends ABNORMAL.
    """
    jac = getattr(result, "jac", None)
    if not result.success or not nonfinite or jac is None:
        return
    # scipy's host gradient, through its own methods (no array library here)
    largest = max(float(jac.max()), -float(jac.min())) if jac.size else 0.0
    if largest <= (1e-5 if gtol is None else float(gtol)):
        return  # it did reach the gradient's tolerance
    cure = (
        "scale the inputs and targets"
        if net.dtype_name == "float64"
        else f"fit in float64 (this model is {net.dtype_name}), or scale the "
        "inputs and targets"
    )
    result.success = False
    result.message = (
        f"{nonfinite} evaluation(s) gave an infinite or NaN loss, then the "
        f"loss ({float(result.fun):.8g}) stopped changing with the gradient's "
        f"largest component at {largest:.3g}: not a minimum (scipy: "
        f"{' '.join(str(result.message).split())}); {cure}"
    )
