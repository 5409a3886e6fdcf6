"""bpnet's math is written once: its math modules import neither numpy nor cupy."""

import ast
from pathlib import Path

import pytest

import bpnet

MATH_MODULES = [
    "nn/functional",
    "nn/layers",
    "nn/losses",
    "nn/model",
    "nn/model_params",
    "nn/model_passes",
    "nn/model_predict",
    "nn/model_state",
    "nn/initializers",
    "nn/gradcheck",
    "nn/gates",
    "train/optimizers",
    "train/loop",
    "train/epoch",
    "train/fused",
    "train/history",
    "train/fullbatch",
    "train/fullbatch_parallel",
    "train/checkpoint",
]
FORBIDDEN = {"numpy", "cupy", "torch", "array_api_strict"}


def _imports(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
            if node.module.startswith("array_api_compat."):
                names.add(node.module.split(".")[1])
    return names


@pytest.mark.parametrize("module", MATH_MODULES)
def test_math_module_imports_no_array_library(module):
    path = Path(bpnet.__file__).parent / module
    # a package (train/optimizers) is checked file by file, new files included
    files = sorted(path.glob("*.py")) if path.is_dir() else [path.with_suffix(".py")]
    assert files, f"bpnet/{module} is neither a module nor a package"
    for file in files:
        found = _imports(file) & FORBIDDEN
        assert not found, f"{file} imports {found}; use the Array API namespace"


def test_the_check_would_catch_an_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy as np\nfrom array_api_compat.cupy import asarray\n")
    assert {"numpy", "cupy"} <= _imports(bad)


def test_the_core_needs_only_numpy_and_array_api_compat(tmp_path):
    """`pip install bpnet-arrayapi` without extras: import, build, train, save."""
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import sys
        for name in ("scipy", "sklearn", "matplotlib", "tqdm", "torch"):
            sys.modules[name] = None  # any import of these now fails
        import numpy as np
        import bpnet
        rng = np.random.default_rng(0)
        X, y = rng.normal(size=(60, 4)).astype(np.float32), rng.integers(0, 3, 60)
        net = bpnet.Sequential([bpnet.Dense(4, 8), bpnet.ReLU(), bpnet.Dense(8, 3)])
        net.fit(X, y, epochs=3, optimizer="adam")
        bpnet.save(net, {str(tmp_path / "m.npz")!r})
        back = bpnet.load({str(tmp_path / "m.npz")!r})
        assert (np.asarray(back.predict(X)) == np.asarray(net.predict(X))).all()
        print("ok")
    """)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_an_estimator_file_loads_in_a_fresh_process(tmp_path):
    import subprocess
    import sys

    import numpy as np

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), np.array(["a", "b"] * 20)
    clf = bpnet.MLPClassifier(hidden_layer_sizes=(4,), solver="lbfgs", max_iter=20)
    clf.fit(X, y)
    clf.save(tmp_path / "c.npz")
    code = (
        "import bpnet, sys; m = bpnet.load(sys.argv[1]); "
        "print(type(m).__name__, m.classes_.tolist())"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "c.npz")],
        capture_output=True,
        text=True,
    )
    assert proc.stdout.strip() == "MLPClassifier ['a', 'b']", proc.stderr
