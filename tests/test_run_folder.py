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
        # a checkpoint reached through a link into the running run's folder
        (tmp_path / "elsewhere").mkdir()
        link = tmp_path / "elsewhere" / "ck.npz"
        link.symlink_to(run / "checkpoint.npz")
        for args in (
            ["--out", run, "--overwrite"],
            ["--resume", run / "checkpoint.npz"],
            ["--resume", link],
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


# --- --overwrite keeps the old run until the new one is valid ------------------
def _quick(*args):
    """bpnet-train in this process (faster than a subprocess)."""
    from bpnet.cli.train import train_main

    return train_main([*QUICK, *map(str, args)])


def _snapshot(folder):
    return {
        p.name: p.read_bytes()
        for p in folder.iterdir()
        if p.is_file() and p.name != LOCK_NAME
    }


@pytest.mark.parametrize(
    "bad",
    [
        ["--data", "missing.npy", "--labels", "y.npy"],  # refused before training
        ["--lr", "1e38"],  # diverges in its first epoch: no checkpoint
    ],
    ids=["bad-input", "divergence"],
)
def test_overwrite_keeps_the_old_run_when_the_new_one_fails(tmp_path, bad, capsys):
    run = tmp_path / "run"
    assert _quick("--epochs", 2, "--out", run) == 0
    before = _snapshot(run)
    assert {"checkpoint.npz", "model.npz", "history.json"} <= set(before)
    capsys.readouterr()
    assert _quick("--epochs", 1, "--out", run, "--overwrite", *bad) == 2
    err = capsys.readouterr().err
    assert ("--data" in err) if "--data" in bad else ("diverged" in err), err
    assert _snapshot(run) == before  # every file back, byte for byte
    assert sorted(p.name for p in run.iterdir()) == sorted([*before, LOCK_NAME])
    assert _quick("--epochs", 1, "--out", run, "--overwrite") == 0  # a good one
    assert _epoch(run) == 1 and not (run / "confusion.png").read_bytes() == b""
    assert sorted(p.name for p in run.iterdir()) == sorted([*before, LOCK_NAME])


def test_a_run_killed_during_an_overwrite_gets_the_old_run_back(tmp_path):
    """SIGKILL before the new run's first checkpoint: the old run waits in
    D/.bpnet-train.previous, and the next bpnet-train into D puts it back."""
    from bpnet.cli.run_folder import PREVIOUS_NAME

    run = tmp_path / "run"
    assert _quick("--epochs", 2, "--out", run) == 0
    before = _snapshot(run)
    code = (
        "import os, signal, sys\n"
        "import bpnet.train.loop as loop\n"
        "loop._Loop.epoch = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
        "import bpnet.cli.train as t\n"
        "sys.exit(t.train_main(sys.argv[1:]))\n"
    )
    args = [*QUICK, "--epochs", "1", "--out", str(run), "--overwrite"]
    killed = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, timeout=300
    )
    assert killed.returncode == -signal.SIGKILL
    assert _snapshot(run / PREVIOUS_NAME) == before  # recoverable by hand there
    assert not (run / "model.npz").exists()
    # --resume of the old run puts it back first, then goes on
    proc = _train("--resume", run / "checkpoint.npz", "--epochs", 3)
    assert proc.returncode == 0, proc.stderr
    assert "set aside; it is back in place" in proc.stderr
    assert _epoch(run) == 3 and not (run / PREVIOUS_NAME).exists()


def test_a_kill_after_the_new_run_s_first_checkpoint_keeps_the_new_run(tmp_path):
    from bpnet.cli.run_folder import DISCARDED_NAME, PREVIOUS_NAME, RunFolder

    run = tmp_path / "run"
    assert _quick("--epochs", 2, "--out", run) == 0
    folder = RunFolder(run)
    folder.set_aside()
    (run / "checkpoint.npz").write_bytes(b"the new run's")
    # killed while deleting the old run: the rename to 'discarded' had decided
    (run / PREVIOUS_NAME).rename(run / DISCARDED_NAME)
    (run / DISCARDED_NAME / "model.npz").unlink()
    assert _quick("--epochs", 1, "--out", run) == 2  # a run is there: the new one
    assert (run / "checkpoint.npz").read_bytes() == b"the new run's"
    assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME, "checkpoint.npz"]


def test_a_kill_while_the_old_run_is_set_aside_loses_none_of_it(tmp_path, capsys):
    from bpnet.cli.run_folder import MOVING_NAME

    run = tmp_path / "run"
    assert _quick("--epochs", 2, "--out", run) == 0
    before = _snapshot(run)
    (run / MOVING_NAME).mkdir()  # killed after moving one file of several
    (run / "model.npz").rename(run / MOVING_NAME / "model.npz")
    assert _quick("--epochs", 1, "--out", run) == 2  # back, and so refused
    assert "it is back in place" in capsys.readouterr().err
    assert _snapshot(run) == before
    assert sorted(p.name for p in run.iterdir()) == sorted([*before, LOCK_NAME])


