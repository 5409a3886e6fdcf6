"""Data-parallel training: P ranks under ``mpiexec`` give one process's weights.

The scenarios live in ``mpi_worker.py``; one ``mpiexec`` launch per rank count
runs them all, and each is compared with the same scenario in one plain
process (no MPI), launched the same way so that it sums in the same order
(one BLAS thread). Everything skips with a reason without mpi4py or mpiexec.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import mpi_worker
import numpy as np
import pytest

HERE = Path(__file__).parent


def _mpiexec() -> str | None:
    # The mpich wheel puts mpiexec next to the interpreter of its venv.
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
if importlib.util.find_spec("mpi4py") is None:
    REASON = "mpi4py is not installed (pip install 'bpnet-arrayapi[mpi]')"
elif MPIEXEC is None:
    REASON = "no mpiexec found (pip install 'bpnet-arrayapi[mpi]' brings MPICH's)"
else:
    REASON = None

needs_mpi = [
    pytest.mark.mpi,
    pytest.mark.skipif(REASON is not None, reason=REASON or ""),
]
pytestmark = needs_mpi


def _env() -> dict:
    # One BLAS thread per rank: two ranks share two cores.
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(
        [str(HERE.parent), str(HERE), env.get("PYTHONPATH", "")]
    )
    return env


def _launch(n: int, args: list[str], timeout: float = 300) -> Any:
    return subprocess.run(
        [MPIEXEC, "-n", str(n), *args],
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _run_worker(tmp: Path, n: int, mode: str, names=()) -> list[dict]:
    tmp.mkdir(parents=True, exist_ok=True)
    args = [sys.executable, str(HERE / "mpi_worker.py"), str(tmp), mode, *names]
    if mode == "single":  # one plain process, in the ranks' environment
        proc = subprocess.run(args, env=_env(), capture_output=True, text=True)
    else:
        proc = _launch(n, args)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return [dict(np.load(tmp / f"rank{r}.npz")) for r in range(n)]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Rank results: 2 ranks blocking, 3 ranks overlapped, 2 ranks overlapped,
    and one process without MPI (the reference)."""
    base = tmp_path_factory.mktemp("mpi")
    return {
        (1, "single"): _run_worker(base / "one", 1, "single"),
        (2, "blocking"): _run_worker(base / "two", 2, "blocking"),
        (3, "overlap"): _run_worker(base / "three", 3, "overlap"),
        (2, "overlap"): _run_worker(
            base / "two-overlap", 2, "overlap", mpi_worker.OVERLAP_SCENARIOS
        ),
    }


def _results(rank: dict, name: str) -> dict:
    prefix = name + "/"
    return {k[len(prefix) :]: v for k, v in rank.items() if k.startswith(prefix)}


TRAINING = [
    n
    for n in mpi_worker.SCENARIOS
    if not n.startswith(("minimize", "convex")) and n not in ("interrupt", "batchnorm")
]
LAUNCHES = [(2, "blocking"), (3, "overlap")]


@pytest.mark.parametrize("launch", LAUNCHES, ids=lambda x: f"{x[0]}-{x[1]}")
@pytest.mark.parametrize("name", TRAINING)
def test_p_ranks_train_the_weights_of_one_process(runs, name, launch):
    one = _results(runs[(1, "single")][0], name)
    ranks = [_results(r, name) for r in runs[launch]]
    assert set(ranks[0]) == set(one)
    for key, expected in one.items():
        np.testing.assert_allclose(
            ranks[0][key], expected, rtol=1e-10, atol=1e-13, err_msg=key
        )
    for other in ranks[1:]:  # every rank applied the same updates
        for key in one:
            np.testing.assert_array_equal(other[key], ranks[0][key], err_msg=key)


