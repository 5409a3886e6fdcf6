"""``bpnet-export MODEL.npz OUT.onnx``: a saved model (a Sequential from
bpnet-train or bpnet.save, or a saved MLPClassifier/MLPRegressor) as an ONNX
file that onnxruntime runs (``bpnet.export_onnx``). The model file's
metadata (its class names, the data it was trained on) goes into the ONNX
file's ``metadata_props`` under ``"bpnet"``, so ``bpnet-predict OUT.onnx``
prints what it prints for the model file.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from bpnet.cli.parsing import OneLineParser, add_flag, missing_extra


def _parser() -> argparse.ArgumentParser:
    p = OneLineParser(
        prog="bpnet-export",
        description="Write a saved bpnet model as an ONNX file for onnxruntime.",
    )
    p.add_argument("model", help="a model file written by bpnet (model.npz)")
    p.add_argument("out", help="the ONNX file to write (model.onnx)")
    p.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default=None,
        help="precision of the input and the arithmetic (default: the model's)",
    )
    p.add_argument(
        "--opset",
        type=int,
        default=None,
        help="ONNX opset of the default domain (default: 21)",
    )
    add_flag(p, "--debug")
    return p


def export(args: argparse.Namespace) -> dict:
    from bpnet import io
    from bpnet.export import export_onnx

    try:
        model = io.load(args.model)
    except (FileNotFoundError, IsADirectoryError) as exc:
        raise FileNotFoundError(
            f"model: {exc.strerror or exc}; expected a model file written by "
            "bpnet-train --out DIR (DIR/model.npz) or bpnet.save"
        ) from None
    _, meta = io.read_model_file(args.model)
    if hasattr(model, "classes_"):  # what bpnet-predict checks --labels against
        meta = {**meta, "classes_": model.classes_.tolist()}
    proto = export_onnx(
        model, args.out, dtype=args.dtype, opset=args.opset, metadata=meta
    )
    return {
        "model": str(args.model),
        "out": str(args.out),
        "kind": type(model).__name__,
        "inputs": [i.name for i in proto.graph.input],
        "outputs": [o.name for o in proto.graph.output],
        "nodes": len(proto.graph.node),
    }


def export_main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``bpnet-export``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        summary = export(args)
    except Exception as exc:
        if args.debug:
            raise
        message = missing_extra(exc) or " ".join(str(exc).split())
        print(f"bpnet-export: error: {message}", file=sys.stderr)
        return 2
    print(
        f"wrote {summary['out']}: {summary['kind']} from "
        f"{Path(summary['model']).name}, {summary['nodes']} nodes, outputs "
        f"{', '.join(summary['outputs'])}"
    )
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(export_main())
