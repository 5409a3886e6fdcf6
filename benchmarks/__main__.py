"""One entry point for bpnet's benchmarks.

    python -m benchmarks SUBCOMMAND [FLAGS]     # from the repository root
    python -m benchmarks SUBCOMMAND --help

Every measurement is a subcommand; the method of each is in its module's
docstring, and the numbers it gives are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import importlib
import os
import sys

from benchmarks import SLOW_ENV, UNSET_MARK

# subcommand: (module, leading flags, one line for the usage)
SUBCOMMANDS = {
    "peers": ("peers", (), "bpnet beside PyTorch, JAX, scikit-learn, NumPy, scipy CG"),
    "sweep": ("peers", ("--sweep",), "peers over widths x batch sizes (--plot)"),
    "profile": ("profiling", (), "where a training step's time goes on the CPU"),
    "peak": ("peak", (), "this core's GEMM peak for each layer's product layouts"),
    "fixed-cost": ("fixed_cost", (), "a step's fixed cost, checkouts side by side"),
    "torch-rounds": ("torch_rounds", (), "bpnet-torch vs a PyTorch step, by rounds"),
    "onnx": ("onnx_export", (), "exported ONNX model vs hand-written, onnxruntime"),
    "scaling": ("scaling", (), "data-parallel training across MPI ranks"),
    "estimators": (None, (), "classifier | regressor: the estimators vs sklearn"),
}
ESTIMATORS = {
    "classifier": "classifier_vs_sklearn",
    "regressor": "regressor_vs_sklearn",
}
# the subcommands that time BLAS, and so run without SLOW_ENV
CLEAN_ENV = ("peers", "sweep", "profile")


def _reexec_without_slow_env() -> None:
    found = [k for k in SLOW_ENV if k in os.environ]
    if not found:
        return
    env = {k: v for k, v in os.environ.items() if k not in SLOW_ENV}
    env[UNSET_MARK] = ",".join(filter(None, [env.get(UNSET_MARK, ""), *found]))
    os.execve(sys.executable, [sys.executable, "-m", "benchmarks", *sys.argv[1:]], env)


def _usage() -> str:
    rows = "\n".join(f"  {k:13s} {v[2]}" for k, v in SUBCOMMANDS.items())
    return f"usage: python -m benchmarks SUBCOMMAND [FLAGS]\n\nsubcommands:\n{rows}\n"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        sys.stdout.write(_usage())
        return 0 if argv else 2
    name, rest = argv[0], argv[1:]
    if name not in SUBCOMMANDS:
        sys.stderr.write(
            f"{_usage()}\npython -m benchmarks: SUBCOMMAND must be one of "
            f"{', '.join(SUBCOMMANDS)}; got {name!r}\n"
        )
        return 2
    if name in CLEAN_ENV:
        _reexec_without_slow_env()
    module, lead, _ = SUBCOMMANDS[name]
    prog = f"python -m benchmarks {name}"
    if module is None:  # estimators KIND
        if not rest or rest[0] not in ESTIMATORS:
            got = repr(rest[0]) if rest else "nothing"
            sys.stderr.write(
                f"{prog}: KIND must be one of {', '.join(ESTIMATORS)}; got {got}\n"
            )
            return 2
        module, prog, rest = ESTIMATORS[rest[0]], f"{prog} {rest[0]}", rest[1:]
    sys.argv = [prog, *lead, *rest]  # argparse names the subcommand in its messages
    rc = importlib.import_module(f"benchmarks.{module}").main([*lead, *rest])
    return rc if isinstance(rc, int) else 0


if __name__ == "__main__":
    sys.exit(main())
