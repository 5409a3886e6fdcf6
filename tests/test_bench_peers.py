"""Smoke test of ``python -m benchmarks peers``: the peers against the NumPy loop,
sweeps, torch beside bpnet on torch, profiles; shapes and losses, not timings.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from _bench_helpers import REPO, _bench, _bench_module


@pytest.fixture(scope="module")
def peers_report(fashion_dir) -> dict:
    """Every SGD peer, the compiled ones included, on a few hundred samples.
    torch.compile runs its GPU mode (CUDA graphs) here on the CPU: the code
    path a GPU run takes, on its CPU fallback."""
    proc = _bench(
        "--configs",
        "A",
        "--peers",
        "bpnet,bpnet+eval,jax-jit,jax-scan,torch-compile,torch,numpy,gemm",
        "--subset",
        "300",
        "--epochs",
        "1",
        "--threads",
        "1",
        "--torch-compile-mode",
        "reduce-overhead",
        "--json",
        "--data-dir",
        str(fashion_dir),
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_peers_agree_with_the_numpy_loop_after_one_epoch(peers_report):
    rows = {r["peer"]: r for r in peers_report["results"]}
    # bpnet's row first, then the peers in the fixed order
    assert [r["peer"] for r in peers_report["results"]][:2] == ["bpnet", "bpnet+eval"]
    ref = rows["numpy"]["loss_after_1"]
    assert ref is not None and 0 < ref < 5
    for peer in (
        "bpnet",
        "bpnet+eval",
        "jax-jit",
        "jax-scan",
        "torch-compile",
        "torch",
    ):
        row = rows[peer]
        if row["status"] == "unavailable":  # CI installs neither JAX nor always torch
            assert peer.startswith(("jax", "torch")), row["reason"]
            continue
        assert row["status"] == "ok", row["reason"]
        np.testing.assert_allclose(row["loss_after_1"], ref, rtol=1e-4)
        assert row["loss_check"]["against"] == "numpy" and row["loss_check"]["ok"]
        assert row["epoch_s_best"] == min(row["epoch_s"])
        assert row["spread"] >= 0
        assert row["ratio_gemm"] > 0
    if rows["torch-compile"]["status"] == "ok":
        assert rows["torch-compile"]["extra"]["mode"] == "reduce-overhead"
    jax_rows = [rows[p] for p in ("jax-jit", "jax-scan")]
    if all(r["status"] == "ok" for r in jax_rows):
        best = min(r["epoch_s_best"] for r in jax_rows)
        assert rows["bpnet"]["ratio_jax"] == rows["bpnet"]["epoch_s_best"] / best
        assert rows["jax-scan"]["extra"]["compiled"] == "whole epoch as one lax.scan"
    else:
        assert "JAX is not installed" in rows["jax-jit"]["reason"]
        assert rows["bpnet"]["ratio_jax"] is None
    load = peers_report["machine"]["load"]
    assert len(load["start"]) == len(load["end"]) == 3


def test_no_eval_leaves_out_the_evaluating_row(tmp_path, fashion_dir):
    proc = _bench(
        "--configs", "A", "--peers", "bpnet,bpnet+eval", "--no-eval",
        "--subset", "128", "--epochs", "2", "--rounds", "2", "--threads", "1",
        "--json", "--data-dir", str(fashion_dir),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert [r["peer"] for r in report["results"]] == ["bpnet"]
    assert report["settings"]["eval"] is False
    row = report["results"][0]
    # two rounds of two timed epochs: all four kept, the best one shown
    assert row["rounds"] == 2 and len(row["epoch_s"]) == 4
    assert len(row["round_best_s"]) == 2
    assert row["epoch_s_best"] == min(row["epoch_s"])


def test_a_loss_that_disagrees_is_flagged():
    report_mod = _bench_module("report")
    ratios = _bench_module("ratios")
    rows = []
    for peer, loss in (("bpnet", 1.0001), ("numpy", 1.0), ("torch", 1.1)):
        rows.append(
            {
                "config": "A",
                "peer": peer,
                "device": "cpu",
                "status": "ok",
                "extra": {},
                "epoch_s": [1.0],
                "epoch_s_best": 1.0,
                "epoch_s_median": 1.0,
                "loss_after_1": loss,
            }
        )
    ratios.add_ratios(rows)
    assert ratios.mismatches(rows) == ["A torch"]  # no float64 twin: 1e-2
    # float32 moved NumPy's loss by 1e-5 from float64's: 3e-5 allowed, and
    # never less than 1e-4
    rows[1]["extra"]["loss_after_1_float64"] = 1.00001
    ratios.add_ratios(rows)
    assert ratios.mismatches(rows) == ["A torch"]
    assert rows[0]["loss_check"]["tol"] == pytest.approx(1e-4)
    # float32 moved it by 1e-3 (a chaotic epoch, as on B): 3e-3 allowed
    rows[1]["extra"]["loss_after_1_float64"] = 1.001
    rows[2]["loss_after_1"] = 1.0025
    ratios.add_ratios(rows)
    assert ratios.mismatches(rows) == []
    assert rows[2]["loss_check"]["tol"] == pytest.approx(3 * 0.001 / 1.001)
    rows[2]["loss_after_1"] = 1.0035
    ratios.add_ratios(rows)
    assert ratios.mismatches(rows) == ["A torch"]
    assert report_mod._cell(rows[2], "loss_after_1").endswith("MISMATCH")
    assert report_mod._cell(rows[1], "loss_after_1") == "1.00000 (ref)"
    # float32 runs from nudged starts: their spread sets the tolerance, 4
    # standard deviations of a difference of two runs (std 0.002 here)
    rows[1]["extra"]["loss_after_1_nudged"] = [0.998, 1.002]
    rows[2]["loss_after_1"] = 1.011
    ratios.add_ratios(rows)
    assert rows[2]["loss_check"]["tol"] == pytest.approx(4 * 2**0.5 * 0.002)
    assert ratios.mismatches(rows) == []
    rows[2]["loss_after_1"] = 1.012
    ratios.add_ratios(rows)
    assert ratios.mismatches(rows) == ["A torch"]


def test_fixed_cost_recovers_the_line():
    sweep = _bench_module("sweep")
    flops = [1e6, 4e6, 1.6e7, 6.4e7]
    fixed, per_flop = sweep.fixed_cost([30e-6 + f / 50e9 for f in flops], flops)
    assert abs(fixed - 30e-6) < 1e-9 and abs(per_flop - 1 / 50e9) < 1e-15
    with pytest.raises(ValueError, match="two batch sizes"):
        sweep.fixed_cost([1.0], [1.0])


def test_sweep_tables_and_plot(tmp_path, fashion_dir):
    pytest.importorskip("matplotlib")
    png, md = tmp_path / "sweep.png", tmp_path / "sweep.md"
    proc = _bench(
        "--sweep", "--widths", "8,16", "--batches", "16,64",
        "--peers", "bpnet,jax-scan,gemm", "--subset", "256", "--epochs", "1",
        "--threads", "1", "--plot", str(png), "--out", str(md), "--json",
        "--data-dir", str(fashion_dir),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["settings"]["configs"] == ["H8B16", "H8B64", "H16B16", "H16B64"]
    pts = report["sweep"]["points"]
    assert [(p["width"], p["batch"]) for p in pts] == [
        (8, 16),
        (8, 64),
        (16, 16),
        (16, 64),
    ]
    for p in pts:
        assert p["steps"] == 256 // p["batch"]
        assert p["ratio_gemm"] > 0 and p["bpnet_step_us"] > 0
        assert p["flops_step"] == pytest.approx(
            2 * p["batch"] * (784 * p["width"] * 2 + p["width"] * 10 * 3)
        )
    assert [r["width"] for r in report["sweep"]["fixed_us"]] == [8, 16]
    assert all(r["bpnet"] is not None for r in report["sweep"]["fixed_us"])
    assert png.stat().st_size > 1000
    text = md.read_text()
    assert "## Sweep: one hidden layer, width x batch size" in text
    assert "| width | batch 16 | batch 64 |" in text
    assert "![bpnet and JAX over the GEMM bound](sweep.png)" in text


def test_bpnet_on_torch_beside_the_same_step_in_torch(fashion_dir):
    # config D (batch 32) with bpnet on its torch backend and bpnet's step
    # written in plain PyTorch: both train, and the ratio of their best epochs
    # is reported on bpnet's row
    pytest.importorskip("torch")
    proc = _bench(
        *("--configs", "D", "--peers", "bpnet-torch,torch-step"),
        *("--data-dir", str(fashion_dir)),
        *("--subset", "512", "--epochs", "1", "--threads", "1", "--json"),
    )
    assert proc.returncode == 0, proc.stderr
    rows = {r["peer"]: r for r in json.loads(proc.stdout.splitlines()[-1])["results"]}
    ours, step = rows["bpnet-torch"], rows["torch-step"]
    for row in ours, step:
        assert row["status"] == "ok", row["reason"]
        assert row["device"] == "cpu" and row["extra"]["num_threads"] == 1
        assert row["test_accuracy"] > 0.3  # 32 steps: far better than chance
    assert "PyTorch" in ours["extra"]["backend"]
    ratio = ours["epoch_s_best"] / step["epoch_s_best"]
    assert ours["extra"]["x_torch_step"] == pytest.approx(ratio)
    assert "D bpnet-torch / torch-step:" in proc.stderr


def test_interleaved_rounds_of_bpnet_on_torch_and_plain_torch(fashion_dir):
    pytest.importorskip("torch")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "torch-rounds", "--subset", "256"]
        + ["--rounds", "2", "--batch-sizes", "64,128", "--threads", "1"]
        + ["--data-dir", str(fashion_dir)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert [line.split(",")[0] for line in lines] == ["batch 64", "batch 128"]
    for line in lines:
        assert "1 thread(s), 256 samples" in line and "ratio of bests" in line


def test_the_step_profile_times_each_part_where_it_runs():
    """benchmarks.profiling wraps the backend's products and gather and the step's
    layers and loss; a step of the folded SGD path goes through all of them,
    and the parts add up to no more than the step."""
    profile = _bench_module("profiling")
    common = _bench_module("harness")
    rng = np.random.default_rng(0)
    X = rng.random((512, 784), dtype=np.float32)
    y = rng.integers(0, 10, 512)
    got = profile.in_place_times(common.config("H32B64"), X, y, epochs=1)
    calls, parts = got["calls"], got["parts_us"]
    assert calls["gather"] == 3  # the batch, its targets, its labels
    # two forward products, one input gradient, two folded updates (the
    # second layer's through NumPy's product), two bias column sums
    assert calls["matmuls"] >= 7
    assert calls["loss and gradient"] == 1 and calls["accuracy count"] == 1
    assert calls["activations"] == 2
    assert all(v > 0 for v in parts.values()), parts
    assert sum(parts.values()) < got["step_timed_us"]


def test_peak_times_every_layout_of_the_same_product():
    # benchmarks.peak's table compares layouts: each must compute the same numbers
    peak = _bench_module("peak")
    products = peak.layouts(6, 5, 4)
    assert sorted(products) == ["forward", "input gradient", "weight gradient"]
    for what, calls in products.items():
        results = [np.array(call()) for call in calls.values()]
        first = results[0]
        for layout, got in zip(list(calls)[1:], results[1:]):
            got = got.T if got.shape != first.shape else got  # a transposed out
            np.testing.assert_allclose(
                got, first, rtol=1e-5, err_msg=f"{what} {layout}"
            )
    assert set(products["input gradient"]) == {
        "dZ @ W.T",
        "contiguous W.T",
        "W @ dZ.T, transposed out",
    }


def test_the_conv_peers_start_from_bpnet_s_weights_and_compute_its_gradients():
    """benchmarks.conv's weights and batch order are bpnet's draws, and the book's
    NumPy SimpleConvNet gives bpnet's gradients (float64)."""
    bpnet = pytest.importorskip("bpnet")
    _m = _bench_module("conv")
    BookConvNet, conv_orders, conv_params = (
        _m.BookConvNet,
        _m.conv_orders,
        _m.conv_params,
    )
    # the network the bpnet peer trains
    net = _m.bpnet_convnet(bpnet, dtype="float64", seed=0)
    for ours, theirs in zip(net.parameters(), conv_params(0)):
        np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(
        net.host_rng.permutation(50), next(conv_orders(0, 50))
    )
    rng = np.random.default_rng(1)
    X, y = rng.random((5, 784)), rng.integers(0, 10, 5)
    _, grads = net.loss_and_grad(X, y)
    _, book = BookConvNet(conv_params(0)).loss_grads(X.copy(), y)
    for ours, theirs in zip(grads, book):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-12)
