"""The text table and the Markdown report of ``python -m benchmarks peers``:
a table per configuration with its notes, the machine block and the method.
"""

from __future__ import annotations

from benchmarks.harness import config as named_config
from benchmarks.harness import table_head, table_row
from benchmarks.machine import machine_lines

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
  and `python -m benchmarks peers` exits with status 1.
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
