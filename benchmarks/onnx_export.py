#!/usr/bin/env python
"""onnxruntime on bpnet's exported graph beside a hand-written Gemm/Relu/Softmax
graph of the same network, and bpnet's own NumPy ``predict_proba``, on the
same rows.

    OMP_NUM_THREADS=1 python -m benchmarks onnx --rows 10000 --rounds 15

The three run in interleaved rounds (one call of each per round, after a
warm-up call), so that a slow moment of the machine falls on all of them;
the report gives each one's best time, its median, and the spread (the
slowest round over the best), and the exported graph's best over the
hand-written one's. The CPU time of each call (``time.process_time``) is
reported beside the wall time: with one thread it leaves out the moments
another program held the core, which on a shared machine are most of the
spread. onnxruntime gets ``--threads`` threads (default 1, as NumPy's BLAS
is pinned by the environment).
"""

from __future__ import annotations

import argparse
import json
import time
from collections import Counter

import numpy as np

import bpnet
from benchmarks.harness import summary, table_head, table_row, timing_flags


def hand_written(net: bpnet.Sequential):
    """The same network as ONNX written by hand: Gemm, Relu, ..., Softmax."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    nodes, inits, x = [], [], "X"
    params = [net.backend.to_numpy(p) for p in net.parameters()]
    for i, (W, b) in enumerate(zip(params[::2], params[1::2])):
        inits += [
            numpy_helper.from_array(W, f"W{i}"),
            numpy_helper.from_array(b, f"b{i}"),
        ]
        nodes.append(helper.make_node("Gemm", [x, f"W{i}", f"b{i}"], [f"z{i}"]))
        x = f"z{i}"
        if i < len(params) // 2 - 1:
            nodes.append(helper.make_node("Relu", [x], [f"h{i}"]))
            x = f"h{i}"
    nodes.append(helper.make_node("Softmax", [x], ["probabilities"], axis=1))
    graph = helper.make_graph(
        nodes,
        "hand",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", net.n_inputs])],
        [
            helper.make_tensor_value_info(
                "probabilities", TensorProto.FLOAT, ["N", net.n_outputs]
            )
        ],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    onnx.checker.check_model(model, full_check=True)
    return model


def main(argv: list[str] | None = None) -> dict:
    import onnxruntime as ort

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--features", type=int, default=784)
    p.add_argument("--hidden", type=int, nargs="*", default=[128])
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--rows", type=int, default=10_000)
    timing_flags(p, threads=1, rounds=15, json=True)
    args = p.parse_args(argv)

    widths = [args.features, *args.hidden, args.classes]
    layers = []
    for i, (a, b) in enumerate(zip(widths, widths[1:])):
        layers += [bpnet.Dense(a, b)] + ([bpnet.ReLU()] if i < len(widths) - 2 else [])
    net = bpnet.Sequential(layers, seed=0)
    X = np.random.default_rng(0).random((args.rows, args.features), dtype=np.float32)

    t0 = time.perf_counter()
    exported = bpnet.export_onnx(net, None)
    export_s = time.perf_counter() - t0
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    options.inter_op_num_threads = 1
    sessions = {
        name: ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        for name, model in (
            ("bpnet export", exported),
            ("hand-written", hand_written(net)),
        )
    }
    calls = {
        name: (lambda s=s: s.run(["probabilities"], {"X": X})[0])
        for name, s in sessions.items()
    }
    calls["bpnet NumPy"] = lambda: net.predict_proba(X)
    reference = net.predict_proba(X)
    for name, call in calls.items():  # warm-up, and the same numbers
        err = float(np.abs(call() - reference).max())
        assert err < 1e-5, f"{name} differs from predict_proba by {err}"
    times: dict[str, list[float]] = {name: [] for name in calls}
    cpu: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(args.rounds):
        for name, call in calls.items():
            c0, t0 = time.process_time(), time.perf_counter()
            call()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)

    nodes = Counter(n.op_type for n in exported.graph.node)
    report = {
        "network": "-".join(map(str, widths)),
        "rows": args.rows,
        "rounds": args.rounds,
        "threads": args.threads,
        "export_s": round(export_s, 2),
        "exported_nodes": dict(nodes),
        "ms": {
            name: {
                **summary(t, 1e3),
                **{f"cpu_{k}": v for k, v in summary(cpu[name], 1e3).items()},
            }
            for name, t in times.items()
        },
    }
    best = {name: min(t) for name, t in times.items()}
    cpu_best = {name: min(t) for name, t in cpu.items()}
    report["export_over_hand"] = round(best["bpnet export"] / best["hand-written"], 3)
    report["export_over_hand_cpu"] = round(
        cpu_best["bpnet export"] / cpu_best["hand-written"], 3
    )
    print(
        f"network {report['network']}, {args.rows} rows, {args.rounds} interleaved "
        f"rounds, onnxruntime threads {args.threads}; export took {export_s:.1f} s, "
        f"{sum(nodes.values())} nodes"
    )
    head = ("", "best ms", "median ms", "slowest / best", "CPU best ms")
    print("\n".join(table_head(*head, "CPU median ms")))
    for name, row in report["ms"].items():
        keys = ("best", "median", "spread", "cpu_best", "cpu_median")
        print(table_row(name, *(row[k] for k in keys)))
    print(
        f"exported / hand-written, best wall time: {report['export_over_hand']:.3f}; "
        f"best CPU time: {report['export_over_hand_cpu']:.3f}"
    )
    if args.json:
        print(json.dumps(report))
    return report
