"""Sphinx configuration: ``python -m sphinx -W -b html docs docs/_build/html``."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("MPLBACKEND", "Agg")

import bpnet  # noqa: E402

project = "bpnet"
author = "bpnet developers"
copyright = "bpnet developers"
version = release = bpnet.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "generated_gallery/*.ipynb", "**.ipynb_checkpoints"]
templates_path = ["_templates"]

# The API reference: one page per public name, from the docstrings.
autosummary_generate = True
autosummary_imported_members = False
autodoc_default_options = {"members": False}
autodoc_typehints = "none"  # numpydoc's Parameters sections say the types
numpydoc_show_class_members = False
numpydoc_validation_checks: set[str] = set()
numpydoc_xref_param_type = False

# Markdown pages (the guide, architecture, benchmarks, ...) are pages of the site.
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# The gallery runs every example in examples/ with small data while it builds
# (gallery_args.py: the arguments the tests give them).
sys.path.insert(0, str(Path(__file__).parent))
sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "generated_gallery",
    "filename_pattern": r"/[a-z0-9_]+\.py$",
    "ignore_pattern": r"__init__\.py|_common\.py",
    "reset_argv": "gallery_args.reset_argv",
    "download_all_examples": False,
    "plot_gallery": "True",
    "abort_on_example_error": True,
    "remove_config_comments": True,
}

html_theme = "pydata_sphinx_theme"
html_title = f"bpnet {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
}
html_static_path: list[str] = []
suppress_warnings = ["myst.header"]


# --- the API reference is written from the packages' own lists -----------------
# Every name in bpnet.__all__, backends.__all__ and bpnet.distributed.__all__ gets a
# page, grouped by what it is, so a new public name is documented with no edit here
# (tests/test_docs.py holds the lists and the pages together).


def _groups(module, names):
    import inspect

    from bpnet.nn.layers import Layer
    from bpnet.nn.losses import Loss
    from bpnet.train.optimizers import Optimizer

    kinds = {
        "Layers": [],
        "Losses": [],
        "Optimizers and schedules": [],
        "Estimators": [],
        "Functions": [],
        "Classes": [],
        "Errors and warnings": [],
        "Modules": [],
        "Constants": [],
    }
    for name in names:
        if name.startswith("__"):
            continue
        obj = getattr(module, name)
        if inspect.ismodule(obj):
            kinds["Modules"].append(name)
        elif inspect.isclass(obj) and issubclass(obj, BaseException):
            kinds["Errors and warnings"].append(name)
        elif inspect.isclass(obj) and issubclass(obj, Layer):
            kinds["Layers"].append(name)
        elif inspect.isclass(obj) and issubclass(obj, Loss):
            kinds["Losses"].append(name)
        elif inspect.isclass(obj) and (
            issubclass(obj, Optimizer) or name.endswith("Decay")
        ):
            kinds["Optimizers and schedules"].append(name)
        elif name.startswith("MLP"):
            kinds["Estimators"].append(name)
        elif inspect.isclass(obj):
            kinds["Classes"].append(name)
        elif callable(obj):
            kinds["Functions"].append(name)
        else:
            kinds["Constants"].append(name)
    return {k: sorted(v) for k, v in kinds.items() if v}


def _write_api_page(path, title, modname, intro):
    import importlib

    module = importlib.import_module(modname)
    lines = [
        title,
        "=" * len(title),
        "",
        f".. currentmodule:: {modname}",
        "",
        intro,
        "",
    ]
    for kind, names in _groups(module, module.__all__).items():
        lines += [kind, "-" * len(kind), ""]
        if kind == "Constants":
            lines += [f".. autodata:: {name}" for name in names] + [""]
            continue
        lines += [".. autosummary::", "   :toctree: generated", ""]
        lines += [f"   {name}" for name in names] + [""]
    text = "\n".join(lines)
    target = Path(__file__).parent / "api" / path
    if not target.exists() or target.read_text() != text:
        target.write_text(text)


_write_api_page(
    "bpnet.rst",
    "bpnet",
    "bpnet",
    "The public names of ``import bpnet``: networks and layers, losses, optimizers, "
    "training, files and the scikit-learn estimators.",
)
_write_api_page(
    "backends.rst",
    "backends",
    "backends",
    "Where arrays live: ``backends.get_backend(name)`` picks an array library and a "
    "device.",
)
_write_api_page(
    "distributed.rst",
    "bpnet.distributed",
    "bpnet.distributed",
    "Data-parallel training over MPI (host memory) or NCCL (CuPy on GPUs).",
)


def _plain_foreign_refs(app, what, name, obj, options, lines):
    """Methods inherited from scikit-learn (``score``, ``get_params``) cite labels
    of scikit-learn's own site; keep their text, drop the dead link."""
    import re

    module = getattr(obj, "__module__", "") or ""
    if not module.startswith("sklearn"):
        return
    for i, line in enumerate(lines):
        line = re.sub(r":ref:`([^`<]+?)\s*<[^`>]+>`", r"\1", line)
        lines[i] = re.sub(r":ref:`([^`]+)`", r"\1", line)


def setup(app):
    app.connect("autodoc-process-docstring", _plain_foreign_refs)
