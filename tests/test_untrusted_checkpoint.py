"""A checkpoint is untrusted input, like a model file: each damaged variant is
one ModelFileError naming the field, raised before anything is built from it;
bpnet-train --resume prints one line and exits 2."""

import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

import bpnet
from bpnet.cli.train import train_main
from bpnet.io import ModelFileError, read_model_file, write_model_file
from bpnet.io.modelfile import RESERVED_KEYS
from bpnet.train.checkpoint import read_checkpoint


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    args = ["--hidden", "16", "--epochs", "2", "--batch-size", "256", "--quiet"]
    assert train_main([*args, "--out", str(run)]) == 0
    return run / "checkpoint.npz"


def _damaged(pristine, folder, edit):
    arrays, meta = read_model_file(pristine)
    meta = {k: v for k, v in meta.items() if k not in RESERVED_KEYS}
    edit(arrays, meta)
    return write_model_file(folder / "checkpoint.npz", arrays, meta)


def _drop_moments(arrays, meta):
    for key in [k for k in arrays if k.startswith("state/opt/m/")]:
        del arrays[key]


def _set(*path, value):
    def edit(arrays, meta):
        target = meta
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value

    return edit


def _widen(arrays, meta):
    meta["config"]["layers"][0]["n_out"] = 10_000_000
    meta["config"]["layers"][2]["n_in"] = 10_000_000


def _wrong_moment(arrays, meta):
    arrays["state/opt/v/1"] = np.zeros((3, 3), np.float32)


DAMAGED = {
    "moments deleted": (_drop_moments, "training.optimizer: state array 'opt/m/0'"),
    "a moment of another shape": (
        _wrong_moment,
        r"training.optimizer: state array 'opt/v/1' is float32 of shape \(3, 3\)",
    ),
    "epoch -5": (_set("training", "epoch", value=-5), "training.epoch: .* got -5"),
    # the JSON number 1e999 parses as infinity
    "epoch 1e999": (
        _set("training", "epoch", value=float("inf")),
        "training.epoch: .* got inf",
    ),
    "epoch past the run": (
        _set("training", "epoch", value=3),
        r"training.epoch: expected an integer in \[0, 2\]",
    ),
    "fit {}": (_set("training", "fit", value={}), "training.fit: missing epochs"),
    "fit shuffle 'no'": (
        _set("training", "fit", "shuffle", value="no"),
        "training.fit.shuffle: expected true or false",
    ),
    "unknown optimizer": (
        _set("training", "optimizer", "type", value="Lion"),
        "training.optimizer: .*type 'Lion'",
    ),
    "negative step count": (
        _set("training", "optimizer_scalars", "t", value=-1),
        "training.optimizer_scalars.t",
    ),
    "history of another length": (
        _set("training", "history", "loss", value=[1.0]),
        "training.history.loss: expected a list of 2 numbers",
    ),
    "layers [1, 2]": (
        _set("config", "layers", value=[1, 2]),
        r"config layers\[0\]: expected a layer config",
    ),
    "a layer that is not one": (
        _set("config", "layers", 1, value=5),
        r"config layers\[1\]: expected a layer config",
    ),
    "device_rng of 2**200": (
        _set("training", "device_rng", "state", "state", value=2**200),
        "training.device_rng: expected the state of NumPy's PCG64 generator",
    ),
    "device_rng of MT19937": (
        _set(
            "training",
            "device_rng",
            value={"bit_generator": "MT19937", "state": {"key": [0] * 624, "pos": 0}},
        ),
        "training.device_rng: expected the state of NumPy's PCG64 generator",
    ),
    "host_rng of MT19937": (
        _set(
            "training",
            "host_rng",
            value={"bit_generator": "MT19937", "state": {"key": [0] * 624, "pos": 0}},
        ),
        "training.host_rng: expected the state of NumPy's PCG64 generator",
    ),
    "a config widened to 10,000,000": (
        _widen,
        r"array 'param_0' is stored as float32 of shape \(64, 16\), but the config "
        r"needs floating point of shape \(64, 10000000\)",
    ),
}
CLI_ONLY = {
    "data mat without a file": (
        _set("data", value={"dataset": "mat"}),
        "data.file: expected the path of the --data file",
    ),
    "data imagenet": (
        _set("data", value={"dataset": "imagenet"}),
        "data.dataset: expected one of digits, fashion-mnist, mnist, mat, arrays, got "
        "'imagenet'",
    ),
}


@pytest.mark.parametrize("case", DAMAGED)
def test_a_damaged_checkpoint_is_one_error_naming_the_field(pristine, tmp_path, case):
    edit, match = DAMAGED[case]
    path = _damaged(pristine, tmp_path, edit)
    with pytest.raises(ModelFileError, match=match) as info:
        read_checkpoint(path)
    assert info.value.path == path
    # fit(resume=True) refuses it before a step: the network is untouched
    net = bpnet.Sequential(
        [bpnet.Dense(64, 16), bpnet.ReLU(), bpnet.Dense(16, 10)], seed=0
    )
    before = [np.array(p) for p in net.parameters()]
    X = np.random.default_rng(0).random((20, 64)).astype(np.float32)
    with pytest.raises(ModelFileError, match=match):
        net.fit(X, np.arange(20) % 10, epochs=3, checkpoint=path, resume=True)
    for p, q in zip(before, net.parameters()):
        np.testing.assert_array_equal(p, q)