# --- links planted in a run folder ---------------------------------------------
@pytest.mark.parametrize("name", [LOCK_NAME, "history.json", "model.npz"])
def test_a_link_planted_in_the_run_folder_is_refused_and_its_target_kept(
    tmp_path, name, capsys
):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    run = tmp_path / "s1"
    run.mkdir()
    (run / name).symlink_to(victim)
    assert _quick("--epochs", 1, "--out", run) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(run / name) in err[0] and "link" in err[0], err
    assert victim.read_text() == "precious"
    assert not (run / "checkpoint.npz").exists()


def test_a_lock_file_with_another_name_is_refused_and_kept(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    run = tmp_path / "s1"
    run.mkdir()
    os.link(victim, run / LOCK_NAME)
    assert _quick("--epochs", 1, "--out", run) == 2
    err = capsys.readouterr().err
    assert "hard link" in err and str(run / LOCK_NAME) in err
    assert victim.read_text() == "precious"


def test_out_naming_a_file_is_one_line_naming_out(tmp_path, capsys):
    afile = tmp_path / "afile"
    afile.write_text("mine")
    assert _quick("--epochs", 1, "--out", afile) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("bpnet-train: error: --out: "), err
    assert "is a file, not a folder" in err[0] and afile.read_text() == "mine"


def test_resume_from_a_read_only_folder_leaves_it_as_it_was(tmp_path, monkeypatch):
    """The source of a --resume into another --out is only read: it gains no
    lock file, and a folder where nothing can be created (a read-only file
    system, simulated: the process may be root) is no obstacle."""
    import errno

    source, out = tmp_path / "ro", tmp_path / "out"
    assert _quick("--epochs", 1, "--out", source) == 0
    (source / LOCK_NAME).unlink()  # as if copied from elsewhere
    before = sorted(p.name for p in source.iterdir())
    real_open = os.open

    def read_only(path, flags, *args, **kwargs):
        if os.path.dirname(os.fspath(path)) == str(source) and flags & (
            os.O_CREAT | os.O_WRONLY | os.O_RDWR
        ):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS), os.fspath(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    assert (
        _quick("--resume", source / "checkpoint.npz", "--epochs", 2, "--out", out) == 0
    )
    monkeypatch.undo()
    assert sorted(p.name for p in source.iterdir()) == before
    assert _epoch(out) == 2 and _epoch(source) == 1


# --- Ctrl-C at the last epoch's end --------------------------------------------
@pytest.mark.parametrize("during", ["save_checkpoint", "_evaluate_device"])
def test_ctrl_c_during_the_last_epoch_s_end_is_interrupted_exit_130(tmp_path, during):
    """As a Ctrl-C mid-run: 'interrupted', exit 130, no outputs written, the
    last epoch's checkpoint whole (it resumes)."""
    run = tmp_path / "run"
    target = "cb.ckpt" if during == "save_checkpoint" else "cb"
    code = (
        "import os, signal, sys\n"
        "import bpnet.train.callbacks as cb\n"
        f"owner = {target}\n"
        f"real, calls = owner.{during}, []\n"
        "def interrupted(*args, **kwargs):\n"
        "    calls.append(1)\n"
        "    if len(calls) == 2:  # the last epoch's\n"
        "        os.kill(os.getpid(), signal.SIGINT)\n"
        "    return real(*args, **kwargs)\n"
        f"owner.{during} = interrupted\n"
        "import bpnet.cli.train as t\n"
        "sys.exit(t.train_main(sys.argv[1:]))\n"
    )
    args = ["--hidden", "16", "--batch-size", "256", "--epochs", "2", "--out", str(run)]
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 130, (proc.stdout, proc.stderr)
    assert proc.stderr.strip().splitlines()[-1] == "bpnet-train: interrupted"
    assert "test accuracy" not in proc.stdout and not (run / "model.npz").exists()
    assert _epoch(run) == 2
    done = _train("--resume", run / "checkpoint.npz")  # finishes its outputs
    assert done.returncode == 0 and (run / "model.npz").exists(), done.stderr


def test_a_full_disk_is_one_line_naming_the_file(tmp_path, monkeypatch, capsys):
    import errno

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)
    run = tmp_path / "run"
    assert _quick("--epochs", 1, "--out", run) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert "No space left on device" in line and str(run / "checkpoint.npz") in line
