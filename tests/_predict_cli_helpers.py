"""What the bpnet-predict test modules share: a model that bpnet-train wrote,
and the JSON line a command printed last.
"""

import json

import pytest

from bpnet.cli.train import train_main


@pytest.fixture(scope="module", name="trained")
def trained_fixture(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert train_main(["--epochs", "10", "--quiet", "--out", str(out)]) == 0
    return out / "model.npz"


def _last_json(capsys):
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])
