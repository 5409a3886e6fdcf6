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


def test_ci_version_listing_shows_every_array_library():
    import shutil
    import subprocess

    import pytest

    grep = shutil.which("grep")
    if grep is None:
        pytest.skip("no grep on this machine")
    script = (ROOT / ".ci" / "run").read_text()
    pattern = re.search(r'grep -iE "([^"]+)"', script).group(1)
    pip_list = (
        "Package            Version\n"
        "------------------ -----------\n"
        "array-api-compat   1.16.0\n"
        "array_api_strict   2.6.1\n"
        "numpy              2.4.6\n"
        "numpydoc           1.8.0\n"
        "scikit-learn       1.9.1\n"
        "scipy              1.17.1\n"
        "torch              2.13.0+cpu\n"
        "tqdm               4.67.1\n"
    )
    shown = subprocess.run(
        [grep, "-iE", pattern], input=pip_list, capture_output=True, text=True
    ).stdout.split()[0::2]
    assert shown == [
        "array-api-compat",
        "array_api_strict",
        "numpy",
        "scikit-learn",
        "scipy",
        "torch",
    ]


# The front page and the guide pages whose examples moved there from it: every
# python block in them runs as written.
PAGES_WITH_EXAMPLES = ("README.md", "docs/estimators.md")


def _python_blocks() -> list[tuple[str, str]]:
    blocks = []
    for page in PAGES_WITH_EXAMPLES:
        text = (ROOT / page).read_text()
        for code in re.findall(r"^```python\n(.*?)^```", text, flags=re.S | re.M):
            blocks.append((page, code))
    return blocks


def test_the_docs_have_the_estimator_examples():
    blocks = [code for _, code in _python_blocks()]
    assert any("MLPRegressor" in b and "GridSearchCV" in b for b in blocks)
    assert any("MLPClassifier" in b and "GridSearchCV" in b for b in blocks)
    readme = [code for page, code in _python_blocks() if page == "README.md"]
    assert any("bpnet.Sequential" in b for b in readme)
    assert any("MLPClassifier" in b for b in readme)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("index", range(len(_python_blocks())))
def test_python_blocks_run_as_written(index, tmp_path, monkeypatch, capsys):
    # each block runs alone, in a fresh namespace, where its files may land
    from threadpoolctl import threadpool_limits

    monkeypatch.chdir(tmp_path)
    page, code = _python_blocks()[index]
    with threadpool_limits(1):
        exec(compile(code, f"{page} python block {index}", "exec"), {})


def test_the_site_builds_without_a_warning(tmp_path):
    """The documentation site builds with -W: a broken cross-reference, a
    docstring numpydoc cannot parse or an example that fails ends the build.
    Needs the ``docs`` extra (``.ci/run`` installs it)."""
    import subprocess
    import sys

    for module in ("sphinx", "numpydoc", "myst_parser", "sphinx_gallery"):
        pytest.importorskip(module, reason="the docs extra is not installed")
    pytest.importorskip("pydata_sphinx_theme", reason="the docs extra is not installed")
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "-q",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            str(ROOT / "docs"),
            str(tmp_path / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    html = tmp_path / "html"
    # every public name has its page, built from its docstring
    import backends
    import bpnet

    for name in bpnet.__all__:
        if not name.startswith("__"):
            assert (html / "api" / "generated" / f"bpnet.{name}.html").exists(), name
    for name in backends.__all__:
        assert (html / "api" / "generated" / f"backends.{name}.html").exists(), name
    page = (html / "api" / "generated" / "bpnet.Dense.html").read_text()
    assert "n_in" in page and "Affine layer" in page and "W has shape (in, out)" in page
