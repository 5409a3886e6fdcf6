"""The machine block, the ratios, the text table and the Markdown report of
``bench.py``."""

from __future__ import annotations

import importlib.metadata
import math
import os
import platform
import statistics
import subprocess
import sys
from typing import Any

from benchmarks.harness import config as named_config
from benchmarks.harness import table_head, table_row

PACKAGES = (
    "numpy",
    "scipy",
    "scikit-learn",
    "torch",
    "cupy-cuda12x",
    "cupy-cuda13x",
    "array-api-compat",
    "threadpoolctl",
    "bpnet-arrayapi",
)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _gpu(device: str) -> str | None:
    if device != "cuda":
        return None
    try:
        out = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=name,memory.total,driver_version",
                "--format=csv,noheader",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return out.stdout.strip().splitlines()[0] if out.returncode == 0 else None
    except (OSError, IndexError, subprocess.TimeoutExpired):
        return None


def _same_device(a: str, b: str) -> bool:
    """'cuda' and 'cuda:0' name the same GPU; 'cpu' only itself."""

    def norm(d: str) -> str:
        return "cuda:0" if d == "cuda" else d

    return norm(str(a)) == norm(str(b))


def machine_info(device: str, threads: int, unset: list[str]) -> dict[str, Any]:
    """CPU, cores, BLAS as threadpoolctl sees it (under the thread limit the
    runs use), GPU, library versions, and the variables removed."""
    import threadpoolctl

    with threadpoolctl.threadpool_limits(threads):
        import numpy  # noqa: F401  (loads the BLAS that threadpoolctl reports)

        blas = [
            {
                k: info.get(k)
                for k in ("internal_api", "version", "architecture", "num_threads")
            }
            for info in threadpoolctl.threadpool_info()
            if info.get("user_api") == "blas"
        ]
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:
        affinity = os.cpu_count()
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": affinity,
        "threads": threads,
        "blas": blas,
        "gpu": _gpu(device),
        "os": f"{platform.system()} {platform.release()}",
        "versions": versions,
        "env_unset": unset,
        "executable": sys.executable,
    }


#: How far two float32 runs of one epoch may drift apart: this many standard
#: deviations of their difference, estimated from the NumPy loop's float32
#: runs (its own and those from nudged starts, ``loss_after_1_nudged``; on B
#: one epoch spreads them by 4e-3, on A by 1e-7) ...
LOSS_SIGMAS = 4.0
#: ... or, where only the float64 twin was run, this multiple of how far
#: float32 rounding moved the NumPy loop's loss from it, ...
LOSS_DRIFT = 3.0
#: ... but never closer than this,
LOSS_RTOL_MIN = 1e-4
#: and this where neither was run (no NumPy row).
LOSS_RTOL = 1e-2


def _best(row: dict) -> float | None:
    return row.get("epoch_s_best", row.get("epoch_s_median"))


