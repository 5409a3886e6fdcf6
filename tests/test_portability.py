"""bpnet's math is written once: its math modules import neither numpy nor cupy."""

import ast
from pathlib import Path

import pytest

import bpnet

MATH_MODULES = [
    "functional",
    "layers",
    "losses",
    "model",
    "initializers",
    "gradcheck",
    "gates",
    "optimizers",
    "training",
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
    path = Path(bpnet.__file__).parent / f"{module}.py"
    if not path.exists():
        pytest.skip(f"bpnet/{module}.py is not there yet")
    found = _imports(path) & FORBIDDEN
    assert not found, f"bpnet/{module}.py imports {found}; use the Array API namespace"


def test_the_check_would_catch_an_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import numpy as np\nfrom array_api_compat.cupy import asarray\n")
    assert {"numpy", "cupy"} <= _imports(bad)
