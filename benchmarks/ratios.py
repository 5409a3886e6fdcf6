"""The ratios and the loss check of the peers report: each row's best epoch
over the GEMM bound's, JAX's and PyTorch's on the same device, and its loss
after one epoch against the NumPy loop's within what rounding alone
explains."""

from __future__ import annotations

import math
import statistics


def _same_device(a: str, b: str) -> bool:
    """'cuda' and 'cuda:0' name the same GPU; 'cpu' only itself."""

    def norm(d: str) -> str:
        return "cuda:0" if d == "cuda" else d

    return norm(str(a)) == norm(str(b))


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
