"""``python -m benchmarks sweep``: cost as the work grows, over one hidden layer's
width and the batch size.

At every point (784-width-10, batch b) the summary takes bpnet's best epoch
as a ratio to the GEMM bound and to JAX's best row, and across the batch
sizes of each width fits a line through the time per step,

    seconds per step = fixed + seconds per FLOP * FLOPs per step,

whose intercept is the fixed cost of a step: Python dispatch, the small
operations, and the work on the weights themselves (the update, the
weight-gradient product's output), none of which grows with the batch. The
line is fitted on relative residuals, so that the largest batch, whose
time is largest, does not decide the intercept alone.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.harness import table_head, table_row

PEERS = ("bpnet", "jax", "gemm")


def _point(name: str) -> tuple[int, int]:
    m = re.fullmatch(r"H(\d+)B(\d+)", name)
    if not m:
        raise ValueError(f"not a sweep point: {name!r}")
    return int(m.group(1)), int(m.group(2))


def _best(rows: list[dict], peer: str, key: str) -> dict | None:
    """The row of ``peer`` ('jax': the better of jax-jit and jax-scan)."""
    names = ("jax-jit", "jax-scan") if peer == "jax" else (peer,)
    ok = [r for r in rows if r["peer"] in names and r["status"] == "ok" and r.get(key)]
    return min(ok, key=lambda r: r[key]) if ok else None


def fixed_cost(steps_s: list[float], flops: list[float]) -> tuple[float, float]:
    """Line through (FLOPs per step, seconds per step), least squares on the
    relative residuals (each point weighted by 1 / its time, so that the
    largest batch does not drown the small ones that decide the intercept):
    returns (fixed seconds per step, seconds per FLOP)."""
    if len(steps_s) < 2:
        raise ValueError("fixed_cost: needs at least two batch sizes")
    t = np.asarray(steps_s, dtype=float)
    slope, intercept = np.polyfit(np.asarray(flops, dtype=float), t, 1, w=1.0 / t)
    return float(intercept), float(slope)


def points(report: dict, key: str = "epoch_s_best") -> list[dict[str, Any]]:
    """Per sweep point: width, batch, steps, FLOPs per step, and for bpnet,
    JAX and the GEMM bound the best epoch and seconds per step; ``key``
    ``"cpu_epoch_s_best"`` takes CPU seconds instead of wall seconds."""
    out = []
    for name in report["settings"]["configs"]:
        width, batch = _point(name)
        rows = [r for r in report["results"] if r["config"] == name]
        gemm = _best(rows, "gemm", key)
        n = next((r["n_train"] for r in rows if r.get("n_train")), None)
        if n is None:
            continue
        steps = -(-n // batch)
        p: dict[str, Any] = {"width": width, "batch": batch, "steps": steps}
        p["flops_step"] = (
            gemm["extra"]["gflop_per_epoch"] * 1e9 / steps if gemm else None
        )
        for peer in PEERS:
            row = _best(rows, peer, key)
            p[peer] = row[key] if row else None
            p[peer + "_step_us"] = row[key] / steps * 1e6 if row else None
            if peer == "jax" and row:
                p["jax_peer"] = row["peer"]
        b, g, j = p["bpnet"], p["gemm"], p["jax"]
        p["ratio_gemm"] = b / g if b and g else None
        p["ratio_jax"] = b / j if b and j else None
        p["jax_ratio_gemm"] = j / g if j and g else None
        out.append(p)
    return out


def fixed_costs(pts: list[dict]) -> list[dict[str, Any]]:
    """Per width, each peer's fixed cost per step (us) from the line fit."""
    out = []
    for width in sorted({p["width"] for p in pts}):
        row: dict[str, Any] = {"width": width}
        mine = [p for p in pts if p["width"] == width and p["flops_step"]]
        for peer in PEERS:
            have = [p for p in mine if p[peer] is not None]
            if len(have) < 2:
                row[peer] = None
                continue
            fixed, per_flop = fixed_cost(
                [p[peer + "_step_us"] * 1e-6 for p in have],
                [p["flops_step"] for p in have],
            )
            row[peer] = fixed * 1e6
            row[peer + "_gflops"] = 1e-9 / per_flop if per_flop > 0 else None
        out.append(row)
    return out


