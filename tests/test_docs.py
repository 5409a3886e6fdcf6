"""The docs stay in step with the code: docs/reliability.md cites tests that
exist, and the README's python blocks run as written."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _cited() -> list[tuple[str, str]]:
    text = (ROOT / "docs" / "reliability.md").read_text()
    cited = []
    for line in text.splitlines():
        current = None
        for m in re.finditer(r"`(tests/[\w/]+\.py)?::(\w+)`", line):
            current = m.group(1) or current
            cited.append((current, m.group(2)))
    return cited


def test_every_cited_test_exists():
    cited = _cited()
    assert len(cited) > 30
    names: dict[str, set[str]] = {}
    for path, name in cited:
        assert path is not None, f"{name} is cited without its file"
        if path not in names:
            tree = ast.parse((ROOT / path).read_text())
            names[path] = {
                n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)
            }
        assert name in names[path], (
            f"docs/reliability.md cites {path}::{name}, which is gone"
        )


def _readme_python_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text()
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M)


def test_readme_has_the_estimator_examples():
    blocks = _readme_python_blocks()
    assert any("MLPRegressor" in b and "GridSearchCV" in b for b in blocks)
    assert any("MLPClassifier" in b and "GridSearchCV" in b for b in blocks)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("index", range(len(_readme_python_blocks())))
def test_readme_python_blocks_run_as_written(index, tmp_path, monkeypatch, capsys):
    # each block runs alone, in a fresh namespace, where its files may land
    from threadpoolctl import threadpool_limits

    monkeypatch.chdir(tmp_path)
    code = _readme_python_blocks()[index]
    with threadpool_limits(1):
        exec(compile(code, f"README.md python block {index}", "exec"), {})