@pytest.mark.parametrize("launch", LAUNCHES, ids=lambda x: f"{x[0]}-{x[1]}")
def test_batchnorm_ranks_agree_on_weights_and_running_statistics(runs, launch):
    ranks = [_results(r, "batchnorm") for r in runs[launch]]
    assert {"1-running_mean", "1-running_var"} <= set(ranks[0])
    for other in ranks[1:]:  # each rank's own statistics would differ
        for key, value in ranks[0].items():
            np.testing.assert_array_equal(other[key], value, err_msg=key)
    assert np.all(np.isfinite(ranks[0]["1-running_var"]))


def test_the_resumed_run_is_the_uninterrupted_run(runs):
    got = _results(runs[(2, "blocking")][1], "resume")
    for key in [k for k in got if k.startswith("p")]:
        np.testing.assert_allclose(got[key], got["ref_" + key], rtol=1e-12)


@pytest.mark.parametrize("name", mpi_worker.OVERLAP_SCENARIOS)
def test_overlapped_and_blocking_reductions_give_the_same_weights(runs, name):
    blocking = _results(runs[(2, "blocking")][0], name)
    overlap = _results(runs[(2, "overlap")][0], name)
    for key, value in blocking.items():
        np.testing.assert_allclose(overlap[key], value, rtol=1e-13, err_msg=key)


