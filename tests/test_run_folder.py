"""A run folder holds one run: bpnet-train never writes over another run by
accident, two runs never share a folder at once (an OS lock that a SIGKILL
cannot leave stale), and a run killed while finishing can be finished.
Real subprocesses and real signals, as a user meets them."""

import os
import signal
import subprocess
import sys
import time

import pytest

import bpnet
from bpnet.cli.run_folder import LOCK_NAME
from bpnet.io.atomic import atomic_open, remove_leftovers

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="run folders are locked with fcntl"
)

QUICK = ["--hidden", "16", "--batch-size", "256", "--quiet"]


def _train(*args, timeout=300):
    return subprocess.run(
        [sys.executable, "-m", "bpnet.cli.train", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _one_line(proc):
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def _epoch(run):
    return bpnet.io.load_checkpoint(run / "checkpoint.npz")[2]["epoch"]


def test_a_folder_holding_a_run_is_refused_and_overwrite_replaces_it(tmp_path):
    run = tmp_path / "run"
    first = _train(*QUICK, "--epochs", 3, "--out", run)
    assert first.returncode == 0, first.stderr
    assert f"to {run}" in first.stdout  # it says where its files went
    before = (run / "model.npz").read_bytes()
    line = _one_line(_train(*QUICK, "--epochs", 1, "--out", run))
    assert f"--resume {run / 'checkpoint.npz'}" in line and "--overwrite" in line
    assert _epoch(run) == 3 and (run / "model.npz").read_bytes() == before
    again = _train(*QUICK, "--epochs", 1, "--out", run, "--overwrite")
    assert again.returncode == 0, again.stderr
    assert _epoch(run) == 1


def test_a_folder_with_only_a_model_or_a_history_is_a_run_too(tmp_path):
    for name in ("model.npz", "history.json"):
        run = tmp_path / name.split(".")[0]
        run.mkdir()
        (run / name).write_text("{}")
        line = _one_line(_train(*QUICK, "--epochs", 1, "--out", run))
        assert name in line and "--overwrite" in line and "--resume" not in line
        assert (run / name).read_text() == "{}"


def test_overwrite_cannot_wipe_the_run_being_resumed(tmp_path):
    run = tmp_path / "run"
    assert _train(*QUICK, "--epochs", 1, "--out", run).returncode == 0
    ck = run / "checkpoint.npz"
    line = _one_line(_train("--resume", ck, "--epochs", 2, "--overwrite"))
    assert line.startswith("bpnet-train: error: --overwrite:")
    assert _epoch(run) == 1


def _wait_for(predicate, proc, seconds=120):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            pytest.fail(f"the first run ended early with status {proc.returncode}")
        time.sleep(0.05)
    pytest.fail("the first run did not get going")


def test_a_second_run_into_a_busy_folder_exits_2_and_sigkill_frees_it(tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "bpnet.cli.train", *QUICK, "--epochs", "100000"]
    first = subprocess.Popen(
        [*cmd, "--out", str(run)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        lock = run / LOCK_NAME
        _wait_for(lambda: (run / "checkpoint.npz").exists(), first)
        assert lock.read_text().strip() == str(first.pid)
        # same folder, as a new run and as a resume of the running one
        for args in (
            ["--out", run, "--overwrite"],
            ["--resume", run / "checkpoint.npz"],
        ):
            line = _one_line(_train(*QUICK, *args, "--epochs", 100001))
            assert f"PID {first.pid}" in line and str(run) in line, line
        assert first.poll() is None  # the first run went on untouched
    finally:
        os.kill(first.pid, signal.SIGKILL)
        first.wait(timeout=30)
    assert first.returncode == -signal.SIGKILL
    # the kernel dropped the lock with the process: no stale lock to clean up
    done = _epoch(run)
    resumed = _train("--resume", run / "checkpoint.npz", "--epochs", done + 1)
    assert resumed.returncode == 0, resumed.stderr
    assert _epoch(run) == done + 1


def test_resume_finishes_a_run_killed_before_its_outputs(tmp_path):
    """SIGKILL after the last epoch's checkpoint, before model.npz, history.json
    and the plots: --resume writes them, training nothing more."""
    run = tmp_path / "run"
    code = (
        "import os, signal, sys\n"
        "import bpnet.cli.train as t\n"
        "t._write_run = lambda *a, **k: os.kill(os.getpid(), signal.SIGKILL)\n"
        "sys.exit(t.train_main(sys.argv[1:]))\n"
    )
    args = [*QUICK, "--epochs", "2", "--out", str(run)]
    killed = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, timeout=300
    )
    assert killed.returncode == -signal.SIGKILL
    assert _epoch(run) == 2 and not (run / "model.npz").exists()
    before = (run / "checkpoint.npz").read_bytes()
    proc = _train("--resume", run / "checkpoint.npz")
    assert proc.returncode == 0, proc.stderr
    assert "complete" in proc.stdout and "Epoch" not in proc.stdout
    for name in ("model.npz", "history.json", "history.png", "confusion.png"):
        assert (run / name).stat().st_size > 0, name
    assert (run / "checkpoint.npz").read_bytes() == before  # nothing trained
    straight = tmp_path / "straight"
    assert _train(*QUICK, "--epochs", 2, "--out", straight).returncode == 0
    a, b = bpnet.load(run / "model.npz"), bpnet.load(straight / "model.npz")
    for p, q in zip(a.parameters(), b.parameters()):
        assert (p == q).all()


def test_temporary_files_of_a_killed_write_go_at_the_next_write(tmp_path):
    code = (
        "import os, signal, sys\n"
        "from bpnet.io.atomic import atomic_open\n"
        "with atomic_open(sys.argv[1]) as fh:\n"
        "    fh.write(b'half a checkpoint'); fh.flush()\n"
        "    os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    target = tmp_path / "checkpoint.npz"
    proc = subprocess.run([sys.executable, "-c", code, str(target)], timeout=120)
    assert proc.returncode == -signal.SIGKILL
    left = [p.name for p in tmp_path.iterdir()]
    assert len(left) == 1 and left[0].startswith(".checkpoint.npz.")
    assert left[0].endswith(".tmp")
    (tmp_path / "keep.tmp").write_text("not ours")  # other names are left alone
    with atomic_open(tmp_path / "other.txt") as fh:
        fh.write(b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.tmp", "other.txt"]


def test_a_temporary_file_being_written_is_not_removed(tmp_path):
    with atomic_open(tmp_path / "a.npz") as fh:
        fh.write(b"still writing")
        assert remove_leftovers(tmp_path) == []
        with atomic_open(tmp_path / "b.txt") as other:  # another write, same folder
            other.write(b"y")
    assert (tmp_path / "a.npz").read_bytes() == b"still writing"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.npz", "b.txt"]
