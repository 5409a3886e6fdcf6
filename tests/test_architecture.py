"""The layout's rules, checked from the source: each subpackage imports only
those below it, and no module imports itself back through others.

Every import counts, those inside functions too. The order is the one
docs/architecture.md draws: nn < io < train < (data, metrics, plots) < sklearn
< export < cli, with the package's own ``__init__`` on top.
"""

import ast
from pathlib import Path

import pytest

import bpnet

ROOT = Path(bpnet.__file__).parent
RANK = {
    "_version": 0,
    "nn": 1,
    "io": 2,
    "train": 3,
    "data": 4,
    "metrics": 4,
    "plots": 4,
    "distributed": 4,
    "sklearn": 5,
    "export": 6,
    "cli": 7,
    "__init__": 8,
}


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _part(module: str) -> str:
    """bpnet.nn.layers -> nn; bpnet -> __init__; bpnet.data -> data."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _bpnet_imports(path: Path) -> set[str]:
    """Every bpnet module that ``path`` imports, at any depth of the code."""
    found = set()
    package = _module_name(path) if path.is_relative_to(ROOT) else "bpnet"
    if path.name != "__init__.py":
        package = package.rpartition(".")[0] or "bpnet"
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "bpnet"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                pkg = package.split(".")
                pkg = pkg[: len(pkg) - node.level + 1]
                base = ".".join(pkg + ([base] if base else []))
            if base.split(".")[0] != "bpnet":
                continue
            for alias in node.names:
                # `from bpnet.nn import layers` imports the module bpnet.nn.layers
                sub = f"{base}.{alias.name}"
                found.add(sub if _is_module(sub) else base)
    return found


def _is_module(name: str) -> bool:
    rel = Path(*name.split(".")[1:])
    return (ROOT / rel).with_suffix(".py").exists() or (ROOT / rel).is_dir()


def _graph() -> dict[str, set[str]]:
    return {
        _module_name(p): _bpnet_imports(p) - {_module_name(p)}
        for p in sorted(ROOT.rglob("*.py"))
    }


MODULES = sorted(_graph())


@pytest.mark.parametrize("module", MODULES)
def test_a_module_imports_only_what_lies_below_it(module):
    mine = _part(module)
    for target in _graph()[module]:
        theirs = _part(target)
        if theirs == "__init__" and target == "bpnet":
            # `from bpnet import io` names a subpackage; only the root is above
            assert False, f"{module} imports the package root (bpnet/__init__)"
        assert RANK[theirs] < RANK[mine] or theirs == mine, (
            f"{module} imports {target}: {mine}/ must not depend on {theirs}/ "
            "(see docs/architecture.md for the order)"
        )


def test_the_core_imports_nothing_above_it():
    for module, targets in _graph().items():
        if _part(module) == "nn":
            outside = {t for t in targets if _part(t) not in ("nn", "_version")}
            assert not outside, f"{module} imports {outside}"


def test_no_import_circles():
    graph = _graph()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(m: str) -> None:
        state[m] = 1
        path.append(m)
        for t in graph.get(m, ()):
            if t not in graph:
                continue
            if state.get(t) == 1:
                cycle = path[path.index(t) :] + [t]
                raise AssertionError("import circle: " + " -> ".join(cycle))
            if t not in state:
                visit(t)
        path.pop()
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m)


def test_the_checks_would_catch_a_circle_and_a_wrong_direction(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def f():\n    from bpnet.train.loop import fit\n")
    assert "bpnet.train.loop" in _bpnet_imports(bad)
    assert RANK[_part("bpnet.train.loop")] > RANK["nn"]