def _f(v: float | None, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def markdown(
    pts: list[dict], fixed: list[dict], plot: str | None, basis: str = "wall"
) -> str:
    batches = sorted({p["batch"] for p in pts})
    by = {(p["width"], p["batch"]): p for p in pts}

    def grid(cell: Any) -> list[str]:
        """A width x batch table, ``cell(point)`` in each filled place."""
        rows = table_head("width", *(f"batch {b}" for b in batches))
        for width in sorted({p["width"] for p in pts}):
            cells = [
                "-" if by.get((width, b)) is None else cell(by[(width, b)])
                for b in batches
            ]
            rows.append(table_row(width, *cells))
        return rows

    lines = [
        f"### In {basis} seconds",
        "",
        "bpnet's best epoch as a ratio to the GEMM bound / to JAX's best row "
        "(lower is better; below 1.00 in the second figure bpnet is faster "
        "than JAX), and JAX's own ratio to the GEMM bound in brackets:",
        "",
        *grid(
            lambda p: (
                f"{_f(p['ratio_gemm'], '.2f')} / {_f(p['ratio_jax'], '.2f')} "
                f"({_f(p['jax_ratio_gemm'], '.2f')})"
            )
        ),
        "",
        "Microseconds per step (bpnet / JAX / GEMM bound):",
        "",
        *grid(
            lambda p: " / ".join(
                _f(p[k + "_step_us"], ".0f") for k in ("bpnet", "jax", "gemm")
            )
        ),
    ]
    lines += [
        "",
        "Fixed cost per step: the intercept of a line through (FLOPs per step, "
        "seconds per step) over the batch sizes of each width, fitted on relative "
        "residuals, in microseconds (and the slope as GFLOP/s):",
        "",
        *table_head(
            "width",
            "bpnet us",
            "JAX us",
            "GEMM bound us",
            "bpnet GFLOP/s",
            "JAX GFLOP/s",
        ),
    ]
    for r in fixed:
        lines.append(
            f"| {r['width']} | {_f(r['bpnet'], '.0f')} | {_f(r['jax'], '.0f')} | "
            f"{_f(r['gemm'], '.0f')} | {_f(r.get('bpnet_gflops'), '.1f')} | "
            f"{_f(r.get('jax_gflops'), '.1f')} |"
        )
    if plot:
        lines += ["", f"![bpnet and JAX over the GEMM bound]({plot})"]
    return "\n".join(lines)


def plot_sweep(pts: list[dict], path: Path, basis: str = "wall") -> None:
    """Two panels over the batch size, one line per width: bpnet (solid) and
    JAX (dashed) over the GEMM bound; bpnet over JAX."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for i, width in enumerate(sorted({p["width"] for p in pts})):
        mine = sorted((p for p in pts if p["width"] == width), key=lambda p: p["batch"])
        xs = [p["batch"] for p in mine]
        color = f"C{i}"

        def ys(key: str, rows: list[dict] = mine) -> list[float]:
            return [np.nan if p[key] is None else p[key] for p in rows]

        ax1.plot(xs, ys("ratio_gemm"), "o-", color=color, label=f"bpnet, width {width}")
        ax1.plot(
            xs, ys("jax_ratio_gemm"), "s--", color=color, label=f"JAX, width {width}"
        )
        ax2.plot(xs, ys("ratio_jax"), "o-", color=color, label=f"width {width}")
    batches = sorted({p["batch"] for p in pts})
    for ax in (ax1, ax2):
        ax.set_xscale("log", base=2)
        ax.set_xticks(batches, [str(b) for b in batches])
        ax.minorticks_off()
        ax.set_xlabel("batch size")
        ax.axhline(1.0, color="grey", lw=0.8)
        ax.grid(alpha=0.3)
    ax1.set_ylabel(f"{basis} seconds per epoch / GEMM bound")
    ax1.set_title("over the GEMM bound (bpnet solid, JAX dashed)")
    ax2.set_ylabel(f"bpnet / JAX's best ({basis} seconds)")
    ax2.set_title("bpnet over JAX (below 1: bpnet faster)")
    ax1.legend(fontsize=7)
    ax2.legend(fontsize=7)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def text(pts: list[dict], fixed: list[dict]) -> str:
    out = ["\nsweep: bpnet x GEMM / x JAX (JAX x GEMM)"]
    for p in pts:
        out.append(
            f"  width {p['width']:5d} batch {p['batch']:5d}: "
            f"{_f(p['ratio_gemm'], '.2f')} / {_f(p['ratio_jax'], '.2f')} "
            f"({_f(p['jax_ratio_gemm'], '.2f')}); us per step bpnet "
            f"{_f(p['bpnet_step_us'], '.0f')}, JAX {_f(p['jax_step_us'], '.0f')}, "
            f"GEMM {_f(p['gemm_step_us'], '.0f')}"
        )
    out.append("fixed cost per step (us): width: bpnet, JAX, GEMM bound")
    for r in fixed:
        out.append(
            f"  {r['width']:5d}: {_f(r['bpnet'], '.0f')}, {_f(r['jax'], '.0f')}, "
            f"{_f(r['gemm'], '.0f')}"
        )
    return "\n".join(out)


def sweep_summary(report: dict, plot: Path | None) -> dict[str, Any]:
    """Points, fixed costs, the text and Markdown tables (in wall seconds and,
    where measured, CPU seconds); the PNG (wall seconds) if asked."""
    pts = points(report)
    fixed = fixed_costs(pts)
    cpu_pts = points(report, "cpu_epoch_s_best")
    cpu_fixed = fixed_costs(cpu_pts)
    # one thread on the CPU: CPU seconds are the steadier figure, so the plot
    # shows them (wall seconds otherwise)
    cpu = report["settings"].get("threads") == 1 and any(p["bpnet"] for p in cpu_pts)
    if plot is not None:
        plot_sweep(cpu_pts if cpu else pts, plot, "CPU" if cpu else "wall")
    name = plot.name if plot else None
    md = [
        "## Sweep: one hidden layer, width x batch size",
        "",
        markdown(pts, fixed, None if cpu else name),
    ]
    if any(p["bpnet"] for p in cpu_pts):
        md += ["", markdown(cpu_pts, cpu_fixed, name if cpu else None, basis="CPU")]
    return {
        "points": pts,
        "fixed_us": fixed,
        "cpu_points": cpu_pts,
        "cpu_fixed_us": cpu_fixed,
        "text": text(pts, fixed) + "\n(in CPU seconds)" + text(cpu_pts, cpu_fixed),
        "markdown": "\n".join(md),
    }
