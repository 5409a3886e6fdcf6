"""``bpnet-train``'s command line: the parser, the checks on each flag alone,
and what the commands share (one-line usage errors, a missing extra, the
flags both commands take).

The choices of --activation, --loss, --init, --optimizer and --schedule, and
their help, come from the registries (``bpnet.nn.registry``): a class that
joins one is a choice here with no change to this file.
"""

from __future__ import annotations

import argparse
from typing import Any

from bpnet.cli.train_args import DATASETS, explicit_flags


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (and exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def path_named(what: str) -> Any:
    """argparse type: a non-empty path (``--out ""`` would write nowhere, and
    ``--resume ""`` start a fresh run); ``what`` is the example in the error."""

    def check(text: str) -> str:
        if not text.strip():
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return text

    return check


# The seeds every consumer takes: scikit-learn's splits refuse larger ones.
MAX_SEED = 2**32 - 1


def nonnegative_int(text: str) -> int:
    """argparse type: a seed, an integer in [0, 2**32 - 1]."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_SEED:
        raise argparse.ArgumentTypeError(
            f"expected an integer in [0, {MAX_SEED}], got {text!r}"
        )
    return value


# The flags bpnet-train and bpnet-predict share, defined once; a command may
# change a definition's default or help where its meaning differs.
SHARED_FLAGS: dict[str, dict[str, Any]] = {
    "--dataset": {"choices": DATASETS},
    "--data-dir": {"metavar": "DIR", "help": "folder holding the IDX .gz files"},
    "--seed": {"type": nonnegative_int},
    "--test-size": {"type": float},
    "--device": {
        "default": "cpu",
        "help": (
            "cpu, cuda, cuda:N, torch, torch:cuda, jax, jax:gpu, array-api-strict, "
            "dpnp, dpnp:gpu"
        ),
    },
    "--json": {"action": "store_true", "help": "end stdout with one JSON summary line"},
    "--debug": {"action": "store_true", "help": "show tracebacks"},
}


def add_flag(group: Any, name: str, **changes: Any) -> None:
    """Add the shared flag ``name`` to a parser or group, with ``changes``."""
    group.add_argument(name, **{**SHARED_FLAGS[name], **changes})


def choices_help(registry: Any) -> str:
    """'name: help line; ...' for every choice of a registry."""
    return "; ".join(f"{n}: {registry.help(n)}" for n in registry.names())


def lr_help() -> str:
    """--lr's help: each optimizer's suggested learning rate, the most common
    one as 'otherwise'."""
    from bpnet.train.optimizers import OPTIMIZERS

    by_lr: dict[float, list[str]] = {}
    for name in OPTIMIZERS.names():
        by_lr.setdefault(OPTIMIZERS.get(name).suggested_lr, []).append(name)
    common = max(by_lr, key=lambda lr: len(by_lr[lr]))
    parts = [f"{lr:g} for {'/'.join(n)}" for lr, n in by_lr.items() if lr != common]
    return f"learning rate (default: {', '.join([*parts, f'{common:g} otherwise'])})"


# Optional packages the commands import on first use, and the extra that has them.
EXTRAS = {
    "sklearn": ("scikit-learn", "train"),
    "scipy": ("scipy", "train"),
    "tqdm": ("tqdm", "train"),
    "matplotlib": ("matplotlib", "plot"),
    "mpi4py": ("mpi4py", "mpi"),
    "ndonnx": ("ndonnx", "onnx"),
    "onnx": ("onnx", "onnx"),
    "onnxscript": ("onnxscript", "onnx"),
    "onnxruntime": ("onnxruntime", "onnx"),
    "skl2onnx": ("skl2onnx", "onnx"),
}


def missing_extra(exc: BaseException) -> str | None:
    """The one-line message for an optional package that is not installed."""
    if not isinstance(exc, ModuleNotFoundError) or not exc.name:
        return None
    top = exc.name.split(".")[0]
    if top not in EXTRAS:
        return None
    package, extra = EXTRAS[top]
    return (
        f"{package} is not installed; install it with: "
        f"pip install 'bpnet-arrayapi[{extra}]'"
    )


class _DefaultsOnce(argparse.ArgumentDefaultsHelpFormatter):
    """Every flag's default, shown once: not where the help already says it,
    nor for flags that are off (or unset) by default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        off = action.default is None or action.default is False
        if "default" in text or off or action.default is argparse.SUPPRESS:
            return text
        return f"{text} (default: %(default)s)".strip()


def build_parser() -> argparse.ArgumentParser:
    """``bpnet-train``'s parser: its flags in the groups --help shows."""
    p = OneLineParser(
        prog="bpnet-train",
        description="Train a bpnet MLP on digits, (Fashion-)MNIST or ex4 .mat data.",
        formatter_class=_DefaultsOnce,
    )
    _add_data_arguments(p.add_argument_group("data"))
    _add_model_arguments(p.add_argument_group("model"))
    _add_training_arguments(p.add_argument_group("training"))
    _add_run_arguments(p.add_argument_group("run"))
    return p


def _add_data_arguments(d: Any) -> None:
    """The data trained on, and its test split."""
    from bpnet.data.base import SPLITS

    add_flag(
        d,
        "--dataset",
        default="digits",
        help="digits ship with scikit-learn; (Fashion-)MNIST are read from --data-dir",
    )
    d.add_argument(
        "--data",
        metavar="FILE",
        help="an ex4-style .mat file (X, y), X.npy (memory-mapped; with --labels) "
        "or an .npz holding X and y",
    )
    d.add_argument("--labels", metavar="FILE.npy", help="the labels of --data X.npy")
    add_flag(d, "--data-dir")
    add_flag(
        d,
        "--test-size",
        default=0.2,
        help="held-out test fraction of digits and --data files: a split seeded by "
        "--seed, shuffled and stratified by class (see --test-split); 0 trains on "
        "every row, with no test metrics",
    )
    d.add_argument(
        "--test-split",
        choices=SPLITS,
        default="shuffled",
        help="shuffled: scikit-learn's train_test_split, stratified when every "
        "class has 2 rows or more; tail: the last --test-size of the rows, in the "
        "file's order (keeps an X.npy memory-mapped)",
    )


def _add_model_arguments(m: Any) -> None:
    """The network: its layers, activation, loss and initial weights."""
    from bpnet.nn.activations import ACTIVATIONS
    from bpnet.nn.initializers import INITIALIZERS
    from bpnet.nn.losses import LOSSES

    m.add_argument(
        "--hidden",
        type=int,
        nargs="*",
        default=[128],
        metavar="N",
        help="hidden layer widths (none for a linear model)",
    )
    m.add_argument(
        "--conv",
        action="store_true",
        help="Deep Learning from Scratch's SimpleConvNet: 30 5x5 filters (3x3 on "
        "8x8 digits), ReLU, 2x2 max-pool, then the --hidden Dense layers "
        "(default 100)",
    )
    m.add_argument(
        "--activation",
        default="relu",
        choices=ACTIVATIONS.names(),
        help="hidden-layer activation",
    )
    m.add_argument(
        "--loss", default="softmax", choices=LOSSES.names(), help=choices_help(LOSSES)
    )
    m.add_argument(
        "--dropout",
        type=float,
        default=0.0,
        help="dropout rate after each hidden layer",
    )
    m.add_argument(
        "--batch-norm",
        action="store_true",
        help="BatchNorm after each hidden Dense layer, before its activation",
    )
    m.add_argument(
        "--init",
        default=None,
        choices=INITIALIZERS.names(),
        help="weight initializer (default: He for ReLU, Glorot otherwise)",
    )


def _add_training_arguments(t: Any) -> None:
    """How the network is trained: optimizer, epochs, penalties, stopping."""
    from bpnet.cli.train_args import optimizers_taking
    from bpnet.train.fullbatch import SOLVERS
    from bpnet.train.optimizers import OPTIMIZERS, SCHEDULES

    minibatch, full = OPTIMIZERS.names(), SOLVERS.names()
    t.add_argument(
        "--optimizer",
        default="adam",
        choices=[*minibatch, *full],
        help=f"minibatch {'/'.join(minibatch)}, or scipy's full-batch "
        f"{'/'.join(full)}; adam for 40 epochs is a run that needs no tuning "
        "(bpnet.fit's sgd for 10 is the notebooks' plain descent)",
    )
    t.add_argument("--lr", type=float, default=None, help=lr_help())
    t.add_argument(
        "--epochs",
        type=int,
        default=40,
        help=f"epochs; for {'/'.join(full)} the iteration count",
    )
    t.add_argument(
        "--iterations",
        type=int,
        default=None,
        help="minibatch steps instead of --epochs (rounded up to whole epochs)",
    )
    t.add_argument("--batch-size", type=int, default=32, help="rows per step")
    t.add_argument(
        "--l2", type=float, default=0.0, help="weight penalty l2/(2n) sum W^2"
    )
    t.add_argument(
        "--weight-decay",
        type=float,
        default=0.0,
        help=f"decoupled weight decay of {'/'.join(optimizers_taking('weight_decay'))}",
    )
    t.add_argument(
        "--schedule",
        choices=["none", *SCHEDULES.names()],
        default="none",
        help="learning-rate schedule over the epochs",
    )
    t.add_argument(
        "--validation-fraction",
        type=float,
        default=0.0,
        help="training rows held out and scored every epoch",
    )
    t.add_argument(
        "--early-stopping",
        action="store_true",
        help="stop when the validation loss stops improving; keep the best weights",
    )
    t.add_argument(
        "--patience",
        type=int,
        default=10,
        help="epochs without improvement before --early-stopping stops",
    )


def _add_run_arguments(r: Any) -> None:
    """Where and how the run goes: device, precision, files, ranks, output."""
    add_flag(r, "--device")
    r.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float64"],
        help="precision of weights and arithmetic",
    )
    add_flag(
        r, "--seed", default=0, help="initial weights, batch order and the data split"
    )
    r.add_argument(
        "--out",
        metavar="DIR",
        type=path_named("a folder name, e.g. --out runs/digits"),
        help="write checkpoint.npz, model.npz, history.json and plots here; a folder "
        "that holds another run is refused",
    )
    r.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run already in --out (its files are deleted first)",
    )
    r.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        type=path_named("a checkpoint file, e.g. --resume runs/digits/checkpoint.npz"),
        help="continue a run from its checkpoint.npz, with the checkpoint's model, "
        "optimizer, batch size, schedule, seed and data",
    )
    r.add_argument(
        "--report", action="store_true", help="print a classification report"
    )
    add_flag(r, "--json")
    r.add_argument(
        "--distributed",
        action="store_true",
        help="data-parallel over the ranks of mpiexec (needs the mpi extra); "
        "--batch-size is the global batch",
    )
    r.add_argument("--progress", action="store_true", help="show a progress bar")
    r.add_argument("--quiet", "-q", action="store_true", help="no per-epoch lines")
    add_flag(r, "--debug")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """``bpnet-train``'s arguments, with ``explicit``: the flags given."""
    args = build_parser().parse_args(argv)
    args.explicit = explicit_flags(build_parser, argv, args)
    return args


