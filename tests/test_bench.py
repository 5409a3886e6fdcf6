"""Smoke test of scripts/bench.py: the shape of its JSON, not its timings."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
SCRIPTS = REPO / "scripts"
DATA = REPO.parent / "shared" / "data" / "fashion-mnist"
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
}


def _bench(*args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run(
        [sys.executable, str(SCRIPTS / "bench.py"), *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=REPO,
    )


@pytest.fixture(scope="module")
def report() -> dict:
    if not (DATA / "train-images-idx3-ubyte.gz").exists():
        pytest.skip(f"no Fashion-MNIST files in {DATA}")
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
        env_extra={"OPENBLAS_CORETYPE": "Haswell"},
    )
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_json_shape(report):
    assert report["command"].startswith("python scripts/bench.py --configs A,C")
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
    assert rows["A", "numpy"]["extra"] == {} and rows["A", "numpy"]["n_train"] == 512
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
    sys.path.insert(0, str(SCRIPTS))
    try:
        from bench_report import markdown
    finally:
        sys.path.remove(str(SCRIPTS))
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
            "command": "python scripts/bench.py --configs C",
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
    assert "python scripts/bench.py --configs C\n" in text
    assert "- CPU: Some CPU, 2 cores" in text
    assert "| gemm | cpu | unavailable |" in text
    assert "- gemm: unavailable: no reason" in text


def test_initial_params_match_bpnet():
    bpnet = pytest.importorskip("bpnet")
    sys.path.insert(0, str(SCRIPTS))
    try:
        from bench_common import CONFIGS, initial_params
    finally:
        sys.path.remove(str(SCRIPTS))
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
    sys.path.insert(0, str(SCRIPTS))
    try:
        from bench_report import _gpu_memory_note
    finally:
        sys.path.remove(str(SCRIPTS))
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
