"""fit's callbacks: the hooks users get, the forms they may take, and the one
backend hook behind which a whole epoch may be replayed."""

import inspect
import subprocess
import sys

import numpy as np
import pytest

import backends
import bpnet
from bpnet.train.callbacks import Callback


def _blobs(n=120, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=4.0, size=(k, d))
    y = np.arange(n) % k
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y


def _net(device="cpu"):
    return bpnet.Sequential(
        [bpnet.Dense(4, 16), bpnet.ReLU(), bpnet.Dense(16, 3)], device=device, seed=0
    )


class Recorder(Callback):
    def __init__(self):
        self.calls = []

    def on_train_begin(self, run):
        self.calls.append(("begin", run.epochs, run.steps))

    def on_epoch_begin(self, epoch, net):
        self.calls.append(("epoch", epoch))

    def on_step_end(self, step, logs, net):
        self.calls.append(("step", step, logs["steps"], float(logs["loss"])))

    def on_epoch_end(self, epoch, logs, net):
        self.calls.append(("end", epoch, logs["loss"]))

    def on_train_end(self, run):
        self.calls.append(("done", len(run.history), run.error))


def test_every_hook_runs_in_order_with_its_numbers():
    X, y = _blobs()
    rec = Recorder()
    h = _net().fit(X, y, epochs=2, batch_size=50, callbacks=[rec])
    kinds = [c[0] for c in rec.calls]
    assert kinds == ["begin"] + ["epoch", "step", "step", "step", "end"] * 2 + ["done"]
    assert rec.calls[0] == ("begin", 2, 3) and rec.calls[-1] == ("done", 2, None)
    steps = [c for c in rec.calls if c[0] == "step"]
    assert [s[1] for s in steps] == [0, 1, 2, 0, 1, 2] and {s[2] for s in steps} == {1}
    # the epoch's loss is the row-weighted mean of its steps' losses
    first = steps[:3]
    mean = (first[0][3] * 50 + first[1][3] * 50 + first[2][3] * 20) / 120
    assert h.loss[0] == pytest.approx(mean, rel=1e-6)
    assert [c[2] for c in rec.calls if c[0] == "end"] == h.loss


def test_plain_callables_and_duck_typed_objects_still_work():
    X, y = _blobs()
    seen, steps = [], []

    class StepsOnly:  # no Callback base, one hook
        def on_step_end(self, step, logs, net):
            steps.append(step)

    def stop_at_two(epoch, logs, net):
        seen.append(epoch)
        return epoch == 1

    h = _net().fit(X, y, epochs=5, batch_size=60, callbacks=[stop_at_two, StepsOnly()])
    assert seen == [0, 1] and len(h) == 2 and steps == [0, 1, 0, 1]


def test_train_end_runs_when_an_exception_ends_training():
    X, y = _blobs()
    rec = Recorder()

    def boom(epoch, logs, net):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        _net().fit(X, y, epochs=3, callbacks=[rec, boom])
    done = rec.calls[-1]
    assert done[0] == "done" and isinstance(done[2], RuntimeError)


def test_a_single_callback_need_not_be_in_a_list():
    X, y = _blobs()
    rec = Recorder()
    _net().fit(X, y, epochs=1, callbacks=rec)
    assert rec.calls[-1][0] == "done"


def test_sequential_fit_has_bpnet_fit_s_signature_minus_net():
    fit_params = list(inspect.signature(bpnet.fit).parameters.values())
    assert fit_params[0].name == "net"
    bound = inspect.signature(_net().fit)
    assert list(bound.parameters.values()) == fit_params[1:]
    assert bound.return_annotation == inspect.signature(bpnet.fit).return_annotation
    method = list(inspect.signature(bpnet.Sequential.fit).parameters.values())
    assert method[0].name == "self" and method[1:] == fit_params[1:]


def _fake_graph_backend(monkeypatch, captured):
    """The CPU backend pretending to record graphs: the 'recording' is the
    epoch function itself, so a replay runs it with no per-step calls."""
    be = backends.get_backend("cpu")
    monkeypatch.setattr(type(be), "supports_graphs", True)

    def capture(fn):
        captured.append(fn)
        return fn

    monkeypatch.setattr(be, "capture_graph", capture)
    return be