def add_ratios(rows: list[dict]) -> None:
    """Fill ``ratio_gemm``, ``ratio_jax``, ``ratio_torch`` and ``loss_check``
    on every row that can have them.

    Ratios divide best epochs (``epoch_s_best``), only between rows on the
    same device; ``ratio_jax`` divides by the better of JAX's two rows. For
    the full-batch configuration the GEMM bound is its per-evaluation time
    times the row's number of function evaluations (the scipy peer's, where
    the row has none). ``loss_check`` compares ``loss_after_1`` with the
    NumPy loop's (bpnet's where there is no NumPy row).
    """
    for config in {r["config"] for r in rows}:
        group = [r for r in rows if r["config"] == config and r["status"] == "ok"]
        by_peer = {r["peer"]: r for r in group}
        gemm, torch = by_peer.get("gemm"), by_peer.get("torch")
        jax_rows = [by_peer[p] for p in ("jax-jit", "jax-scan") if p in by_peer]
        if gemm is not None and "seconds_per_eval" in gemm["extra"]:
            ref = by_peer.get("scipy-cg") or by_peer.get("bpnet")
            ref_nfev = ref["extra"].get("nfev") if ref else None
            if ref_nfev:  # shown as the bound of a whole run, like the others
                gemm["epoch_s"] = [t * ref_nfev for t in gemm["epoch_s"]]
                gemm["epoch_s_median"] = gemm["extra"]["seconds_per_eval"] * ref_nfev
                gemm["epoch_s_best"] = min(gemm["epoch_s"])
                gemm["extra"]["nfev"] = ref_nfev
                gemm["extra"]["nfev_from"] = ref["peer"]
        ref_loss = by_peer.get("numpy") or by_peer.get("bpnet")
        for r in group:
            r["ratio_gemm"] = r["ratio_torch"] = r["ratio_jax"] = None
            r["cpu_ratio_gemm"] = r["cpu_ratio_jax"] = None
            r["loss_check"] = _loss_check(r, ref_loss)
            best = _best(r)
            if r["peer"] == "gemm" or best is None:
                continue
            if gemm is not None and _same_device(gemm["device"], r["device"]):
                bound = _best(gemm)
                if "seconds_per_eval" in gemm["extra"]:
                    nfev = r["extra"].get("nfev") or gemm["extra"].get("nfev")
                    bound = gemm["extra"]["seconds_per_eval"] * nfev if nfev else None
                if bound:
                    r["ratio_gemm"] = best / bound
            if (
                torch is not None
                and r is not torch
                and _same_device(torch["device"], r["device"])
            ):
                r["ratio_torch"] = best / _best(torch)
            same = [j for j in jax_rows if _same_device(j["device"], r["device"])]
            if same and r["peer"] not in ("jax-jit", "jax-scan", "gemm-torch"):
                r["ratio_jax"] = best / min(_best(j) for j in same)
            # the same ratios in CPU seconds (CPU runs: what a busy machine
            # disturbs least)
            cpu = r.get("cpu_epoch_s_best")
            if cpu and r["device"] == "cpu":
                if gemm is not None and gemm.get("cpu_epoch_s_best"):
                    if "seconds_per_eval" not in gemm["extra"]:
                        r["cpu_ratio_gemm"] = cpu / gemm["cpu_epoch_s_best"]
                cpus = [
                    j["cpu_epoch_s_best"] for j in same if j.get("cpu_epoch_s_best")
                ]
                if cpus and r["ratio_jax"] is not None:
                    r["cpu_ratio_jax"] = cpu / min(cpus)
        # bpnet on its torch backend against the same step in plain PyTorch
        ours, step = by_peer.get("bpnet-torch"), by_peer.get("torch-step")
        if ours and step and _best(ours) and _best(step):
            ratio = _best(ours) / _best(step)
            ours["extra"]["x_torch_step"] = ratio
        # bpnet on its JAX backend against a hand-written jax.jit step
        ours, step = by_peer.get("bpnet-jax"), by_peer.get("jax-jit")
        if ours and step and _best(ours) and _best(step):
            ours["extra"]["x_jax_jit"] = _best(ours) / _best(step)


def _loss_check(row: dict, ref: dict | None) -> dict | None:
    loss = row.get("loss_after_1")
    if loss is None or ref is None or ref.get("loss_after_1") is None:
        return None
    ref_loss = ref["loss_after_1"]
    rel = abs(loss - ref_loss) / abs(ref_loss)
    extra = ref.get("extra", {})
    runs = [ref_loss, *extra.get("loss_after_1_nudged", [])]
    f64 = extra.get("loss_after_1_float64")
    if len(runs) > 2:
        # a difference of two runs has sqrt(2) times one run's spread
        spread = math.sqrt(2.0) * statistics.stdev(runs) / abs(ref_loss)
        tol = max(LOSS_RTOL_MIN, LOSS_SIGMAS * spread)
    elif f64:
        tol = max(LOSS_RTOL_MIN, LOSS_DRIFT * abs(ref_loss - f64) / abs(f64))
    else:
        tol = LOSS_RTOL
    return {"against": ref["peer"], "rel": rel, "tol": tol, "ok": rel <= tol}


def mismatches(rows: list[dict]) -> list[str]:
    """'config peer' of every row whose loss after one epoch disagrees."""
    return [
        f"{r['config']} {r['peer']}"
        for r in rows
        if r.get("loss_check") and not r["loss_check"]["ok"]
    ]