@pytest.mark.parametrize("launch", LAUNCHES, ids=lambda x: f"{x[0]}-{x[1]}")
@pytest.mark.parametrize(
    "method", ["CG", "L-BFGS-B", "weighted-L-BFGS-B", "two-rows-L-BFGS-B"]
)
def test_full_batch_follows_one_process_iteration_by_iteration(runs, launch, method):
    one = _results(runs[(1, "single")][0], f"minimize-{method}")
    got = _results(runs[launch][0], f"minimize-{method}")
    np.testing.assert_allclose(got["curve"], one["curve"], rtol=1e-9)
    for key in [k for k in one if k.startswith("p")]:
        np.testing.assert_allclose(got[key], one[key], rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("launch", LAUNCHES, ids=lambda x: f"{x[0]}-{x[1]}")
@pytest.mark.parametrize("method", ["TNC", "CG", "L-BFGS-B"])
def test_full_batch_reaches_one_process_minimum(runs, launch, method):
    one = _results(runs[(1, "single")][0], f"convex-{method}")
    got = _results(runs[launch][0], f"convex-{method}")
    assert got["curve"][-1] == pytest.approx(one["curve"][-1], rel=1e-7)
    np.testing.assert_allclose(got["p0"], one["p0"], atol=1e-5)


@pytest.mark.parametrize("launch", LAUNCHES, ids=lambda x: f"{x[0]}-{x[1]}")
def test_ctrl_c_on_one_rank_stops_every_rank_at_the_same_step(runs, launch):
    one = _results(runs[(1, "single")][0], "interrupt")
    assert one["stopped"] == 1
    for rank in runs[launch]:
        got = _results(rank, "interrupt")
        assert got["stopped"] == 1
        assert got["t"] == one["t"]  # the step one process stops at
        np.testing.assert_allclose(got["p0"], one["p0"], rtol=1e-10)


DIE = """
import os, sys
import numpy as np
import bpnet
from bpnet import distributed

comm = distributed.init("cpu", timeout=30)

def die(epoch, logs, net):
    if epoch == 1 and comm.rank == 1:
        if sys.argv[1] == "exit":
            os._exit(3)
        raise RuntimeError("disk on fire")

rng = np.random.default_rng(0)
X, y = rng.normal(size=(200, 5)), rng.integers(0, 2, 200)
net = bpnet.Sequential([bpnet.Dense(5, 4), bpnet.ReLU(), bpnet.Dense(4, 2)])
bpnet.fit(net, X, y, epochs=500, comm=comm, callbacks=[die])
print("finished")
"""


@pytest.mark.parametrize("how", ["raise", "exit"])
def test_a_rank_that_dies_ends_the_job_instead_of_hanging(tmp_path, how):
    script = tmp_path / "die.py"
    script.write_text(DIE)
    # 500 epochs would take far longer than the timeout: the job must end early
    proc = _launch(2, [sys.executable, str(script), how], timeout=60)
    assert proc.returncode != 0
    assert "finished" not in proc.stdout
    if how == "raise":
        assert "rank 1 of 2 failed (RuntimeError: disk on fire)" in proc.stderr


def test_a_lost_rank_times_out_with_an_error_naming_the_wait():
    from bpnet.distributed import comm as comm_mod

    class Never:
        pass

    class FakeMPI:
        class Request:
            @staticmethod
            def Testall(requests):
                return False

    c = comm_mod.MPICommunicator.__new__(comm_mod.MPICommunicator)
    c.MPI, c.rank, c.size, c.timeout = FakeMPI, 2, 4, 0.05
    with pytest.raises(TimeoutError, match="rank 2: the gradient allreduce waited"):
        c.wait([Never()])


NCCL_ONE_RANK = """
import sys
import numpy as np
import bpnet
from bpnet import distributed

comm = distributed.init("cuda", overlap=sys.argv[1] == "overlap")
rng = np.random.default_rng(0)
X, y = rng.normal(size=(301, 8)), rng.integers(0, 3, 301)
nets = []
for c in (None, comm):
    net = bpnet.Sequential(
        [bpnet.Dense(8, 16), bpnet.ReLU(), bpnet.Dense(16, 3)],
        device=comm.device, dtype="float64", seed=0,
    )
    bpnet.fit(net, X, y, epochs=2, batch_size=32, optimizer="adam", comm=c)
    nets.append([net.backend.to_numpy(p) for p in net.parameters()])
for a, b in zip(*nets):
    np.testing.assert_allclose(b, a, rtol=1e-10)
print("nccl ok", comm.device)
"""


@pytest.mark.cuda
@pytest.mark.parametrize("mode", ["blocking", "overlap"])
def test_nccl_on_one_gpu_gives_the_weights_of_plain_fit(tmp_path, mode):
    pytest.importorskip("cupy")
    script = tmp_path / "nccl.py"
    script.write_text(NCCL_ONE_RANK)
    proc = _launch(1, [sys.executable, str(script), mode], timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "nccl ok cuda:0" in proc.stdout


def _cli(n: int | None, args: list[str]) -> Any:
    cmd = [sys.executable, "-m", "bpnet.cli.train", *args]
    if n is None:
        return subprocess.run(cmd, env=_env(), capture_output=True, text=True)
    return _launch(n, cmd)


@pytest.mark.parametrize(
    "flags",
    [
        ["--optimizer", "momentum", "--dropout", "0.2", "--batch-size", "50"],
        ["--optimizer", "lbfgs", "--epochs", "15"],
    ],
    ids=["momentum-dropout", "lbfgs"],
)
def test_bpnet_train_distributed_matches_one_process(tmp_path, flags):
    common = ["--dtype", "float64", "--epochs", "3", "--json", *flags]
    one = _cli(None, common)
    assert one.returncode == 0, one.stderr
    two = _cli(2, [*common, "--distributed", "--out", str(tmp_path / "run")])
    assert two.returncode == 0, two.stderr
    a = json.loads(one.stdout.strip().splitlines()[-1])
    b = json.loads(two.stdout.strip().splitlines()[-1])
    assert b["ranks"] == 2
    assert b["test_accuracy"] == a["test_accuracy"]
    assert b["final_loss"] == pytest.approx(a["final_loss"], rel=1e-9)
    # one voice: rank 0 alone prints its summary line and writes the files
    assert two.stdout.count("test accuracy:") == 1
    assert sum(line.startswith("{") for line in two.stdout.splitlines()) == 1
    assert (tmp_path / "run" / "model.npz").exists()


def test_bpnet_train_distributed_reads_npy_rows_through_a_memory_map(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 10)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 0)
    np.save(tmp_path / "X.npy", X)
    np.save(tmp_path / "y.npy", y)
    np.savez(tmp_path / "d.npz", X=X, y=y)
    common = ["--dtype", "float64", "--epochs", "2", "--batch-size", "30", "--json"]
    one = _cli(None, [*common, "--data", str(tmp_path / "d.npz")])
    files = ["--data", str(tmp_path / "X.npy"), "--labels", str(tmp_path / "y.npy")]
    three = _cli(3, [*common, *files, "--distributed"])
    assert one.returncode == 0 and three.returncode == 0, one.stderr + three.stderr
    a = json.loads(one.stdout.strip().splitlines()[-1])
    b = json.loads(three.stdout.strip().splitlines()[-1])
    assert b["final_loss"] == pytest.approx(a["final_loss"], rel=1e-9)
    assert b["test_accuracy"] == a["test_accuracy"]


def test_bpnet_train_distributed_resumes_into_another_folder(tmp_path):
    # rank 0 copies the checkpoint into --out; every rank then reads that copy
    first, second, straight = (tmp_path / d for d in ("first", "second", "straight"))
    common = ["--dtype", "float64", "--optimizer", "momentum", "--batch-size", "50"]
    two = _cli(2, [*common, "--epochs", "2", "--distributed", "--out", str(first)])
    assert two.returncode == 0, two.stderr
    before = (first / "checkpoint.npz").read_bytes()
    ck = str(first / "checkpoint.npz")
    go_on = ["--resume", ck, "--epochs", "4", "--distributed", "--out", str(second)]
    resumed = _cli(2, ["--json", *go_on])
    assert resumed.returncode == 0, resumed.stderr
    assert (first / "checkpoint.npz").read_bytes() == before
    one = _cli(
        2, [*common, "--epochs", "4", "--json", "--distributed", "--out", str(straight)]
    )
    assert one.returncode == 0, one.stderr
    a = json.loads(one.stdout.strip().splitlines()[-1])
    b = json.loads(resumed.stdout.strip().splitlines()[-1])
    assert b["final_loss"] == a["final_loss"] and b["epochs"] == 4


@pytest.mark.parametrize(
    "flag, rank0, rank1",
    [("--lr", "0.003", "0.3"), ("--hidden", "16", "32")],
    ids=["lr-trains-garbage", "hidden-used-to-hang"],
)
def test_ranks_started_with_other_flags_end_the_job_naming_rank_and_flag(
    tmp_path, flag, rank0, rank1
):
    cmd = [sys.executable, "-m", "bpnet.cli.train", "--distributed", "--epochs", "2"]
    proc = subprocess.run(
        [MPIEXEC, "-n", "1", *cmd, flag, rank0, ":", "-n", "1", *cmd, flag, rank1],
        env=dict(_env(), BPNET_MPI_TIMEOUT="600"),  # no reduction timeout helps
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    err = [line for line in proc.stderr.splitlines() if line.strip()]
    want = f"bpnet-train: error: rank 1 of 2: {flag} is {rank1}, rank 0 has {rank0}"
    assert len(err) == 1 and err[0].startswith(want), proc.stderr
    assert "Epoch" not in proc.stdout and "test accuracy" not in proc.stdout


OTHER_X_PER_RANK = """
import numpy as np
import bpnet
from bpnet import distributed

comm = distributed.init("cpu", abort_on_error=False)
X = np.random.default_rng(comm.rank).normal(size=(60, 4))  # each rank its own
y = (X[:, 0] > 0).astype(int)
net = bpnet.Sequential([bpnet.Dense(4, 3), bpnet.ReLU(), bpnet.Dense(3, 2)], seed=0)
try:
    bpnet.fit(net, X, y, epochs=2, comm=comm)
except distributed.RankMismatchError as exc:
    print(f"rank {comm.rank} refused: {exc}")
"""


def test_ranks_given_other_data_refuse_to_train(tmp_path):
    script = tmp_path / "other_x.py"
    script.write_text(OTHER_X_PER_RANK)
    proc = _launch(2, [sys.executable, str(script)], timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for r in (0, 1):  # every rank raises the same error, naming rank 1 and X
        assert f"rank {r} refused: rank 1 of 2: X is float64 of shape (60x4)" in (
            proc.stdout
        )
