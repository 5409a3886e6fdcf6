"""The fit loop's numbers, pinned: histories, final weights and checkpoints.

The expected values were recorded from the fit loop before it was split into a
short loop plus callbacks; any restructuring must keep them bit for bit on
NumPy. To re-record after a deliberate change of the numbers, run
``python tests/test_fit_regression.py`` and paste its output over EXPECTED.

Bit-for-bit equality holds for one NumPy and BLAS build on one CPU kind
(OpenBLAS picks its kernels by CPU). Elsewhere the histories are compared to
1e-4 and the digests are not compared.
"""

from __future__ import annotations

import hashlib
import json
import platform

import numpy as np
import pytest

import bpnet
from bpnet.train import checkpoint as ckpt


def _data(n=96, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    centers = rng.normal(scale=2.0, size=(k, d))
    y = np.arange(n) % k
    return (centers[y] + rng.normal(size=(n, d))).astype(np.float32), y


def _net(dropout=False, seed=2):
    layers = [bpnet.Dense(5, 12), bpnet.ReLU()]
    if dropout:
        layers.append(bpnet.Dropout(0.25))
    layers.append(bpnet.Dense(12, 3))
    return bpnet.Sequential(layers, seed=seed)


def _sha(arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(np.asarray(a))
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:24]


_KEYS = ("loss", "accuracy", "val_loss", "val_accuracy", "lr")


def _record(net, h, **extra) -> dict:
    record = {
        "weights": _sha(net.parameters()),
        "history": {k: list(h[k]) for k in _KEYS if h[k]},
        "stopped_early": h.stopped_early,
        "best_epoch": h.best_epoch,
    }
    record.update(extra)
    return record


def _checkpoint_digest(path) -> str:
    """What a resume would restore from ``path``: weights, optimizer state,
    generators, early stopping's state and the history (timings left out)."""
    net = _net(dropout=True)
    opt = bpnet.Adam(0.01)
    history, done, early, _ = ckpt.restore_run(path, net, opt)
    scalars, state = opt.state_dict()
    arrays = list(net.parameters())
    for name in sorted(state):
        arrays += state[name]
    arrays += (early or {}).get("weights") or []
    meta = {
        "epoch": done,
        "scalars": scalars,
        "history": {k: v for k, v in history.items() if k != "seconds"},
        "early": {k: v for k, v in (early or {}).items() if k != "weights"},
        "host_rng": net.host_rng.get_state(),
        "device_rng": net.device_rng.get_state(),
    }
    blob = json.dumps(meta, sort_keys=True, default=str).encode()
    return _sha(arrays) + hashlib.sha256(blob).hexdigest()[:8]


def _sgd(tmp_path):
    X, y = _data()
    net = _net()
    lines = []
    h = net.fit(X, y, epochs=4, batch_size=16, verbose=1, print_fn=lines.append)
    # the timing column is the one part of a line that may differ
    return _record(net, h, lines=[line.rsplit(" - ", 1)[0] for line in lines])


def _adam_l2(tmp_path):
    X, y = _data()
    net = _net()
    h = net.fit(X, y, epochs=4, batch_size=10, optimizer="adam", lr=0.01, l2=0.05)
    return _record(net, h)


def _early_stopping(tmp_path):
    rng = np.random.default_rng(3)  # noise: the validation loss soon rises
    X = rng.normal(size=(80, 5)).astype(np.float32)
    y = rng.integers(0, 3, 80)
    net = _net()
    h = net.fit(
        X,
        y,
        epochs=60,
        batch_size=8,
        optimizer=bpnet.Adam(0.05),
        validation_fraction=0.25,
        early_stopping=True,
        patience=3,
    )
    return _record(net, h)


def _checkpoint_resume(tmp_path):
    X, y = _data()
    path = tmp_path / "ck.npz"
    kw = dict(batch_size=16, validation_fraction=0.2, checkpoint=path)
    opt = bpnet.Adam(0.01, schedule=bpnet.StepDecay(2, 0.5))
    _net(dropout=True).fit(X, y, epochs=2, optimizer=opt, **kw)
    first = _checkpoint_digest(path)
    net = _net(dropout=True)
    opt = bpnet.Adam(0.01, schedule=bpnet.StepDecay(2, 0.5))
    h = net.fit(X, y, epochs=4, optimizer=opt, resume=True, **kw)
    return _record(net, h, first=first, last=_checkpoint_digest(path))


def _log_every(tmp_path):
    X, y = _data()
    net = _net()
    h = net.fit(X, y, epochs=3, batch_size=8, optimizer="momentum", log_every=2)
    return _record(net, h)


def _dropout(tmp_path):
    X, y = _data()
    net = _net(dropout=True)
    h = net.fit(X, y, epochs=3, batch_size=16, optimizer="nesterov", lr=0.05)
    return _record(net, h)


def _no_shuffle(tmp_path):
    X, y = _data()
    net = _net()
    h = net.fit(
        X, y, epochs=3, batch_size=20, shuffle=False, validation_data=(X[:30], y[:30])
    )
    return _record(net, h)


CONFIGS = {
    "sgd": _sgd,
    "adam_l2": _adam_l2,
    "early_stopping": _early_stopping,
    "checkpoint_resume": _checkpoint_resume,
    "log_every": _log_every,
    "dropout": _dropout,
    "no_shuffle": _no_shuffle,
}


def _fingerprint() -> str:
    try:
        from threadpoolctl import threadpool_info

        blas = [
            (i["internal_api"], i["version"], i.get("architecture"))
            for i in threadpool_info()
            if i["user_api"] == "blas"
        ]
    except ImportError:
        blas = "unknown"
    return f"numpy {np.__version__} {platform.machine()} {blas}"


RECORDED_ON = "numpy 2.4.6 x86_64 [('openblas', '0.3.31.188.0', 'SkylakeX')]"
EXPECTED: dict = {
    "adam_l2": {
        "best_epoch": None,
        "history": {
            "accuracy": [
                0.6145833333333334,
                0.8541666666666666,
                0.8854166666666666,
                0.9270833333333334,
            ],
            "loss": [
                0.8072211742401123,
                0.5008307298024496,
                0.3578668435414632,
                0.29652557770411175,
            ],
            "lr": [0.01, 0.01, 0.01, 0.01],
        },
        "stopped_early": False,
        "weights": "a8e29f7b3a4ea98971698676",
    },
    "checkpoint_resume": {
        "best_epoch": None,
        "first": "620a8af58708ac93c4c2215863eb16ce",
        "history": {
            "accuracy": [
                0.5194805194805194,
                0.6623376623376623,
                0.7922077922077922,
                0.7012987012987013,
            ],
            "loss": [
                1.0526928592037845,
                0.6386930292302911,
                0.5412368774414062,
                0.5600857920460887,
            ],
            "lr": [0.01, 0.01, 0.005, 0.005],
            "val_accuracy": [
                0.6842105263157895,
                0.6842105263157895,
                0.7894736842105263,
                0.7894736842105263,
            ],
            "val_loss": [
                0.7100228259437963,
                0.5362368131938734,
                0.48412659293726873,
                0.4534151177657278,
            ],
        },
        "last": "6277ef20e69213490b0406d588321b0c",
        "stopped_early": False,
        "weights": "c598b889b5ebd3a7b1b9086d",
    },
    "dropout": {
        "best_epoch": None,
        "history": {
            "accuracy": [0.5833333333333334, 0.7604166666666666, 0.8333333333333334],
            "loss": [0.7937703927357992, 0.49809237321217853, 0.3086866537729899],
            "lr": [0.05, 0.05, 0.05],
        },
        "stopped_early": False,
        "weights": "50e2b15bc68fde929c88e3f5",
    },
    "early_stopping": {
        "best_epoch": 3,
        "history": {
            "accuracy": [
                0.26666666666666666,
                0.55,
                0.6,
                0.5833333333333334,
                0.6166666666666667,
                0.65,
            ],
            "loss": [
                1.276819356282552,
                0.9522385279337565,
                0.9267307917277018,
                0.8821961720784505,
                0.8710957209269206,
                0.8089855829874675,
            ],
            "lr": [0.05, 0.05, 0.05, 0.05, 0.05, 0.05],
            "val_accuracy": [0.15, 0.15, 0.2, 0.2, 0.2, 0.25],
            "val_loss": [
                1.6713802337646484,
                1.623905563354492,
                1.4510997772216796,
                1.619300651550293,
                1.691396141052246,
                1.6160276412963868,
            ],
        },
        "stopped_early": True,
        "weights": "184f1868c86d910700fe5719",
    },
    "log_every": {
        "best_epoch": None,
        "history": {
            "accuracy": [0.6041666666666666, 0.8541666666666666, 0.9166666666666666],
            "loss": [0.7675190766652426, 0.40437082449595135, 0.26228747765223187],
            "lr": [0.01, 0.01, 0.01],
        },
        "stopped_early": False,
        "weights": "3fa17ec2e70eafa68c48d63f",
    },
    "no_shuffle": {
        "best_epoch": None,
        "history": {
            "accuracy": [0.625, 0.8229166666666666, 0.8541666666666666],
            "loss": [0.7656977971394857, 0.48424673080444336, 0.37305212020874023],
            "lr": [0.1, 0.1, 0.1],
            "val_accuracy": [
                0.8333333333333334,
                0.8666666666666667,
                0.8666666666666667,
            ],
            "val_loss": [0.5413137435913086, 0.38940931955973307, 0.3142788569132487],
        },
        "stopped_early": False,
        "weights": "c0be74b6c6f3fa2408190b06",
    },
    "sgd": {
        "best_epoch": None,
        "history": {
            "accuracy": [0.625, 0.8333333333333334, 0.8125, 0.90625],
            "loss": [
                0.7423189481099447,
                0.4430777629216512,
                0.34993751843770343,
                0.2803591291109721,
            ],
            "lr": [0.1, 0.1, 0.1, 0.1],
        },
        "lines": [
            "Epoch 1/4 - loss: 0.7423 - accuracy: 0.6250",
            "Epoch 2/4 - loss: 0.4431 - accuracy: 0.8333",
            "Epoch 3/4 - loss: 0.3499 - accuracy: 0.8125",
            "Epoch 4/4 - loss: 0.2804 - accuracy: 0.9062",
        ],
        "stopped_early": False,
        "weights": "9ceadf341451a0d8c1a5ae51",
    },
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_fit_gives_the_recorded_numbers(name, tmp_path):
    got = CONFIGS[name](tmp_path)
    want = EXPECTED[name]
    if _fingerprint() == RECORDED_ON:
        assert got == want
        return
    for key, values in want["history"].items():
        np.testing.assert_allclose(got["history"][key], values, rtol=1e-4)
    assert (got["stopped_early"], got["best_epoch"]) == (
        want["stopped_early"],
        want["best_epoch"],
    )


if __name__ == "__main__":  # re-record: python tests/test_fit_regression.py
    import pprint
    import tempfile
    from pathlib import Path

    out = {}
    for name in sorted(CONFIGS):
        with tempfile.TemporaryDirectory() as tmp:
            out[name] = CONFIGS[name](Path(tmp))
    print(f"RECORDED_ON = {_fingerprint()!r}")
    print("EXPECTED = " + pprint.pformat(out, width=84, sort_dicts=True))
