"""``bpnet-train``'s command line: the parser, the checks on each flag alone,
and what the commands share (one-line usage errors, a missing extra)."""

from __future__ import annotations

import argparse

from bpnet.cli.train_args import explicit_flags


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (and exit 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def nonnegative_int(text: str) -> int:
    """argparse type: an integer >= 0 (a seed)."""
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(
            f"expected a non-negative integer, got {text!r}"
        )
    return value


# Optional packages the commands import on first use, and the extra that has them.
EXTRAS = {
    "sklearn": ("scikit-learn", "train"),
    "scipy": ("scipy", "train"),
    "tqdm": ("tqdm", "train"),
    "matplotlib": ("matplotlib", "plot"),
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
    p = OneLineParser(
        prog="bpnet-train",
        description="Train a bpnet MLP on digits, (Fashion-)MNIST or ex4 .mat data.",
        formatter_class=_DefaultsOnce,
    )
    d = p.add_argument_group("data")
    d.add_argument(
        "--dataset",
        default="digits",
        choices=["digits", "fashion-mnist", "mnist"],
        help="digits ship with scikit-learn; (Fashion-)MNIST are read from --data-dir",
    )
    d.add_argument("--data", metavar="FILE.mat", help="an ex4-style .mat file (X, y)")
    d.add_argument("--data-dir", metavar="DIR", help="folder holding the IDX .gz files")
    d.add_argument(
        "--test-size",
        type=float,
        default=0.2,
        help="held-out fraction for datasets without a test split",
    )
    m = p.add_argument_group("model")
    m.add_argument(
        "--hidden",
        type=int,
        nargs="*",
        default=[128],
        metavar="N",
        help="hidden layer widths (none for a linear model)",
    )
    m.add_argument(
        "--activation",
        default="relu",
        choices=["relu", "leaky_relu", "sigmoid", "tanh"],
        help="hidden-layer activation",
    )
    m.add_argument(
        "--loss",
        default="softmax",
        choices=["softmax", "sigmoid"],
        help="softmax cross-entropy, or ex4's per-output sigmoid cross-entropy",
    )
    m.add_argument(
        "--dropout",
        type=float,
        default=0.0,
        help="dropout rate after each hidden layer",
    )
    m.add_argument(
        "--init",
        default=None,
        choices=["he", "glorot", "uniform"],
        help="weight initializer (default: He for ReLU, Glorot otherwise)",
    )
    t = p.add_argument_group("training")
    t.add_argument(
        "--optimizer",
        default="adam",
        choices=["sgd", "momentum", "nesterov", "adam", "cg", "tnc", "lbfgs"],
        help="minibatch sgd/momentum/nesterov/adam, or scipy's full-batch cg/tnc/lbfgs",
    )
    t.add_argument(
        "--lr",
        type=float,
        default=None,
        help="learning rate (default: 0.003 for adam, 0.1 otherwise)",
    )
    t.add_argument(
        "--epochs",
        type=int,
        default=40,
        help="epochs; for cg/tnc/lbfgs the iteration count",
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
        "--weight-decay", type=float, default=0.0, help="Adam's decoupled decay"
    )
    t.add_argument(
        "--schedule",
        choices=["none", "cosine", "step"],
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
    r = p.add_argument_group("run")
    r.add_argument(
        "--device",
        default="cpu",
        help="cpu, cuda, cuda:N, torch, torch:cuda, array-api-strict",
    )
    r.add_argument(
        "--dtype",
        default="float32",
        choices=["float32", "float64"],
        help="precision of weights and arithmetic",
    )
    r.add_argument(
        "--seed",
        type=nonnegative_int,
        default=0,
        help="initial weights, batch order and the data split",
    )
    r.add_argument(
        "--out", metavar="DIR", help="write model.npz, history.json and plots here"
    )
    r.add_argument(
        "--resume",
        metavar="CHECKPOINT",
        help="continue a run from its checkpoint.npz, with the checkpoint's model, "
        "optimizer, batch size, schedule, seed and data",
    )
    r.add_argument(
        "--report", action="store_true", help="print a classification report"
    )
    r.add_argument(
        "--json", action="store_true", help="end stdout with one JSON summary line"
    )
    r.add_argument("--progress", action="store_true", help="show a progress bar")
    r.add_argument("--quiet", "-q", action="store_true", help="no per-epoch lines")
    r.add_argument("--debug", action="store_true", help="show tracebacks")
    return p


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
    check_test_size(args.test_size)


def check_test_size(value: float) -> None:
    """--test-size of bpnet-train and bpnet-predict: a fraction in (0, 1)."""
    if not 0 < value < 1:
        raise ValueError(f"--test-size: expected a fraction in (0, 1), got {value}")