def test_replayed_epochs_give_the_plain_loop_s_weights(monkeypatch):
    X, y = _blobs()
    captured = []
    be = _fake_graph_backend(monkeypatch, captured)
    bar_steps = []

    class Bar(Callback):
        every_step = False  # a replayed epoch may be reported at once

        def on_step_end(self, step, logs, net):
            bar_steps.append(logs["steps"])

    graph = _net(be)
    opt = bpnet.Momentum(0.05)
    h = graph.fit(X, y, epochs=3, batch_size=25, optimizer=opt, callbacks=[Bar()])
    plain = _net()
    opt_plain = bpnet.Momentum(0.05)
    h_plain = plain.fit(
        X, y, epochs=3, batch_size=25, optimizer=opt_plain, cuda_graph=False
    )
    assert len(captured) == 1 and h.cuda_graph and not h_plain.cuda_graph
    assert bar_steps == [1] * 5 + [5, 5] and opt.t == opt_plain.t == 15
    assert h.loss == h_plain.loss
    for a, b in zip(graph.parameters(), plain.parameters()):
        np.testing.assert_array_equal(a, b)


def test_a_callback_that_needs_every_step_keeps_the_plain_loop(monkeypatch):
    X, y = _blobs()
    captured = []
    be = _fake_graph_backend(monkeypatch, captured)
    rec = Recorder()
    h = _net(be).fit(X, y, epochs=2, batch_size=40, callbacks=[rec])
    assert not captured and not h.cuda_graph
    assert sum(c[0] == "step" for c in rec.calls) == 6
    h = _net(be).fit(X, y, epochs=2, batch_size=40, log_every=2)
    assert not captured and not h.cuda_graph


def test_bad_callbacks_are_named():
    X, y = _blobs()
    with pytest.raises(TypeError, match=r"callbacks: expected .* got 3"):
        _net().fit(X, y, callbacks=[3])


def _render(stream):
    """The lines a terminal shows for ``stream``: a carriage return moves
    back to the line's start and later characters overwrite earlier ones."""
    shown = []
    for raw in stream.split("\n"):
        cells, col = [], 0
        for ch in raw:
            if ch == "\r":
                col = 0
                continue
            if col < len(cells):
                cells[col] = ch
            else:
                cells.append(ch)
            col += 1
        shown.append("".join(cells).rstrip())
    return shown


def test_progress_bar_and_epoch_lines_never_share_a_line():
    # stdout and stderr into one pipe, as both reach one terminal
    proc = subprocess.run(
        [sys.executable, "-m", "bpnet.cli.train", "--epochs", "3", "--progress"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout
    assert "step/s" in proc.stdout  # a bar was drawn
    epoch_lines = [line for line in _render(proc.stdout) if "Epoch " in line]
    assert len(epoch_lines) == 3
    for i, line in enumerate(epoch_lines, 1):
        assert line.startswith(f"Epoch {i}/3 - loss: "), line
        assert "step" not in line and "|" not in line


# --- Ctrl-C after the last step ---------------------------------------------------
def _ctrl_c(epoch, logs, net):
    import os
    import signal

    os.kill(os.getpid(), signal.SIGINT)  # held by fit until the epoch is done


def _raise(epoch, logs, net):
    raise KeyboardInterrupt


@pytest.mark.parametrize("how", [_ctrl_c, _raise], ids=["ctrl-c", "raised"])
@pytest.mark.parametrize("early_stopping", [False, True])
def test_ctrl_c_at_the_last_epoch_s_end_is_raised_with_the_checkpoint_whole(
    tmp_path, how, early_stopping
):
    X, y = _blobs()
    ck = tmp_path / "ck.npz"
    seen = []

    def on_last(epoch, logs, net):
        if epoch == 2:
            seen.append([np.array(p) for p in net.parameters()])
            how(epoch, logs, net)

    net = _net()
    extra = dict(validation_fraction=0.2, early_stopping=True) if early_stopping else {}
    with pytest.raises(KeyboardInterrupt):
        net.fit(X, y, epochs=3, checkpoint=ck, callbacks=[on_last], **extra)
    saved, _, training = bpnet.io.load_checkpoint(ck)
    assert training["epoch"] == 3  # the last epoch's checkpoint, whole
    for a, b, c in zip(seen[0], net.parameters(), saved.parameters()):
        np.testing.assert_array_equal(a, b)  # the last step's weights
        np.testing.assert_array_equal(a, c)


def test_ctrl_c_while_the_last_checkpoint_is_written_is_raised(tmp_path, monkeypatch):
    import os
    import signal

    from bpnet.train import checkpoint as ckpt

    real = ckpt.save_checkpoint

    def interrupted_write(path, net, opt, history, epoch, *args, **kwargs):
        if epoch == 2:
            os.kill(os.getpid(), signal.SIGINT)  # arrives mid-write
        return real(path, net, opt, history, epoch, *args, **kwargs)

    monkeypatch.setattr(ckpt, "save_checkpoint", interrupted_write)
    X, y = _blobs()
    ck = tmp_path / "ck.npz"
    with pytest.raises(KeyboardInterrupt):
        _net().fit(X, y, epochs=2, checkpoint=ck, validation_fraction=0.2)
    assert bpnet.io.load_checkpoint(ck)[2]["epoch"] == 2