@pytest.mark.parametrize("case", [*DAMAGED, *CLI_ONLY])
def test_bpnet_train_resume_on_a_damaged_checkpoint_is_one_line(
    pristine, tmp_path, case, capsys
):
    edit, match = {**DAMAGED, **CLI_ONLY}[case]
    path = _damaged(pristine, tmp_path, edit)
    assert train_main(["--resume", str(path), "--epochs", "3", "--quiet"]) == 2
    captured = capsys.readouterr()
    (line,) = captured.err.strip().splitlines()
    assert line.startswith("bpnet-train: error: ") and str(path) in line
    assert re.search(match, line), line
    assert captured.out == ""


@pytest.mark.skipif(
    not os.path.exists("/proc/self/status"), reason="measures memory with /proc"
)
@pytest.mark.parametrize(
    "case", ["moments deleted", "a config widened to 10,000,000", "data imagenet"]
)
def test_resume_from_a_damaged_checkpoint_in_a_real_process(pristine, tmp_path, case):
    """No traceback, no download started, and the widened config allocates
    nothing: the process stays small."""
    edit, match = {**DAMAGED, **CLI_ONLY}[case]
    path = _damaged(pristine, tmp_path, edit)
    code = (
        "import sys\n"
        "from bpnet.cli.train import train_main\n"
        "code = train_main(['--resume', sys.argv[1], '--epochs', '3', '--quiet'])\n"
        "hwm = [x for x in open('/proc/self/status') if x.startswith('VmHWM:')]\n"
        "rss = int(hwm[0].split()[1]) // 1024  # this process's own peak, in MB\n"
        "print(rss)\n"
        "sys.exit(code)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
        env={"BPNET_DATA_DIR": str(tmp_path / "cache"), **_env()},
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert int(proc.stdout) < 500  # MB
    assert not (tmp_path / "cache").exists()  # nothing was downloaded


def _env():
    return {k: v for k, v in os.environ.items() if k != "BPNET_DATA_DIR"}


def test_an_intact_checkpoint_still_resumes(pristine, tmp_path):
    ck = shutil.copy(pristine, tmp_path / "checkpoint.npz")
    assert train_main(["--resume", str(ck), "--epochs", "3", "--quiet"]) == 0
    assert bpnet.io.load_checkpoint(ck)[2]["epoch"] == 3


def _optimizer_names():
    from bpnet.train.optimizers import OPTIMIZERS

    return OPTIMIZERS.names()


@pytest.mark.parametrize("name", _optimizer_names())
def test_every_optimizer_s_state_is_required_as_it_declares_it(tmp_path, name):
    """The state expected comes from the optimizer itself, so one added to
    the registry is checked with no change here: each state array missing
    is refused, an intact checkpoint is not."""
    net = bpnet.Sequential([bpnet.Dense(3, 4), bpnet.ReLU(), bpnet.Dense(4, 2)])
    X = np.random.default_rng(0).random((8, 3)).astype(np.float32)
    path = tmp_path / "ck.npz"
    net.fit(X, np.arange(8) % 2, epochs=1, optimizer=name, checkpoint=path)
    read_checkpoint(path)
    arrays, meta = read_model_file(path)
    state = sorted(k for k in arrays if k.startswith("state/opt/"))
    for key in state:
        damaged = {k: v for k, v in arrays.items() if k != key}
        kept = {k: v for k, v in meta.items() if k not in RESERVED_KEYS}
        write_model_file(tmp_path / "bad.npz", damaged, kept)
        missing = key.removeprefix("state/")
        with pytest.raises(ModelFileError, match=f"state array '{missing}' is missing"):
            read_checkpoint(tmp_path / "bad.npz")


def test_the_best_epoch_s_running_statistics_are_required_with_its_weights(tmp_path):
    """Buffers come from the network's config too: a checkpoint of a
    BatchNorm network that kept its best epoch must hold that epoch's
    running statistics, with the buffers' shapes."""
    net = bpnet.Sequential(
        [bpnet.Dense(3, 4), bpnet.BatchNorm(), bpnet.ReLU(), bpnet.Dense(4, 2)]
    )
    rng = np.random.default_rng(0)
    X, y = rng.random((40, 3)).astype(np.float32), np.arange(40) % 2
    path = tmp_path / "ck.npz"
    net.fit(
        X, y, epochs=2, early_stopping=True, validation_fraction=0.25, checkpoint=path
    )
    read_checkpoint(path)
    arrays, meta = read_model_file(path)
    kept = {k: v for k, v in meta.items() if k not in RESERVED_KEYS}
    assert "state/best_buffer/0" in arrays
    for edit, match in [
        (lambda a: a.pop("state/best_buffer/0"), "'best_buffer/0' is missing"),
        (
            lambda a: a.update({"state/best_buffer/1": np.zeros(7, np.float32)}),
            r"'best_buffer/1' is float32 of shape \(7,\)",
        ),
    ]:
        damaged = dict(arrays)
        edit(damaged)
        write_model_file(tmp_path / "bad.npz", damaged, kept)
        with pytest.raises(ModelFileError, match=f"training.early_stopping: .*{match}"):
            read_checkpoint(tmp_path / "bad.npz")