COLUMNS = (
    ("peer", "peer"),
    ("device", "device"),
    ("first call s", "first_call_s"),
    ("s/epoch", "epoch_s_best"),
    ("median", "epoch_s_median"),
    ("spread", "spread"),
    ("cpu s", "cpu_epoch_s_best"),
    ("x GEMM", "ratio_gemm"),
    ("x JAX", "ratio_jax"),
    ("cpu x GEMM", "cpu_ratio_gemm"),
    ("cpu x JAX", "cpu_ratio_jax"),
    ("x torch", "ratio_torch"),
    ("loss after 1", "loss_after_1"),
    ("test acc", "test_accuracy"),
    ("peak RSS MB", "peak_rss_mb"),
    ("train +RSS MB", "train_rss_mb"),
)


def _cell(row: dict, key: str) -> str:
    if row["status"] != "ok" and key not in ("peer", "device"):
        return row["status"] if key == "first_call_s" else ""
    v = row.get(key)
    if key == "epoch_s_best" and v is None:
        v = row.get("epoch_s_median")
    if v is None:
        return "-"
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return " ".join(f"{t:.3g}" for t in v) or "-"
    if key == "spread":
        return f"{100 * v:.0f}%"
    if key == "loss_after_1":
        check = row.get("loss_check")
        if not check:
            return f"{v:.5f}"
        if check["against"] == row["peer"]:
            return f"{v:.5f} (ref)"
        flag = "" if check["ok"] else " MISMATCH"
        return f"{v:.5f} ({check['rel']:.0e}){flag}"
    if key.startswith(("ratio", "cpu_ratio")):
        return f"{v:.2f}"
    if key == "test_accuracy":
        return f"{v:.4f}"
    if key == "cpu_epoch_s_best":
        return f"{v:.4f}" if v < 1 else f"{v:.3f}"
    if key.endswith("_mb"):
        return f"{v:.0f}"
    return f"{v:.4f}" if v < 1 else f"{v:.3f}"


def _unit(config: str) -> str:
    return "s/run" if named_config(config)["method"] == "cg" else "s/epoch"


def _notes(rows: list[dict]) -> list[str]:
    notes = []
    ref = next(
        (r["extra"]["nfev_from"] for r in rows if "nfev_from" in r.get("extra", {})),
        "the reference run",
    )
    for r in rows:
        if r["status"] != "ok":
            notes.append(f"{r['peer']}: {r['status']}: {r['reason']}")
        elif r["peer"] in ("gemm", "gemm-torch"):
            e = r["extra"]
            notes.append(
                f"{r['peer']}: {e['library']}, {e['gflop_per_epoch']:.3g} GFLOP per "
                + (
                    f"evaluation, times {e['nfev']} evaluations ({e['nfev_from']}'s)"
                    if "nfev" in e
                    else "epoch"
                )
            )
        elif "nfev" in r["extra"]:
            nfev = r["extra"]["nfev"]
            notes.append(
                f"{r['peer']}: {nfev} function evaluations"
                if nfev
                else f"{r['peer']}: reports no count of function evaluations; "
                f"its x GEMM uses {ref}'s count"
            )
        note = _gpu_memory_note(r.get("extra", {}))
        if note:
            notes.append(f"{r['peer']}: {note}")
    return notes


def _gpu_memory_note(extra: dict) -> str:
    """GPU memory as each library counts it: bytes its pool held (CuPy's pool
    at the end, PyTorch's caching allocator at its peak) and bytes in use."""
    if extra.get("gpu_pool_mb"):
        used = extra.get("gpu_used_mb")
        in_use = f" ({used:.0f} MB in use at the end)" if used is not None else ""
        return f"GPU memory {extra['gpu_pool_mb']:.0f} MB held by CuPy's pool{in_use}"
    if extra.get("gpu_peak_mb"):
        held = extra.get("gpu_reserved_mb")
        at_peak = f"{held:.0f} MB held by its allocator at peak, " if held else ""
        return f"GPU memory {at_peak}{extra['gpu_peak_mb']:.0f} MB allocated at peak"
    return ""


