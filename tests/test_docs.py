"""docs/reliability.md stays in step with the tests it cites."""

import ast
import re
from pathlib import Path

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
