"""What ``bpnet-train``'s flags mean together: which ones the user gave, which
ones the chosen optimizer uses, what data a run trains on, and what a
checkpoint fixes when a run is resumed. Names of optimizers, activations,
losses and schedules come from their registries."""

from __future__ import annotations

import argparse
import inspect
import math
from pathlib import Path
from typing import Any

# The datasets --dataset names; a checkpoint may also record "mat" (--data).
DATASETS = ("digits", "fashion-mnist", "mnist")

# Flags that only the minibatch loop reads; cg/tnc/lbfgs would ignore them.
MINIBATCH_ONLY = (
    "lr",
    "iterations",
    "batch_size",
    "weight_decay",
    "schedule",
    "dropout",
    "batch_norm",  # minimize trains the inference-mode network: fixed statistics
    "validation_fraction",
    "early_stopping",
    "patience",
)


def flag(dest: str) -> str:
    return "--" + dest.replace("_", "-")


def optimizers_taking(dest: str) -> list[str]:
    """The --optimizer choices whose class takes the argument ``dest`` (the
    flag --weight-decay goes to those that take ``weight_decay``)."""
    from bpnet.train.optimizers import OPTIMIZERS

    return [
        name
        for name in OPTIMIZERS.names()
        if dest in inspect.signature(OPTIMIZERS.get(name)).parameters
    ]


def full_batch_method(name: str) -> str | None:
    """scipy's name of the full-batch method ``name``, or None for a minibatch
    optimizer."""
    from bpnet.train.fullbatch import SOLVERS

    return SOLVERS.get(name).scipy_method if name in SOLVERS else None


def explicit_flags(
    make_parser: Any, argv: Any, args: argparse.Namespace
) -> frozenset[str]:
    """The destinations of the flags given in ``argv`` (already parsed into
    ``args``): ``--batch-size 32`` is given, a default of 32 is not
    (``make_parser()`` builds the parser)."""
    parser, unset = make_parser(), object()  # not a str: argparse leaves it be
    parser.set_defaults(**dict.fromkeys(vars(args), unset))
    given = vars(parser.parse_args(argv))
    return frozenset(k for k, v in given.items() if v is not unset)


def check_flags_apply(args: argparse.Namespace, explicit: frozenset[str]) -> None:
    """Refuse a flag the run would silently ignore, even one typed at its
    default value."""
    if "iterations" in explicit and "epochs" in explicit:
        raise ValueError(
            f"--epochs: --iterations {args.iterations} sets the run's length; got "
            f"--epochs {args.epochs} too; give one of them"
        )
    if "dataset" in explicit and args.data:
        raise ValueError(
            f"--dataset: names a bundled or downloaded data set, and --data "
            f"{args.data} gives the data; got --dataset {args.dataset} too; give "
            "one of them"
        )
    if "data_dir" in explicit and (args.data or args.dataset == "digits"):
        source = f"--data {args.data}" if args.data else "the bundled digits"
        raise ValueError(
            f"--data-dir: is where (Fashion-)MNIST's IDX files are; {source} "
            f"needs none; got --data-dir {args.data_dir}"
        )
    method = full_batch_method(args.optimizer)
    if method is not None:
        from bpnet.train.optimizers import OPTIMIZERS

        for key in MINIBATCH_ONLY:
            if key in explicit:
                raise ValueError(
                    f"{flag(key)}: has no effect with --optimizer {args.optimizer}, "
                    f"which runs scipy's {method} on the whole training set; leave "
                    f"{flag(key)} out, or pick a minibatch optimizer "
                    f"({', '.join(OPTIMIZERS.names())})"
                )
    elif "weight_decay" in explicit:
        _check_optimizer_takes(args.optimizer, "weight_decay")
    if "patience" in explicit and not args.early_stopping:
        raise ValueError(
            f"--patience: counts epochs for --early-stopping, which is off; got "
            f"--patience {args.patience} alone"
        )
    for key in ("test_size", "test_split"):
        if key in explicit and not args.data and args.dataset != "digits":
            raise ValueError(
                f"{flag(key)}: {args.dataset} comes with its own test split; got "
                f"{flag(key)} {getattr(args, key)}"
            )


def _check_optimizer_takes(name: str, dest: str) -> None:
    from bpnet.train.optimizers import OPTIMIZERS

    takers = optimizers_taking(dest)
    if name not in takers:
        owners = "/".join(dict.fromkeys(OPTIMIZERS.get(n).__name__ for n in takers))
        raise ValueError(
            f"{flag(dest)}: is {owners}'s decoupled weight decay, but --optimizer is "
            f"{name}; use --l2 for a weight penalty, or --optimizer "
            f"{' or '.join(takers)}"
        )