def text_table(report: dict) -> str:
    """A plain-text table per configuration, for the terminal."""
    out = []
    for config in report["settings"]["configs"]:
        rows = [r for r in report["results"] if r["config"] == config]
        header = [h if k != "epoch_s_best" else _unit(config) for h, k in COLUMNS]
        cells = [[_cell(r, k) for _, k in COLUMNS] for r in rows]
        widths = [
            max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)
        ]
        out.append(f"\n{config}: {named_config(config)['label']}")
        out.append("  ".join(h.ljust(w) for h, w in zip(header, widths)))
        out.append("  ".join("-" * w for w in widths))
        out += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
        out += [f"  {n}" for n in _notes(rows)]
    return "\n".join(out)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def machine_lines(m: dict) -> list[str]:
    blas = "; ".join(
        f"{b['internal_api']} {b['version']} ({b['architecture']}, "
        f"{_plural(b['num_threads'], 'thread')})"
        for b in m["blas"]
    )
    versions = ", ".join(f"{k} {v}" for k, v in m["versions"].items())
    lines = [
        f"- CPU: {m['cpu']}, {m['cores']} cores ({m['cores_usable']} usable), "
        f"{_plural(m['threads'], 'thread')} per run",
        f"- BLAS (threadpoolctl): {blas or 'none found'}",
        f"- GPU: {m['gpu'] or 'none used'}",
        f"- OS: {m['os']}",
        f"- Versions: {versions}",
    ]
    if m.get("load"):
        start, end = (
            ", ".join(f"{x:.2f}" for x in m["load"][k]) for k in ("start", "end")
        )
        lines.append(
            f"- Load average (1, 5, 15 min): {start} at the start, {end} at the end"
        )
    if m["env_unset"]:
        lines.append(f"- Removed from the environment: {', '.join(m['env_unset'])}")
    return lines


METHOD = """\
How the numbers are taken:

- Every peer trains the same network from the same initial weights (bpnet's
  draw for the seed) on the same float32 data (X in [0, 1]), in the same batch
  order (bpnet's: the host generator that drew the weights, continued), the
  last partial batch included; scikit-learn alone shuffles with its own
  generator. One warm-up epoch, then the timed epochs. With `--rounds R`
  every peer runs R times, interleaved (each round runs every peer once,
  starting one peer later than the round before); `s/epoch` is the best timed
  epoch over all rounds, `median` their median, `spread` (worst - best) /
  best. `first call s` is the wall time from building the model (data
  already on the host) to the end of the warm-up epoch: device context, data
  copy, JIT compilation or CUDA-graph capture, and the first epoch itself.
- `cpu s` is the best timed epoch in CPU seconds of the child process (all
  its threads: `time.process_time`), and `cpu x GEMM`, `cpu x JAX` the
  ratios in those: on a machine shared with other work, waiting for a core
  inflates wall time but not CPU time, so with one thread these ratios are
  the steadier ones (with more threads, CPU time also counts threads that
  spin or wait).
- `loss after 1` is the proof that a peer computes what the others do: the
  mean softmax cross-entropy on the test set of its weights after the
  warm-up epoch, evaluated in float64 NumPy by the harness (not by the peer).
  In brackets its relative difference from the NumPy loop's (bpnet's where
  there is no NumPy row). The NumPy row also runs its first epoch again,
  untimed: in float64, and in float32 from initial weights moved by one or
  two ulps. Rounding alone spreads those float32 runs' losses, by percents
  on a chaotic configuration such as B; a peer may differ from NumPy's by 4
  standard deviations of the difference of two such runs (at least 1e-4;
  1e-2 where there is no NumPy row). Beyond, the cell says MISMATCH
  and `bench.py` exits with status 1.
- Peers: `bpnet` is `bpnet.fit` training alone, as every peer's epoch is;
  `bpnet+eval` also scores the test set after every epoch, inside the timed
  epoch, as `bpnet-train` does (`--no-eval` leaves it out). `jax-jit` is one
  jitted SGD step per batch (the batch gathered inside it), `jax-scan` the
  whole epoch's full batches as one jitted `lax.scan` (the last partial batch
  as one more jitted step). `torch-compile` compiles the forward and the loss
  with `torch.compile` (inductor; `mode="reduce-overhead"`, CUDA graphs, on a
  GPU) and steps `torch.optim.SGD`. `x JAX` divides by the better of JAX's
  two rows.
- Each child runs on `--threads` of the usable cores (`sched_setaffinity`)
  and limits its BLAS and OpenMP pools to as many threads (threadpoolctl and
  OMP/OPENBLAS/MKL_NUM_THREADS; `torch.set_num_threads` for PyTorch; XLA,
  which has no thread-count setting, gets
  `--xla_cpu_multi_thread_eigen=false` for one thread). `OPENBLAS_CORETYPE`
  and `OPENBLAS_L2_SIZE` are removed first (the script re-executes itself
  without them): set for old OpenBLAS builds, they slow a current NumPy.
- On a GPU the device is synchronized before each clock reading.
- `x GEMM` divides by the GEMM bound: only the matrix products one epoch needs
  (per batch, X @ W for each layer, A.T @ dZ for each layer, dZ @ W.T for all
  but the first layer, the last partial batch included), on preallocated
  random matrices with the same library on the same device. It is not a
  floor for a compiler (XLA may fuse the bias add into its dots); it is the
  cost of the products alone with the BLAS NumPy ships. `x torch` divides
  by PyTorch eager on the same device. Ratios are only taken on one device.
  `gemm-torch` times the same products through PyTorch's own `matmul` (its
  BLAS, or cuBLAS): the floor under PyTorch's training loop, beside the
  `gemm` row's floor under NumPy's (or CuPy's).
- bpnet: one `bpnet.fit(..., epochs=1 + N)` call with the data already on the
  device; per-epoch times are fit's own History `seconds` (it synchronizes
  before reading the clock and includes its per-epoch loss/accuracy readback).
- Full-batch config: one `s/run` is one minimize of `maxiter` CG iterations,
  restarted from the initial weights each time, in float64; the GEMM bound is
  the products of one evaluation times the number of evaluations.
- Memory: every peer runs in its own child process (`subprocess`), so each
  peak is that peer's alone. `peak RSS MB` is the child's
  `getrusage(RUSAGE_SELF).ru_maxrss`: interpreter, libraries and data
  included. `train +RSS MB` is the rise of the peak while training: the
  child resets its high-water mark (`/proc/self/clear_refs`) once data and
  libraries are loaded and reads `VmHWM` minus `VmRSS` at the reset after the
  run (blank where the kernel does not allow the reset). GPU memory is what
  each library's allocator held: the bytes CuPy's pool holds at the end (it
  never gives blocks back during a run) beside PyTorch's
  `max_memory_reserved`; the bytes in use (`used_bytes`,
  `max_memory_allocated`) are noted too.
- The machine is shared: timings are noisy, compare within one run only.
"""


