"""What a ``bpnet-train`` run is made of: its data (a dataset or ``--data``
files), its network (Dense layers, or a convolutional block for images) and
its optimizer, all from the parsed flags."""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

from bpnet.cli.train_args import flag, optimizers_taking


def _load_data(args: argparse.Namespace) -> Any:
    from bpnet import data

    if args.labels and not args.data:
        raise ValueError(
            f"--labels: labels the rows of --data X.npy; got {args.labels} alone"
        )
    split = {"test_size": args.test_size, "seed": args.seed, "split": args.test_split}
    try:
        if args.data and Path(args.data).suffix in (".npy", ".npz"):
            from bpnet.distributed.files import read_arrays

            X, y, classes = read_arrays(args.data, args.labels)
            return data.split_dataset(
                X, y, Path(args.data).stem, **split, classes=classes
            )
        if args.data:
            try:
                return data.load_mat_dataset(args.data, **split)
            except data.DataError as exc:
                raise data.DataError(f"--data: {exc}") from None
        if args.dataset == "digits":
            return data.load_digits(**split)
    except ValueError as exc:  # the split's own words, with the flag's name
        renamed = _with_flag(exc, "test_size")
        if renamed is None:
            raise
        raise renamed from None
    kind = "fashion" if args.dataset == "fashion-mnist" else "mnist"
    try:
        return data.load_mnist(kind=kind, data_dir=args.data_dir)
    except data.DataError as exc:
        renamed = None if args.data_dir is None else _with_flag(exc, "data_dir")
        if renamed is None:
            raise
        raise renamed from None


def _with_flag(exc: ValueError, dest: str) -> ValueError | None:
    """``exc`` saying the flag (``--test-size``) where its message starts with
    the argument's name (``test_size: ``), or None when it does not."""
    text, prefix = str(exc), f"{dest}: "
    if not text.startswith(prefix):
        return None
    return type(exc)(f"{flag(dest)}: " + text.removeprefix(prefix))


def _build_net(args: argparse.Namespace, n_in: int, n_out: int) -> Any:
    from bpnet.nn.activations import activation
    from bpnet.nn.layers import Dense, Dropout
    from bpnet.nn.model import Sequential
    from bpnet.nn.normalization import BatchNorm

    layers: list[Any] = []
    width = n_in
    if args.conv:
        layers, width = conv_block(n_in, args.init)
    for h in args.hidden:
        layers.append(Dense(width, h, init=args.init))
        if args.batch_norm:
            layers.append(BatchNorm())
        layers.append(activation(args.activation))
        if args.dropout:
            layers.append(Dropout(args.dropout))
        width = h
    layers.append(Dense(width, n_out, init=args.init))
    return Sequential(
        layers,
        device=args.device,
        dtype=args.dtype,
        seed=args.seed,
        loss=args.loss,
        n_in=n_in,
    )


def conv_block(n_in: int, init: Any = None) -> tuple[list[Any], int]:
    """Deep Learning from Scratch's ``SimpleConvNet`` in front of the Dense
    layers: square one-channel images of ``n_in`` pixels as (1, side, side),
    30 filters of 5x5 (3x3 for images under 16 pixels a side, the 8x8
    digits), ReLU, 2x2 max-pooling, flattened. Returns the layers and the
    width they give."""
    from bpnet.nn.activations import ReLU
    from bpnet.nn.conv import Conv2D, Flatten, Reshape
    from bpnet.nn.pooling import MaxPool2D

    side = math.isqrt(n_in)
    kernel = 5 if side >= 16 else 3
    if side * side != n_in or side < kernel + 1:
        raise ValueError(
            f"--conv: takes square one-channel images of at least {kernel + 1}x"
            f"{kernel + 1} pixels as rows; the data have {n_in} features"
        )
    if (side - kernel + 1) % 2:  # a 2x2 pool needs an even map: pad by one
        raise ValueError(
            f"--conv: the {side}x{side} images give {side - kernel + 1}x"
            f"{side - kernel + 1} maps after the {kernel}x{kernel} filters, which a "
            "2x2 max-pool cannot split"
        )
    layers = [
        Reshape((1, side, side)),
        Conv2D(30, kernel, init=init),
        ReLU(),
        MaxPool2D(2),
        Flatten(),
    ]
    width: Any = n_in
    for layer in layers:
        width = layer.output_width(width)
    return layers, width


def _optimizer(args: argparse.Namespace, epochs: int) -> Any:
    """The registered optimizer --optimizer names, with the flags it takes."""
    from bpnet.train.optimizers import OPTIMIZERS, SCHEDULES

    cls = OPTIMIZERS.get(args.optimizer)
    kwargs: dict[str, Any] = {
        "lr": args.lr if args.lr is not None else cls.suggested_lr
    }
    if args.schedule != "none":
        kwargs["schedule"] = SCHEDULES.get(args.schedule).for_epochs(epochs)
    if args.optimizer in optimizers_taking("weight_decay"):
        kwargs["weight_decay"] = args.weight_decay
    return OPTIMIZERS.create(args.optimizer, **kwargs)