def _check_data_record(data: Any, path: str) -> None:
    """The checkpoint's record of its data (``data_record``'s), checked: a
    dataset this command knows, and settings of the right types."""
    from bpnet.io import ModelFileError

    def bad(field: str, value: Any, expected: str) -> ModelFileError:
        return ModelFileError(
            f"checkpoint {path!r}: {field}: expected {expected}, got {value!r:.80}",
            path,
        )

    if data is None:  # written by fit(checkpoint=...), not by bpnet-train
        return
    if not isinstance(data, dict):
        raise bad("data", data, "a JSON object")
    known = (*DATASETS, "mat", "arrays")
    if data.get("dataset") not in known:
        raise bad("data.dataset", data.get("dataset"), f"one of {', '.join(known)}")
    if data["dataset"] in ("mat", "arrays") and not (
        isinstance(data.get("file"), str) and data["file"]
    ):
        raise bad("data.file", data.get("file"), "the path of the --data file")
    labels = data.get("labels")
    if labels is not None and not (isinstance(labels, str) and labels):
        raise bad("data.labels", labels, "the path of the --labels file")
    seed, test_size = data.get("seed"), data.get("test_size")
    if seed is not None and not (type(seed) is int and seed >= 0):
        raise bad("data.seed", seed, "an integer >= 0")
    if test_size is not None and not (
        type(test_size) in (int, float) and 0 <= test_size < 1
    ):
        raise bad("data.test_size", test_size, "a fraction in [0, 1)")
    from bpnet.data.base import SPLITS

    split = data.get("test_split")
    if split is not None and split not in SPLITS:
        raise bad("data.test_split", split, f"one of {', '.join(SPLITS)}")
    if data.get("data_dir") is not None and not isinstance(data["data_dir"], str):
        raise bad("data.data_dir", data["data_dir"], "a folder name")


def data_record(args: argparse.Namespace) -> dict[str, Any]:
    """What defines the run's train/test split, for the model file's metadata
    and the checkpoint's (``bpnet-predict`` and ``--resume`` rebuild the same
    split from it). A record without ``test_split`` is one written before the
    flag: ``tail`` for .npy/.npz files, ``shuffled`` for the others."""
    split = {
        "seed": args.seed,
        "test_size": args.test_size,
        "test_split": args.test_split,
    }
    if args.data and Path(args.data).suffix in (".npy", ".npz"):
        return {
            "dataset": "arrays",
            "file": str(Path(args.data).resolve()),
            "labels": str(Path(args.labels).resolve()) if args.labels else None,
            **split,
        }
    if args.data:
        return {"dataset": "mat", "file": str(Path(args.data).resolve()), **split}
    if args.dataset == "digits":
        return {"dataset": "digits", **split}
    data_dir = str(Path(args.data_dir).resolve()) if args.data_dir else None
    return {"dataset": args.dataset, "data_dir": data_dir}


def recorded_split(record: dict) -> str:
    """The ``test_split`` of a run's data record: written since the flag was
    added; before it, .npy/.npz files were split at their last rows."""
    split = record.get("test_split")
    if split is not None:
        return split
    return "tail" if record.get("dataset") == "arrays" else "shuffled"


def _saved_settings(meta: dict, path: str) -> dict[str, Any]:
    """The flag values the checkpoint's run was trained with."""
    from bpnet.nn.activations import ACTIVATIONS
    from bpnet.nn.layers import LAYERS
    from bpnet.nn.losses import LOSSES
    from bpnet.train.optimizers import OPTIMIZERS, SCHEDULES

    training, config = meta["training"], meta["config"]  # read_checkpoint's
    layers = config.get("layers", [])
    kinds = [layer.get("type") for layer in layers]
    dense = [layer for layer in layers if layer.get("type") == "Dense"]
    acts = [ACTIVATIONS.name_of(LAYERS.get(k)) for k in kinds if k in LAYERS]
    acts = [a for a in acts if a is not None]
    rates = [layer["rate"] for layer in layers if layer.get("type") == "Dropout"]
    opt, fit = training["optimizer"], training["fit"]
    name = OPTIMIZERS.name_for(opt)
    schedule = (opt.get("schedule") or {}).get("type")
    saved: dict[str, Any] = {
        "hidden": [layer["n_out"] for layer in dense[:-1]],
        "optimizer": name,
        "lr": opt["lr"],
        "schedule": SCHEDULES.canonical(schedule) if schedule else "none",
        "batch_size": fit["batch_size"],
        "l2": fit["l2"],
        "validation_fraction": fit["validation_fraction"],
        "early_stopping": fit["early_stopping"],
        "patience": fit["patience"],
        "seed": config.get("seed", 0),
        "dropout": rates[0] if rates else 0.0,
        "batch_norm": "BatchNorm" in kinds,
        "conv": "Conv2D" in kinds,
    }
    if acts:
        saved["activation"] = acts[0]
    if config.get("loss") in LOSSES:
        saved["loss"] = LOSSES.canonical(config["loss"])
    if name in optimizers_taking("weight_decay"):
        saved["weight_decay"] = opt.get("weight_decay", 0.0)
    data = meta.get("data")
    if isinstance(data, dict):
        if data.get("dataset") in ("mat", "arrays"):  # --data FILE
            saved["data"] = data["file"]
            if data.get("labels"):
                saved["labels"] = data["labels"]
        else:
            saved["dataset"] = data["dataset"]
        for key in ("seed", "test_size"):
            if data.get(key) is not None:
                saved[key] = data[key]
        if data.get("dataset") in ("mat", "arrays", "digits"):
            saved["test_split"] = recorded_split(data)
        if data.get("data_dir"):
            saved["data_dir"] = data["data_dir"]
    return saved