def check_args(args: argparse.Namespace) -> None:
    from bpnet.nn import validation as check

    for h in args.hidden:
        if h <= 0:
            raise ValueError(f"--hidden: expected positive layer widths, got {h}")
    check.check_int(args.epochs, "--epochs", minimum=1)
    check.check_int(args.batch_size, "--batch-size", minimum=1)
    if args.iterations is not None:
        check.check_int(args.iterations, "--iterations", minimum=1)
    if args.lr is not None:
        check.check_positive(args.lr, "--lr")
    check.check_nonnegative(args.l2, "--l2")
    if not 0 <= args.dropout < 1:  # also false for NaN
        raise ValueError(
            "--dropout: expected the fraction of hidden units dropped, "
            f"in [0, 1), got {args.dropout}"
        )
    check_test_size(args.test_size)
    check.check_int(args.patience, "--patience", minimum=1)
    if not 0 <= args.validation_fraction < 1:  # also false for NaN
        raise ValueError(
            "--validation-fraction: expected the fraction of training rows held "
            f"out, in [0, 1), got {args.validation_fraction}"
        )


def check_test_size(value: float) -> None:
    """--test-size of bpnet-train and bpnet-predict: a fraction in [0, 1)."""
    from bpnet.data.base import check_test_size as check

    check(value, "--test-size")
