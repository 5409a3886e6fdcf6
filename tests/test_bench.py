"""Smoke test of ``python -m benchmarks``: the shape of its JSON, not its timings."""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys

import numpy as np
import pytest
from _bench_helpers import REPO, _bench, _bench_module

ROW_KEYS = {
    "config",
    "peer",
    "device",
    "status",
    "reason",
    "first_call_s",
    "epoch_s",
    "epoch_s_median",
    "ratio_gemm",
    "ratio_torch",
    "test_accuracy",
    "peak_rss_mb",
    "train_rss_mb",
    "extra",
    "epoch_s_best",
    "spread",
    "ratio_jax",
    "loss_after_1",
    "loss_check",
}


@pytest.fixture(scope="module")
def report(fashion_dir) -> dict:
    proc = _bench(
        "--configs",
        "A,C",
        "--peers",
        "bpnet,numpy,gemm,scipy-cg",
        "--subset",
        "512",
        "--epochs",
        "1",
        "--maxiter",
        "5",
        "--threads",
        "1",
        "--json",
        "--data-dir",
        str(fashion_dir),
        env_extra={"OPENBLAS_CORETYPE": "Haswell"},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_json_shape(report):
    assert report["command"].startswith("python -m benchmarks peers --configs A,C")
    assert report["settings"]["configs"] == ["A", "C"]
    rows = {(r["config"], r["peer"]): r for r in report["results"]}
    assert set(rows) == {
        ("A", "bpnet"),
        ("A", "numpy"),
        ("A", "gemm"),
        ("C", "bpnet"),
        ("C", "scipy-cg"),
        ("C", "gemm"),
    }
    for row in report["results"]:
        assert ROW_KEYS <= set(row), row
        assert row["status"] in ("ok", "unavailable"), row["reason"]
        assert row["peak_rss_mb"] > 10
    for key in ("A", "numpy"), ("A", "gemm"), ("C", "scipy-cg"), ("C", "gemm"):
        row = rows[key]
        assert row["status"] == "ok", row["reason"]
        assert len(row["epoch_s"]) == 1
        assert row["epoch_s_median"] == row["epoch_s"][0] > 0
        assert row["first_call_s"] > 0
    assert rows["A", "numpy"]["ratio_gemm"] > 0
    extra = rows["A", "numpy"]["extra"]
    assert set(extra) == {"loss_after_1_float64", "loss_after_1_nudged"}
    assert len(extra["loss_after_1_nudged"]) == 3
    assert rows["A", "numpy"]["n_train"] == 512
    # three SGD steps from bpnet's He/Glorot start: far better than chance
    assert rows["A", "numpy"]["test_accuracy"] > 0.3
    assert rows["C", "scipy-cg"]["extra"]["nit"] == 5


def test_machine_block(report):
    m = report["machine"]
    assert m["env_unset"] == ["OPENBLAS_CORETYPE"]
    assert m["cores"] >= 1 and m["threads"] == 1
    assert m["blas"] and {"internal_api", "version", "num_threads"} <= set(m["blas"][0])
    assert m["blas"][0]["num_threads"] == 1
    assert "numpy" in m["versions"]


def test_markdown_report(tmp_path):
    markdown = _bench_module("report").markdown
    row = {
        "config": "C",
        "peer": "gemm",
        "device": "cpu",
        "status": "unavailable",
        "reason": "no reason",
        "extra": {},
    }
    text = markdown(
        {
            "command": "python -m benchmarks peers --configs C",
            "settings": {
                "device": "cpu",
                "configs": ["C"],
                "epochs": 3,
                "subset": None,
                "maxiter": 50,
            },
            "machine": {
                "cpu": "Some CPU",
                "cores": 2,
                "cores_usable": 2,
                "threads": 2,
                "blas": [],
                "gpu": None,
                "os": "Linux",
                "versions": {"numpy": "2"},
                "env_unset": [],
            },
            "results": [row],
        }
    )
    assert "python -m benchmarks peers --configs C\n" in text
    assert "- CPU: Some CPU, 2 cores" in text
    assert "| gemm | cpu | unavailable |" in text
    assert "- gemm: unavailable: no reason" in text


def test_initial_params_match_bpnet():
    bpnet = pytest.importorskip("bpnet")
    _m = _bench_module("harness")
    CONFIGS, initial_params = _m.CONFIGS, _m.initial_params
    cfg = CONFIGS["B"]
    net = bpnet.Sequential(
        [
            bpnet.Dense(784, 512),
            bpnet.ReLU(),
            bpnet.Dense(512, 512),
            bpnet.ReLU(),
            bpnet.Dense(512, 10),
        ],
        dtype="float64",
        seed=3,
    )
    for ours, theirs in zip(initial_params(cfg, seed=3), net.parameters()):
        np.testing.assert_array_equal(ours, np.asarray(theirs))
    ex4 = bpnet.Sequential(
        [
            bpnet.Dense(64, 25, init="uniform"),
            bpnet.Sigmoid(),
            bpnet.Dense(25, 10, init="uniform"),
        ],
        dtype="float64",
        seed=0,
    )
    for ours, theirs in zip(initial_params(CONFIGS["C"]), ex4.parameters()):
        np.testing.assert_array_equal(ours, np.asarray(theirs))


def test_bad_flags_are_named():
    proc = _bench("--configs", "A,Z")
    assert proc.returncode == 2
    assert "--configs" in proc.stderr and "'A,Z'" in proc.stderr
    proc = _bench("--epochs", "0")
    assert (
        proc.returncode == 2 and "--epochs: expected a positive integer" in proc.stderr
    )


def test_gpu_memory_notes_compare_what_each_allocator_held():
    _gpu_memory_note = _bench_module("report")._gpu_memory_note
    cupy = _gpu_memory_note({"gpu_pool_mb": 342.4, "gpu_used_mb": 250.0})
    assert cupy == "GPU memory 342 MB held by CuPy's pool (250 MB in use at the end)"
    torch = _gpu_memory_note({"gpu_peak_mb": 321.2, "gpu_reserved_mb": 360.0})
    assert (
        torch
        == "GPU memory 360 MB held by its allocator at peak, 321 MB allocated at peak"
    )
    assert (
        _gpu_memory_note({"gpu_peak_mb": 321.2})
        == "GPU memory 321 MB allocated at peak"
    )
    assert _gpu_memory_note({}) == ""


def test_one_entry_point_names_every_subcommand_and_rejects_others():
    entry = _bench_module("__main__")
    for name, (module, _, _) in entry.SUBCOMMANDS.items():
        for mod in [module] if module else entry.ESTIMATORS.values():
            assert callable(_bench_module(mod).main), name
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks", "nope"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )
    assert proc.returncode == 2
    assert "SUBCOMMAND must be one of peers, sweep" in proc.stderr
    assert "got 'nope'" in proc.stderr


def test_the_harness_summary_and_table():
    harness = _bench_module("harness")
    assert harness.summary([0.002, 0.001, 0.004], 1e3) == {
        "best": 1.0,
        "median": 2.0,
        "spread": 4.0,
    }
    assert harness.table_head("a", "b") == ["| a | b |", "| --- | --- |"]
    assert harness.table_row("x", 1.5) == "| x | 1.5 |"


def test_benchmarks_stay_out_of_the_distribution():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    cfg = tomllib.loads((REPO / "pyproject.toml").read_text())
    include = cfg["tool"]["setuptools"]["packages"]["find"]["include"]
    assert not any(fnmatch.fnmatch("benchmarks", pat) for pat in include)