def apply_checkpoint(
    args: argparse.Namespace, explicit: frozenset[str]
) -> tuple[dict, dict]:
    """Set ``args`` to the checkpoint's run; a flag given that disagrees with it
    is an error. Returns the checkpoint's (training, network config)."""
    from bpnet.train.checkpoint import read_checkpoint

    path = args.resume
    if not Path(path).exists():
        raise FileNotFoundError(f"--resume: no checkpoint at {path}")
    if "optimizer" in explicit and full_batch_method(args.optimizer):
        raise ValueError(
            "--resume: applies to minibatch optimizers, not --optimizer "
            f"{args.optimizer}"
        )
    if "init" in explicit:
        raise ValueError(
            f"--init: picks the initial weights, and the checkpoint {path!r} already "
            f"has trained ones; got --init {args.init} with --resume"
        )
    _, _, meta = read_checkpoint(path)  # checked whole before any of it is used
    _check_data_record(meta.get("data"), path)
    saved = _saved_settings(meta, path)
    if "data" in explicit and "dataset" in saved:
        raise ValueError(
            f"--data: the checkpoint {path!r} was trained on {saved['dataset']}, "
            f"got --data {args.data}"
        )
    if "dataset" in explicit and "data" in saved:
        raise ValueError(
            f"--dataset: the checkpoint {path!r} was trained on {saved['data']}, "
            f"got --dataset {args.dataset}"
        )
    for key, value in saved.items():
        given = getattr(args, key)
        if key in explicit and key != "data_dir" and not _same(key, given, value):
            raise ValueError(
                f"{flag(key)}: the checkpoint {path!r} was trained with "
                f"{flag(key)} {_shown(value)}, got {_shown(given)}; leave "
                f"{flag(key)} out to go on with the checkpoint's value, or start "
                "a new run without --resume"
            )
        if key not in explicit:
            setattr(args, key, value)
    saved_dtype = meta.get("dtype", args.dtype)
    if "dtype" in explicit and args.dtype != saved_dtype:
        raise ValueError(
            f"--dtype: the checkpoint {path!r} was trained in {saved_dtype}, got "
            f"--dtype {args.dtype}; leave --dtype out to go on in {saved_dtype}, or "
            "start a new run without --resume"
        )
    args.dtype = saved_dtype
    if "out" not in explicit:  # the run's folder: its model and plots move on too
        from bpnet.cli.run_folder import real_checkpoint

        args.out = str(real_checkpoint(path).parent)
    return meta["training"], meta["config"]


def _same(key: str, given: Any, saved: Any) -> bool:
    if key in ("data", "labels"):
        return Path(given).resolve() == Path(saved).resolve()
    if isinstance(saved, list):
        return list(given) == list(saved)
    if isinstance(saved, float) and isinstance(given, (int, float)):
        return math.isclose(given, saved, rel_tol=1e-12)
    return given == saved


def _shown(value: Any) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def resume_epochs(
    args: argparse.Namespace, explicit: frozenset[str], training: dict, n_train: int
) -> int:
    """The total epochs a resumed run trains to: the checkpoint's own count when
    it is complete and no longer run is asked for (``--epochs`` of its own
    count asks for none: then only the outputs are written again); an error
    when ``--epochs`` or ``--iterations`` asks for fewer than the checkpoint
    already has."""
    done = int(training.get("epoch", 0))
    if "iterations" in explicit:
        steps = math.ceil(n_train / args.batch_size)
        total, asked = math.ceil(args.iterations / steps), "--iterations"
    elif "epochs" in explicit:
        total, asked = args.epochs, "--epochs"
    else:
        total, asked = int(training["fit"]["epochs"]), None
    from bpnet.train.optimizers import SCHEDULES, CosineDecay

    schedule = (training.get("optimizer") or {}).get("schedule") or {}
    cosine = schedule and SCHEDULES.get(schedule["type"]) is CosineDecay
    if cosine and total > int(schedule["epochs"]):
        raise ValueError(
            f"{asked or '--epochs'}: the checkpoint's cosine schedule spans "
            f"{schedule['epochs']} epochs, where its learning rate reaches "
            f"{schedule.get('min_lr', 0.0)}; it cannot go on to {total}. Start a new "
            "run with --epochs for the whole length"
        )
    if total > done:
        return total
    if asked is None or total == done:  # complete: outputs written, no training
        return done
    raise ValueError(
        f"{asked}: the checkpoint {args.resume!r} already has {done} epochs, and "
        f"{asked} {getattr(args, asked[2:])} asks for {total} in all; pass "
        f"--epochs N with N > {done} to train further"
    )