def markdown(report: dict) -> str:
    """The report as Markdown: tables, machine block, exact command, method."""
    s = report["settings"]
    lines = [
        "# Benchmarks",
        "",
        "bpnet beside JAX (a jitted step and a whole-epoch `lax.scan`), "
        "`torch.compile`, PyTorch eager, scikit-learn's MLPClassifier, a NumPy "
        "MLP, ex4's NumPy cost through scipy CG, and the GEMM bound, all trained "
        "in one run of `python -m benchmarks peers`.",
        "",
        "```",
        report["command"],
        "```",
        "",
        f"Device `{s['device']}`, {s['epochs']} timed epochs after one warm-up"
        + (
            f" in each of {s['rounds']} interleaved rounds"
            if s.get("rounds", 1) > 1
            else ""
        )
        + (f", first {s['subset']} training samples" if s["subset"] else "")
        + (f", CG maxiter {s['maxiter']}" if "C" in s["configs"] else "")
        + f", seed {s.get('seed', 0)}.",
        "",
        "## Machine",
        "",
        *machine_lines(report["machine"]),
    ]
    if report.get("sweep"):
        lines += ["", report["sweep"]["markdown"]]
    for config in s["configs"]:
        rows = [r for r in report["results"] if r["config"] == config]
        header = [h if k != "epoch_s_best" else _unit(config) for h, k in COLUMNS]
        lines += ["", f"## {config}: {named_config(config)['label']}", ""]
        lines += table_head(*header)
        for r in rows:
            lines.append(table_row(*(_cell(r, k) for _, k in COLUMNS)))
        notes = _notes(rows)
        if notes:
            lines += [""] + [f"- {n}" for n in notes]
    lines += ["", "## Method", "", METHOD]
    return "\n".join(lines)
